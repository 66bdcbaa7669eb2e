"""Shared pieces of the dependency-audit adversarial suite: the real PyPA snapshot, the CLI, strategies."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import strategies as st
from packaging.version import Version

from airflow_aisec.cli import main
from airflow_aisec.core.osv import OsvDatabase
from tests.osv_helpers import snapshot_path


@pytest.fixture(scope="session")
def snapshot_zip() -> str:
    return str(snapshot_path())


@pytest.fixture(scope="session")
def snapshot_db(snapshot_zip: str) -> OsvDatabase:
    return OsvDatabase.load(snapshot_zip)


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    """``aisec <argv> --format json`` in process: (exit code, report)."""
    capsys.readouterr()
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


# ------------------------------------------------------------------------------------ strategies
_PRE = {"a": ["a", "alpha", "A", "Alpha"], "b": ["b", "beta", "B"], "rc": ["rc", "c", "pre", "preview", "RC"]}
_SEP = ["", ".", "-", "_"]


@st.composite
def version_spelling(draw: st.DrawFn, version: Version, *, add_local: bool = True) -> str:
    """A different spelling of ``version`` that PEP 440 says is the same version (optionally + a local label)."""
    out = draw(st.sampled_from(["", "", "v", "V"]))
    if version.epoch:
        out += f"{version.epoch}!"
    elif draw(st.booleans()):
        out += "0!"
    release = [*version.release] + [0] * draw(st.integers(0, 3))
    out += ".".join("0" * draw(st.integers(0, 2)) + str(n) for n in release)
    if version.pre is not None:
        letter, n = version.pre
        out += draw(st.sampled_from(_SEP)) + draw(st.sampled_from(_PRE[letter]))
        if n or draw(st.booleans()):
            out += draw(st.sampled_from(_SEP)) + str(n)
    if version.post is not None:
        n = version.post
        out += draw(
            st.sampled_from(
                [f".post{n}", f"-post{n}", f"post{n}", f"_post.{n}", f".rev{n}", f"r{n}", f"-{n}", f".POST{n}"]
            )
        )
    if version.dev is not None:
        out += draw(
            st.sampled_from([f".dev{version.dev}", f"dev{version.dev}", f"-dev.{version.dev}", f"_DEV{version.dev}"])
        )
    if version.local is not None:
        out += "+" + re.sub(r"\.", lambda _: draw(st.sampled_from([".", "-", "_"])), version.local)
    elif add_local and draw(st.integers(0, 3)) == 0:
        out += "+" + draw(st.from_regex(r"[a-z0-9]{1,6}(\.[a-z0-9]{1,4}){0,2}", fullmatch=True))
    if draw(st.booleans()):
        out = "".join(c.upper() if draw(st.booleans()) else c for c in out)
    assert Version(Version(out).public) == Version(version.public), (out, version)  # the strategy is honest
    return out


@st.composite
def name_spelling(draw: st.DrawFn, canonical: str) -> str:
    """A PEP 503-equivalent spelling of a canonical project name (case, runs of ``-_.``)."""
    parts = canonical.split("-")
    seps = [draw(st.from_regex(r"[-_.]{1,3}", fullmatch=True)) for _ in parts[1:]]
    out = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))
    return "".join(c.upper() if draw(st.booleans()) else c for c in out)
