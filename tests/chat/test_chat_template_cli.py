"""`radixlm chat-template` as a command: exact output (no newline added), template choice flags, and errors
as a non-zero exit with a message. Expected prompts are Python jinja2's renders (jinja_reference.py)."""
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import jinja_reference  # noqa: E402


def _run(binary, *args):
    return subprocess.run([str(binary), "chat-template", *map(str, args)], capture_output=True, timeout=60)


def test_prints_prompt_exactly(radixlm_bin, fixtures_dir, tmp_path):
    model = fixtures_dir / "tokenizers" / "qwen3"
    messages = [{"role": "user", "content": "Hi"}]
    (tmp_path / "m.json").write_text(json.dumps(messages))
    config = json.loads((model / "tokenizer_config.json").read_text())
    compiled = jinja_reference.compile_template(config["chat_template"])
    for kwargs in ({}, {"enable_thinking": False}):
        expected, error = jinja_reference.render(compiled, messages, None, True, jinja_reference.special_tokens(config),
                                                 kwargs)
        assert error is None
        args = ["--model-path", model, "--messages-file", tmp_path / "m.json", "--add-generation-prompt"]
        if kwargs:
            args += ["--kwargs", json.dumps(kwargs)]
        proc = _run(radixlm_bin, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode() == expected


def test_named_template_and_file_override(radixlm_bin, tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": [
        {"name": "default", "template": "D{{ messages|length }}"}, {"name": "tool_use", "template": "T"}]}))
    (tmp_path / "m.json").write_text("[]")
    (tmp_path / "t.json").write_text("[]")
    (tmp_path / "own.jinja").write_text("own {{ add_generation_prompt }}\n")
    base = ["--model-path", tmp_path, "--messages-file", tmp_path / "m.json"]
    assert _run(radixlm_bin, *base).stdout == b"D0"
    assert _run(radixlm_bin, *base, "--tools-file", tmp_path / "t.json").stdout == b"T"
    assert _run(radixlm_bin, *base, "--chat-template", "tool_use").stdout == b"T"
    assert _run(radixlm_bin, *base, "--chat-template", tmp_path / "own.jinja").stdout == b"own False"


def test_errors_exit_nonzero_with_message(radixlm_bin, fixtures_dir, tmp_path):
    gemma = tmp_path / "gemma"
    gemma.mkdir()
    (gemma / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<bos>"}))
    (tmp_path / "system.json").write_text(json.dumps([{"role": "system", "content": "x"}]))
    template = fixtures_dir / "chat_templates" / "google-gemma-2-2b-it.jinja"
    proc = _run(radixlm_bin, "--model-path", gemma, "--messages-file", tmp_path / "system.json",
                "--chat-template", template)
    assert proc.returncode != 0
    assert b"System role not supported" in proc.stderr
    assert proc.stdout == b""
    (tmp_path / "bad.json").write_text("[{")
    assert _run(radixlm_bin, "--model-path", gemma, "--messages-file", tmp_path / "bad.json",
                "--chat-template", template).returncode != 0
    assert _run(radixlm_bin, "--model-path", tmp_path / "missing", "--messages-file", tmp_path / "system.json").returncode != 0
