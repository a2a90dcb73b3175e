"""Differential test: seeded random templates (random_templates.py) rendered by `radixlm chat-template` and by
Python jinja2 configured as transformers does. Outputs must be identical; where jinja2 raises, radixlm must
fail too."""
import concurrent.futures
import copy
import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import jinja_reference  # noqa: E402
import random_templates  # noqa: E402

COUNT = int(__import__("os").environ.get("RADIXLM_RANDOM_TEMPLATES", "400"))
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


@pytest.mark.slow
def test_random_templates_match_jinja2(radixlm_bin, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    variables = dict(random_templates.VARIABLES)
    messages = variables.pop("messages")
    tools = variables.pop("tools")
    (tmp_path / "messages.json").write_text(json.dumps(messages))
    (tmp_path / "tools.json").write_text(json.dumps(tools))
    special = {"bos_token": "<s>", "eos_token": "</s>"}

    def check(seed):
        # jinja2's indent filter extends a list passed to it in place (`s += "\n"`): give each render a copy.
        variables_copy, messages_copy, tools_copy = copy.deepcopy((variables, messages, tools))
        source = random_templates.Generator(seed).template()
        path = tmp_path / f"t{seed}.jinja"
        path.write_text(source, encoding="utf-8")
        expected, error = jinja_reference.render(jinja_reference.compile_template(source), messages_copy, tools_copy,
                                                 True, special, variables_copy)
        proc = subprocess.run([str(radixlm_bin), "chat-template", "--model-path", str(model_dir), "--messages-file",
                               str(tmp_path / "messages.json"), "--tools-file", str(tmp_path / "tools.json"),
                               "--add-generation-prompt", "--kwargs", json.dumps(variables), "--chat-template",
                               str(path)], capture_output=True, timeout=60)
        out = proc.stdout.decode("utf-8", errors="replace")
        if error is not None:
            return None if proc.returncode != 0 else (seed, source, f"jinja2 raised {error!r}; radixlm gave {out!r}")
        if proc.returncode != 0:
            return seed, source, f"radixlm failed: {proc.stderr.decode()}; jinja2 gave {expected!r}"
        if " at 0x" in expected:  # Python printed an object's address, which no other program can reproduce
            return None
        if out != expected:
            return seed, source, f"expected {expected!r}\n got      {out!r}"
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(check, range(COUNT)) if f]
    report = "\n\n".join(f"seed {seed}: {source!r}\n{detail}" for seed, source, detail in failures[:8])
    assert not failures, f"{len(failures)} of {COUNT} random templates differ from jinja2:\n{report}"
