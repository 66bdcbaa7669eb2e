"""The GitHub action's logic (``scripts/ci_action.py``) on a tiny repository: SARIF files, exit codes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.osv_helpers import snapshot_path
from tests.sarif_helpers import assert_valid_sarif
from tests.secrets_helpers import fake_tokens

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ci_action.py"


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture
def project(tmp_path):
    tokens = fake_tokens()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "settings.py").write_text(f'KEY = "{tokens["openai"]}"\n')
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pkl").write_bytes(pickle.dumps(_Evil()))
    (tmp_path / "requirements.txt").write_text("requests==2.19.0\n")
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "ok.py").write_text("x = 1\n")
    return tmp_path, tokens


def _action(cwd, *args, env=None):
    e = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT", "AISEC_OSV_DB")}
    e.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=600
    )
    return proc


def _sarif(path: Path) -> dict:
    log = json.loads(path.read_text())
    assert_valid_sarif(log)
    return log


def test_all_checks_write_valid_sarif_and_fail(project):
    root, tokens = project
    proc = _action(
        root,
        "--checks",
        "secrets,scan-model,audit",
        "--paths",
        "src",
        "--model-paths",
        "models",
        "--requirements",
        "requirements.txt",
        "--osv-db",
        str(snapshot_path()),
        "--output-dir",
        "out",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(p.name for p in (root / "out").iterdir()) == ["audit.sarif", "scan-model.sarif", "secrets.sarif"]
    rules = {}
    for name in ("secrets", "scan-model", "audit"):
        text = (root / "out" / f"{name}.sarif").read_text()
        assert tokens["openai"] not in text
        run = _sarif(root / "out" / f"{name}.sarif")["runs"][0]
        assert run["results"], name
        rules[name] = run["automationDetails"]["id"]
    assert len(set(rules.values())) == 3  # one code-scanning category per check
    assert tokens["openai"] not in proc.stdout + proc.stderr


def test_fail_on_threshold_and_never(project):
    root, _ = project
    # the secret is a vendor-format token (high): fail-on critical lets it through, the SARIF still lists it
    assert _action(root, "--paths", "src", "--fail-on", "critical", "--output-dir", "o1").returncode == 0
    assert _sarif(root / "o1" / "secrets.sarif")["runs"][0]["results"]
    assert _action(root, "--paths", "src", "--fail-on", "high", "--output-dir", "o2").returncode == 1
    assert _action(root, "--paths", "src", "--fail-on", "never", "--output-dir", "o3").returncode == 0
    assert _action(root, "--paths", "clean", "--output-dir", "o4").returncode == 0


def test_errors_exit_2_even_with_fail_on_never(project):
    root, _ = project
    proc = _action(
        root, "--checks", "audit", "--requirements", "requirements.txt", "--osv-db", "missing.zip", "--fail-on", "never"
    )
    assert proc.returncode == 2
    run = _sarif(root / "aisec-sarif" / "audit.sarif")["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is False
    assert _action(root, "--checks", "secrets,lint").returncode == 2
    assert _action(root, "--paths", "does-not-exist").returncode == 2


def test_defer_exit_leaves_the_verdict_for_the_action(project):
    root, _ = project
    out = root / "gh-output"
    proc = _action(root, "--paths", "src", "--defer-exit", env={"GITHUB_OUTPUT": str(out)})
    assert proc.returncode == 0
    assert out.read_text().splitlines() == ["sarif-dir=aisec-sarif", "exit-code=1"]
    # without GITHUB_OUTPUT there is nowhere to leave it: the exit code carries it
    assert _action(root, "--paths", "src", "--defer-exit").returncode == 1


def test_action_yml_runs_the_script_and_fails_on_its_verdict():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    assert {"checks", "paths", "osv-db", "fail-on"} <= set(action["inputs"])
    steps = action["runs"]["steps"]
    run_step = next(s for s in steps if s.get("id") == "run")
    assert "scripts/ci_action.py" in run_step["run"] and "--defer-exit" in run_step["run"]
    assert "${{" not in run_step["run"]  # inputs reach the shell only through the environment
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in steps)
    assert steps[-1]["run"] == 'exit "${AISEC_EXIT:-2}"'
