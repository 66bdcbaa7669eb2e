"""Any change to a valid manifest is an error, a failure, or has no effect on what is verified."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import hashing, integrity
from airflow_aisec.exceptions import AisecError
from tests.adversarial.strategies import json_values

JSON_VALUES = json_values(int_bound=2**70, width=3, leaves=6)
FIELDS = ["schema", "algorithm", "kind", "file_count", "total_bytes", "root_digest", "entries", "directories"]
ENTRY_FIELDS = ["path", "type", "size", "digest", "link", "extra"]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("fz") / "model"
    (root / "sub").mkdir(parents=True)
    (root / "w.bin").write_bytes(b"weights")
    (root / "sub" / "c.json").write_bytes(b"{}")
    (root / "ln").symlink_to("w.bin")
    return root, hashing.build_manifest(root)


def _semantics(doc):
    return (doc["kind"], sorted(map(json.dumps, doc["entries"])), sorted(doc["directories"] or []))


@settings(max_examples=150)
@given(st.data(), JSON_VALUES, st.booleans())
def test_mutated_manifests_never_pass_for_something_else(tmp_path_factory, artifact, data, value, recompute):
    root, manifest = artifact
    doc = copy.deepcopy(manifest)
    if data.draw(st.booleans()):
        doc[data.draw(st.sampled_from(FIELDS))] = value
    else:
        entry = doc["entries"][data.draw(st.integers(0, len(doc["entries"]) - 1))]
        entry[data.draw(st.sampled_from(ENTRY_FIELDS))] = value
    if recompute:  # an attacker without the key can always make the root digest consistent
        try:
            doc["root_digest"] = hashing.root_digest(
                doc["entries"], "sha256", directories=doc["directories"], kind=doc["kind"]
            )
        except Exception:  # the mutation broke the structure itself
            pass
    path = tmp_path_factory.mktemp("m") / "m.json"
    path.write_text(json.dumps(doc))
    try:
        report = integrity.verify_artifact(root, manifest_path=path)
    except AisecError:
        return  # error, exit 2
    if report.status == "pass":
        assert _semantics(hashing.parse_manifest(path.read_bytes())) == _semantics(manifest)
    else:
        assert report.status in ("fail", "error")
