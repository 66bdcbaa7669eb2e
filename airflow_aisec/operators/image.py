"""Container image scan operator: a ``docker save`` tarball or OCI image read as files, no Docker engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

_POLICIES = ("error", "warn")
_FAIL_ON = ("critical", "high", "medium", "low")


class ContainerImageScanOperator(AisecBaseOperator):
    """Scan a container image for vulnerable Python packages, secrets, unsafe model files and risky configuration.

    The image is read as files — a ``docker save`` tarball, an OCI image layout directory or an OCI
    archive, local or in object storage — so workers need no Docker engine. Every digest is checked;
    the layers are applied in order with their whiteouts; nothing is extracted and no link is
    followed. The task fails (no retry) on findings at or above ``fail_on``, and fails as ``error``
    when the image cannot be fully inspected (malformed archive, digest mismatch, no vulnerability
    database, files too large to scan or OS packages, unless accepted by policy). Outlet assets
    receive ``status``, ``config_digest``, ``vulnerable_packages`` and ``secrets_found``.

    :param image: the image archive or layout directory; a local path or an object-storage URI
        (``s3://…``, read through ``storage_conn_id``). (templated)
    :param storage_conn_id: Airflow connection for an object-storage ``image`` URI.
    :param osv_db: offline OSV database (zip or directory); default: the ``[aisec] osv_db`` option (or the
        deprecated ``AISEC_OSV_DB`` environment variable). (templated)
    :param ref: which image of a multi-image archive (repo tag or OCI ref name). (templated)
    :param platform: ``os/arch[/variant]`` of a multi-platform index. (templated)
    :param fail_on: lowest finding severity that fails: ``critical``, ``high``, ``medium`` (default) or ``low``.
    :param unscanned: files too large to scan: ``error`` (default) or ``warn``.
    :param os_packages: OS packages, which cannot be audited offline: ``error`` (default) or ``warn``.
    :param allow_formats: uninspected model formats accepted as info (``gguf``, ``hdf5``, ``keras``, ``unknown``).
    :param max_file_bytes: files above this are not scanned (reported as unscanned).
    """

    aisec_check = "image_scan"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "image", "osv_db", "ref", "platform")
    ui_color = "#e3f2fd"
    subject_attributes = ("image",)

    def __init__(
        self,
        *,
        image: str,
        storage_conn_id: str | None = None,
        osv_db: str | None = None,
        ref: str | None = None,
        platform: str | None = None,
        fail_on: str = "medium",
        unscanned: str = "error",
        os_packages: str = "error",
        allow_formats: Sequence[str] = (),
        max_file_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not image:
            raise ValueError("ContainerImageScanOperator needs `image` (an archive or OCI layout directory)")
        if fail_on not in _FAIL_ON:
            raise ValueError(f"fail_on must be one of {_FAIL_ON}, not {fail_on!r}")
        for name, value in (("unscanned", unscanned), ("os_packages", os_packages)):
            if value not in _POLICIES:
                raise ValueError(f"{name} must be one of {_POLICIES}, not {value!r}")
        if isinstance(allow_formats, str):
            raise TypeError("`allow_formats` takes a list of format names, not a string")
        self.image = image
        self.storage_conn_id = storage_conn_id
        self.osv_db = osv_db
        self.ref = ref
        self.platform = platform
        self.fail_on = fail_on
        self.unscanned = unscanned
        self.os_packages = os_packages
        self.allow_formats = list(allow_formats)
        self.max_file_bytes = max_file_bytes

    def _image_path(self) -> Any:
        """A local path stays a string; ``scheme://`` URIs become ``ObjectStoragePath`` (with the connection)."""
        if "://" in self.image and not self.image.startswith("file://"):
            from airflow.sdk import ObjectStoragePath

            return ObjectStoragePath(self.image, conn_id=self.storage_conn_id)
        return self.image.removeprefix("file://")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec import settings
        from airflow_aisec.core.image import DEFAULT_MAX_FILE_BYTES, scan_image

        osv_db = self.osv_db or settings.get("osv_db")

        report = self.run_check(
            context,
            subject=self.image,
            check=lambda: scan_image(
                self._image_path(),
                osv_db=osv_db,
                ref=self.ref,
                platform=self.platform,
                fail_on=self.fail_on,
                unscanned=self.unscanned,
                os_packages=self.os_packages,
                allow_formats=self.allow_formats,
                max_file_bytes=self.max_file_bytes or DEFAULT_MAX_FILE_BYTES,
            ),
        )
        self.emit_asset_events(
            context,
            {
                "check": "image_scan",
                "status": report["status"],
                "config_digest": report.get("details", {}).get("image", {}).get("config_digest"),
                "vulnerable_packages": report["metrics"].get("vulnerable_packages"),
                "secrets_found": report["metrics"].get("secrets_found"),
            },
        )
        return report
