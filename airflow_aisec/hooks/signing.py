"""Signing keys from Airflow connections (connection type ``aisec_signing_key``).

The connection's *password* holds the private key (PEM, Ed25519) or the HMAC secret; the extras
``algorithm`` (``ed25519`` | ``hmac-sha256``) and ``public_key`` (PEM, for verify-only connections) are
the only extras read. Key material is never logged.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_aisec.exceptions import AisecInputError

if TYPE_CHECKING:
    from airflow_aisec.core.signing import SigningKey, VerifyKey

ALLOWED_EXTRAS = ("algorithm", "public_key")


class SigningKeyHook(BaseHook):
    """Load signing / verification keys from an Airflow connection.

    :param signing_conn_id: connection id of type ``aisec_signing_key``.
    """

    conn_name_attr = "signing_conn_id"
    default_conn_name = "aisec_signing_key_default"
    conn_type = "aisec_signing_key"
    hook_name = "AI Security signing key"

    def __init__(self, signing_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signing_conn_id = signing_conn_id

    @cached_property
    def _conn(self) -> Any:
        return self.get_connection(self.signing_conn_id)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        extra = self._conn.extra_dejson or {}
        return {k: extra[k] for k in ALLOWED_EXTRAS if extra.get(k)}

    @property
    def algorithm(self) -> str | None:
        return self._extras.get("algorithm")

    def get_signing_key(self) -> SigningKey:
        from airflow_aisec.core.signing import load_signing_key

        secret = self._conn.password
        if not secret:
            raise AisecInputError(f"connection {self.signing_conn_id!r} has no private key / secret in its password")
        return load_signing_key(secret.encode(), self.algorithm)

    def get_verify_key(self) -> VerifyKey:
        from airflow_aisec.core.signing import load_verify_key

        public = self._extras.get("public_key")
        material = public or self._conn.password
        if not material:
            raise AisecInputError(f"connection {self.signing_conn_id!r} has neither a public_key extra nor a password")
        return load_verify_key(material.encode(), self.algorithm)
