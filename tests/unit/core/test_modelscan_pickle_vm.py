"""The pickle walker's dispatch table: every opcode CPython knows has a handler, nothing else is accepted."""

from __future__ import annotations

import pickletools

import pytest

from airflow_aisec.core.modelscan import scan_bytes
from airflow_aisec.core.modelscan.context import Malformed
from airflow_aisec.core.modelscan.engine import make_context
from airflow_aisec.core.modelscan.pickle_vm import LAYOUT, OPCODES, PickleWalker
from airflow_aisec.core.modelscan.pickle_vm.handlers import HANDLERS
from airflow_aisec.core.modelscan.pickle_vm.opcodes import build_table
from airflow_aisec.core.modelscan.results import FileScan

KNOWN = {ord(op.code): op for op in pickletools.opcodes}


def _expected_kind(op: pickletools.OpcodeInfo) -> object:
    """The argument layout pickletools documents, in the table's notation."""
    if op.arg is None:
        return ""
    n = op.arg.n
    if n > 0:
        return ("fix", n)
    if n == pickletools.UP_TO_NEWLINE:
        return "2lines" if op.name in ("GLOBAL", "INST") else "line"
    return {
        pickletools.TAKEN_FROM_ARGUMENT1: ("len", 1, False),
        pickletools.TAKEN_FROM_ARGUMENT4: ("len", 4, True),
        pickletools.TAKEN_FROM_ARGUMENT4U: ("len", 4, False),
        pickletools.TAKEN_FROM_ARGUMENT8U: ("len", 8, False),
    }[n]


def test_table_is_one_immutable_entry_per_byte() -> None:
    assert isinstance(OPCODES, tuple)
    assert len(OPCODES) == 256


@pytest.mark.parametrize("op", pickletools.opcodes, ids=lambda op: op.name)
def test_every_pickletools_opcode_has_a_handler_and_its_argument_layout(op: pickletools.OpcodeInfo) -> None:
    entry = OPCODES[ord(op.code)]
    assert entry is not None, f"{op.name} has no handler"
    assert entry.name == op.name
    assert entry.arg == _expected_kind(op)
    assert entry.run is HANDLERS[op.name]


def test_no_opcode_beyond_what_cpython_knows() -> None:
    assert {code for code, entry in enumerate(OPCODES) if entry is not None} == set(KNOWN) == set(LAYOUT)


@pytest.mark.parametrize("byte", sorted(set(range(256)) - set(KNOWN)))
def test_a_byte_that_is_no_opcode_fails_closed(byte: int) -> None:
    data = b"\x80\x04" + bytes([byte]) + b"."
    walker = PickleWalker(data, 0, FileScan("x"), make_context(None, (), {}))
    with pytest.raises(Malformed, match=f"invalid opcode byte 0x{byte:02x} at byte 2"):
        walker.walk()
    assert scan_bytes(data, "m.pkl").verdict == "malformed"


def test_a_missing_handler_stops_the_table_build() -> None:
    partial = {name: fn for name, fn in HANDLERS.items() if name != "REDUCE"}
    with pytest.raises(RuntimeError, match=r"no handler for \['REDUCE'\]"):
        build_table(partial)


def test_a_handler_without_an_opcode_stops_the_table_build() -> None:
    with pytest.raises(RuntimeError, match=r"no opcode for \['NOT_AN_OPCODE'\]"):
        build_table({**HANDLERS, "NOT_AN_OPCODE": HANDLERS["POP"]})
