"""Single-thread encode throughput, radixlm vs HF tokenizers, measured in the same run on the same corpus
(tokenizer_corpus.py) for the Llama-3.2 and Qwen2.5 tokenizers. Prints a Markdown table.

  RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false .venv/bin/python tests/tokenizer/bench_encode.py \
      --bench build/release/src/tokenizer/tokenizer_encode_bench

HF is timed with encode_batch (one Python call per pass, so Python overhead is negligible) pinned to one
thread; radixlm with the C++ tokenizer_encode_bench program. Both encode without special tokens, and both keep
their word caches across passes; the best of N passes is reported, plus radixlm's first (cold-cache) pass.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402  (the thread settings must come first)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tokenizer_corpus import corpus  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "tokenizers"
CASES = ["llama-3.2-3b-instruct", "qwen2.5-3b-instruct"]


def time_hf(directory, texts, repeats):
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    size = sum(len(t.encode()) for t in texts)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        tok.encode_batch(texts, add_special_tokens=False)
        rates.append(size / 1e6 / (time.perf_counter() - start))
    return max(rates), rates[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True, help="path of the tokenizer_encode_bench binary")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale", type=int, default=4, help="corpus copies (more bytes per pass)")
    args = parser.parse_args()
    texts = corpus() * args.scale
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(texts, f)
        path = f.name
    size = sum(len(t.encode()) for t in texts)
    print(f"corpus: {len(texts)} strings, {size / 1e6:.2f} MB per pass, best of {args.repeats} passes")
    print("| tokenizer | HF tokenizers MB/s (1 thread) | radixlm MB/s | radixlm / HF | radixlm first pass MB/s |")
    print("|---|---|---|---|---|")
    for name in CASES:
        hf_best, _ = time_hf(FIXTURES / name, texts, args.repeats)
        out = subprocess.run([args.bench, str(FIXTURES / name), path, str(args.repeats)], capture_output=True,
                             text=True, check=True).stdout
        ours = json.loads(out)
        print(f"| {name} | {hf_best:.2f} | {ours['mb_per_s']:.2f} | {ours['mb_per_s'] / hf_best:.2f}x | "
              f"{ours['first_pass_mb_per_s']:.2f} |")
    os.unlink(path)


if __name__ == "__main__":
    main()
