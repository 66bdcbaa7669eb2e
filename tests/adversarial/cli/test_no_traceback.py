"""No traceback ever reaches a user: an exception anywhere inside any subcommand is an ``error`` report, exit 2.

The exception is injected *inside* each subcommand: every function of every ``airflow_aisec.core``
module raises it, so the test exercises the real code path of each command rather than a stub (the
command has parsed its arguments and started its work), and a command that swallows one failure
meets the next.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import airflow_aisec.core
from airflow_aisec.cli import COMMAND_CHECKS, build_parser, main
from tests.image_helpers import Image, file, oci_files, write_tar

INJECTED = (RuntimeError, KeyError, MemoryError, RecursionError, OSError, UnicodeDecodeError, AssertionError)


def _make(exc_type: type[BaseException]) -> BaseException:
    if exc_type is UnicodeDecodeError:
        return UnicodeDecodeError("utf-8", b"\xff", 0, 1, "injected")
    return exc_type("injected\n[PASS] forged line")


def _argv(tmp: Path) -> dict[str, list[str]]:
    data = tmp / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    req = tmp / "requirements.txt"
    req.write_text("requests==2.32.3\n")
    log = tmp / "inference.jsonl"
    log.write_text('{"ts": "2026-01-01T00:00:00Z", "client": "a", "latency_ms": 1, "status": 200}\n')
    policy = tmp / "policy.json"
    policy.write_text('{"Version": "2012-10-17", "Statement": []}')
    model = tmp / "model.pkl"
    model.write_bytes(b"\x80\x04K\x01.")
    (tmp / "repo").mkdir()
    partial = tmp / "part-1.drift.json"
    partial.write_text("{}")
    image = write_tar(oci_files(Image(layers=[[file("app/m.pkl", b"\x80\x04K\x01.")]])), tmp / "image.tar")
    osv = Path(__file__).resolve().parents[3] / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"
    return {
        "audit": ["audit", "-r", str(req), "--osv-db", str(osv), "--format", "json"],
        "osv-sync": ["osv-sync", "--source", str(osv), "--dest", str(tmp / "osv"), "--format", "json"],
        "secrets": ["secrets", str(tmp / "repo"), "--format", "json"],
        "scan-model": ["scan-model", str(model), "--format", "json"],
        "hash": ["hash", str(model), "--format", "json"],
        "verify": ["verify", str(model), "--digest", "0" * 64, "--format", "json"],
        "keygen": ["keygen", str(tmp / "k.pem"), str(tmp / "k.pub")],
        "manifest": ["manifest", "merge", str(tmp / "part-1.json"), "-o", str(tmp / "m.json"), "--format", "json"],
        "provenance": ["provenance", str(data), "--allow-source", str(tmp), "--digest", "0" * 64, "--format", "json"],
        "profile": ["profile", "build", str(data), "-o", str(tmp / "ref.prof"), "--format", "json"],
        "drift": ["drift", str(data), "--reference", str(data), "--format", "json"],
        "drift-merge": ["drift", "merge", str(partial), "--format", "json"],
        "inference-audit": ["inference-audit", str(log), "--format", "json"],
        "inference-reference": ["inference-reference", str(data), "--output", str(tmp / "ref.json")],
        "load-test": ["load-test", "http://127.0.0.1:9/predict", "--requests", "1", "--format", "json"],
        "s3-posture": ["s3-posture", "some-bucket", "--endpoint-url", "http://127.0.0.1:9", "--format", "json"],
        "iam-lint": ["iam-lint", str(policy), "--format", "json"],
        "cloudwatch-alarms": ["cloudwatch-alarms", "--namespace", "Test/AISec", "--format", "json"],
        "scan-image": ["scan-image", str(image), "--osv-db", str(osv), "--format", "json"],
        "robustness": [
            *("robustness", str(model), str(data), "--label", "b", "--digest", "0" * 64),
            *("--min-robust-accuracy", "0.5", "--format", "json"),
        ],
        "performance-estimate": [
            *("performance-estimate", "--reference", str(data), "--current", str(data)),
            *("--proba-columns", "a", "--label", "b", "--format", "json"),
        ],
    }


def _inject(monkeypatch: pytest.MonkeyPatch, exc: BaseException, fired: list[str]) -> None:
    """Make every function defined in an ``airflow_aisec.core`` module (packages included) raise ``exc``."""
    # import every module first, then patch: a module imported after another was patched would bind
    # the raisers by ``from … import`` for good, and break every later test in the session
    names = [info.name for info in pkgutil.walk_packages(airflow_aisec.core.__path__, prefix="airflow_aisec.core.")]
    for module in [importlib.import_module(name) for name in names]:
        for name, value in list(vars(module).items()):
            # functions defined here, and those a package re-exports (callers import them from the package)
            if inspect.isfunction(value) and value.__module__.startswith("airflow_aisec.core"):
                monkeypatch.setattr(module, name, _raiser(exc, f"{module.__name__}.{name}", fired))


def _raiser(exc: BaseException, where: str, fired: list[str]) -> Callable[..., Any]:
    def raiser(*args: Any, **kwargs: Any) -> Any:
        fired.append(where)
        raise exc

    return raiser


def test_every_subcommand_is_covered(tmp_path: Path) -> None:
    """A new subcommand must be added here (and to COMMAND_CHECKS) to be covered by the injection test."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMAND_CHECKS) == set(_argv(tmp_path))


@pytest.mark.parametrize("exc_type", INJECTED, ids=lambda t: t.__name__)
@pytest.mark.parametrize("command", sorted(COMMAND_CHECKS))
def test_injected_exception_is_an_error_report_exit_2(
    command: str,
    exc_type: type[BaseException],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    argv = _argv(tmp_path)[command]
    fired: list[str] = []
    _inject(monkeypatch, _make(exc_type), fired)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert fired, f"'aisec {command}' never called into airflow_aisec.core: the injection did not happen"
    assert rc == 2, (command, fired, out, err)
    assert "Traceback" not in out + err
    assert "\n[PASS]" not in out + err, "an exception message forged an output line"
    assert exc_type.__name__ in err
    if "--format" in argv:
        report = json.loads(out)
        assert report["status"] == "error"
        assert report["check"] == COMMAND_CHECKS[command]
        assert exc_type.__name__ in report["summary"]
    else:
        assert "[ERROR]" in out


def test_output_of_a_hostile_name_cannot_forge_a_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "m.pkl\n[PASS] model_scan all clean\x1b[2K\r"
    path = tmp_path / name
    path.write_bytes(b"\x80\x04K\x01.")
    rc = main(["verify", str(path), "--digest", "0" * 64])
    out, _ = capsys.readouterr()
    assert rc in (1, 2)
    assert all(not line.startswith("[PASS]") for line in out.splitlines())
    assert "\x1b" not in out and "\r" not in out
