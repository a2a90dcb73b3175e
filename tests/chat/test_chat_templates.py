"""Every chat template in the fixtures rendered by `radixlm chat-template` over every conversation in
conversations.py, with and without add_generation_prompt and with the kwargs a template reads, compared
byte for byte with Python jinja2 configured as transformers configures it (jinja_reference.py). Where jinja2
raises (raise_exception, type errors), radixlm must fail too.

strftime_now renders today's date in both; a render that straddles midnight is retried once."""
import concurrent.futures
import json
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import conversations  # noqa: E402
import jinja_reference  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def _template_sources():
    """(id, model_dir or None, template file or None, template text, tokenizer_config)."""
    sources = []
    for path in sorted((FIXTURES / "chat_templates").glob("*.jinja")):
        sources.append((f"file:{path.stem}", None, path, path.read_text(encoding="utf-8"), None))
    for config_path in sorted(list(FIXTURES.glob("models/*/tokenizer_config.json")) +
                              list(FIXTURES.glob("tokenizers/*/tokenizer_config.json"))):
        model_dir = config_path.parent
        config = json.loads(config_path.read_text(encoding="utf-8"))
        jinja_file = model_dir / "chat_template.jinja"
        template = config.get("chat_template")
        if jinja_file.exists():
            template = jinja_file.read_text(encoding="utf-8")
        if isinstance(template, list):
            named = {t["name"]: t["template"] for t in template}
            template = named.get("default")
        if not isinstance(template, str):
            continue
        sources.append((f"dir:{model_dir.parent.name}/{model_dir.name}", model_dir, None, template, config))
    return sources


SOURCES = _template_sources()

# Tokens for the stand-alone template files: an AddedToken object and a plain string, as configs have them.
FILE_TOKENIZER_CONFIG = {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False},
                         "eos_token": "</s>", "unk_token": None}


def _variants(template):
    variants = [{}]
    for name, options in conversations.KWARG_VARIANTS.items():
        if name in template:
            variants.extend(options)
    return variants


def _run(binary, model_dir, template_file, messages_file, tools_file, add_generation_prompt, kwargs):
    args = [str(binary), "chat-template", "--model-path", str(model_dir), "--messages-file", str(messages_file)]
    if template_file is not None:
        args += ["--chat-template", str(template_file)]
    if tools_file is not None:
        args += ["--tools-file", str(tools_file)]
    if add_generation_prompt:
        args.append("--add-generation-prompt")
    if kwargs:
        args += ["--kwargs", json.dumps(kwargs)]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    return proc.returncode, proc.stdout.decode("utf-8", errors="replace"), proc.stderr.decode("utf-8", errors="replace")


def _first_difference(a, b):
    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
    return f"first difference at {i}: expected {a[max(0, i - 60):i + 60]!r}, got {b[max(0, i - 60):i + 60]!r}"


# Cases that are also rendered with each kwargs variant a template reads (the rest with none).
VARIANT_CASES = ("single_user", "multi_turn_system", "tools_user", "tool_calls_dict_args", "reasoning")


def _plan(template):
    for case_name, (messages, tools, case_kwargs) in conversations.CASES.items():
        variants = _variants(template) if case_name in VARIANT_CASES else [{}]
        for kwargs in variants:
            for add_generation_prompt in (False, True):
                yield case_name, messages, tools, {**case_kwargs, **kwargs}, add_generation_prompt


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[s[0] for s in SOURCES])
def test_template_matches_jinja2(source, radixlm_bin, tmp_path):
    source_id, model_dir, template_file, template, config = source
    if model_dir is None:
        model_dir = tmp_path / "model"
        model_dir.mkdir()
        (model_dir / "tokenizer_config.json").write_text(json.dumps(FILE_TOKENIZER_CONFIG))
        config = FILE_TOKENIZER_CONFIG
    special = jinja_reference.special_tokens(config)
    compiled = jinja_reference.compile_template(template)
    files = {}
    for case_name, (messages, tools, _) in conversations.CASES.items():
        messages_file = tmp_path / f"{case_name}.messages.json"
        messages_file.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
        tools_file = None
        if tools is not None:
            tools_file = tmp_path / f"{case_name}.tools.json"
            tools_file.write_text(json.dumps(tools, ensure_ascii=False), encoding="utf-8")
        files[case_name] = (messages_file, tools_file)

    def check(item):
        case_name, messages, tools, kwargs, add_generation_prompt = item
        label = f"{case_name} add_generation_prompt={add_generation_prompt} kwargs={kwargs}"
        for _attempt in range(2):  # a render straddling midnight changes strftime_now's date: retry once
            expected, error = jinja_reference.render(compiled, messages, tools, add_generation_prompt, special, kwargs)
            rc, out, err = _run(radixlm_bin, model_dir, template_file, *files[case_name], add_generation_prompt, kwargs)
            if error is not None or rc != 0 or out == expected:
                break
        if error is not None:
            return None if rc != 0 else f"{label}: jinja2 raised {type(error).__name__}: {error}, radixlm rendered"
        if rc != 0:
            return f"{label}: radixlm failed: {err.strip()}"
        if out != expected:
            return f"{label}: {_first_difference(expected, out)}"
        return None

    plan = list(_plan(template))
    # jinja2 holds the GIL only while rendering; the radixlm processes run in parallel.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(check, plan) if f]
    assert plan
    assert not failures, f"{source_id}: {len(failures)} of {len(plan)} renders differ:\n" + "\n".join(failures[:15])
