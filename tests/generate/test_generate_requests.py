"""`radixlm generate` with text prompts, chat messages and --batch-file: token ids checked against HF
`tokenizers`, rendered chats against jinja2 (as transformers renders them), continuations against the goldens."""
import json
import sys

import pytest
from tokenizers import Tokenizer

from radixlm_testing import run_radixlm

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "chat"))
import jinja_reference  # noqa: E402


def model_dir(fixtures_dir, name):
    return fixtures_dir / "models" / name


def golden_prompts(fixtures_dir, name):
    return json.loads((model_dir(fixtures_dir, name) / "golden.json").read_text())["prompts"]


def trusted_greedy(prompt):
    out = []
    for token, margin in zip(prompt["greedy"], prompt["greedy_margin"]):
        if margin < 1e-3:
            break
        out.append(token)
    return out


def generate_lines(radixlm_bin, directory, *args):
    proc = run_radixlm(radixlm_bin, "generate", "--model-path", directory, "--json", "--cpu-threads", "2", *args)
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_prompt_is_tokenized_and_decoded_as_hf(radixlm_bin, fixtures_dir):
    directory = model_dir(fixtures_dir, "llama3.2-tiny-chat")
    hf = Tokenizer.from_file(str(directory / "tokenizer.json"))
    prompts = ["Hello, world! The capital of France is", "  spaces,\ttabs and ünïcödé 🎉"]
    args = []
    for p in prompts:
        args += ["--prompt", p]
    lines = generate_lines(radixlm_bin, directory, *args, "--max-new-tokens", "8", "--ignore-eos")
    assert len(lines) == 2
    for line, prompt in zip(lines, prompts):
        assert line["input_ids"] == hf.encode(prompt, add_special_tokens=True).ids
        assert len(line["output_ids"]) == 8
        assert line["text"] == hf.decode(line["output_ids"], skip_special_tokens=True)
        assert line["finish_reason"] == {"type": "length", "length": 8}
        assert line["prompt_tokens"] == len(line["input_ids"])


def test_messages_file_renders_the_chat_template(radixlm_bin, fixtures_dir, tmp_path):
    directory = model_dir(fixtures_dir, "qwen2.5-tiny-chat")
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages))
    lines = generate_lines(radixlm_bin, directory, "--messages-file", path, "--max-new-tokens", "4", "--ignore-eos")
    config = json.loads((directory / "tokenizer_config.json").read_text())
    compiled = jinja_reference.compile_template(config["chat_template"])
    rendered, error = jinja_reference.render(compiled, messages, None, True, jinja_reference.special_tokens(config), {})
    assert error is None
    hf = Tokenizer.from_file(str(directory / "tokenizer.json"))
    assert lines[0]["input_ids"] == hf.encode(rendered, add_special_tokens=False).ids
    assert len(lines[0]["output_ids"]) == 4


def test_batch_file_runs_every_line_as_one_batch(radixlm_bin, fixtures_dir, tmp_path):
    name = "llama3.2-tiny-chat"
    directory = model_dir(fixtures_dir, name)
    hf = Tokenizer.from_file(str(directory / "tokenizer.json"))
    prompts = golden_prompts(fixtures_dir, name)
    greedy = {"temperature": 0, "max_new_tokens": 16, "ignore_eos": True}
    long_prompt = prompts[2]["input_ids"]
    want_long = trusted_greedy(prompts[2])
    assert len(want_long) >= 4
    stop_id = want_long[3]
    requests = [{"input_ids": p["input_ids"], "sampling_params": greedy} for p in prompts]
    requests += [
        {"text": "Once upon a time", "sampling_params": {"temperature": 0, "max_new_tokens": 3}},
        # Shares 20 tokens with the long golden prompt, which finishes first (one request runs at a time).
        {"input_ids": long_prompt[:20] + [7, 8, 9], "sampling_params": {"temperature": 0, "max_new_tokens": 2}},
        {"input_ids": long_prompt[:20] + [7, 8, 9], "sampling_params": {"temperature": 0, "max_new_tokens": 2},
         "cache_salt": "another user"},
        # (not with ignore_eos: SGLang then skips stop_token_ids too)
        {"input_ids": long_prompt, "sampling_params": {"temperature": 0, "max_new_tokens": 16,
                                                       "stop_token_ids": [stop_id]}},
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    lines = generate_lines(radixlm_bin, directory, "--batch-file", path, "--max-running-requests", "1")
    assert len(lines) == len(requests)
    for line, prompt in zip(lines[:3], prompts):
        want = trusted_greedy(prompt)
        assert line["output_ids"][:len(want)] == want
        assert line["finish_reason"]["type"] == "length"
        assert line["text"] == hf.decode(line["output_ids"], skip_special_tokens=True)
    assert lines[3]["input_ids"] == hf.encode("Once upon a time", add_special_tokens=True).ids
    assert lines[4]["cached_tokens"] == 20
    assert lines[5]["cached_tokens"] == 0  # another cache_salt
    assert lines[5]["output_ids"] == lines[4]["output_ids"]
    stop_at = want_long.index(stop_id) + 1
    assert lines[6]["output_ids"] == want_long[:stop_at]
    assert lines[6]["finish_reason"] == {"type": "stop", "matched": stop_id}


def test_stop_string_cuts_the_text_as_sglang_does(radixlm_bin, fixtures_dir, tmp_path):
    name = "llama3.2-tiny-chat"
    directory = model_dir(fixtures_dir, name)
    hf = Tokenizer.from_file(str(directory / "tokenizer.json"))
    prompt = golden_prompts(fixtures_dir, name)[1]
    want = trusted_greedy(prompt)
    full = hf.decode(want, skip_special_tokens=True)
    if len(full) < 6:
        pytest.skip("the golden continuation decodes to too little text")
    stop = full[len(full) // 2: len(full) // 2 + 3]
    cut = full.find(stop)
    path = tmp_path / "batch.jsonl"
    path.write_text(json.dumps({"input_ids": prompt["input_ids"],
                                "sampling_params": {"temperature": 0, "max_new_tokens": len(want), "ignore_eos": True,
                                                    "stop": [stop]}}) + "\n")
    line = generate_lines(radixlm_bin, directory, "--batch-file", path)[0]
    assert line["finish_reason"] == {"type": "stop", "matched": stop}
    assert line["text"] == full[:cut]
    # The output ends with the token that completed the stop string.
    assert stop in hf.decode(line["output_ids"], skip_special_tokens=True)
    assert stop not in hf.decode(line["output_ids"][:-1], skip_special_tokens=True)


def test_top_k_never_samples_outside_the_golden_top_k(radixlm_bin, fixtures_dir, tmp_path):
    name = "llama3.2-tiny-chat"
    prompt = golden_prompts(fixtures_dir, name)[2]
    top = prompt["logits_topk"][-1]
    # The k whose cut has the widest gap in HF's logits, so precision cannot move a token across it.
    k = max(range(1, 6), key=lambda k: top["logits"][k - 1] - top["logits"][k])
    assert top["logits"][k - 1] - top["logits"][k] > 0.005
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(json.dumps({"input_ids": prompt["input_ids"],
                                          "sampling_params": {"temperature": 1.0, "top_k": k, "max_new_tokens": 1,
                                                              "sampling_seed": seed}}) for seed in range(24)) + "\n")
    lines = generate_lines(radixlm_bin, model_dir(fixtures_dir, name), "--batch-file", path)
    first = [line["output_ids"][0] for line in lines]
    assert set(first) <= set(top["ids"][:k])
    if k > 1:
        assert len(set(first)) > 1  # it does sample


def test_sampling_flags_are_seeded_and_repeatable(radixlm_bin, fixtures_dir):
    directory = model_dir(fixtures_dir, "llama")
    args = ["--input-ids", "1,2,3", "--max-new-tokens", "12", "--ignore-eos", "--temperature", "0.9", "--top-p", "0.9",
            "--min-p", "0.01", "--repetition-penalty", "1.1", "--frequency-penalty", "0.2", "--presence-penalty", "0.1"]
    a = generate_lines(radixlm_bin, directory, *args, "--seed", "7")
    b = generate_lines(radixlm_bin, directory, *args, "--seed", "7", "--page-size", "16", "--chunked-prefill-size", "16",
                       "--disable-radix-cache", "--schedule-policy", "lpm", "--enable-mixed-chunk")
    assert a == b and len(a[0]["output_ids"]) == 12


@pytest.mark.parametrize("content, message", [
    ("{\"input_ids\": [1, 2]}\nnot json\n", "line 2"),
    ("{\"input_ids\": \"1,2\"}\n", "input_ids"),
    ("{\"sampling_params\": {}}\n", "input_ids"),
    ("{\"input_ids\": [1], \"sampling_params\": {\"top_k\": 0}}\n", "top_k"),
])
def test_bad_batch_files_fail_with_a_clear_message(radixlm_bin, fixtures_dir, tmp_path, content, message):
    import subprocess
    path = tmp_path / "batch.jsonl"
    path.write_text(content)
    proc = subprocess.run([str(radixlm_bin), "generate", "--model-path", str(model_dir(fixtures_dir, "llama")),
                           "--batch-file", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stdout == ""
