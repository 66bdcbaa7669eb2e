"""The pickle opcodes' byte layout, their argument readers and the dispatch table.

Each opcode is one byte followed by its argument: none, a newline-terminated line (two for
``GLOBAL``/``INST``), a fixed number of bytes, or a length prefix and that many bytes. Arguments are
framed exactly as CPython's unpicklers frame them; every declared length is checked against the bytes
that remain before anything is read. :func:`build_table` joins the layout with one handler per opcode
into a 256-entry table (``None`` for a byte that is no opcode: the walker fails closed on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_aisec.core.modelscan.context import Malformed
from airflow_aisec.core.modelscan.pickle_vm.values import OPAQUE

if TYPE_CHECKING:
    from airflow_aisec.core.modelscan.pickle_vm.walker import PickleWalker

# Opcode table: byte -> (name, argument kind). Kinds: "" none, "line", "2lines", ("fix", n),
# ("len", size_bytes, signed) — a length-prefixed argument.
LAYOUT: dict[int, tuple[str, Any]] = {
    ord("("): ("MARK", ""),
    ord("."): ("STOP", ""),
    ord("0"): ("POP", ""),
    ord("1"): ("POP_MARK", ""),
    ord("2"): ("DUP", ""),
    ord("F"): ("FLOAT", "line"),
    ord("I"): ("INT", "line"),
    ord("J"): ("BININT", ("fix", 4)),
    ord("K"): ("BININT1", ("fix", 1)),
    ord("L"): ("LONG", "line"),
    ord("M"): ("BININT2", ("fix", 2)),
    ord("N"): ("NONE", ""),
    ord("P"): ("PERSID", "line"),
    ord("Q"): ("BINPERSID", ""),
    ord("R"): ("REDUCE", ""),
    ord("S"): ("STRING", "line"),
    ord("T"): ("BINSTRING", ("len", 4, True)),
    ord("U"): ("SHORT_BINSTRING", ("len", 1, False)),
    ord("V"): ("UNICODE", "line"),
    ord("X"): ("BINUNICODE", ("len", 4, False)),
    ord("a"): ("APPEND", ""),
    ord("b"): ("BUILD", ""),
    ord("c"): ("GLOBAL", "2lines"),
    ord("d"): ("DICT", ""),
    ord("}"): ("EMPTY_DICT", ""),
    ord("e"): ("APPENDS", ""),
    ord("g"): ("GET", "line"),
    ord("h"): ("BINGET", ("fix", 1)),
    ord("i"): ("INST", "2lines"),
    ord("j"): ("LONG_BINGET", ("fix", 4)),
    ord("l"): ("LIST", ""),
    ord("]"): ("EMPTY_LIST", ""),
    ord("o"): ("OBJ", ""),
    ord("p"): ("PUT", "line"),
    ord("q"): ("BINPUT", ("fix", 1)),
    ord("r"): ("LONG_BINPUT", ("fix", 4)),
    ord("s"): ("SETITEM", ""),
    ord("t"): ("TUPLE", ""),
    ord(")"): ("EMPTY_TUPLE", ""),
    ord("u"): ("SETITEMS", ""),
    ord("G"): ("BINFLOAT", ("fix", 8)),
    0x80: ("PROTO", ("fix", 1)),
    0x81: ("NEWOBJ", ""),
    0x82: ("EXT1", ("fix", 1)),
    0x83: ("EXT2", ("fix", 2)),
    0x84: ("EXT4", ("fix", 4)),
    0x85: ("TUPLE1", ""),
    0x86: ("TUPLE2", ""),
    0x87: ("TUPLE3", ""),
    0x88: ("NEWTRUE", ""),
    0x89: ("NEWFALSE", ""),
    0x8A: ("LONG1", ("len", 1, False)),
    0x8B: ("LONG4", ("len", 4, True)),
    ord("B"): ("BINBYTES", ("len", 4, False)),
    ord("C"): ("SHORT_BINBYTES", ("len", 1, False)),
    0x8C: ("SHORT_BINUNICODE", ("len", 1, False)),
    0x8D: ("BINUNICODE8", ("len", 8, False)),
    0x8E: ("BINBYTES8", ("len", 8, False)),
    0x8F: ("EMPTY_SET", ""),
    0x90: ("ADDITEMS", ""),
    0x91: ("FROZENSET", ""),
    0x92: ("NEWOBJ_EX", ""),
    0x93: ("STACK_GLOBAL", ""),
    0x94: ("MEMOIZE", ""),
    0x95: ("FRAME", ("fix", 8)),
    0x96: ("BYTEARRAY8", ("len", 8, False)),
    0x97: ("NEXT_BUFFER", ""),
    0x98: ("READONLY_BUFFER", ""),
}
PICKLE_OPCODE_BYTES = frozenset(LAYOUT)

#: ``read(walker, pos, name) -> (argument, position after it)``; ``pos`` is just after the opcode byte.
Reader = Callable[["PickleWalker", int, str], tuple[Any, int]]
#: ``run(walker, argument, opcode offset)``; True only for ``STOP`` (the pickle ends).
Handler = Callable[["PickleWalker", Any, int], "bool | None"]


class Op:
    """One opcode: its byte, name, argument kind, argument reader and handler."""

    __slots__ = ("arg", "code", "name", "read", "run")

    def __init__(self, code: int, name: str, arg: Any, read: Reader, run: Handler) -> None:
        self.code, self.name, self.arg, self.read, self.run = code, name, arg, read, run

    def __repr__(self) -> str:
        return f"Op({self.name}, 0x{self.code:02x})"


def build_table(handlers: dict[str, Handler]) -> tuple[Op | None, ...]:
    """The 256-entry dispatch table. Every opcode of the layout needs exactly one handler and every
    handler an opcode: a gap would let an opcode through unexamined, so it stops the import."""
    names = {name for name, _ in LAYOUT.values()}
    missing, extra = names - handlers.keys(), handlers.keys() - names
    if missing or extra:
        raise RuntimeError(f"pickle dispatch table: no handler for {sorted(missing)}, no opcode for {sorted(extra)}")
    table: list[Op | None] = [None] * 256
    for code, (name, kind) in LAYOUT.items():
        table[code] = Op(code, name, kind, reader_for(kind), handlers[name])
    return tuple(table)


# ------------------------------------------------------------------------------ argument readers
def reader_for(kind: Any) -> Reader:
    if kind == "":
        return _no_arg
    if kind == "line":
        return _line_arg
    if kind == "2lines":
        return _two_lines_arg
    if kind[0] == "fix":
        return _fixed_arg(kind[1])
    return _prefixed_arg(kind[1], kind[2])


def _no_arg(w: PickleWalker, pos: int, name: str) -> tuple[Any, int]:
    return None, pos


def _line_arg(w: PickleWalker, pos: int, name: str) -> tuple[Any, int]:
    if w.frame_end is None:
        return w.read_line(pos)
    arg, pos = w.read_line(w.rd(pos))
    w.rd(pos, check_only=True)
    return arg, pos


def _two_lines_arg(w: PickleWalker, pos: int, name: str) -> tuple[Any, int]:
    framed = w.frame_end is not None
    first, pos = w.read_line(w.rd(pos) if framed else pos)
    second, pos = w.read_line(w.rd(pos) if framed else pos)
    if framed:
        w.rd(pos, check_only=True)
    return (first, second), pos


def _fixed_arg(n: int) -> Reader:
    def read(w: PickleWalker, pos: int, name: str) -> tuple[Any, int]:
        framed = w.frame_end is not None
        if pos + n <= (w.frame_end if framed else w.end):  # type: ignore[operator]
            return bytes(w.buf[pos : pos + n]), pos + n  # the usual case: all inside the frame/stream
        pos = w.rd(pos) if framed else pos
        w.need(pos, n, name)
        arg = bytes(w.buf[pos : pos + n])
        pos += n
        if framed:
            w.rd(pos, check_only=True)
        return arg, pos

    return read


def _prefixed_arg(size: int, signed: bool) -> Reader:
    def read(w: PickleWalker, pos: int, name: str) -> tuple[Any, int]:
        framed = w.frame_end is not None
        lim: int = w.frame_end if framed else w.end  # type: ignore[assignment]
        if pos + size <= lim:  # the usual case: prefix and data inside the frame/stream
            at = pos + size
            length = w.buf[pos] if size == 1 else int.from_bytes(w.buf[pos:at], "little", signed=signed)
            if 0 <= length and at < lim and at + length <= lim:
                return (at, length), at + length
        return _prefixed_slow(w, pos, name, size, signed, framed)

    return read


def _prefixed_slow(w: PickleWalker, pos: int, name: str, size: int, signed: bool, framed: bool) -> tuple[Any, int]:
    start = pos - 1
    pos = w.rd(pos) if framed else pos
    w.need(pos, size, name)
    length = int.from_bytes(w.buf[pos : pos + size], "little", signed=signed)
    pos += size
    if length < 0:
        raise Malformed(f"{name} at byte {start} has a negative length")
    pos = w.rd(pos) if framed else pos
    w.need(pos, length, name)
    arg = (pos, length)
    pos += length
    if framed:
        w.rd(pos, check_only=True)
    return arg, pos


# ------------------------------------------------------------------------------ text arguments
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def cut_nul(raw: bytes) -> bytes:
    i = raw.find(b"\0")
    return raw if i < 0 else raw[:i]


def text_int(line: bytes) -> Any:
    """Value of an ``INT`` line (without its newline) as C ``load_int`` computes it; OPAQUE if unsure."""
    if line in (b"00", b"01"):
        return line == b"01"
    if line[:1] == b"\0":  # strtol converts nothing and leaves end at the NUL: accepted as 0
        return False if len(line) == 2 else 0
    m = _STRTOL.match(line)
    if m and (m.end() == len(line) or line[m.end()] == 0):  # strtol(s, &end, 0); *end in ('\n', '\0')
        digits = m.group(2)
        base = 16 if digits[:2] in (b"0x", b"0X") else 8 if digits.startswith(b"0") and len(digits) > 1 else 10
        value = int(digits[2:] if base == 16 else digits, base) * (-1 if m.group(1) == b"-" else 1)
        if -(2**63) <= value < 2**63:
            return bool(value) if len(line) == 2 and value in (0, 1) else value
    try:
        return int(cut_nul(line), 0)  # PyLong_FromString(s, NULL, 0), what pickle.py's int(data, 0) also does
    except ValueError:
        return OPAQUE


def text_long(line: bytes) -> Any:
    if line.endswith(b"L"):
        line = line[:-1]
    try:
        return int(cut_nul(line), 0)
    except ValueError:
        return OPAQUE


def text_key(line: bytes) -> int | None:
    try:
        return int(cut_nul(line), 10)
    except ValueError:
        return None


def decode_binstring(raw: bytes) -> str:
    # encoding= differs per loader (ASCII, latin1, utf-8, bytes); any ASCII name reads the same in all
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
