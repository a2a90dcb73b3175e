"""`radixlm bench serving` against a real `radixlm serve` (tiny chat fixture): the run completes every
request, its JSON line carries every metric and per-request detail, and the token counts agree with what
the server itself says it generated. A dead server gives failed requests and an error exit, not a crash."""
import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from serving_process import free_port, running_server  # noqa: E402

MODEL = "llama3.2-tiny-chat"

METRIC_KEYS = [
    "duration", "completed", "failed", "total_input_tokens", "total_output_tokens", "total_output_tokens_retokenized",
    "request_throughput", "input_throughput", "output_throughput", "total_throughput", "concurrency",
    *[f"{stat}_{name}_ms" for name in ("ttft", "tpot", "itl", "e2e_latency") for stat in ("mean", "median", "std", "p90", "p99")],
    "p95_itl_ms", "max_itl_ms",
]
DETAIL_KEYS = ["input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors", "e2e_latencies", "start_times"]


@pytest.fixture(scope="module")
def server(radixlm_bin, fixtures_dir):
    with running_server(radixlm_bin, fixtures_dir / "models" / MODEL) as s:
        yield s


def bench(radixlm_bin, *args, timeout=300):
    return subprocess.run([str(radixlm_bin), "bench", "serving", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def last_json_line(path):
    return json.loads(path.read_text().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sglang", "sglang-oai", "chat"])
def test_random_dataset_run(radixlm_bin, server, tmp_path, backend):
    out = tmp_path / "result.jsonl"
    num_prompts, input_len, output_len = 12, 24, 8
    proc = bench(radixlm_bin, "--backend", backend, "--base-url", server.base_url, "--dataset-name", "random",
                 "--num-prompts", num_prompts, "--random-input-len", input_len, "--random-output-len", output_len,
                 "--random-range-ratio", 1.0, "--request-rate", 50, "--max-concurrency", 4, "--seed", 3,
                 "--output-file", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Serving Benchmark Result" in proc.stdout
    assert "Successful requests:                     12" in proc.stdout
    result = last_json_line(out)
    for key in METRIC_KEYS + DETAIL_KEYS:
        assert key in result, key
    assert result["completed"] == num_prompts
    assert result["failed"] == 0
    assert result["backend"] == backend
    assert result["max_concurrency"] == 4
    # ignore_eos and a range ratio of 1: every request makes exactly output_len tokens, as the server counts.
    assert result["output_lens"] == [output_len] * num_prompts
    assert result["total_output_tokens"] == num_prompts * output_len
    assert all(e == "" for e in result["errors"])
    for ttft, e2e, itls in zip(result["ttfts"], result["e2e_latencies"], result["itls"]):
        assert 0 < ttft <= e2e
        assert len(itls) <= output_len - 1
        assert all(x >= 0 for x in itls)
    if backend == "sglang":
        # /generate's latencies are divided over the tokens each event brought: one per later token.
        assert all(len(itls) >= 1 for itls in result["itls"])
        # The client counts a text prompt's tokens without special tokens; the server, like SGLang's, encodes
        # it with them, and this tokenizer adds one <|begin_of_text|>.
        assert result["total_input_tokens_server"] == result["total_input_tokens"] + num_prompts
    assert result["mean_ttft_ms"] > 0 and result["p99_ttft_ms"] >= result["median_ttft_ms"]
    assert result["p99_e2e_latency_ms"] >= result["p90_e2e_latency_ms"] >= result["median_e2e_latency_ms"] > 0
    assert result["request_throughput"] == pytest.approx(num_prompts / result["duration"])
    status, _, _ = server.request("GET", "/health")
    assert status == 200


@pytest.mark.slow
def test_ids_prompts_and_no_stream(radixlm_bin, server, tmp_path):
    out = tmp_path / "ids.jsonl"
    proc = bench(radixlm_bin, "--backend", "sglang", "--host", server.host, "--port", server.port, "--dataset-name",
                 "random-ids", "--num-prompts", 6, "--random-input-len", 16, "--random-output-len", 5,
                 "--random-range-ratio", 1.0, "--disable-stream", "--disable-tqdm", "--output-file", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = last_json_line(out)
    assert result["completed"] == 6
    assert result["input_lens"] == [16] * 6
    assert result["total_input_tokens_server"] == 96
    assert result["output_lens"] == [5] * 6
    assert result["ttfts"] == result["e2e_latencies"]  # without streaming the first token is the whole answer


@pytest.mark.slow
def test_sharegpt_dataset(radixlm_bin, server, tmp_path):
    conversations = [{"id": str(i), "conversations": [
        {"from": "human", "value": f"Question number {i}: what is {i} plus {i}?"},
        {"from": "gpt", "value": f"The answer is {2 * i}. " * 3}]} for i in range(10)]
    conversations.append({"id": "short", "conversations": [{"from": "human", "value": "one turn only"}]})
    data = tmp_path / "sharegpt.json"
    data.write_text(json.dumps(conversations))
    out = tmp_path / "sharegpt.jsonl"
    proc = bench(radixlm_bin, "--backend", "sglang-oai", "--base-url", server.base_url, "--dataset-name", "sharegpt",
                 "--dataset-path", data, "--num-prompts", 5, "--sharegpt-output-len", 6, "--output-file", out)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    result = last_json_line(out)
    assert result["completed"] == 5
    assert result["output_lens"] == [6] * 5
    assert result["sharegpt_output_len"] == 6


def test_unreachable_server_is_an_error_not_a_crash(radixlm_bin, tmp_path):
    port = free_port()
    proc = bench(radixlm_bin, "--backend", "sglang", "--port", port, "--num-prompts", 3, "--vocab-size", 1000,
                 "--random-input-len", 8, "--random-output-len", 4, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "warmup failed" in proc.stderr and "connect" in proc.stderr
    proc = bench(radixlm_bin, "--backend", "sglang", "--port", port, "--num-prompts", 3, "--vocab-size", 1000,
                 "--warmup-requests", 0, "--output-file", tmp_path / "dead.jsonl", timeout=60)
    assert proc.returncode == 1, proc.stderr
    result = last_json_line(tmp_path / "dead.jsonl")
    assert result["completed"] == 0 and result["failed"] == 3
    assert all("connect" in e for e in result["errors"])


def test_bad_flags(radixlm_bin):
    for args in (["--backend", "trt"], ["--request-rate", "-1"], ["--random-range-ratio", "2", "--vocab-size", "9"],
                 ["--base-url", "https://x:1"], ["--dataset-name", "nope"], ["--extra-request-body", "[1]"]):
        proc = bench(radixlm_bin, "--port", free_port(), *args, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "error" in proc.stderr
