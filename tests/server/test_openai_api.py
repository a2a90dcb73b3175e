"""The OpenAI-compatible API of `radixlm serve`, driven by the official `openai` client (the reference for the
wire format): chat and completions, streamed and whole, include_usage, n > 1, both logprob shapes, stop,
seeds, max_tokens, and client mistakes answered with OpenAI's error classes. Outputs are compared with
`radixlm generate` (the offline engine path) and prompts with HF's tokenizer and jinja2."""
import json
import sys
import pathlib

import openai
import pytest
from tokenizers import Tokenizer

from conftest import FIXTURES, RadixlmServer
from radixlm_testing import run_radixlm

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "chat"))
import jinja_reference  # noqa: E402

MODEL = FIXTURES / "models" / "llama3.2-tiny-chat"
NAME = "tiny-chat"
MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def server(radixlm_bin):
    started = RadixlmServer(radixlm_bin, ["--model-path", MODEL, "--served-model-name", NAME, "--cpu-threads", "2"], 120)
    yield started
    started.kill()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def hf():
    return Tokenizer.from_file(str(MODEL / "tokenizer.json"))


def chat_prompt_ids(hf, messages):
    config = json.loads((MODEL / "tokenizer_config.json").read_text())
    compiled = jinja_reference.compile_template(config["chat_template"])
    rendered, error = jinja_reference.render(compiled, messages, None, True, jinja_reference.special_tokens(config), {})
    assert error is None
    return hf.encode(rendered, add_special_tokens=False).ids


def generate(radixlm_bin, tmp_path, *args):
    proc = run_radixlm(radixlm_bin, "generate", "--model-path", MODEL, "--json", "--cpu-threads", "2", *args)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_models(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [NAME]
    assert client.models.retrieve(NAME).id == NAME
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_chat_matches_offline_generate(client, hf, radixlm_bin, tmp_path):
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(MESSAGES))
    reference = generate(radixlm_bin, tmp_path, "--messages-file", path, "--temperature", "0", "--max-new-tokens", "12")[0]
    assert reference["input_ids"] == chat_prompt_ids(hf, MESSAGES)

    response = client.chat.completions.create(model=NAME, messages=MESSAGES, temperature=0, max_tokens=12)
    choice = response.choices[0]
    assert response.object == "chat.completion"
    assert response.model == NAME
    assert choice.message.role == "assistant"
    assert choice.message.content == reference["text"]
    assert choice.finish_reason == reference["finish_reason"]["type"]
    assert response.usage.prompt_tokens == len(reference["input_ids"])
    assert response.usage.completion_tokens == len(reference["output_ids"])
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens

    chunks = list(client.chat.completions.create(model=NAME, messages=MESSAGES, temperature=0, max_tokens=12,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reference["text"]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [reference["finish_reason"]["type"]]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == len(reference["output_ids"])
    assert chunks[-1].usage.prompt_tokens == len(reference["input_ids"])


def test_sse_framing_is_exact(server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    body = json.dumps({"model": NAME, "messages": MESSAGES, "max_tokens": 3, "stream": True, "ignore_eos": True})
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    raw = response.read().decode()
    conn.close()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for event in events[:-2]:
        assert event.startswith("data: {") and "\n" not in event
        json.loads(event[len("data: "):])


def test_completions_n_logprobs_and_echo(client, hf):
    prompts = ["The capital of France is", "Once upon a time"]
    response = client.completions.create(model=NAME, prompt=prompts, n=2, temperature=0, max_tokens=6, logprobs=3,
                                         echo=True)
    assert response.object == "text_completion"
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    for i, choice in enumerate(response.choices):
        prompt = prompts[i // 2]
        assert choice.text.startswith(prompt)
        lp = choice.logprobs
        n_prompt = len(hf.encode(prompt).ids)
        assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
        assert len(lp.tokens) == n_prompt + 6 or choice.finish_reason == "stop"
        assert lp.token_logprobs[0] is None
        assert all(x <= 0 for x in lp.token_logprobs[1:])
        assert all(len(top) <= 3 for top in lp.top_logprobs[1:])
        assert lp.text_offset == sorted(lp.text_offset)
    # Greedy: both samples of a prompt agree, and the chosen token is the likeliest.
    assert response.choices[0].text == response.choices[1].text
    lp = response.choices[0].logprobs
    for token, logprob, top in list(zip(lp.tokens, lp.token_logprobs, lp.top_logprobs))[-6:]:
        assert max(top.values()) == pytest.approx(logprob, abs=1e-5)
    assert response.usage.prompt_tokens == sum(len(hf.encode(p).ids) for p in prompts)

    ids = hf.encode("Hello world").ids
    by_ids = client.completions.create(model=NAME, prompt=[ids, ids], temperature=0, max_tokens=4)
    by_text = client.completions.create(model=NAME, prompt="Hello world", temperature=0, max_tokens=4)
    assert [c.text for c in by_ids.choices] == [by_text.choices[0].text] * 2


def test_chat_logprobs_shape(client):
    response = client.chat.completions.create(model=NAME, messages=MESSAGES, temperature=0, max_tokens=5,
                                              logprobs=True, top_logprobs=4, extra_body={"ignore_eos": True})
    content = response.choices[0].logprobs.content
    assert len(content) == 5
    for entry in content:
        assert entry.bytes == list(entry.token.encode("utf-8"))
        assert len(entry.top_logprobs) == 4
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-5)


def test_parallel_streams_interleave_with_an_index_each(client):
    stream = client.chat.completions.create(model=NAME, messages=MESSAGES, temperature=1.0, seed=5, n=3,
                                            max_tokens=8, stream=True, extra_body={"ignore_eos": True})
    texts, finishes = ["", "", ""], [None, None, None]
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert finishes == ["length"] * 3
    whole = client.chat.completions.create(model=NAME, messages=MESSAGES, temperature=1.0, seed=5, n=3,
                                           max_tokens=8, extra_body={"ignore_eos": True})
    assert [c.message.content for c in whole.choices] == texts  # the same seed, streamed or not


def test_stop_seed_and_length(client):
    free = client.completions.create(model=NAME, prompt="One two three", temperature=0, max_tokens=12,
                                     extra_body={"ignore_eos": True})
    text = free.choices[0].text
    assert free.choices[0].finish_reason == "length"
    assert free.usage.completion_tokens == 12
    stop = text[3:5]
    stopped = client.completions.create(model=NAME, prompt="One two three", temperature=0, max_tokens=12,
                                        stop=[stop, "never-appears"])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].text == text[:text.index(stop)]
    assert stopped.choices[0].model_extra["matched_stop"] == stop

    def sample(seed):
        return client.completions.create(model=NAME, prompt="One two three", temperature=1.0, max_tokens=10,
                                         seed=seed, extra_body={"ignore_eos": True}).choices[0].text

    assert sample(1234) == sample(1234)
    assert len({sample(s) for s in (1, 2, 3, 4)}) > 1


@pytest.mark.parametrize("kwargs, error", [
    ({"n": 0}, openai.BadRequestError),
    ({"n": 129}, openai.BadRequestError),
    ({"max_tokens": 0}, openai.BadRequestError),
    ({"logprobs": True, "top_logprobs": 21}, openai.BadRequestError),
    ({"top_logprobs": 2}, openai.BadRequestError),
    ({"temperature": -1}, openai.BadRequestError),
    ({"max_tokens": 100000}, openai.BadRequestError),
    ({"extra_body": {"regex": "[a-z]+"}}, openai.BadRequestError),
    ({"extra_body": {"json_schema": "{}"}}, openai.BadRequestError),
    ({"response_format": {"type": "json_object"}}, openai.BadRequestError),
    ({"messages": []}, openai.BadRequestError),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     openai.BadRequestError),
])
def test_chat_errors(client, kwargs, error):
    args = {"model": NAME, "messages": MESSAGES, **kwargs}
    with pytest.raises(error) as info:
        client.chat.completions.create(**args)
    assert info.value.status_code == 400
    assert info.value.body and info.value.body.get("message")


def test_completion_errors(client):
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.completions.create(model=NAME, prompt="x " * 5000, max_tokens=4)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=NAME, prompt=[[1, 2], "mixed"])
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=NAME, prompt=[10 ** 9])
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=NAME, prompt="x", logprobs=30)
