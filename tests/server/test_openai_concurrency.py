"""64 clients stream completions from `radixlm serve` at once through the official `openai` client; each greedy
output must equal what `radixlm generate --batch-file` gives for the same request offline, so continuous
batching, streaming and the HTTP layer change nothing about the tokens."""
import json
import threading

import openai
import pytest

from conftest import FIXTURES, RadixlmServer
from radixlm_testing import run_radixlm

MODEL = FIXTURES / "models" / "llama3.2-tiny-chat"
CLIENTS = 64


def prompts():
    subjects = ["The weather", "My favourite food", "A short story about", "In 1999", "The best way to learn",
                "Cats and dogs", "Once upon a time", "The capital of"]
    return [f"{subjects[i % len(subjects)]} #{i}:" for i in range(CLIENTS)]


@pytest.mark.slow
def test_64_concurrent_streams_equal_offline_generate(radixlm_bin, tmp_path):
    requests = [{"text": p, "sampling_params": {"temperature": 0, "max_new_tokens": 8 + i % 9}}
                for i, p in enumerate(prompts())]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("".join(json.dumps(r) + "\n" for r in requests))
    proc = run_radixlm(radixlm_bin, "generate", "--model-path", MODEL, "--json", "--cpu-threads", "2",
                       "--batch-file", batch)
    reference = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reference) == CLIENTS

    server = RadixlmServer(radixlm_bin, ["--model-path", MODEL, "--served-model-name", "tiny", "--cpu-threads", "2"],
                           120)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
        results = [None] * CLIENTS
        errors = []
        start = threading.Barrier(CLIENTS)

        def run(i):
            try:
                start.wait()
                text, finish = "", None
                stream = client.completions.create(model="tiny", prompt=requests[i]["text"], temperature=0,
                                                   max_tokens=requests[i]["sampling_params"]["max_new_tokens"],
                                                   stream=True, stream_options={"include_usage": True})
                usage = None
                for chunk in stream:
                    for choice in chunk.choices:
                        text += choice.text
                        finish = choice.finish_reason or finish
                    usage = chunk.usage or usage
                results[i] = (text, finish, usage)
            except Exception as e:  # reported below with the client's index
                errors.append((i, repr(e)))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not errors, errors
        for i, (text, finish, usage) in enumerate(results):
            assert text == reference[i]["text"], i
            assert finish == reference[i]["finish_reason"]["type"], i
            assert usage.completion_tokens == len(reference[i]["output_ids"]), i
            assert usage.prompt_tokens == len(reference[i]["input_ids"]), i
    finally:
        server.kill()
