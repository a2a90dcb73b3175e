"""`radixlm generate --json`: the output contract other tools rely on, checked against the HF goldens."""
import json
import subprocess

import pytest

from radixlm_testing import run_radixlm


def load_golden(fixtures_dir, name):
    return json.loads((fixtures_dir / "models" / name / "golden.json").read_text())


def trusted_greedy(prompt):
    """Golden greedy tokens up to the first near-tie (margin under 1e-3), where any correct engine may diverge."""
    out = []
    for token, margin in zip(prompt["greedy"], prompt["greedy_margin"]):
        if margin < 1e-3:
            break
        out.append(token)
    return out


def generate(radixlm_bin, model_dir, prompts, *extra):
    args = ["generate", "--model-path", model_dir, "--json", "--cpu-threads", "2"]
    for ids in prompts:
        args += ["--input-ids", ",".join(map(str, ids))]
    proc = run_radixlm(radixlm_bin, *args, *extra)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(prompts), proc.stdout
    return [json.loads(line) for line in lines], proc.stderr


def test_batch_of_three_gives_the_golden_greedy_continuations(radixlm_bin, fixtures_dir):
    golden = load_golden(fixtures_dir, "llama3.2-tiny-chat")
    prompts = [p["input_ids"] for p in golden["prompts"]]
    outputs, stderr = generate(radixlm_bin, fixtures_dir / "models" / "llama3.2-tiny-chat", prompts,
                               "--max-new-tokens", "16", "--temperature", "0", "--ignore-eos", "--page-size", "3")
    for out, prompt in zip(outputs, golden["prompts"]):
        assert set(out) == {"output_ids"}
        assert len(out["output_ids"]) == 16 and all(isinstance(t, int) for t in out["output_ids"])
        want = trusted_greedy(prompt)
        assert out["output_ids"][:len(want)] == want
    assert "prefill" in stderr and "tok/s" in stderr


def test_prompt_logits_have_one_vocabulary_row_per_prompt_token(radixlm_bin, fixtures_dir):
    golden = load_golden(fixtures_dir, "llama")
    prompts = [p["input_ids"] for p in golden["prompts"][:2]]
    outputs, _ = generate(radixlm_bin, fixtures_dir / "models" / "llama", prompts,
                          "--max-new-tokens", "2", "--return-prompt-logits")
    for out, prompt, ids in zip(outputs, golden["prompts"], prompts):
        assert set(out) == {"output_ids", "prompt_logits"}
        assert len(out["output_ids"]) == 2
        assert len(out["prompt_logits"]) == len(ids)
        assert all(len(row) == 512 for row in out["prompt_logits"])
    # Position 0 attends only to itself, so RoPE precision plays no part: it must match HF closely.
    want = golden["prompts"][0]["logits"][0]
    got = outputs[0]["prompt_logits"][0]
    tolerance = 1e-3 * max(abs(v) for v in want)
    assert max(abs(a - b) for a, b in zip(got, want)) <= tolerance


def test_eos_from_generation_config_stops_generation(radixlm_bin, fixtures_dir, tmp_path):
    golden = load_golden(fixtures_dir, "llama3.2-tiny-chat")
    prompt = golden["prompts"][0]
    want = trusted_greedy(prompt)
    assert len(want) >= 3
    # A copy of the model whose generation_config makes the third greedy token an eos.
    source = fixtures_dir / "models" / "llama3.2-tiny-chat"
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(source / name)
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [want[2], 128009]}))
    outputs, _ = generate(radixlm_bin, tmp_path, [prompt["input_ids"]], "--max-new-tokens", "16")
    stop = want.index(want[2]) + 1
    assert outputs[0]["output_ids"] == want[:stop]
    # --ignore-eos runs on to the limit.
    outputs, _ = generate(radixlm_bin, tmp_path, [prompt["input_ids"]], "--max-new-tokens", "16", "--ignore-eos")
    assert len(outputs[0]["output_ids"]) == 16


def test_dummy_weights_run_from_config_alone(radixlm_bin, fixtures_dir):
    outputs, _ = generate(radixlm_bin, fixtures_dir / "models" / "qwen3", [[1, 2, 3]], "--load-format", "dummy",
                          "--max-new-tokens", "4", "--ignore-eos")
    assert len(outputs[0]["output_ids"]) == 4


@pytest.mark.parametrize("extra, message", [
    (["--top-p", "0"], "top_p"),
    (["--schedule-policy", "lifo"], "schedule-policy"),
    (["--n", "0"], "n must be in [1, 128], got 0"),
    (["--input-ids", "1,x"], "not a token id"),
    (["--input-ids", "999999"], "outside the vocabulary"),
])
def test_bad_requests_fail_with_a_clear_message(radixlm_bin, fixtures_dir, extra, message):
    args = [str(radixlm_bin), "generate", "--model-path", str(fixtures_dir / "models" / "llama"),
            "--input-ids", "1,2", "--json", *extra]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stdout == ""


def test_unsupported_architecture_lists_the_supported_ones(radixlm_bin, fixtures_dir):
    args = [str(radixlm_bin), "generate", "--model-path", str(fixtures_dir / "models" / "mixtral"),
            "--input-ids", "1,2", "--json"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "MixtralForCausalLM" in proc.stderr and "LlamaForCausalLM" in proc.stderr
