"""``aisec scan-model``: exit 0 safe, 1 unsafe, 2 malformed; nothing executed."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from airflow_aisec.cli import main


class _Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_scan_model_exit_codes(tmp_path, capsys):
    sentinel = tmp_path / "PWNED"
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload(sentinel)))
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"w": list(range(30))}, protocol=4)[:-3])

    assert main(["scan-model", str(tmp_path / "ok.pkl")]) == 0
    assert "[PASS] model_scan" in capsys.readouterr().out

    assert main(["scan-model", str(tmp_path / "ok.pkl"), str(tmp_path / "evil.pkl"), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "fail"
    assert data["findings"][0]["severity"] == "critical"

    assert main(["scan-model", str(tmp_path / "cut.pkl")]) == 2
    assert "AISEC-MODEL-MALFORMED" in capsys.readouterr().out
    assert not sentinel.exists()


def test_scan_model_allow_and_bad_input(tmp_path, capsys):
    payload = b"\x80\x04\x8c\x0bmypkg.layer\x8c\x05Dense\x93)\x81."
    (tmp_path / "m.pkl").write_bytes(payload)
    assert main(["scan-model", str(tmp_path / "m.pkl")]) == 1
    assert main(["scan-model", str(tmp_path / "m.pkl"), "--allow", "mypkg.layer.Dense"]) == 0
    capsys.readouterr()
    assert main(["scan-model", str(tmp_path / "missing.pkl")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["scan-model"], ["scan-model", "x", "--format", "yaml"]])
def test_scan_model_usage_errors(argv, capsys):
    assert main(argv) == 2
    assert "usage" in capsys.readouterr().err
