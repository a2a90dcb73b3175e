"""`radixlm serve` without a tokenizer, as tests/gpu/serving.sh runs it on the GPU machine (a RADIXLM_TEXT=OFF
build, a model folder holding only config.json, dummy weights, --skip-tokenizer-init): /generate with input_ids
gives exactly the tokens asked for, streamed or not; a text prompt is a clear 400; and `radixlm bench serving`
with the random-ids dataset, the vocabulary taken from --tokenizer's config.json, completes every request
with input and output lengths inside the ranges --random-range-ratio gives."""
import json
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest


@pytest.fixture
def ids_only_server(radixlm_server, fixtures_dir, tmp_path):
    model = tmp_path / "config-only"
    model.mkdir()
    shutil.copy(fixtures_dir / "models" / "llama3.2-tiny-chat" / "config.json", model / "config.json")
    server = radixlm_server("--model-path", model, "--load-format", "dummy", "--device", "cpu",
                            "--skip-tokenizer-init")
    server.model_dir = model
    return server


def post(server, body, timeout=60):
    request = urllib.request.Request(server.url + "/generate", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def test_generate_with_input_ids(ids_only_server):
    body = {"input_ids": [11, 22, 33, 44, 55], "sampling_params": {"max_new_tokens": 8, "ignore_eos": True,
                                                                   "temperature": 0}}
    reply = json.loads(post(ids_only_server, body))
    assert len(reply["output_ids"]) == 8
    assert reply["meta_info"]["prompt_tokens"] == 5
    assert reply["meta_info"]["finish_reason"]["type"] == "length"

    chunks = [line[len("data: "):] for line in post(ids_only_server, {**body, "stream": True}).splitlines()
              if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    final = json.loads(chunks[-2])
    assert final["meta_info"]["completion_tokens"] == 8
    # Greedy from the same prompt: the stream ends with the same tokens.
    assert final["output_ids"][-8:] == reply["output_ids"]


def test_text_prompt_is_a_clear_400(ids_only_server):
    with pytest.raises(urllib.error.HTTPError) as error:
        post(ids_only_server, {"text": "hello", "sampling_params": {"max_new_tokens": 4}})
    assert error.value.code == 400
    assert "input_ids" in error.value.read().decode()


def test_bench_serving_random_ids(ids_only_server, radixlm_bin, tmp_path):
    out = tmp_path / "bench.jsonl"
    proc = subprocess.run(
        [str(radixlm_bin), "bench", "serving", "--backend", "sglang", "--base-url", ids_only_server.url,
         "--dataset-name", "random-ids", "--tokenizer", str(ids_only_server.model_dir), "--num-prompts", "12",
         "--random-input-len", "40", "--random-output-len", "16", "--random-range-ratio", "0.25",
         "--request-rate", "50", "--seed", "6", "--disable-tqdm", "--output-file", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text().splitlines()[-1])
    assert result["completed"] == 12 and result["failed"] == 0
    assert all(10 <= n <= 40 for n in result["input_lens"]), result["input_lens"]
    assert all(4 <= n <= 16 for n in result["output_lens"]), result["output_lens"]
    # The server counted the same prompt tokens the bench sent (ids, no retokenization).
    assert result["total_input_tokens_server"] == sum(result["input_lens"])
    assert result["median_itl_ms"] > 0
