"""SGLang's native API on a running `radixlm serve` (the llama3.2-tiny-chat fixture): /generate in its shapes
(single, batch, n samples, stream with cumulative text, logprob triples, finish reasons), the info, health,
admin and tokenizer routes, /metrics read by prometheus_client's parser, and the API keys. References: greedy
output ids from `radixlm generate --input-ids --json` (the offline engine, its own process), token ids from HF
`tokenizers` on the model's tokenizer.json."""
import json
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from tokenizers import Tokenizer

from radixlm_testing import run_radixlm

PROMPT = [128000, 9906, 11, 1268, 527, 499]


@pytest.fixture
def model_dir(fixtures_dir):
    return fixtures_dir / "models" / "llama3.2-tiny-chat"


@pytest.fixture
def server(radixlm_server, model_dir):
    return radixlm_server("--model-path", model_dir, "--cpu-threads", "2")


@pytest.fixture
def hf_tokenizer(model_dir):
    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def offline_greedy(radixlm_bin, model_dir, ids, max_new_tokens):
    out = run_radixlm(radixlm_bin, "generate", "--model-path", model_dir, "--json", "--cpu-threads", "2",
                      "--input-ids", ",".join(map(str, ids)), "--temperature", "0", "--ignore-eos",
                      "--max-new-tokens", max_new_tokens)
    return json.loads(out.stdout.splitlines()[0])["output_ids"]


def generate(server, body, **kwargs):
    return requests.post(server.url + "/generate", json=body, timeout=120, **kwargs)


def sse_events(response):
    """The payloads of an SSE response, checking the `data: ...` framing; the last one must be [DONE]."""
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.text
    assert raw.endswith("data: [DONE]\n\n"), raw[-200:]
    events = [chunk for chunk in raw.split("\n\n") if chunk]
    assert all(e.startswith("data: ") for e in events), events
    return [json.loads(e[len("data: "):]) for e in events[:-1]]


def test_generate_greedy_matches_offline_generate(server, radixlm_bin, model_dir, hf_tokenizer):
    want = offline_greedy(radixlm_bin, model_dir, PROMPT, 10)
    r = generate(server, {"input_ids": PROMPT, "rid": "one",
                          "sampling_params": {"temperature": 0, "max_new_tokens": 10, "ignore_eos": True}})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["output_ids"] == want
    assert out["text"] == hf_tokenizer.decode(want, skip_special_tokens=True)
    meta = out["meta_info"]
    assert meta["id"] == "one"
    assert meta["finish_reason"] == {"type": "length", "length": 10}
    assert meta["prompt_tokens"] == len(PROMPT)
    assert meta["completion_tokens"] == 10
    assert isinstance(meta["cached_tokens"], int) and 0 <= meta["cached_tokens"] < len(PROMPT)
    assert meta["e2e_latency"] > 0

    # The same prompt again finds it in the prefix cache and answers the same tokens.
    again = generate(server, {"input_ids": PROMPT,
                              "sampling_params": {"temperature": 0, "max_new_tokens": 10, "ignore_eos": True}}).json()
    assert again["output_ids"] == want
    assert again["meta_info"]["cached_tokens"] > 0
    assert again["meta_info"]["id"] != "one" and len(again["meta_info"]["id"]) == 32


def test_generate_batch_text_and_parallel_samples(server, radixlm_bin, model_dir, hf_tokenizer):
    texts = ["Hello", "The capital of France is"]
    r = generate(server, {"text": texts, "rid": ["a", "b"],
                          "sampling_params": {"temperature": 0, "max_new_tokens": 5, "ignore_eos": True}})
    assert r.status_code == 200, r.text
    outs = r.json()
    assert isinstance(outs, list) and len(outs) == 2
    for text, rid, out in zip(texts, ["a", "b"], outs):
        ids = hf_tokenizer.encode(text, add_special_tokens=True).ids
        assert out["meta_info"]["id"] == rid
        assert out["meta_info"]["prompt_tokens"] == len(ids)
        assert out["output_ids"] == offline_greedy(radixlm_bin, model_dir, ids, 5)

    # Per-item sampling params and a batch of token-id prompts.
    r = generate(server, {"input_ids": [PROMPT, PROMPT[:3]],
                          "sampling_params": [{"max_new_tokens": 2, "ignore_eos": True},
                                              {"max_new_tokens": 4, "ignore_eos": True}]})
    assert [o["meta_info"]["completion_tokens"] for o in r.json()] == [2, 4]

    # n > 1 answers a list of n, with distinct rids.
    r = generate(server, {"input_ids": PROMPT, "rid": "par",
                          "sampling_params": {"n": 3, "max_new_tokens": 4, "sampling_seed": 11}})
    assert r.status_code == 200, r.text
    outs = r.json()
    assert [o["meta_info"]["id"] for o in outs] == ["par_0", "par_1", "par_2"]
    assert all(len(o["output_ids"]) == 4 for o in outs)


def test_generate_stream_sends_cumulative_text(server):
    body = {"input_ids": PROMPT, "sampling_params": {"temperature": 0, "max_new_tokens": 12, "ignore_eos": True}}
    whole = generate(server, body).json()
    r = generate(server, dict(body, stream=True), stream=True)
    assert r.status_code == 200
    events = sse_events(r)
    assert len(events) >= 2
    for before, after in zip(events, events[1:]):
        assert after["text"].startswith(before["text"])
        assert after["output_ids"][:len(before["output_ids"])] == before["output_ids"]
        assert before["meta_info"]["finish_reason"] is None
    last = events[-1]
    assert last["text"] == whole["text"]
    assert last["output_ids"] == whole["output_ids"]
    assert last["meta_info"]["finish_reason"] == {"type": "length", "length": 12}

    # A streamed batch tags each event with the output's index.
    r = generate(server, {"input_ids": [PROMPT, PROMPT[:4]], "stream": True,
                          "sampling_params": {"max_new_tokens": 3, "ignore_eos": True}}, stream=True)
    events = sse_events(r)
    assert {e["index"] for e in events} == {0, 1}
    assert sum(1 for e in events if e["meta_info"]["finish_reason"] is not None) == 2


def test_generate_logprobs(server, hf_tokenizer):
    r = generate(server, {"input_ids": PROMPT, "return_logprob": True, "logprob_start_len": 0,
                          "top_logprobs_num": 3, "return_text_in_logprobs": True,
                          "sampling_params": {"temperature": 0, "max_new_tokens": 5, "ignore_eos": True}})
    assert r.status_code == 200, r.text
    out = r.json()
    meta = out["meta_info"]
    inputs = meta["input_token_logprobs"]
    assert [t[1] for t in inputs] == PROMPT
    assert inputs[0][0] is None
    assert all(t[0] <= 0 for t in inputs[1:])
    assert [t[2] for t in inputs] == [hf_tokenizer.decode([i], skip_special_tokens=False) for i in PROMPT]
    outputs = meta["output_token_logprobs"]
    assert [t[1] for t in outputs] == out["output_ids"]
    tops = meta["output_top_logprobs"]
    assert len(tops) == 5 and all(len(t) == 3 for t in tops)
    for chosen, top in zip(outputs, tops):
        assert top[0][1] == chosen[1]  # greedy picks the most likely token
        assert top[0][0] == pytest.approx(chosen[0], abs=1e-6)
        assert top[0][0] >= top[1][0] >= top[2][0]
    assert meta["input_top_logprobs"][0] is None and len(meta["input_top_logprobs"]) == len(PROMPT)

    # Default logprob_start_len: the last prompt token only; no text without return_text_in_logprobs.
    meta = generate(server, {"input_ids": PROMPT, "return_logprob": True,
                             "sampling_params": {"max_new_tokens": 2}}).json()["meta_info"]
    assert len(meta["input_token_logprobs"]) == 1
    assert all(t[2] is None for t in meta["output_token_logprobs"])
    assert "output_top_logprobs" not in meta


def test_finish_reasons(server, radixlm_bin, model_dir, hf_tokenizer):
    free = offline_greedy(radixlm_bin, model_dir, PROMPT, 12)
    assert not {128001, 128008, 128009} & set(free[:4]), "the fixture's greedy run hits an eos early"
    stop_id = free[3]
    # As in SGLang, ignore_eos also turns off stop_token_ids, so this request runs without it.
    out = generate(server, {"input_ids": PROMPT, "sampling_params": {
        "temperature": 0, "max_new_tokens": 12, "stop_token_ids": [stop_id]}}).json()
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop_id}
    assert out["output_ids"][-1] == stop_id

    text = hf_tokenizer.decode(free, skip_special_tokens=True)
    stop = text[len(text) // 2:len(text) // 2 + 3]
    out = generate(server, {"input_ids": PROMPT, "sampling_params": {
        "temperature": 0, "max_new_tokens": 12, "stop": [stop], "ignore_eos": True}}).json()
    assert out["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop}
    assert stop not in out["text"]


def test_bad_generate_requests_are_clear_400s(server):
    cases = [
        ("{not json", "not valid JSON"),
        ({"sampling_params": {}}, "text or input_ids"),
        ({"text": "a", "input_ids": [1]}, "text or input_ids"),
        ({"input_ids": ["x"]}, "input_ids[0]"),
        ({"input_ids": [999999]}, "999999"),
        ({"text": "a", "sampling_params": {"temperature": -1}}, "temperature"),
        ({"text": "a", "sampling_params": {"max_new_tokens": "ten"}}, "max_new_tokens"),
        ({"text": "a", "sampling_params": {"max_new_tokens": 5000}}, "context length"),
        ({"input_ids": [5] * 5000}, "context length"),
        ({"text": ["a", "b"], "rid": ["x", "x"]}, "Duplicate"),
        ({"text": "a", "stream": "yes"}, "stream"),
    ]
    for body, mention in cases:
        kwargs = {"data": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else {"json": body}
        r = requests.post(server.url + "/generate", timeout=60, **kwargs)
        assert r.status_code == 400, (body, r.status_code, r.text)
        err = r.json()
        assert err["object"] == "error" and err["code"] == 400
        assert mention in err["message"], (body, err)


def test_info_health_tokenize_routes(server, model_dir, hf_tokenizer):
    assert requests.get(server.url + "/health", timeout=30).status_code == 200
    assert requests.get(server.url + "/health_generate", timeout=60).status_code == 200
    info = requests.get(server.url + "/get_model_info", timeout=30).json()
    assert info["model_path"] == str(model_dir)
    assert info["is_generation"] is True
    server_info = requests.get(server.url + "/get_server_info", timeout=30).json()
    assert server_info["internal_states"][0]["num_running_reqs"] == 0
    assert "max_total_num_tokens" in server_info

    for text in ["Hello world", "naïve café 🙂", ""]:
        tok = requests.post(server.url + "/v1/tokenize", json={"prompt": text}, timeout=30).json()
        assert tok["tokens"] == hf_tokenizer.encode(text, add_special_tokens=True).ids
        assert tok["count"] == len(tok["tokens"])
        assert tok["max_model_len"] > 0
        back = requests.post(server.url + "/v1/detokenize", json={"tokens": tok["tokens"]}, timeout=30).json()
        assert back["text"] == hf_tokenizer.decode(tok["tokens"], skip_special_tokens=True)
    many = requests.post(server.url + "/tokenize", json={"prompt": ["a b", "c"], "add_special_tokens": False},
                         timeout=30).json()
    assert many["tokens"] == [hf_tokenizer.encode(t, add_special_tokens=False).ids for t in ["a b", "c"]]
    assert requests.post(server.url + "/v1/tokenize", json={"prompt": 5}, timeout=30).status_code == 400


def test_abort_request_and_flush_cache(server):
    result = {}

    def long_generation():
        result["r"] = generate(server, {"input_ids": PROMPT, "rid": "long",
                                        "sampling_params": {"max_new_tokens": 3000, "ignore_eos": True}})

    thread = threading.Thread(target=long_generation)
    thread.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        state = requests.get(server.url + "/get_server_info", timeout=30).json()["internal_states"][0]
        if state["num_running_reqs"] > 0:
            break
        time.sleep(0.02)
    assert requests.post(server.url + "/flush_cache", timeout=30).status_code == 400  # busy
    assert requests.post(server.url + "/abort_request", json={"rid": "long"}, timeout=30).status_code == 200
    thread.join(timeout=60)
    out = result["r"].json()
    assert out["meta_info"]["finish_reason"]["type"] == "abort"
    assert out["meta_info"]["completion_tokens"] < 3000
    deadline = time.time() + 30
    while requests.post(server.url + "/flush_cache", timeout=30).status_code != 200:
        assert time.time() < deadline, "the cache never flushed on an idle server"
        time.sleep(0.05)


def test_metrics_parse_and_count(server, radixlm_server, model_dir):
    # Without --enable-metrics there is no /metrics, as in SGLang.
    assert requests.get(server.url + "/metrics", timeout=30).status_code == 404
    server = radixlm_server("--model-path", model_dir, "--cpu-threads", "2", "--enable-metrics")
    for _ in range(2):
        assert generate(server, {"input_ids": PROMPT, "sampling_params": {"max_new_tokens": 4, "ignore_eos": True}}
                        ).status_code == 200
    r = requests.get(server.url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}

    def value(family, sample_name):
        samples = [s for s in families[family].samples if s.name == sample_name]
        assert len(samples) == 1 and samples[0].labels["model_name"]
        return samples[0].value

    assert value("sglang:num_requests", "sglang:num_requests_total") == 2
    assert value("sglang:generation_tokens", "sglang:generation_tokens_total") == 8
    assert value("sglang:prompt_tokens", "sglang:prompt_tokens_total") == 2 * len(PROMPT)
    for gauge in ["num_running_reqs", "num_queue_reqs", "token_usage", "cache_hit_rate", "gen_throughput"]:
        assert families["sglang:" + gauge].type == "gauge"
    ttft = families["sglang:time_to_first_token_seconds"]
    assert ttft.type == "histogram"
    buckets = [s for s in ttft.samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 2
    assert value("sglang:inter_token_latency_seconds", "sglang:inter_token_latency_seconds_count") == 2 * 3
    assert value("sglang:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds_count") == 2


def test_api_keys(radixlm_server, model_dir):
    server = radixlm_server("--model-path", model_dir, "--cpu-threads", "2", "--api-key", "user-key",
                            "--admin-api-key", "admin-key", "--enable-metrics")
    body = {"input_ids": PROMPT, "sampling_params": {"max_new_tokens": 1}}
    user = {"Authorization": "Bearer user-key"}
    admin = {"Authorization": "Bearer admin-key"}
    for headers in [{}, {"Authorization": "Bearer nope"}, {"Authorization": "user-key"}, admin]:
        r = generate(server, body, headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["object"] == "error" and r.json()["code"] == 401
    assert generate(server, body, headers=user).status_code == 200
    assert requests.get(server.url + "/get_model_info", timeout=30).status_code == 401
    assert requests.get(server.url + "/health", timeout=30).status_code == 200
    assert requests.get(server.url + "/health_generate", timeout=60).status_code == 200
    assert requests.get(server.url + "/metrics", timeout=30).status_code == 200
    assert requests.post(server.url + "/flush_cache", headers=user, timeout=30).status_code == 401
    assert requests.post(server.url + "/flush_cache", headers=admin, timeout=30).status_code == 200
    assert requests.post(server.url + "/abort_request", json={"abort_all": True}, headers=admin,
                         timeout=30).status_code == 200
    info = requests.get(server.url + "/get_server_info", headers=user, timeout=30)
    assert info.status_code == 200
    assert "user-key" not in info.text and "admin-key" not in info.text
