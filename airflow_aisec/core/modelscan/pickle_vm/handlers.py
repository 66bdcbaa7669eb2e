"""One handler per pickle opcode, grouped by kind: what each does to the symbolic stack and memo.

A handler gets the walker, the opcode's argument as its reader framed it, and the opcode's offset; it
returns True only for ``STOP``. Handlers never import, call or unpickle: a global is only classified
(:meth:`PickleWalker.make_global`) and a call is only recorded (:meth:`PickleWalker.called`).
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_aisec.core.modelscan.context import Malformed, ScanBound
from airflow_aisec.core.modelscan.pickle_vm import joblib_arrays
from airflow_aisec.core.modelscan.pickle_vm.opcodes import (
    Handler,
    cut_nul,
    decode_binstring,
    text_int,
    text_key,
    text_long,
)
from airflow_aisec.core.modelscan.pickle_vm.values import (
    OPAQUE,
    Global,
    Obj,
    PickledDict,
    freeze,
    is_dunder,
    maybe_mapping,
    merge_states,
    set_pairs,
)
from airflow_aisec.core.modelscan.results import GlobalRef

if TYPE_CHECKING:
    from airflow_aisec.core.modelscan.pickle_vm.walker import PickleWalker

#: opcode name -> handler (filled by :func:`handles`, turned into the byte table by the walker)
HANDLERS: dict[str, Handler] = {}


def handles(*names: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of the opcodes ``names`` (same semantics)."""

    def register(fn: Handler) -> Handler:
        for name in names:
            if name in HANDLERS:
                raise RuntimeError(f"two handlers for pickle opcode {name}")
            HANDLERS[name] = fn
        return fn

    return register


# ------------------------------------------------------------------------------ numbers and constants
@handles("BININT")
def _binint(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(int.from_bytes(arg, "little", signed=True))


@handles("BININT1")
def _binint1(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(arg[0])


@handles("BININT2")
def _binint2(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(int.from_bytes(arg, "little"))


@handles("LONG1", "LONG4")
def _binlong(w: PickleWalker, arg: Any, pos: int) -> None:
    p, n = arg
    w.stack.append(int.from_bytes(w.buf[p : p + n], "little", signed=True) if n <= 64 else OPAQUE)


@handles("BINFLOAT")
def _binfloat(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(struct.unpack(">d", arg)[0])


@handles("INT")
def _int(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(text_int(arg))


@handles("LONG")
def _long(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(text_long(arg))


@handles("FLOAT")
def _float(w: PickleWalker, arg: Any, pos: int) -> None:
    try:
        w.stack.append(float(cut_nul(arg)))
    except ValueError:
        w.stack.append(OPAQUE)


@handles("NONE")
def _none(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(None)


@handles("NEWTRUE")
def _newtrue(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(True)


@handles("NEWFALSE")
def _newfalse(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(False)


# ------------------------------------------------------------------------------ strings and bytes
@handles("SHORT_BINUNICODE")
def _short_binunicode(w: PickleWalker, arg: Any, pos: int) -> None:
    p, n = arg  # at most 255 bytes: always decoded (the commonest opcode of a real pickle)
    try:
        w.stack.append(bytes(w.buf[p : p + n]).decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        raise Malformed("unicode argument is not UTF-8") from None


@handles("BINUNICODE", "BINUNICODE8")
def _binunicode(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(w.str_arg(arg, utf8=True))


@handles("SHORT_BINSTRING", "BINSTRING")
def _binstring(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(w.str_arg(arg, utf8=False))


@handles("SHORT_BINBYTES", "BINBYTES", "BINBYTES8")
def _binbytes(w: PickleWalker, arg: Any, pos: int) -> None:
    p, n = arg
    w.stack.append(bytes(w.buf[p : p + n]) if n <= 256 else OPAQUE)


@handles("BYTEARRAY8")
def _bytearray8(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(OPAQUE)


@handles("STRING")
def _string(w: PickleWalker, arg: Any, pos: int) -> None:
    if not (len(arg) >= 2 and arg[0] == arg[-1] and arg[:1] in (b"'", b'"')):
        raise Malformed("the STRING opcode argument must be quoted")
    try:
        raw = codecs.escape_decode(arg[1:-1])[0]
    except ValueError:
        raise Malformed("bad escape in STRING argument") from None
    w.stack.append(decode_binstring(raw))


@handles("UNICODE")
def _unicode(w: PickleWalker, arg: Any, pos: int) -> None:
    try:
        w.stack.append(arg.decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise Malformed("bad escape in UNICODE argument") from None


# ------------------------------------------------------------------------------ stack and marks
@handles("MARK")
def _mark(w: PickleWalker, arg: Any, pos: int) -> None:
    w.metastack.append(w.stack)
    w.stack = []
    if len(w.metastack) > w.ctx.max_marks:
        raise ScanBound(f"more than {w.ctx.max_marks} nested MARKs (bound)")


@handles("POP")
def _pop(w: PickleWalker, arg: Any, pos: int) -> None:
    if w.stack:
        w.stack.pop()
    else:
        w.pop_mark()  # pickle's load_pop pops a mark when the stack is empty


@handles("POP_MARK")
def _pop_mark(w: PickleWalker, arg: Any, pos: int) -> None:
    w.pop_mark()


@handles("DUP")
def _dup(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(w.top())


# ------------------------------------------------------------------------------ memo
@handles("MEMOIZE")
def _memoize(w: PickleWalker, arg: Any, pos: int) -> None:
    w.memo[len(w.memo)] = w.top()


@handles("GET")
def _get(w: PickleWalker, arg: Any, pos: int) -> None:
    _memo_get(w, text_key(arg))


@handles("BINGET", "LONG_BINGET")
def _binget(w: PickleWalker, arg: Any, pos: int) -> None:
    _memo_get(w, int.from_bytes(arg, "little"))


def _memo_get(w: PickleWalker, key: int | None) -> None:
    if key is None:
        w.stack.append(OPAQUE)  # one unpickler may read this key differently: keep walking
    elif key not in w.memo:
        raise Malformed(f"memo key {key} read before it was written")
    else:
        w.stack.append(w.memo[key])


@handles("PUT")
def _put(w: PickleWalker, arg: Any, pos: int) -> None:
    value = w.top()
    key = text_key(arg)
    if key is not None:
        if key < 0:
            raise Malformed("negative PUT argument")
        w.memo[key] = value


@handles("BINPUT", "LONG_BINPUT")
def _binput(w: PickleWalker, arg: Any, pos: int) -> None:
    w.memo[int.from_bytes(arg, "little")] = w.top()


# ------------------------------------------------------------------------------ containers
@handles("EMPTY_LIST")
def _empty_list(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append([])


@handles("EMPTY_TUPLE")
def _empty_tuple(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(())


@handles("EMPTY_DICT")
def _empty_dict(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(PickledDict())


@handles("EMPTY_SET")
def _empty_set(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(OPAQUE)


@handles("TUPLE")
def _tuple(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    w.stack.append(tuple(items))


@handles("TUPLE1")
def _tuple1(w: PickleWalker, arg: Any, pos: int) -> None:
    _pack(w, 1)


@handles("TUPLE2")
def _tuple2(w: PickleWalker, arg: Any, pos: int) -> None:
    _pack(w, 2)


@handles("TUPLE3")
def _tuple3(w: PickleWalker, arg: Any, pos: int) -> None:
    _pack(w, 3)


def _pack(w: PickleWalker, n: int) -> None:
    st = w.stack
    if len(st) < n:
        raise Malformed("stack underflow")
    items = st[-n:]
    del st[-n:]
    st.append(tuple(items))


@handles("LIST")
def _list(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    w.stack.append(list(items))


@handles("DICT")
def _dict(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    d = PickledDict()
    set_pairs(d, items)
    w.stack.append(d)


@handles("FROZENSET")
def _frozenset(w: PickleWalker, arg: Any, pos: int) -> None:
    w.pop_mark()
    w.stack.append(OPAQUE)


@handles("APPEND")
def _append(w: PickleWalker, arg: Any, pos: int) -> None:
    value = w.pop()
    target = w.top()
    if isinstance(target, list):
        target.append(value)


@handles("APPENDS")
def _appends(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    target = w.top()
    if isinstance(target, list):
        target.extend(items)


@handles("ADDITEMS")
def _additems(w: PickleWalker, arg: Any, pos: int) -> None:
    w.pop_mark()
    w.top()


@handles("SETITEM")
def _setitem(w: PickleWalker, arg: Any, pos: int) -> None:
    value = w.pop()
    key = w.pop()
    target = w.top()
    if isinstance(target, PickledDict):
        set_pairs(target, [key, value])


@handles("SETITEMS")
def _setitems(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    target = w.top()
    if isinstance(target, PickledDict):
        set_pairs(target, items)


# ------------------------------------------------------------------------------ framing and control
@handles("PROTO")
def _proto(w: PickleWalker, arg: Any, pos: int) -> None:
    if arg[0] > 5:
        raise Malformed(f"unsupported pickle protocol {arg[0]}")
    w.proto = arg[0]


@handles("FRAME")
def _frame(w: PickleWalker, arg: Any, pos: int) -> None:
    # a FRAME longer than the rest of the stream stops the C unpickler, but the pure-Python one
    # (``pickle._Unpickler``, ``joblib.load`` of a file object) reads what remains into the frame
    # and goes on: an error, and the walk goes on too (what follows is never hidden)
    declared = int.from_bytes(arg, "little")
    size = min(declared, w.end - w.pos)
    w.plain_frame_end = w.pos + size
    if declared > size:
        w.scan.errors.append(
            f"FRAME at byte {pos} declares {declared} bytes, only {size} left (truncated; "
            "the pure-Python unpickler reads on)"
        )
    if w.joblib_arrays:
        if w.frame_end is not None and w.pos < w.frame_end:
            raise Malformed("a new frame begins before the end of the current one", certain=False)
        w.frame_end = w.file_pos = w.pos + size


@handles("STOP")
def _stop(w: PickleWalker, arg: Any, pos: int) -> bool:
    w.result = w.pop()
    if w.plain_frame_end > w.pos:
        w.stop_frame_end = w.plain_frame_end
    return True


@handles("NEXT_BUFFER")
def _next_buffer(w: PickleWalker, arg: Any, pos: int) -> None:
    w.stack.append(OPAQUE)


@handles("READONLY_BUFFER")
def _readonly_buffer(w: PickleWalker, arg: Any, pos: int) -> None:
    w.top()


# ------------------------------------------------------------------------------ imports
def _utf8_names(arg: Any, opcode: str, pos: int) -> tuple[str, str]:
    try:
        return arg[0].decode("utf-8"), arg[1].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"{opcode} at byte {pos}: module or name is not UTF-8") from None


@handles("GLOBAL")
def _global(w: PickleWalker, arg: Any, pos: int) -> None:
    module, name = _utf8_names(arg, "GLOBAL", pos)
    w.stack.append(w.make_global(module, name, "GLOBAL", pos))


@handles("STACK_GLOBAL")
def _stack_global(w: PickleWalker, arg: Any, pos: int) -> None:
    name = w.pop()
    module = w.pop()
    w.stack.append(w.make_global(module, name, "STACK_GLOBAL", pos))


@handles("EXT1")
def _ext1(w: PickleWalker, arg: Any, pos: int) -> None:
    _extension(w, arg, "EXT1", pos)


@handles("EXT2")
def _ext2(w: PickleWalker, arg: Any, pos: int) -> None:
    _extension(w, arg, "EXT2", pos)


@handles("EXT4")
def _ext4(w: PickleWalker, arg: Any, pos: int) -> None:
    _extension(w, arg, "EXT4", pos)


def _extension(w: PickleWalker, arg: Any, opcode: str, pos: int) -> None:
    # copyreg's extension registry maps a code to any global: what it names is not in the pickle
    w.reached = True
    ref = GlobalRef("<extension-registry>", f"code {int.from_bytes(arg, 'little')}", opcode, pos, "ambiguous")
    w.scan.globals.append(ref)
    w.stack.append(Global(ref))


# ------------------------------------------------------------------------------ calls
@handles("INST")
def _inst(w: PickleWalker, arg: Any, pos: int) -> None:
    module, name = _utf8_names(arg, "INST", pos)
    g = w.make_global(module, name, "INST", pos)  # the class is looked up (imported) before the MARK is popped
    args = w.pop_mark()
    w.called(g, "INST", pos)
    w.stack.append(Obj(g, tuple(args), opcode="INST"))


@handles("OBJ")
def _obj(w: PickleWalker, arg: Any, pos: int) -> None:
    items = w.pop_mark()
    if not items:
        raise Malformed("OBJ without a class")
    w.called(items[0], "OBJ", pos)
    w.stack.append(Obj(items[0], tuple(items[1:]), opcode="OBJ"))


@handles("REDUCE")
def _reduce(w: PickleWalker, arg: Any, pos: int) -> None:
    args = w.pop()
    fn = w.pop()
    w.called(fn, "REDUCE", pos)
    w.stack.append(Obj(fn, args, opcode="REDUCE"))


@handles("NEWOBJ")
def _newobj(w: PickleWalker, arg: Any, pos: int) -> None:
    args = w.pop()
    cls = w.pop()
    w.called(cls, "NEWOBJ", pos)
    w.stack.append(Obj(cls, args, opcode="NEWOBJ"))


@handles("NEWOBJ_EX")
def _newobj_ex(w: PickleWalker, arg: Any, pos: int) -> None:
    w.pop()
    args = w.pop()
    cls = w.pop()
    w.called(cls, "NEWOBJ_EX", pos)
    w.stack.append(Obj(cls, args, opcode="NEWOBJ_EX"))


@handles("PERSID")
def _persid(w: PickleWalker, arg: Any, pos: int) -> None:
    w.reached = True
    w.stack.append(Obj(OPAQUE, arg, opcode="PERSID"))


@handles("BINPERSID")
def _binpersid(w: PickleWalker, arg: Any, pos: int) -> None:
    w.reached = True
    w.stack.append(Obj(OPAQUE, w.pop(), opcode="BINPERSID"))


@handles("BUILD")
def _build(w: PickleWalker, arg: Any, pos: int) -> None:
    state = w.pop()
    obj = w.top()
    _flag_state_tricks(w, state, pos)
    if isinstance(obj, Obj):
        obj.builds += 1
        # a later BUILD (``__dict__`` update and slot ``setattr``) keeps what earlier ones set: the
        # attributes accumulate (a joblib wrapper built twice keeps the first BUILD's alignment)
        # and they are copied now, as the unpickler copies them: mutating the state dict afterwards
        # (a memo fetch and SETITEM) changes nothing already built
        work = [0]
        state = freeze(state, work)
        w.ctx.count_ops(work[0])  # copying is work: bounded with the opcodes
        obj.state = state if obj.builds == 1 or obj.state is None else merge_states(obj.state, state)
    if w.joblib_arrays:
        kind = joblib_arrays.wrapper_kind(obj)
        if kind == "wrapper":
            joblib_arrays.skip_joblib_array(w, obj, pos)
            # joblib replaces the wrapper on the stack with the array it read (the memo keeps the wrapper)
            w.stack[-1] = Obj(OPAQUE, None, opcode="joblib-array")
        elif kind == "maybe":
            ref = GlobalRef("<joblib>", "array wrapper built indirectly", "BUILD", pos, "ambiguous")
            w.scan.globals.append(ref)


def _flag_state_tricks(w: PickleWalker, state: Any, pos: int) -> None:
    """A BUILD state that changes what the object is or how it loads cannot be followed statically."""
    if isinstance(state, tuple) and len(state) == 2:
        slots = state[1]
        # setattr(obj, k, v) for the slot state: "__class__" there turns obj into another class
        # (e.g. into joblib's array wrapper, moving where joblib reads on)
        # (a slot state that is not a mapping makes the default setstate fail; a call result might be one)
        if (isinstance(slots, PickledDict) and (slots.opaque_keys or "__class__" in slots)) or maybe_mapping(slots):
            ref = GlobalRef("<build>", "__class__ assignment or unreadable slot state", "BUILD", pos, "ambiguous")
            w.scan.globals.append(ref)
    # a dunder attribute set by BUILD changes how the object behaves on load: an instance
    # ``__setstate__`` is called by the next BUILD instead of updating the attributes, a slot
    # ``__dict__`` replaces them all (the walker would track attributes joblib does not see)
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    if any(isinstance(p, PickledDict) and any(isinstance(k, str) and is_dunder(k) for k in p) for p in parts):
        ref = GlobalRef("<build>", "dunder attribute in a BUILD state", "BUILD", pos, "ambiguous")
        w.scan.globals.append(ref)
