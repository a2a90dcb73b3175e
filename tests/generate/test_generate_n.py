"""`radixlm generate --n`: parallel sampling prints n lines per request, in request order (HF goldens for greedy)."""
import json
import subprocess

from radixlm_testing import run_radixlm


def generate(radixlm_bin, model_dir, prompts, *extra):
    args = ["generate", "--model-path", model_dir, "--json", "--cpu-threads", "2"]
    for ids in prompts:
        args += ["--input-ids", ",".join(map(str, ids))]
    proc = run_radixlm(radixlm_bin, *args, *extra)
    return [json.loads(line)["output_ids"] for line in proc.stdout.splitlines()]


def trusted_greedy(prompt):
    out = []
    for token, margin in zip(prompt["greedy"], prompt["greedy_margin"]):
        if margin < 1e-3:
            break
        out.append(token)
    return out


def test_greedy_n2_gives_two_identical_golden_lines_per_request(radixlm_bin, fixtures_dir):
    model = fixtures_dir / "models" / "llama"
    golden = json.loads((model / "golden.json").read_text())["prompts"][:2]
    outputs = generate(radixlm_bin, model, [p["input_ids"] for p in golden],
                       "--n", "2", "--max-new-tokens", "8", "--temperature", "0", "--ignore-eos")
    assert len(outputs) == 4
    for i, prompt in enumerate(golden):
        first, second = outputs[2 * i], outputs[2 * i + 1]
        assert first == second
        want = trusted_greedy(prompt)[:8]
        assert first[:len(want)] == want


def test_seeded_samples_differ_and_repeat(radixlm_bin, fixtures_dir):
    model = fixtures_dir / "models" / "llama"
    prompt = json.loads((model / "golden.json").read_text())["prompts"][2]["input_ids"]
    flags = ["--max-new-tokens", "12", "--temperature", "1", "--ignore-eos"]
    samples = generate(radixlm_bin, model, [prompt], "--n", "3", "--seed", "7", *flags)
    assert len(samples) == 3
    assert len({tuple(s) for s in samples}) == 3
    assert generate(radixlm_bin, model, [prompt], "--n", "3", "--seed", "7", *flags) == samples
    # Sample i is the request seeded with seed + i.
    assert generate(radixlm_bin, model, [prompt], "--seed", "9", *flags) == [samples[2]]


def test_n_out_of_range_is_an_error(radixlm_bin, fixtures_dir):
    proc = subprocess.run([str(radixlm_bin), "generate", "--model-path", str(fixtures_dir / "models" / "llama"),
                           "--input-ids", "1,2,3", "--n", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "n must be in [1, 128], got 0" in proc.stderr
