"""The symbolic values on the walker's stack and memo: literals are kept, everything else is a token.

Nothing here is ever imported or called: a :class:`Global` names what an unpickler would import, an
:class:`Obj` stands for the (never computed) result of a call, :data:`OPAQUE` for a value the walker
does not track.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.modelscan import _allowlist
from airflow_aisec.core.modelscan.context import Malformed
from airflow_aisec.core.modelscan.policy import SAFE_GLOBALS, normalize_global
from airflow_aisec.core.modelscan.results import GlobalRef


@dataclass(eq=False)
class Global:
    ref: GlobalRef | None  # None: unresolvable


@dataclass(eq=False)
class Obj:
    """The (never computed) result of a call."""

    callable: Any
    args: Any = None
    state: Any = None
    opcode: str = ""
    builds: int = 0


class Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = Opaque()


class PickledDict(dict):  # type: ignore[type-arg]
    """A dict built by the pickle; ``opaque_keys`` when some key was not a literal (cannot be named)."""

    opaque_keys = False


SCALARS = (str, bytes, int, float, bool, type(None))
WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
#: callables that return an instance of the class they are given (``f(cls, …)`` → ``cls`` instance)
INSTANCE_MAKERS = frozenset({"copyreg._reconstructor"}) | frozenset(
    g for g in SAFE_GLOBALS if g.endswith(".newObj") or ".__pyx_unpickle_" in g
)


def global_name(obj: Any) -> str | None:
    if isinstance(obj, Global) and obj.ref is not None:
        return ".".join(normalize_global(obj.ref.module, obj.ref.name))
    return None


def describe(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Obj):
        inner = value.callable
        if isinstance(inner, Global) and inner.ref is not None:
            return f"<result of {inner.ref.qualname}>"
        return "<result of a call>"
    if isinstance(value, Global):
        return f"<global {value.ref.qualname if value.ref else '?'}>"
    return f"<{type(value).__name__}>"


def set_pairs(d: PickledDict, items: list[Any]) -> None:
    if len(items) % 2:
        raise Malformed("odd number of items for a dict")
    for k, v in zip(items[::2], items[1::2], strict=True):
        if isinstance(k, SCALARS):
            d[k] = v
        else:
            d.opaque_keys = True


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def literal_dict(value: Any) -> bool:
    return (
        isinstance(value, PickledDict) and not value.opaque_keys and all(isinstance(v, SCALARS) for v in value.values())
    )


# ------------------------------------------------------------------------------ BUILD states
def freeze(value: Any, work: list[int], depth: int = 0) -> Any:
    """A copy of the dicts/lists/tuples of a BUILD state as they are now (results of calls are kept:
    they are objects whose own state was copied when they were built). ``work`` counts copied items."""
    if depth > 8:
        return OPAQUE
    if isinstance(value, PickledDict):
        work[0] += len(value)
        out = PickledDict((k, freeze(v, work, depth + 1)) for k, v in value.items())
        out.opaque_keys = value.opaque_keys
        return out
    if isinstance(value, (list, tuple)):
        work[0] += len(value)
        items = [freeze(v, work, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def state_attrs(state: Any) -> PickledDict | None:
    """The attributes a default ``BUILD`` sets from ``state`` (dict part, then slot part); None if unknown."""
    parts = state if isinstance(state, tuple) and len(state) == 2 else (state,)
    attrs = PickledDict()
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, PickledDict):
            return None
        attrs.update(part)
        attrs.opaque_keys = attrs.opaque_keys or part.opaque_keys
    return attrs


def merge_states(old: Any, new: Any) -> Any:
    """Instance attributes after a further BUILD: earlier ones kept, updated by the new state."""
    before, after = state_attrs(old), state_attrs(new)
    merged = PickledDict()
    if before is None or after is None:
        merged.opaque_keys = True  # cannot be named: whoever reads these attributes gives up
        return merged
    merged.update(before)
    merged.update(after)
    merged.opaque_keys = before.opaque_keys or after.opaque_keys
    return merged


def maybe_mapping(value: Any) -> bool:
    """Could this (never computed) value be a mapping whose keys the walker does not know?"""
    if isinstance(value, Opaque):
        return True
    if not isinstance(value, Obj):
        return False
    fn = global_name(value.callable)
    if fn in INSTANCE_MAKERS and isinstance(value.args, tuple) and value.args:
        fn = global_name(value.args[0])
    return fn is None or fn in _allowlist.MAPPING_TYPES or fn not in SAFE_GLOBALS
