"""The pre-commit hooks of ``.pre-commit-hooks.yaml``, run by pre-commit itself on throwaway repositories.

The hooks use ``language: unsupported``: pre-commit builds no environment and runs the ``aisec`` of
``PATH`` (here this virtualenv's), so the test is offline. ``PRE_COMMIT_HOME`` is a temporary directory.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.osv_helpers import snapshot_path
from tests.secrets_helpers import commit_all, fake_tokens, git, make_repo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path):
    if shutil.which("pre-commit", path=str(BIN)) is None or not (BIN / "aisec").exists():
        pytest.fail("pre-commit and aisec must be installed in the test environment (dev dependencies)")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    e.update(
        {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
            "PIP_NO_INDEX": "1",
            "AISEC_OSV_DB": str(snapshot_path()),
        }
    )
    return e


@pytest.fixture
def hook_repo(tmp_path):
    """A committed repository holding this project's hooks file, as users reference it by ``rev``."""
    repo = make_repo(tmp_path / "hooks")
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", repo / ".pre-commit-hooks.yaml")
    return repo, commit_all(repo, "hooks")


def _run(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def _try(work, env, hook_repo, hook, *files):
    repo, rev = hook_repo
    return _run(["pre-commit", "try-repo", str(repo), hook, "--ref", rev, "--files", *files], work, env)


def test_commit_with_a_token_is_blocked_and_a_clean_one_passes(tmp_path, env, hook_repo):
    repo, rev = hook_repo
    tokens = fake_tokens()
    work = make_repo(tmp_path / "work")
    (work / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {repo}\n  rev: {rev}\n  hooks:\n  - id: aisec-secrets\n"
    )
    (work / "README.md").write_text("# project\n")
    assert _run(["pre-commit", "install"], work, env).returncode == 0
    git(work, "add", "-A")
    clean = _run(["git", "commit", "-q", "-m", "clean"], work, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (work / "config.py").write_text(f'HF_TOKEN = "{tokens["hf"]}"\n')
    git(work, "add", "config.py")
    blocked = _run(["git", "commit", "-q", "-m", "leak"], work, env)
    assert blocked.returncode != 0
    assert "AISEC-SECRET" in blocked.stdout + blocked.stderr
    assert tokens["hf"] not in blocked.stdout + blocked.stderr
    assert git(work, "log", "--format=%s") == "clean"


def test_staged_content_decides_not_the_working_tree(tmp_path, env, hook_repo):
    tokens = fake_tokens()
    work = make_repo(tmp_path / "work")
    (work / "a.py").write_text("x = 1\n")
    (work / "b.py").write_text("y = 2\n")
    commit_all(work, "initial")
    # a token only in the working tree (not staged): not reported
    (work / "a.py").write_text(f'x = "{tokens["openai"]}"\n')
    only_tree = _try(work, env, hook_repo, "aisec-secrets", "a.py", "b.py")
    assert only_tree.returncode == 0, only_tree.stdout
    # a token staged, then removed from the working tree: reported
    (work / "b.py").write_text(f'y = "{tokens["aws"]}"\n')
    git(work, "add", "b.py")
    (work / "b.py").write_text("y = 2\n")
    staged = _try(work, env, hook_repo, "aisec-secrets", "a.py", "b.py")
    assert staged.returncode != 0
    assert "b.py:1" in staged.stdout and "a.py" not in staged.stdout.split("AISEC-SECRET", 1)[1]
    assert tokens["aws"] not in staged.stdout + staged.stderr


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def test_model_and_requirements_hooks(tmp_path, env, hook_repo):
    work = make_repo(tmp_path / "work")
    (work / "model.pkl").write_bytes(pickle.dumps(_Evil()))
    (work / "requirements.txt").write_text("requests==2.19.0\n")
    (work / "safe-requirements.txt").write_text("requests==2.32.3\n")
    git(work, "add", "-A")
    model = _try(work, env, hook_repo, "aisec-scan-model", "model.pkl")
    assert model.returncode != 0 and "AISEC-MODEL-DANGEROUS-GLOBAL" in model.stdout
    audit = _try(work, env, hook_repo, "aisec-audit-requirements", "requirements.txt")
    assert audit.returncode != 0 and "requests" in audit.stdout
    clean = _try(work, env, hook_repo, "aisec-audit-requirements", "safe-requirements.txt")
    assert clean.returncode == 0, clean.stdout
