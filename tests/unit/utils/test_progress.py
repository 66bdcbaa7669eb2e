"""utils.progress: steady-interval progress lines (done/total, rate, ETA) and the terminal bar."""

from __future__ import annotations

import io
import logging

import pytest

from airflow_aisec.utils.progress import RECORD_ATTRIBUTE, Progress, install_tty_bar


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def test_logs_at_the_interval_only_with_rate_and_eta(clock, caplog):
    log = logging.getLogger("airflow_aisec.test_progress")
    caplog.set_level(logging.INFO, logger=log.name)
    p = Progress("scanning history", 1000, unit="commits", logger=log, interval=10.0, clock=clock)
    for _ in range(9):
        clock.now += 1
        p.advance(10)
    assert caplog.records == []  # 9 s: nothing yet, never one line per item
    clock.now += 1
    p.advance(10)  # 10 s, 100 of 1000 done: 10/s, 900 left -> 90 s
    assert [r.getMessage() for r in caplog.records] == [
        "scanning history: 100/1000 commits (10%), 10.0 commits/s, ETA 1m30s"
    ]
    assert getattr(caplog.records[0], RECORD_ATTRIBUTE) == ("scanning history", 100, 1000, False)
    clock.now += 5
    p.advance(100)
    assert len(caplog.records) == 1  # 5 s after the last line: still quiet
    clock.now += 5
    p.finish()
    assert caplog.records[-1].getMessage() == "scanning history: 200/1000 commits (20%), 10.0 commits/s, done in 20s"


def test_bytes_are_shown_in_mib_and_unknown_totals_have_no_eta(clock):
    p = Progress("hashing model", 100 * 2**20, unit="MiB", scale=2**20, clock=clock)
    clock.now += 4
    assert p.line(25 * 2**20, clock.now) == "hashing model: 25.0/100.0 MiB (25%), 6.2 MiB/s, ETA 12s"
    q = Progress("reading rows", None, unit="rows", clock=clock)
    assert q.line(500, clock.now + 2) == "reading rows: 500 rows, 250.0 rows/s"


def test_finish_can_stay_quiet_for_short_runs(clock, caplog):
    log = logging.getLogger("airflow_aisec.test_progress")
    caplog.set_level(logging.INFO, logger=log.name)
    p = Progress("x", 10, logger=log, clock=clock)
    clock.now += 0.5
    p.finish(min_elapsed=2.0)
    assert caplog.records == []


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_bar_only_on_a_tty_and_in_text_format(clock):
    assert install_tty_bar("text", io.StringIO()) is None  # not a terminal
    assert install_tty_bar("json", Tty()) is None
    assert install_tty_bar("sarif", Tty()) is None
    stream = Tty()
    handler = install_tty_bar("text", stream)
    assert handler is not None
    try:
        logging.getLogger("airflow_aisec.core").info("an ordinary line")  # not progress: not drawn
        p = Progress("hashing m", 4, unit="files", interval=0.0, clock=clock)
        clock.now += 1
        p.advance(2)
        out = stream.getvalue()
        assert "ordinary" not in out
        assert out.startswith("\r\033[K[" + "#" * 15 + "-" * 15 + "] hashing m: 2/4 files (50%)")
        p.finish()
        assert stream.getvalue().endswith("\n")
    finally:
        logging.getLogger("airflow_aisec").removeHandler(handler)


def test_hashing_reports_progress_through_the_helper(tmp_path, caplog, monkeypatch):
    from airflow_aisec.core import hashing

    monkeypatch.setattr(hashing, "PROGRESS_INTERVAL_SECONDS", 0.0)
    f = tmp_path / "f"
    f.write_bytes(b"z" * (3 * hashing.CHUNK_SIZE))
    caplog.set_level("INFO", logger=hashing.__name__)
    hashing.build_manifest(f)
    lines = [r.getMessage() for r in caplog.records if hasattr(r, RECORD_ATTRIBUTE)]
    assert lines and all(line.startswith("hashing ") and "MiB/s" in line for line in lines)
    assert any("ETA" in line for line in lines)


@pytest.fixture
def every_step(monkeypatch):
    """Progress lines at every step (interval 0) so a small input shows them."""
    from airflow_aisec.utils import progress

    monkeypatch.setattr(progress, "DEFAULT_INTERVAL_SECONDS", 0.0)


def _progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if hasattr(r, RECORD_ATTRIBUTE)]


def test_secrets_history_reports_commits_without_leaking_secrets(tmp_path, caplog, every_step):
    from airflow_aisec.core.secrets import scan_secrets
    from tests.secrets_helpers import fake_tokens, repo_with_deleted_secret

    token = fake_tokens()["hf"]
    repo, _ = repo_with_deleted_secret(tmp_path / "repo", token)
    caplog.set_level(logging.INFO, logger="airflow_aisec")
    scan_secrets(repo, history=True)
    lines = _progress_lines(caplog)
    assert lines and lines[-1].startswith("secrets scan: git history: ") and " commits (100%)" in lines[-1]
    assert not any(token in r.getMessage() or str(tmp_path) in r.getMessage() for r in caplog.records)


def test_drift_and_profile_build_report_columns(tmp_path, caplog, every_step):
    from airflow_aisec.core.drift import run_drift
    from airflow_aisec.core.drift_profile import build_profile

    data = tmp_path / "d.csv"
    data.write_text("a,b,c\n" + "".join(f"{i},{i % 3},{i * 2}\n" for i in range(50)), encoding="utf-8")
    caplog.set_level(logging.INFO, logger="airflow_aisec")
    build_profile(str(data))
    assert "profile build: columns: 3/3 columns (100%)" in "\n".join(_progress_lines(caplog))
    caplog.clear()
    run_drift(str(data), reference=str(data))
    assert "drift: testing columns: 3/3 columns (100%)" in "\n".join(_progress_lines(caplog))


def test_model_scan_reports_files(tmp_path, caplog, every_step):
    import pickle

    from airflow_aisec.core.modelscan import scan_paths

    for name in ("a.pkl", "b.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps({"w": [1, 2]}))
    caplog.set_level(logging.INFO, logger="airflow_aisec")
    scan_paths([str(tmp_path)])
    assert "model scan: files: 2/2 files (100%)" in "\n".join(_progress_lines(caplog))
