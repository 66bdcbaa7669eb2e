"""``aisec manifest merge`` and ``aisec hash --partition``: exit codes and outputs."""

from __future__ import annotations

import json

from airflow_aisec.cli import main


def test_partition_hash_then_merge_signed(tmp_path, capsys):
    root = tmp_path / "d"
    (root / "s").mkdir(parents=True)
    (root / "s" / "a").write_bytes(b"a" * 5000)
    (root / "b").write_bytes(b"b")
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    parts = [str(tmp_path / f"p{k}.json") for k in (1, 2)]
    for k, p in enumerate(parts, 1):
        assert main(["hash", str(root), "--partition", f"{k}/2", "-o", p]) == 0
    out = tmp_path / "m.json"
    capsys.readouterr()
    assert main(["manifest", "merge", *parts, "-o", str(out), "--sign-key", str(priv), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["details"]["signature_path"] == f"{out}.sig"
    assert {k: report["metrics"][k] for k in ("files", "bytes", "parts")} == {"files": 2, "bytes": 5001, "parts": 2}
    assert main(["verify", str(root), "--manifest", str(out), "--public-key", str(pub)]) == 0
    assert main(["manifest", "merge", parts[0], "-o", str(tmp_path / "m2.json")]) == 2
    assert "missing partition(s) 2/2" in capsys.readouterr().err
    assert main(["manifest"]) == 2  # an action is required
