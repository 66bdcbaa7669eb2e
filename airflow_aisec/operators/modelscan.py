"""Scan model artifacts for embedded code before anything loads them (never unpickles)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelArtifactScanOperator(AisecBaseOperator):
    """Scan model files for code (pickle globals) with a default-deny allowlist; fail on anything unsafe.

    Formats are recognised by content: pickle (protocols 0–5), joblib, PyTorch zip checkpoints, numpy
    ``.npy``/``.npz`` (object arrays), zip archives, gzip/bz2/xz-compressed files; safetensors files are
    validated structurally; Keras ``.keras``/``.h5``, ONNX and GGUF are parsed (the ``formats`` extra).
    Nothing is ever loaded or unpickled. The task fails (no retry) when a file references a
    known-dangerous or non-allowlisted global, holds a Lambda layer, custom object, custom ONNX
    operator domain, escaping external data or a chat-template gadget, or holds a format the scan does
    not inspect (non-Keras HDF5, unknown binary), and fails as
    ``error`` when a file is malformed or truncated. Outlet assets receive ``status``, ``files`` and
    ``sha256`` (per file) as event metadata.

    :param paths: model file(s) or directories (walked recursively). (templated)
    :param allow: extra allowed globals: ``module.name`` or globs such as ``mypkg.models.*``. Known-
        dangerous globals stay denied. (templated)
    :param force_allow: exact globals allowed even though they are on the dangerous list (use sparingly).
    :param fail_on_unknown_format: a file of a format the scan does not inspect (non-Keras HDF5, unknown
        binary) is a finding (default ``True``: default-deny); ``False`` reports every such file as info.
    :param allow_formats: uninspected formats accepted explicitly (``gguf``, ``hdf5``, ``keras``, ``unknown``),
        reported as info.
    """

    aisec_check = "model_scan"
    lineage_inputs = ("paths",)
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "paths", "allow")
    ui_color = "#fde2e4"

    def __init__(
        self,
        *,
        paths: str | Sequence[str],
        allow: Sequence[str] = (),
        force_allow: Sequence[str] = (),
        fail_on_unknown_format: bool = True,
        allow_formats: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not paths:
            raise ValueError("ModelArtifactScanOperator needs `paths` (a file or directory)")
        if isinstance(allow, str) or isinstance(force_allow, str):
            raise TypeError("`allow` and `force_allow` take a list of MODULE.NAME entries, not a string")
        self.paths = paths
        self.allow = list(allow)
        self.force_allow = list(force_allow)
        self.fail_on_unknown_format = fail_on_unknown_format
        if isinstance(allow_formats, str):
            raise TypeError("`allow_formats` takes a list of format names, not a string")
        self.allow_formats = list(allow_formats)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.modelscan import scan_paths

        paths = [self.paths] if isinstance(self.paths, str) else list(self.paths)
        report = self.run_check(
            context,
            subject=", ".join(paths),
            check=lambda: scan_paths(
                paths,
                allow=self.allow,
                force_allow=self.force_allow,
                fail_on_unknown_format=self.fail_on_unknown_format,
                allow_formats=self.allow_formats,
            ),
        )
        files = report.get("details", {}).get("files", [])
        self.emit_asset_events(
            context,
            {
                "check": "model_scan",
                "status": report["status"],
                "files": len(files),
                "sha256": {f["location"]: f.get("sha256", "") for f in files[:50]},
            },
        )
        return report
