"""Docs cannot drift from the example DAGs: every snippet in docs/*.md is the DAG text between its markers.

A DAG marks the recipe with ``# [START <name>]`` / ``# [END <name>]`` lines; a page includes it as an
HTML comment ``<!-- snippet: dags/<file>.py <name> -->`` followed by a fenced ``python`` block holding
the marked lines, dedented. After changing a recipe, run ``scripts/sync_doc_snippets.py`` (or paste its new marked text into the page).
"""

from __future__ import annotations

import re
import textwrap

import pytest

from tests.conftest import DAGS_FOLDER, REPO_ROOT

DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
INCLUDE = re.compile(r"<!-- snippet: (?P<path>\S+) (?P<name>\S+) -->\n```python\n(?P<body>.*?)^```$", re.S | re.M)
MARKER = re.compile(r"^[ \t]*# \[(?P<kind>START|END) (?P<name>aisec_\w+)\][ \t]*$", re.M)


def marked(path, name: str) -> str:
    """The dedented text between ``# [START name]`` and ``# [END name]`` in ``path``."""
    text = path.read_text()
    found = re.search(rf"^[ \t]*# \[START {name}\]\n(.*?)^[ \t]*# \[END {name}\][ \t]*$", text, re.S | re.M)
    assert found, f"{path.name} has no [START {name}] ... [END {name}] markers"
    return textwrap.dedent(found.group(1))


def includes() -> list[tuple[str, str, str, str]]:
    return [(doc.name, m["path"], m["name"], m["body"]) for doc in DOCS for m in INCLUDE.finditer(doc.read_text())]


@pytest.mark.parametrize(("doc", "path", "name", "body"), includes(), ids=lambda v: v if "\n" not in v else "")
def test_docs_snippet_equals_the_dag_text(doc, path, name, body):
    assert body == marked(REPO_ROOT / path, name), f"docs/{doc}: snippet {name} differs from {path}"


def test_every_example_dag_has_one_marked_recipe_included_in_the_docs():
    included = {(path, name) for _, path, name, _ in includes()}
    for dag_file in sorted(DAGS_FOLDER.glob("aisec_*.py")):
        markers = [(m["kind"], m["name"]) for m in MARKER.finditer(dag_file.read_text())]
        assert markers == [("START", dag_file.stem), ("END", dag_file.stem)], f"{dag_file.name}: {markers}"
        assert (f"dags/{dag_file.name}", dag_file.stem) in included, f"no page includes {dag_file.name}"


def test_a_changed_recipe_is_detected(tmp_path):
    """The comparison is exact: one changed character in the DAG no longer matches the page."""
    doc, path, name, body = includes()[0]
    changed = tmp_path / "dag.py"
    text = (REPO_ROOT / path).read_text()
    start = text.index(f"# [START {name}]")
    changed.write_text(text[:start] + text[start:].replace("task_id=", "task_id =", 1))
    assert marked(changed, name) != body
