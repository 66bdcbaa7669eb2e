"""Paste each example DAG's marked recipe into the docs pages that include it (``<!-- snippet: … -->``).

.venv/bin/python scripts/sync_doc_snippets.py          # rewrite docs/*.md in place
.venv/bin/python scripts/sync_doc_snippets.py --check  # exit 1 when a page differs (what the test asserts)
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"(<!-- snippet: (?P<path>\S+) (?P<name>\S+) -->\n```python\n)(?P<body>.*?)^```$", re.S | re.M)


def marked(path: Path, name: str) -> str:
    text = path.read_text()
    found = re.search(rf"^[ \t]*# \[START {name}\]\n(.*?)^[ \t]*# \[END {name}\][ \t]*$", text, re.S | re.M)
    if not found:
        raise SystemExit(f"{path}: no [START {name}] ... [END {name}] markers")
    return textwrap.dedent(found.group(1))


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        new = INCLUDE.sub(lambda m: m.group(1) + marked(ROOT / m["path"], m["name"]) + "```", text)
        if new != text:
            stale.append(doc.name)
            if not check:
                doc.write_text(new)
    print(("stale: " if check else "updated: ") + (", ".join(stale) or "none"))
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
