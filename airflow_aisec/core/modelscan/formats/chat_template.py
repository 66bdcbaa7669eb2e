"""Chat templates (Jinja) shipped inside model files: parsed to an AST and walked, never rendered.

A loader that renders the template outside a sandbox runs whatever the template reaches: attribute walks
to ``__class__``/``__globals__``/``__subclasses__``, the globals of Jinja helpers (``cycler``, ``joiner``,
``lipsum``), ``str.format`` field lookups, ``attr`` filters with computed names, imports of other
templates. Those constructs are refused; ordinary templates (loops over messages, ``namespace``,
conditionals, string tests, ``raise_exception``) use none of them.
"""

from __future__ import annotations

from typing import Any

MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_TEMPLATE_NODES = 200_000

#: globals whose attributes reach Python internals (their ``__init__.__globals__``) or the template itself
_GADGET_NAMES = frozenset({"cycler", "joiner", "lipsum", "self", "config", "request", "url_for", "g", "session"})
#: attributes that walk to Python internals or run formatting field lookups
_RISKY_ATTRS = frozenset(
    {
        *("mro", "format", "format_map", "func_globals", "func_code", "f_globals", "f_locals", "f_back"),
        *("gi_frame", "gi_code", "cr_frame", "ag_frame", "tb_frame", "tb_next", "co_code", "im_func"),
        *("environment", "eval_ctx", "globals", "module", "modules", "builtins", "os", "popen", "system"),
        *("import_module", "subclasses", "from_string", "getattr"),
    }
)
#: filters that read attributes by a name given as an argument
_ATTRIBUTE_FILTERS = frozenset({"map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"})


def template_problems(source: str) -> tuple[list[str], str | None]:
    """``(problems, error)``: the refused constructs of a template, or why it could not be parsed."""
    import jinja2
    from jinja2 import nodes

    if len(source.encode("utf-8", "surrogatepass")) > MAX_TEMPLATE_BYTES:
        return [], f"chat template larger than {MAX_TEMPLATE_BYTES} bytes (bound)"
    env = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [], f"chat template does not parse as Jinja (line {exc.lineno}: {exc.message})"
    except RecursionError:
        return [], "chat template nested too deeply to parse"
    problems: list[str] = []
    stack: list[Any] = [tree]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_TEMPLATE_NODES:
            return problems, f"chat template has more than {MAX_TEMPLATE_NODES} nodes (bound)"
        problem = _judge(node, nodes)
        if problem and problem not in problems:
            problems.append(problem)
        stack.extend(node.iter_child_nodes())
    return problems, None


def _judge(node: Any, nodes: Any) -> str | None:
    """One node: a reason to refuse it, or None."""
    if isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
        return f"{type(node).__name__.lower()} of another template"
    if isinstance(node, nodes.Getattr):
        return _attr_problem(node.attr)
    if isinstance(node, nodes.Getitem):
        return _key_problem(node.arg, nodes)
    if isinstance(node, nodes.Name) and node.name in _GADGET_NAMES:
        return f"reference to the {node.name!r} global (its attributes reach Python internals)"
    if isinstance(node, nodes.Const) and isinstance(node.value, str) and "__" in node.value:
        return f"string constant with a dunder name ({node.value[:40]!r})"
    if isinstance(node, nodes.Mul) and any(_underscore_const(x, nodes) for x in (node.left, node.right)):
        return "underscores built by string repetition"
    if isinstance(node, nodes.Filter):
        if node.name == "attr":
            return "attr filter (reads any attribute by name)"
        if node.name in _ATTRIBUTE_FILTERS:
            for kw in node.kwargs:
                if kw.key == "attribute" and not _safe_name_const(kw.value, nodes):
                    return f"{node.name} filter with a computed or private attribute name"
    return None


def _attr_problem(attr: str) -> str | None:
    if attr.startswith("_"):
        return f"attribute walk to {attr!r}"
    if attr in _RISKY_ATTRS:
        return f"access to the {attr!r} attribute"
    return None


def _key_problem(arg: Any, nodes: Any) -> str | None:
    """``x[key]`` falls back to ``getattr`` in Jinja: a private constant or a key built from strings is refused."""
    if isinstance(arg, nodes.Const):
        if isinstance(arg.value, str):
            return _attr_problem(arg.value)
        return None
    for sub in [arg, *arg.find_all(nodes.Node)]:
        if isinstance(sub, (nodes.Concat, nodes.Filter, nodes.Call, nodes.Mod)) or (
            isinstance(sub, nodes.Const) and isinstance(sub.value, str)
        ):
            return "item lookup with a key built from strings (falls back to attribute access)"
    return None


def _underscore_const(node: Any, nodes: Any) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str) and set(node.value) <= {"_"}


def _safe_name_const(node: Any, nodes: Any) -> bool:
    return (
        isinstance(node, nodes.Const)
        and isinstance(node.value, str)
        and all(_attr_problem(p) is None for p in node.value.split("."))
    )
