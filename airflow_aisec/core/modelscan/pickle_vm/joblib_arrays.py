"""joblib's array data: after a ``NumpyArrayWrapper`` is built, joblib reads the array from the file
itself (raw bytes, or a nested pickle for object arrays). The walker skips or walks those bytes exactly
as ``NumpyArrayWrapper.read`` does, so no opcode a loader reaches is hidden in "array data"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_aisec.core.modelscan.context import Malformed
from airflow_aisec.core.modelscan.pickle_vm.values import (
    INSTANCE_MAKERS,
    OPAQUE,
    WRAPPER,
    Obj,
    PickledDict,
    global_name,
    literal_dict,
)

if TYPE_CHECKING:
    from airflow_aisec.core.modelscan.pickle_vm.walker import PickleWalker


def wrapper_kind(obj: Any) -> str:
    """``wrapper`` if joblib would see a ``NumpyArrayWrapper`` instance here, ``maybe`` if the wrapper
    class was handed to another callable (cannot tell), else ``no``."""
    if not isinstance(obj, Obj):
        return "no"
    fn = global_name(obj.callable)
    if fn == WRAPPER:
        return "wrapper"
    args = obj.args if isinstance(obj.args, tuple) else ()
    if any(global_name(a) == WRAPPER for a in args):
        return "wrapper" if fn in INSTANCE_MAKERS and global_name(args[0]) == WRAPPER else "maybe"
    return "no"


def skip_joblib_array(w: PickleWalker, wrapper: Obj, pos: int) -> None:
    """Skip (plain dtype) or walk (object dtype) the array data joblib reads after this BUILD,
    exactly as ``NumpyArrayWrapper.read`` does."""
    w.scan.joblib_arrays += 1
    attrs = _wrapper_attrs(wrapper)
    if attrs is None:
        raise Malformed(f"joblib NumpyArrayWrapper at byte {pos} has no readable state", certain=False)
    shape = attrs.get("shape", OPAQUE)
    if not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
        raise Malformed(f"joblib array at byte {pos}: shape is not a tuple of integers", certain=False)
    if any(not -(2**63) <= d < 2**63 for d in shape):
        raise Malformed(f"joblib array at byte {pos}: a dimension does not fit int64")
    itemsize, hasobject = _dtype_layout(attrs.get("dtype", OPAQUE))
    if itemsize is None:
        raise Malformed(f"joblib array at byte {pos}: cannot determine its dtype statically", certain=False)
    in_frame = w.frame_end is not None and w.pos <= w.frame_end
    cursor = w.file_pos if in_frame else w.pos  # where joblib's file handle stands
    if hasobject:
        cursor = _walk_object_array(w, cursor, pos)
    else:
        cursor = _skip_plain_array(w, cursor, pos, attrs, shape, itemsize)
    if in_frame:
        w.file_pos = cursor
    else:
        w.pos = cursor


def _walk_object_array(w: PickleWalker, cursor: int, pos: int) -> int:
    # joblib calls plain pickle.load(file) here: a nested pickle with no array skipping of its own
    nested = w.nested(cursor)
    cursor = nested.walk()
    if nested.stop_frame_end > cursor:
        # STOP inside a frame: joblib's nested unpickler read the whole frame, the outer one
        # goes on after it (the walker must not read the frame's rest as outer opcodes)
        w.scan.errors.append(
            f"object array at byte {pos}: {nested.stop_frame_end - cursor} byte(s) after its STOP "
            "inside the frame (never read by a loader)"
        )
        cursor = nested.stop_frame_end
    w.reached = w.reached or nested.reached
    return cursor


def _skip_plain_array(
    w: PickleWalker, cursor: int, pos: int, attrs: dict[str, Any], shape: tuple[int, ...], itemsize: int
) -> int:
    if itemsize <= 0:
        raise Malformed(f"joblib array at byte {pos}: dtype itemsize {itemsize} (joblib divides by it)")
    if attrs.get("numpy_array_alignment_bytes") is not None:
        w.need(cursor, 1, "joblib array padding byte")
        pad = w.buf[cursor]
        cursor += 1
        w.need(cursor, pad, "joblib array padding")
        cursor += pad
    count = 1
    for d in shape:
        count *= d
    if not -(2**63) <= count < 2**63 or count < 0:
        raise Malformed(f"joblib array at byte {pos}: element count does not fit int64 or is negative")
    w.need(cursor, count * itemsize, "joblib array data")
    return cursor + count * itemsize


def _wrapper_attrs(wrapper: Obj) -> dict[str, Any] | None:
    """Instance attributes of a wrapper after its BUILD(s): ``__init__`` defaults (when it was called
    as ``NumpyArrayWrapper(...)``), then the dict state, then the slot state."""
    attrs: dict[str, Any] = {}
    if wrapper.opcode in ("REDUCE", "OBJ", "INST") and global_name(wrapper.callable) == WRAPPER:
        args = wrapper.args if isinstance(wrapper.args, tuple) else None
        if args is None:
            return None
        # OBJ/INST without arguments make the instance with ``cls.__new__`` only (pickle's
        # ``_instantiate``): no ``__init__``, no defaults (joblib then reads no padding byte)
        if args or wrapper.opcode == "REDUCE":
            names = ("subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes")
            attrs.update({"allow_mmap": False, "numpy_array_alignment_bytes": 16})
            attrs.update(dict(zip(names, args, strict=False)))
    state = wrapper.state
    slots: Any = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    for part in (state, slots):
        if part is None:
            continue
        if not isinstance(part, PickledDict) or part.opaque_keys:
            return None
        attrs.update(part)
    return attrs


def _dtype_layout(dtype: Any) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a pickled ``numpy.dtype(...)`` call, as numpy itself computes them.

    The dtype is rebuilt with numpy from literal parts only (``numpy.dtype(code, align, copy)`` and its
    ``__setstate__`` state, exactly the calls unpickling makes), including structured and subarray
    dtypes whose fields are themselves such dtypes. Anything else: ``(None, False)``."""
    try:
        d = _rebuild_dtype(dtype, 0, {})
    except Exception:
        return None, False
    if d is None:
        return None, False
    return int(d.itemsize), bool(d.hasobject)


def _rebuild_dtype(obj: Any, depth: int, cache: dict[int, Any]) -> Any:
    if id(obj) in cache:
        return cache[id(obj)]
    if depth > 16 or len(cache) > 10_000:
        return None
    if not isinstance(obj, Obj) or global_name(obj.callable) != "numpy.dtype" or obj.builds > 1:
        return None
    args = obj.args
    if not (
        isinstance(args, tuple)
        and 1 <= len(args) <= 3
        and isinstance(args[0], str)
        and all(isinstance(a, bool) for a in args[1:])
    ):
        return None
    import numpy

    d = numpy.dtype(*args)
    if obj.state is not None:
        new_state = _dtype_state(obj.state, depth, cache)
        if new_state is None:
            return None
        d.__setstate__(new_state)  # type: ignore[attr-defined]
    cache[id(obj)] = d
    return d


def _dtype_state(state: Any, depth: int, cache: dict[int, Any]) -> tuple[Any, ...] | None:
    """The ``dtype.__setstate__`` argument rebuilt from literal parts (nested dtypes rebuilt too)."""
    if not (isinstance(state, tuple) and len(state) in (8, 9)):
        return None
    ver, order, sub, names, fields, elsize, align, flags = state[:8]
    meta = state[8] if len(state) == 9 else None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (ver, elsize, align, flags)):
        return None
    if not isinstance(order, str) or not (meta is None or literal_dict(meta)):
        return None
    if sub is not None:
        if not (isinstance(sub, tuple) and len(sub) == 2 and isinstance(sub[1], tuple)):
            return None
        base = _rebuild_dtype(sub[0], depth + 1, cache)
        if base is None or not all(isinstance(x, int) for x in sub[1]):
            return None
        sub = (base, sub[1])
    if names is not None and not (isinstance(names, tuple) and all(isinstance(n, str) for n in names)):
        return None
    if fields is not None:
        fields = _dtype_fields(fields, depth, cache)
        if fields is None:
            return None
    return (ver, order, sub, names, fields, elsize, align, flags) + (
        (dict(meta),) if len(state) == 9 and meta is not None else ((None,) if len(state) == 9 else ())
    )


def _dtype_fields(fields: Any, depth: int, cache: dict[int, Any]) -> dict[str, Any] | None:
    if not isinstance(fields, PickledDict) or fields.opaque_keys:
        return None
    rebuilt = {}
    for key, value in fields.items():
        if not (isinstance(key, str) and isinstance(value, tuple) and 2 <= len(value) <= 3):
            return None
        fd = _rebuild_dtype(value[0], depth + 1, cache)
        if (
            fd is None
            or not isinstance(value[1], int)
            or (len(value) == 3 and not isinstance(value[2], (str, type(None))))
        ):
            return None
        rebuilt[key] = (fd, *value[1:])
    return rebuilt
