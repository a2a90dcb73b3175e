"""The reference renderer: Python jinja2 configured exactly as transformers' chat_template_utils does
(ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the loopcontrols extension, transformers' tojson
override and its raise_exception and strftime_now globals), and its way of building the template variables."""
import json
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def special_tokens(tokenizer_config):
    """transformers' special_tokens_map as tokenizer_config.json declares it: strings or AddedToken objects."""
    tokens = {}
    for name in SPECIAL_TOKEN_NAMES:
        value = tokenizer_config.get(name)
        if isinstance(value, str):
            tokens[name] = value
        elif isinstance(value, dict) and isinstance(value.get("content"), str):
            tokens[name] = value["content"]
    return tokens


def compile_template(template):
    """Compiles once per template (transformers caches the same way); a syntax error is returned, not raised."""
    try:
        return make_environment().from_string(template)
    except Exception as e:  # noqa: BLE001
        return e


def render(compiled, messages, tools, add_generation_prompt, special, kwargs):
    """Renders as apply_chat_template(tokenize=False) does; returns (text, None) or (None, exception)."""
    if isinstance(compiled, Exception):
        return None, compiled
    try:
        text = compiled.render(messages=messages, tools=tools, documents=kwargs.get("documents"),
                               add_generation_prompt=add_generation_prompt,
                               **{**special, **{k: v for k, v in kwargs.items() if k != "documents"}})
        return text, None
    except Exception as e:  # noqa: BLE001 - any jinja2/Python error means the render must fail
        return None, e
