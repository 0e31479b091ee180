"""Render the original chat templates the way transformers does -- for tests and benchmarks only.

The formatters never read these templates; this module exists so that tests and
``benchmarks/bench_format.py`` can compare the formatters with the families' own Jinja templates,
found in ``../shared/reference/chat_templates`` next to the repository (or in the folder named by
``MMCR_REFERENCE_TEMPLATES``). When the folder is absent, :func:`reference_dir` returns ``None``
and callers skip.

The Jinja environment mirrors transformers' ``_compile_jinja_template``: an
``ImmutableSandboxedEnvironment`` with ``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols``
extension, a ``tojson`` filter that keeps non-ASCII characters, and the ``raise_exception`` and
``strftime_now`` globals. Messages are passed as plain dicts, as transformers does after copying
them into JSON types.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

_REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_dir() -> Optional[Path]:
    """The folder of reference templates, or ``None`` when it is not available."""
    env = os.environ.get("MMCR_REFERENCE_TEMPLATES")
    path = Path(env) if env else _REPO_ROOT.parent / "shared" / "reference" / "chat_templates"
    return path if (path / "qwen2_5_vl.jinja").is_file() else None


def make_environment():
    """A Jinja2 environment configured like transformers' chat-template environment."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# -- per-family adaptations -------------------------------------------------------------------

def _smolvlm(src: str) -> str:
    assert src.startswith("<|begin_of_text|>")
    return "<|im_start|>" + src[len("<|begin_of_text|>"):]


_MLLAMA_IMAGES = """
{#- Find out if there are any images #}
{%- set image_ns = namespace(has_images=false) %}
{%- for message in messages %}
    {%- for content in message['content'] %}
        {%- if content['type'] == 'image' %}
            {%- set image_ns.has_images = true %}
        {%- endif %}
    {%- endfor %}
{%- endfor %}
{%- if image_ns.has_images and not system_message == "" %}
    {{- raise_exception("Prompting with images is incompatible with system messages.") }}
{%- endif %}
"""

_MLLAMA_CONTENT = """{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}
        {%- if message['content'] is string %}
            {{- message['content'] }}
        {%- else %}
            {%- for content in message['content'] %}
                {%- if content['type'] == 'image' %}
                    {{- '<|image|>' }}
                {%- elif content['type'] == 'text' %}
                    {{- content['text'] }}
                {%- endif %}
            {%- endfor %}
        {%- endif %}
        {{- '<|eot_id|>' }}"""


def _mllama(src: str) -> str:
    """Llama 3.2 (text) -> Llama 3.2 Vision: the three changes Meta's vision template makes."""
    anchor = '{%- set system_message = "" %}\n{%- endif %}\n'
    assert anchor in src
    src = src.replace(anchor, anchor + _MLLAMA_IMAGES, 1)
    head = '{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}'
    assert src.count(head) == 1
    src = src.replace(head, "{%- if not image_ns.has_images %}\n" + head, 1)
    tail = '{{- system_message }}\n{{- "<|eot_id|>" }}\n'
    assert src.count(tail) == 1
    src = src.replace(tail, tail + "{%- endif %}\n", 1)
    line = ("{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
            " + '<|eot_id|>' }}")
    assert src.count(line) == 1, "llama3_2.jinja changed"
    return src.replace(line, _MLLAMA_CONTENT, 1)


def _string_system(messages):
    if not messages or messages[0]["role"] != "system":
        return messages
    out = []
    for m in messages:
        if m["role"] == "system" and not isinstance(m["content"], str):
            m = {"role": "system", "content": "".join(p["text"] for p in m["content"] if p["type"] == "text")}
        out.append(m)
    return out


def _phi3_messages(messages):
    from ..formatters.phi3 import phi3_string_content

    order: list = []
    return [{"role": m["role"], "content": m["content"]} if isinstance(m["content"], str)
            else phi3_string_content([m], order)[0] for m in _string_system(messages)]


#: formatter name -> (template file, source adaptation, message conversion, fixed template variables)
REFERENCES: dict[str, tuple[str, Optional[Callable], Optional[Callable], dict]] = {
    "qwen2_vl": ("qwen2_5_vl.jinja", None, None, {}),
    "qwen3_vl": ("qwen3_vl.jinja", None, None, {}),
    "idefics3": ("idefics3.jinja", None, None, {}),
    "smolvlm": ("idefics3.jinja", _smolvlm, None, {}),
    "llava_next": ("llava_next.jinja", None, None, {}),
    "gemma3": ("gemma3.jinja", None, None, {"bos_token": "<bos>"}),
    "phi3_v": ("phi3_5.jinja", None, _phi3_messages, {"eos_token": "<|endoftext|>"}),
    "mllama": ("llama3_2.jinja", _mllama, _string_system, {"bos_token": "<|begin_of_text|>"}),
}


def reference_source(name: str, directory: Optional[Path] = None) -> str:
    """The (adapted) template source the formatter ``name`` must reproduce."""
    directory = directory or reference_dir()
    if directory is None:
        raise FileNotFoundError("reference chat templates are not available")
    file, adapt, _, _ = REFERENCES[name]
    src = (Path(directory) / file).read_text(encoding="utf-8")
    return adapt(src) if adapt else src


class ReferenceRenderer:
    """Compiles each reference template once and renders dialogues with it."""

    def __init__(self, directory: Optional[Path] = None):
        self.directory = directory or reference_dir()
        self.env = make_environment()
        self._compiled: dict = {}

    def template(self, name: str):
        if name not in self._compiled:
            self._compiled[name] = self.env.from_string(reference_source(name, self.directory))
        return self._compiled[name]

    def messages_for(self, name: str, messages: list) -> list:
        convert = REFERENCES[name][2]
        return convert(messages) if convert else messages

    def render(self, name: str, messages: list, *, add_generation_prompt: bool = False, **variables) -> str:
        """Render ``messages`` (row-format dicts, system message included) with family ``name``."""
        fixed = dict(REFERENCES[name][3])
        fixed.update(variables)
        return self.template(name).render(messages=self.messages_for(name, messages), tools=None,
                                          documents=None, add_generation_prompt=add_generation_prompt, **fixed)
