"""Default thread counts follow the CPUs a process may use (affinity, cgroup quota), not the host's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from airflow_aisec.utils.cpus import available_cpus, cgroup_cpu_quota


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("files", "quota"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu.max": "50000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu.max": "garbage here\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quotas_v2_and_v1(tmp_path, files, quota):
    for name, text in files.items():
        _write(tmp_path / name, text)
    assert cgroup_cpu_quota(str(tmp_path)) == quota


def test_a_quota_caps_the_affinity_and_rounds_up(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert available_cpus(str(tmp_path)) == 4
    _write(tmp_path / "cpu.max", "150000 100000")
    assert available_cpus(str(tmp_path)) == 2
    _write(tmp_path / "cpu.max", "1000 100000")  # a tenth of a CPU: still one thread
    assert available_cpus(str(tmp_path)) == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_a_process_pinned_to_one_cpu_uses_one_thread():
    """A worker slot pinned to one CPU: drift and hashing default to one thread (os.cpu_count() says more)."""
    code = (
        "import os, json; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from airflow_aisec.utils.cpus import available_cpus; from airflow_aisec.core import drift, hashing;"
        "seen = set(); import threading;"
        "drift._map(lambda x: seen.add(threading.current_thread().name), ['a', 'b', 'c'], None);"
        "print(json.dumps([available_cpus(), hashing.default_workers(), os.cpu_count(), sorted(seen)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    cpus, hash_workers, host, threads = json.loads(out)
    assert host >= 2 and cpus == hash_workers == 1
    assert threads == ["MainThread"]  # no pool of threads time-sliced on the one CPU
