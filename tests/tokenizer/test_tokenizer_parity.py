"""radixlm's tokenizer against Hugging Face `tokenizers` on every fixture tokenizer, over the generated corpus
(tokenizer_corpus.py): ids with and without special tokens, decode with and without skipping special tokens,
and streaming decode. Each tokenizer is driven through ONE radixlm invocation per mode (JSON list interface).
"""
import json
import pathlib
import random

import pytest
from tokenizers import Tokenizer

from radixlm_testing import run_radixlm
from tokenizer_corpus import corpus

FIXTURES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
# Every fixture directory that holds a tokenizer.json. (deepseek-r1 / deepseek-v3-base ship only
# tokenizer_config.json, so there is nothing to tokenize with.)
TOKENIZER_DIRS = [
    "tokenizers/gpt2",
    "tokenizers/llama-2-7b-hf",
    "tokenizers/llama-3.2-3b-instruct",
    "tokenizers/mistral-7b-instruct-v0.3",
    "tokenizers/qwen2.5-3b-instruct",
    "tokenizers/qwen3",
    "models/qwen2.5-tiny-chat",
    "models/llama3.2-tiny-chat",
]
TEXTS = corpus()


def radixlm_json(binary, command, payload, *flags):
    proc = run_radixlm(binary, command, *flags, "--json", input_text=json.dumps(payload))
    return json.loads(proc.stdout)


def report(mismatches, total, what):
    lines = [f"{len(mismatches)}/{total} {what} differ from HF; first ones:"]
    for item in mismatches[:5]:
        lines.append("  " + repr(item)[:600])
    return "\n".join(lines)


def random_id_lists(vocab_size, count, seed):
    """Arbitrary id sequences, as a model might sample them: any id, some unknown, bytes cut anywhere."""
    rng = random.Random(seed)
    lists = []
    for _ in range(count):
        ids = [rng.randrange(vocab_size) for _ in range(rng.randint(1, 40))]
        if rng.random() < 0.2:
            ids.insert(rng.randrange(len(ids) + 1), vocab_size + 5)  # unknown: dropped by both
        lists.append(ids)
    return lists


@pytest.fixture(scope="module", params=TOKENIZER_DIRS)
def tokenizer_case(request):
    directory = FIXTURES / request.param
    return directory, Tokenizer.from_file(str(directory / "tokenizer.json"))


@pytest.mark.slow
@pytest.mark.parametrize("add_special_tokens", [False, True])
def test_encode_matches_hf(radixlm_bin, tokenizer_case, add_special_tokens):
    directory, hf = tokenizer_case
    assert len(TEXTS) >= 5000
    expected = [e.ids for e in hf.encode_batch(TEXTS, add_special_tokens=add_special_tokens)]
    flags = ["--tokenizer-path", directory] + (["--add-special-tokens"] if add_special_tokens else [])
    got = radixlm_json(radixlm_bin, "tokenize", TEXTS, *flags)
    assert len(got) == len(TEXTS)
    mismatches = [(t, e, g) for t, e, g in zip(TEXTS, expected, got) if e != g]
    assert not mismatches, report(mismatches, len(TEXTS), "encodings")


@pytest.mark.slow
@pytest.mark.parametrize("skip_special_tokens", [False, True])
def test_decode_matches_hf(radixlm_bin, tokenizer_case, skip_special_tokens):
    directory, hf = tokenizer_case
    id_lists = [e.ids for e in hf.encode_batch(TEXTS, add_special_tokens=True)]
    id_lists += random_id_lists(hf.get_vocab_size(), 1000, seed=7)
    expected = hf.decode_batch(id_lists, skip_special_tokens=skip_special_tokens)
    flags = ["--tokenizer-path", directory] + (["--skip-special-tokens"] if skip_special_tokens else [])
    got = radixlm_json(radixlm_bin, "detokenize", id_lists, *flags)
    mismatches = [(ids, e, g) for ids, e, g in zip(id_lists, expected, got) if e != g]
    assert not mismatches, report(mismatches, len(id_lists), "decodes")


@pytest.mark.slow
@pytest.mark.parametrize("skip_special_tokens", [False, True])
def test_streaming_decode_concatenates_to_hf_decode(radixlm_bin, tokenizer_case, skip_special_tokens):
    directory, hf = tokenizer_case
    id_lists = [e.ids for e in hf.encode_batch(TEXTS, add_special_tokens=True)]
    id_lists += random_id_lists(hf.get_vocab_size(), 1000, seed=11)
    expected = hf.decode_batch(id_lists, skip_special_tokens=skip_special_tokens)
    flags = ["--tokenizer-path", directory, "--incremental"]
    flags += ["--skip-special-tokens"] if skip_special_tokens else []
    # radixlm dumps its JSON strictly, so a piece holding a partial UTF-8 sequence would fail the command.
    got = radixlm_json(radixlm_bin, "detokenize", id_lists, *flags)
    mismatches = []
    for ids, full, pieces in zip(id_lists, expected, got):
        assert len(pieces) == len(ids) + 1  # one per id, then the flush
        if "".join(pieces) != full:
            mismatches.append((ids, full, pieces))
        for piece in pieces:
            piece.encode("utf-8")  # no lone surrogates either
    assert not mismatches, report(mismatches, len(id_lists), "streamed decodes")


@pytest.mark.slow
@pytest.mark.parametrize("directory", ["tokenizers/gpt2", "tokenizers/qwen2.5-3b-instruct"])
@pytest.mark.parametrize("add_special_tokens", [False, True])
def test_vocab_merges_files_encode_like_tokenizer_json(radixlm_bin, directory, add_special_tokens):
    """Loaded from vocab.json + merges.txt (what a directory without tokenizer.json offers), radixlm must still
    encode like HF does with the tokenizer.json converted from those same files."""
    hf = Tokenizer.from_file(str(FIXTURES / directory / "tokenizer.json"))
    expected = [e.ids for e in hf.encode_batch(TEXTS, add_special_tokens=add_special_tokens)]
    flags = ["--tokenizer-path", FIXTURES / directory, "--tokenizer-source", "vocab-merges"]
    flags += ["--add-special-tokens"] if add_special_tokens else []
    got = radixlm_json(radixlm_bin, "tokenize", TEXTS, *flags)
    mismatches = [(t, e, g) for t, e, g in zip(TEXTS, expected, got) if e != g]
    assert not mismatches, report(mismatches, len(TEXTS), "encodings")
