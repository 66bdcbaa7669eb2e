"""GGUF: header, metadata and tensor table parsed with bounds; the chat template walked as a Jinja AST."""

from __future__ import annotations

import struct

import pytest

from airflow_aisec.core import modelscan as ms
from airflow_aisec.core.modelscan.formats.chat_template import template_problems
from tests import model_format_helpers as h


def test_real_gguf_with_a_normal_chat_template_passes(tmp_path):
    path = tmp_path / "model.gguf"
    h.gguf_file(path)
    scan = ms.scan_file(path)
    assert (scan.format, scan.verdict) == ("gguf", "safe"), scan.errors
    assert any("chat template parsed" in n for n in scan.notes)
    assert ms.scan_paths([path]).status == "pass"


def test_gguf_without_template_passes(tmp_path):
    assert ms.scan_bytes(h.gguf_file(tmp_path / "m.gguf", template=None), "m.gguf").verdict == "safe"


@pytest.mark.parametrize(
    "template",
    [
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x|attr('__cla' ~ 'ss__') }}",
        "{{ '{0.__class__}'.format(messages) }}",
        "{% import 'evil.j2' as e %}",
        "{% include 'x' %}",
        "{{ messages['_' * 2 ~ 'class' ~ '_' * 2] }}",
        "{{ messages|map(attribute='__class__')|list }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_template_gadgets_are_refused(tmp_path, template):
    scan = ms.scan_bytes(h.gguf_file(tmp_path / "m.gguf", template=template), "m.gguf")
    assert scan.verdict == "unsafe"
    assert [(i.id, i.severity) for i in scan.issues] == [(ms.F_GGUF_TEMPLATE, "critical")]


def test_named_templates_are_inspected_too(tmp_path):
    data = h.gguf_file(tmp_path / "m.gguf", extra={"tokenizer.chat_template.tool_use": "{{ cycler.__init__ }}"})
    scan = ms.scan_bytes(data, "m.gguf")
    assert [i.details["key"] for i in scan.issues] == ["tokenizer.chat_template.tool_use"]


def test_unparseable_template_is_an_error(tmp_path):
    scan = ms.scan_bytes(h.gguf_file(tmp_path / "m.gguf", template="{% for x in %}"), "m.gguf")
    assert scan.verdict == "malformed"
    assert "does not parse" in scan.errors[0]


def test_template_parse_never_renders():
    problems, error = template_problems("{{ raise_exception('x') }}{% for m in messages %}{{ m.content }}{% endfor %}")
    assert (problems, error) == ([], None)


def test_truncated_gguf_is_malformed_at_every_cut(tmp_path):
    data = h.gguf_file(tmp_path / "m.gguf")
    for cut in (4, 8, 20, 24, 60, len(data) // 2, len(data) - 1):
        scan = ms.scan_bytes(data[:cut], "m.gguf")
        assert (scan.format, scan.verdict) == ("gguf", "malformed"), cut


def test_absurd_counts_and_tensor_sizes_are_malformed(tmp_path):
    data = bytearray(h.gguf_file(tmp_path / "m.gguf"))
    bad_kv = data[:16] + struct.pack("<Q", 1 << 40) + data[24:]
    assert "exceed the bounds" in ms.scan_bytes(bytes(bad_kv), "m.gguf").errors[0]
    bad_version = data[:4] + struct.pack("<I", 9) + data[8:]
    assert "version" in ms.scan_bytes(bytes(bad_version), "m.gguf").errors[0]


def test_missing_gguf_is_an_error_naming_the_extra(monkeypatch, tmp_path):
    import sys

    data = h.gguf_file(tmp_path / "m.gguf")
    monkeypatch.setitem(sys.modules, "gguf", None)
    scan = ms.scan_bytes(data, "m.gguf")
    assert scan.verdict == "malformed"
    assert "airflow-aisec[formats]" in scan.errors[0]


@pytest.mark.parametrize(
    "template",
    [
        # ChatML with tools (Qwen-style)
        "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{%- endif %}"
        "{%- for message in messages %}{%- if message.role == 'assistant' and message.tool_calls %}"
        "{%- for tool_call in message.tool_calls %}{{- tool_call.function.name }}{{- tool_call.function.arguments | tojson }}"
        "{%- endfor %}{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
        "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
        # reasoning model: split, negative index, namespace, loop controls
        "{% set ns = namespace(is_first=false, system_prompt='') %}{%- for message in messages %}"
        "{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{% continue %}{%- endif %}"
        "{%- set content = message['content'].split('</think>')[-1] %}{{ bos_token + ns.system_prompt + content }}"
        "{%- endfor %}{{ strftime_now('%d %b %Y') if strftime_now is defined }}",
    ],
)
def test_real_world_template_shapes_pass(tmp_path, template):
    assert template_problems(template) == ([], None)
    assert ms.scan_bytes(h.gguf_file(tmp_path / "m.gguf", template=template), "m.gguf").verdict == "safe"
