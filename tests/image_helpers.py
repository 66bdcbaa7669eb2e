"""Container image archives for the image-scan tests: the builders of the demo package (one copy).

See :mod:`aisec_demo.images` (``dags/aisec_demo/images.py``): ``docker save`` tarballs and OCI image
layouts built with real digests and diff_ids.
"""

from __future__ import annotations

from aisec_demo.images import (
    BENIGN_PICKLE,
    MALICIOUS_PICKLE,
    Entry,
    Image,
    directory,
    dist_info,
    docker_save_files,
    file,
    hardlink,
    layer_tar,
    oci_files,
    opaque,
    sha256,
    symlink,
    whiteout,
    write_dir,
    write_tar,
)

__all__ = [
    "BENIGN_PICKLE",
    "MALICIOUS_PICKLE",
    "Entry",
    "Image",
    "directory",
    "dist_info",
    "docker_save_files",
    "file",
    "hardlink",
    "layer_tar",
    "oci_files",
    "opaque",
    "sha256",
    "symlink",
    "whiteout",
    "write_dir",
    "write_tar",
]
