"""Verify-before-load: one read, digest and scan over those bytes, load from them, nothing executed.

Every hostile case asserts the exact outcome (exception type and message) and that the sentinel a
malicious pickle would create does not exist (nothing was unpickled/executed).
"""

from __future__ import annotations

import builtins
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import model_loading as ml
from airflow_aisec.core import modelscan
from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError, AisecUndecidableError


@pytest.fixture(scope="module")
def benign(tmp_path_factory) -> tuple[Path, bytes, object]:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    path = tmp_path_factory.mktemp("benign") / "model.joblib"
    joblib.dump(model, path)
    return path, path.read_bytes(), model


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- hostile payloads
def _reducer(fn, args):
    class Payload:
        def __reduce__(self):
            return (fn, args)

    return Payload()


def malicious_pickle(sentinel: Path, how: str, protocol: int, wrap: str) -> bytes:
    code = f"open({str(sentinel)!r}, 'w').close()"
    payload = {
        "os.system": lambda: _reducer(os.system, (f"touch '{sentinel}'",)),
        "builtins.exec": lambda: _reducer(builtins.exec, (code,)),
        "builtins.eval": lambda: _reducer(builtins.eval, (code,)),
        "io.open": lambda: _reducer(io.open, (str(sentinel), "w")),
    }[how]()
    blob = pickle.dumps({"model": [1.0, 2.0], "hook": payload}, protocol=protocol)
    if wrap == "gzip":
        return gzip.compress(blob)
    if wrap == "bz2":
        return bz2.compress(blob)
    if wrap == "xz":
        return lzma.compress(blob)
    if wrap == "zlib":
        return zlib.compress(blob)
    if wrap == "after-benign":
        return pickle.dumps([1, 2, 3], protocol=protocol) + blob
    return blob


def _short(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


HOWS = st.sampled_from(["os.system", "builtins.exec", "builtins.eval", "io.open"])
WRAPS = st.sampled_from(["plain", "gzip", "bz2", "xz", "zlib", "after-benign"])


@settings(max_examples=60)
@given(how=HOWS, protocol=st.integers(0, 5), wrap=WRAPS)
def test_malicious_pickle_with_valid_digest_is_refused_by_the_scan(tmp_path_factory, how, protocol, wrap):
    d = tmp_path_factory.mktemp("evil")
    sentinel = d / "PWNED"
    path = d / "model.pkl"
    data = malicious_pickle(sentinel, how, protocol, wrap)
    path.write_bytes(data)
    if wrap == "after-benign":
        # joblib/pickle read only the first (benign) pickle of the stream; whether the scan refuses the
        # trailing one or not, the loader must never get past the first STOP
        try:
            loaded = ml.load_verified_model(path, expected_digest=sha(data)).model
        except AisecCheckFailed:
            loaded = "refused"
        assert loaded in ([1, 2, 3], "refused")
    else:
        with pytest.raises(AisecCheckFailed, match=r"did not pass the model scan \(unsafe\)") as exc:
            ml.load_verified_model(path, expected_digest=sha(data))
        assert exc.value.report.status == "fail"
        assert {f.severity for f in exc.value.report.findings} >= {"critical"}
    assert not sentinel.exists()


@settings(max_examples=40)
@given(
    data=st.binary(min_size=1, max_size=256),
    flip=st.integers(0, 10_000),
    mode=st.sampled_from(["flip", "append", "truncate"]),
)
def test_digest_mismatch_is_a_fail_and_nothing_is_loaded(tmp_path_factory, benign, data, flip, mode):
    path, good, _ = benign
    if mode == "flip":
        i = flip % len(good)
        tampered = good[:i] + bytes([good[i] ^ (data[0] | 1)]) + good[i + 1 :]
    elif mode == "append":
        tampered = good + data
    else:
        tampered = good[: flip % len(good)]
    d = tmp_path_factory.mktemp("tampered")
    target = d / "model.joblib"
    target.write_bytes(tampered)
    loads: list[int] = []
    original = ml._restricted_load
    try:
        ml._restricted_load = lambda *a, **k: loads.append(1)  # type: ignore[assignment]
        with pytest.raises(AisecCheckFailed, match="digest mismatch: refusing to load") as exc:
            ml.load_verified_model(target, expected_digest=sha(good))
    finally:
        ml._restricted_load = original  # type: ignore[assignment]
    report = exc.value.report
    assert report.status == "fail"
    assert report.findings[0].id == ml.F_DIGEST
    assert report.findings[0].details["actual"] == sha(tampered)
    assert loads == []


# ----------------------------------------------------------------------------- swap window
SWAP_POINTS = ("after-read", "during-scan", "before-unpickle")


def _install_swap(monkeypatch, point: str, path: Path, replacement: bytes) -> list[str]:
    fired: list[str] = []

    def swap() -> None:
        tmp = path.with_name(path.name + ".swap")
        tmp.write_bytes(replacement)
        os.replace(tmp, path)
        fired.append(point)

    if point == "after-read":
        real_read = ml.read_regular_file

        def read_then_swap(p, **kw):
            data = real_read(p, **kw)
            if os.fspath(p) == os.fspath(path):
                swap()
            return data

        monkeypatch.setattr(ml, "read_regular_file", read_then_swap)
    elif point == "during-scan":
        real_scan = modelscan.scan_bytes

        def scan_then_swap(*a, **kw):
            swap()
            return real_scan(*a, **kw)

        monkeypatch.setattr(modelscan, "scan_bytes", scan_then_swap)
    else:
        real_load = ml._restricted_load

        def swap_then_load(*a, **kw):
            swap()
            return real_load(*a, **kw)

        monkeypatch.setattr(ml, "_restricted_load", swap_then_load)
    return fired


@settings(max_examples=36)
@given(point=st.sampled_from(SWAP_POINTS), how=HOWS, protocol=st.integers(2, 5), wrap=WRAPS)
def test_file_swapped_after_verification_never_reaches_the_loader(tmp_path_factory, benign, point, how, protocol, wrap):
    src, good, model = benign
    d = tmp_path_factory.mktemp("swap")
    path = d / "model.joblib"
    path.write_bytes(good)
    sentinel = d / "PWNED"
    evil = malicious_pickle(sentinel, how, protocol, wrap)
    with pytest.MonkeyPatch.context() as mp:
        fired = _install_swap(mp, point, path, evil)
        result = ml.load_verified_model(path, expected_digest=sha(good))
    assert fired == [point]  # the swap really happened inside the window
    assert path.read_bytes() == evil
    assert result.sha256 == sha(good)
    assert type(result.model) is type(model)
    assert (result.model.coef_ == model.coef_).all()
    assert not sentinel.exists()


def test_the_model_path_is_opened_exactly_once(benign, monkeypatch):
    """The loader never goes back to the path: one open, every later step works on the bytes."""
    path, good, _ = benign
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(p, *a, **k):
        opened.append(os.fspath(p))
        return real_os_open(p, *a, **k)

    def spy_open(p, *a, **k):
        if isinstance(p, (str, os.PathLike)):
            opened.append(os.fspath(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    result = ml.load_verified_model(path, expected_digest=sha(good))
    monkeypatch.undo()
    assert [p for p in opened if os.path.basename(p) == path.name] == [os.fspath(path)]
    assert result.sha256 == sha(good)


# ----------------------------------------------------------------------------- scanner/loader disagreement
def test_global_the_scan_never_saw_stops_the_loader(tmp_path, monkeypatch):
    """If the scan misses a global (a blind spot), the restricted loader refuses it before importing."""
    sentinel = tmp_path / "PWNED"
    data = malicious_pickle(sentinel, "os.system", 4, "plain")
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    blind = modelscan.FileScan(location=str(path), format="pickle", size=len(data), sha256=sha(data))
    monkeypatch.setattr(modelscan, "scan_bytes", lambda *a, **k: blind)
    with pytest.raises(AisecUndecidableError, match=r"loader met (posix|os)\.system which the scan did not approve"):
        ml.load_verified_model(path, expected_digest=sha(data))
    assert not sentinel.exists()


def test_scan_of_other_bytes_is_refused(tmp_path, monkeypatch, benign):
    _, good, _ = benign
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    other = modelscan.FileScan(location=str(path), format="pickle", size=1, sha256="0" * 64)
    monkeypatch.setattr(modelscan, "scan_bytes", lambda *a, **k: other)
    with pytest.raises(AisecUndecidableError, match="scan saw other bytes"):
        ml.load_verified_model(path, expected_digest=sha(good))


@pytest.mark.parametrize(
    "target", ["os.system", "subprocess.getoutput", "gzip.GzipFile", "tempfile.NamedTemporaryFile"]
)
def test_allowlisted_reexport_resolving_elsewhere_is_refused(tmp_path, monkeypatch, target):
    """An allowlisted ``pkg.name`` that is really another package's object (a re-export) is refused."""
    pkg = tmp_path / "aisec_reexport_pkg"
    pkg.mkdir()
    mod, name = target.rsplit(".", 1)
    (pkg / "__init__.py").write_text(f"from {mod} import {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sentinel = tmp_path / "PWNED"
    data = b"\x80\x04" + _short("aisec_reexport_pkg") + _short(name) + b"\x93" + _short(f"touch {sentinel}") + b"\x85R."
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with pytest.raises(AisecUndecidableError, match=rf"aisec_reexport_pkg\.{name} \(resolves to "):
        ml.load_verified_model(path, expected_digest=sha(data), allow=[f"aisec_reexport_pkg.{name}"])
    assert not sentinel.exists()
    sys.modules.pop("aisec_reexport_pkg", None)


def test_not_a_pickle_is_never_handed_to_the_unpickler(tmp_path):
    """Formats the loader does not load (npy, zip, GGUF, nothing) are refused.

    A file the C unpickler accepts (``I0x1\\n.``) is a pickle to the scan as well: it is walked, found
    harmless (an int) and may load; what matters is that scan and loader agree on what it is.
    """
    for name in ("text.joblib", "text.bin"):
        path = tmp_path / name
        path.write_bytes(b"I0x1\n.")
        assert modelscan.scan_bytes(b"I0x1\n.", name=name).format == "pickle"
        assert ml.load_verified_model(path, expected_digest=sha(b"I0x1\n.")).model == 1
    for name, data in {
        "npy.pkl": b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"
        + b" " * 50
        + b"\n"
        + b"\x00" * 8,
        "zip.joblib": b"PK\x05\x06" + b"\x00" * 18,
        "empty.pkl": b"",
        "gguf.bin": b"GGUF" + b"\x00" * 60,
    }.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(AisecCheckFailed, match="did not pass the model scan"):
            ml.load_verified_model(path, expected_digest=sha(data))


# ----------------------------------------------------------------------------- evidence
def test_missing_digest_fails_closed_unless_opted_out(benign):
    path, good, model = benign
    with pytest.raises(AisecInputError, match="expected SHA-256 .* is required"):
        ml.load_verified_model(path)
    result = ml.load_verified_model(path, require_digest=False)
    assert result.evidence == "none (opted out)"
    assert result.sha256 == sha(good)


@settings(max_examples=40)
@given(bad=st.one_of(st.text(max_size=70), st.sampled_from(["sha1:" + "a" * 40, "a" * 63, "g" * 64, " "])))
def test_malformed_expected_digest_is_an_input_error(benign, bad):
    path, _, _ = benign
    if not bad:
        with pytest.raises(AisecInputError, match="is required"):
            ml.load_verified_model(path, expected_digest=bad)
        return
    with pytest.raises(AisecInputError, match="must be a SHA-256|is required"):
        ml.load_verified_model(path, expected_digest=bad)


def test_ambiguous_or_disagreeing_manifest_is_refused(benign, tmp_path):
    path, good, _ = benign
    m = tmp_path / "m.json"
    m.write_text(
        json.dumps(
            {"files": [{"path": "a/model.joblib", "sha256": sha(good)}, {"path": "b/model.joblib", "sha256": "1" * 64}]}
        )
    )
    with pytest.raises(AisecInputError, match="2 different digests .* ambiguous"):
        ml.load_verified_model(path, manifest_path=m)
    m.write_text('{"files": {"model.joblib": "DIGEST", "model.joblib": "DIGEST"}}'.replace("DIGEST", sha(good)))
    with pytest.raises(AisecInputError, match="duplicate"):
        ml.load_verified_model(path, manifest_path=m)
    m.write_text(json.dumps({"files": {"model.joblib": sha(good)}}))
    with pytest.raises(AisecInputError, match="disagree"):
        ml.load_verified_model(path, manifest_path=m, expected_digest="2" * 64)
    assert ml.load_verified_model(path, manifest_path=m).evidence == "manifest"


def test_signed_manifest(benign, tmp_path):
    from airflow_aisec.core.signing import generate_ed25519_keypair, load_signing_key, sign

    path, good, _ = benign
    priv, pub = tmp_path / "k", tmp_path / "k.pub"
    generate_ed25519_keypair(priv, pub)
    manifest = tmp_path / "m.json"
    manifest.write_bytes(b'{"files": {"model.joblib": "%s"}}' % sha(good).encode())
    sig = tmp_path / "m.json.sig"

    sig.write_text(json.dumps(sign(manifest.read_bytes(), load_signing_key(priv))))
    ok = ml.load_verified_model(path, manifest_path=manifest, signature_path=sig, verify_key=pub)
    assert ok.evidence == "signed-manifest"
    with pytest.raises(AisecInputError, match="needs both signature_path and verify_key"):
        ml.load_verified_model(path, manifest_path=manifest, signature_path=sig)
    manifest.write_bytes(b'{"files": {"model.joblib": "%s"} }' % sha(good).encode())  # one byte changed
    with pytest.raises(AisecCheckFailed, match="signature invalid") as exc:
        ml.load_verified_model(path, manifest_path=manifest, signature_path=sig, verify_key=pub)
    assert exc.value.report.findings[0].id == ml.F_SIGNATURE


# ----------------------------------------------------------------------------- what is read
def test_special_files_symlinks_and_size_are_refused(benign, tmp_path):
    path, good, _ = benign
    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)
    with pytest.raises(AisecInputError, match="not a regular file"):
        ml.load_verified_model(fifo, expected_digest=sha(good))  # must not block
    with pytest.raises(AisecInputError, match="not a regular file"):
        ml.load_verified_model(tmp_path, expected_digest=sha(good))
    link = tmp_path / "link.joblib"
    link.symlink_to(path)
    with pytest.raises(AisecInputError, match="is a symlink"):
        ml.load_verified_model(link, expected_digest=sha(good))
    assert ml.load_verified_model(link, expected_digest=sha(good), follow_symlinks=True).sha256 == sha(good)
    dev = tmp_path / "zero.pkl"
    dev.symlink_to("/dev/zero")
    with pytest.raises(AisecInputError, match="not a regular file"):
        ml.load_verified_model(dev, expected_digest=sha(good), follow_symlinks=True)
    with pytest.raises(AisecInputError, match=f"more than the limit of {len(good) - 1}"):
        ml.load_verified_model(path, expected_digest=sha(good), max_bytes=len(good) - 1)
    with pytest.raises(AisecInputError, match="unreadable"):
        ml.load_verified_model(tmp_path / "missing.pkl", expected_digest=sha(good))


# ----------------------------------------------------------------------------- generated manifests
_GOOD = "good"
_NAMES = st.sampled_from(
    ["model.joblib", "a/model.joblib", "b/c/model.joblib", "model.joblib.bak", "other.pkl", "MODEL.JOBLIB"]
)
_VALUES = st.one_of(
    st.sampled_from([_GOOD, "sha256:" + _GOOD, "other", "bad", None, 7, [], {"sha256": _GOOD}, {"sha256": "other"}]),
    st.builds(lambda v: {"sha256": v}, st.sampled_from([_GOOD, "other", "bad", None, 1.5])),
)


def _materialise(value, good: str):
    other = "ab" * 32
    table = {_GOOD: good, "sha256:" + _GOOD: "sha256:" + good.upper(), "other": other, "bad": "xyz"}
    if isinstance(value, dict):
        return {
            "sha256": table.get(value["sha256"], value["sha256"])
            if isinstance(value["sha256"], str)
            else value["sha256"]
        }
    return table.get(value, value) if isinstance(value, str) else value


@settings(max_examples=80)
@given(entries=st.lists(st.tuples(_NAMES, _VALUES), max_size=4), as_list=st.booleans())
def test_generated_manifests_load_only_an_unambiguous_matching_digest(tmp_path_factory, benign, entries, as_list):
    path, good, _ = benign
    digest = sha(good)
    if as_list:
        files = [
            {"path": n, **(_materialise(v, digest) if isinstance(v, dict) else {"sha256": _materialise(v, digest)})}
            for n, v in entries
        ]
        pairs = [(f["path"], f.get("sha256")) for f in files]
    else:
        files = {}
        for n, v in entries:
            files[n] = _materialise(v, digest)
        pairs = [(n, v.get("sha256") if isinstance(v, dict) else v) for n, v in files.items()]
    d = tmp_path_factory.mktemp("manifest")
    manifest = d / "manifest.json"
    manifest.write_text(json.dumps({"files": files}))
    matching = [v for n, v in pairs if n.rsplit("/", 1)[-1] == "model.joblib"]
    valid = {
        v.removeprefix("sha256:").lower()
        for v in matching
        if isinstance(v, str) and len(v.removeprefix("sha256:")) == 64
    }
    malformed = any(not (isinstance(v, str) and len(v.removeprefix("sha256:")) == 64) for v in matching)
    if not matching:
        with pytest.raises(AisecInputError, match="no sha256"):
            ml.load_verified_model(path, manifest_path=manifest)
    elif malformed:
        with pytest.raises(AisecInputError, match="must be a SHA-256"):
            ml.load_verified_model(path, manifest_path=manifest)
    elif len(valid) > 1:
        with pytest.raises(AisecInputError, match="ambiguous"):
            ml.load_verified_model(path, manifest_path=manifest)
    elif valid != {digest}:
        with pytest.raises(AisecCheckFailed, match="digest mismatch"):
            ml.load_verified_model(path, manifest_path=manifest)
    else:
        assert ml.load_verified_model(path, manifest_path=manifest).evidence == "manifest"


def _blinded_scan(monkeypatch) -> None:
    """Make the scan miss every non-safe global (a scanner blind spot): only the loader stands."""
    real = modelscan.scan_bytes

    def strip(scan):
        scan.globals = [g for g in scan.globals if g.verdict == "safe"]
        scan.errors = []
        for member in scan.members:
            strip(member)

    def blinded(*a, **k):
        scan = real(*a, **k)
        strip(scan)
        return scan

    monkeypatch.setattr(modelscan, "scan_bytes", blinded)


@pytest.mark.parametrize("routed", [True, False])
def test_nested_pickle_of_an_object_array_is_restricted_too(tmp_path, monkeypatch, routed):
    import joblib
    import numpy as np

    sentinel = tmp_path / "PWNED"
    arr = np.empty(2, dtype=object)
    arr[0] = 1
    arr[1] = _reducer(os.system, (f"touch '{sentinel}'",))
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": np.arange(4.0), "objects": arr}, path)
    data = path.read_bytes()
    _blinded_scan(monkeypatch)
    monkeypatch.setattr(ml, "_joblib_routes_nested_find_class", lambda: routed)
    expected = r"loader met (posix|os)\.system which" if routed else "loader met an object array"
    with pytest.raises(AisecUndecidableError, match=expected):
        ml.load_verified_model(path, expected_digest=sha(data))
    assert not sentinel.exists()


def test_file_growing_past_the_limit_while_read_is_refused(benign, monkeypatch):
    path, good, _ = benign
    real_fstat = os.fstat

    def small_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10, *st[7:10]))

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(AisecInputError, match="grew beyond the limit of 100 bytes"):
        ml.load_verified_model(path, expected_digest=sha(good), max_bytes=100)


def test_dotted_attribute_path_global_is_refused_even_if_allowlisted(tmp_path, monkeypatch):
    data = b"\x80\x04" + _short("collections") + _short("OrderedDict.fromkeys") + b"\x93]\x94K\x01a\x85R."
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    with pytest.raises(AisecCheckFailed, match="did not pass the model scan"):  # the scan refuses it ...
        ml.load_verified_model(path, expected_digest=sha(data), allow=["collections.OrderedDict.*"])
    blind = modelscan.FileScan(location=str(path), format="pickle", size=len(data), sha256=sha(data))
    monkeypatch.setattr(modelscan, "scan_bytes", lambda *a, **k: blind)
    with pytest.raises(AisecUndecidableError, match=r"loader met collections\.OrderedDict\.fromkeys which"):
        ml.load_verified_model(
            path, expected_digest=sha(data), allow=["collections.OrderedDict.*"]
        )  # ... and so would the loader


def test_persistent_id_is_refused(tmp_path, monkeypatch):
    data = b"\x80\x04" + _short("anything") + b"Q."  # BINPERSID: the loader has no persistent store
    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    blind = modelscan.FileScan(location=str(path), format="pickle", size=len(data), sha256=sha(data))
    monkeypatch.setattr(modelscan, "scan_bytes", lambda *a, **k: blind)
    with pytest.raises(AisecUndecidableError, match="loader met persistent id which"):
        ml.load_verified_model(path, expected_digest=sha(data))
