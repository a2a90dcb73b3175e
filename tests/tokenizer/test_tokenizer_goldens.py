"""llama.cpp's tokenizer test vectors (fixtures/tokenizers/goldens, produced upstream with HF tokenizers,
without special tokens) against the matching fixture tokenizers, loaded from every source radixlm supports."""
import json
import pathlib

import pytest

from radixlm_testing import run_radixlm

FIXTURES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "tokenizers"

# (golden name, tokenizer directory, --tokenizer-source)
CASES = [
    ("gpt-2", "gpt2", "tokenizer.json"),
    ("gpt-2", "gpt2", "vocab-merges"),
    ("llama-bpe", "llama-3.2-3b-instruct", "tokenizer.json"),
    ("llama-spm", "llama-2-7b-hf", "tokenizer.json"),
    ("llama-spm", "llama-2-7b-hf", "sentencepiece"),
    ("qwen2", "qwen2.5-3b-instruct", "tokenizer.json"),
    ("qwen2", "qwen2.5-3b-instruct", "vocab-merges"),
    ("qwen2", "qwen3", "tokenizer.json"),
    ("deepseek-r1-qwen", "qwen2.5-3b-instruct", "tokenizer.json"),
    ("deepseek-r1-qwen", "qwen2.5-3b-instruct", "vocab-merges"),
]


def load_golden(name):
    inputs = (FIXTURES / "goldens" / f"{name}.inp").read_text(encoding="utf-8")
    texts = inputs.split("\n__ggml_vocab_test__\n")
    assert texts[-1] == ""
    texts = texts[:-1]
    lines = (FIXTURES / "goldens" / f"{name}.out").read_text(encoding="utf-8").split("\n")
    ids = [[int(x) for x in line.split()] for line in lines[: len(texts)]]
    assert len(ids) == len(texts)
    return texts, ids


@pytest.mark.parametrize("golden,directory,source", CASES)
def test_goldens(radixlm_bin, golden, directory, source):
    texts, expected = load_golden(golden)
    proc = run_radixlm(radixlm_bin, "tokenize", "--tokenizer-path", FIXTURES / directory, "--tokenizer-source",
                       source, "--json", input_text=json.dumps(texts))
    got = json.loads(proc.stdout)
    mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g]
    assert not mismatches, f"{len(mismatches)}/{len(texts)} differ: {mismatches[:3]}"
