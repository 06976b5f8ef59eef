"""The per-namespace CA Secret the sidecars sign intercepted TLS with."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from llmsim_operator import constants as c
from llmsim_operator import tls

EXPIRY_ANNOTATION = "llmsim.io/ca-not-after"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret(
    name: str, namespace: str, ca: tls.KeyPair, trusted: list[bytes], system_bundle: bytes
) -> dict[str, Any]:
    """The Secret: the signing CA (key + cert, mitmproxy's layout) for the sidecar, and for the apps
    a trust bundle and Java trust store holding every CA still trusted (the new one and, during a
    rotation, the previous one, so connections made with either keep working)."""
    cas = [ca.cert_pem, *[pem for pem in trusted if pem != ca.cert_pem]]
    system = tls.split_pem(system_bundle)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY},
            "annotations": {EXPIRY_ANNOTATION: tls.expires_at(ca.cert_pem).isoformat()},
        },
        "data": {
            c.CA_KEY_FILE: _b64(ca.key_pem + ca.cert_pem),
            c.CA_CERT_FILE: _b64(b"".join(cas)),
            c.BUNDLE_FILE: _b64(tls.trust_bundle(system_bundle, cas)),
            c.TRUSTSTORE_FILE: _b64(tls.java_truststore([*system, *cas], c.TRUSTSTORE_PASSWORD)),
        },
    }


def current(secret_body: dict[str, Any] | None) -> tuple[tls.KeyPair | None, list[bytes]]:
    """The signing CA and the trusted CA certificates stored in an existing Secret."""
    if not secret_body:
        return None, []
    data = secret_body.get("data") or {}
    try:
        combined = base64.b64decode(data.get(c.CA_KEY_FILE, ""))
        trusted = tls.split_pem(base64.b64decode(data.get(c.CA_CERT_FILE, "")))
    except ValueError:
        return None, []
    marker = b"-----BEGIN CERTIFICATE-----"
    if marker not in combined:
        return None, trusted
    key_pem, cert_rest = combined.split(marker, 1)
    return tls.KeyPair(marker + cert_rest, key_pem), trusted


def plan(
    existing: dict[str, Any] | None,
    name: str,
    namespace: str,
    now: dt.datetime,
    days: int,
    renew_before: dt.timedelta,
    system_bundle: bytes,
) -> dict[str, Any] | None:
    """The Secret to write, or None when the existing one is still good."""
    ca, trusted = current(existing)
    if ca is not None and not tls.needs_renewal(ca.cert_pem, now, renew_before):
        return None
    new = tls.make_ca(f"llmsim sidecar CA ({namespace})", now, days)
    return secret(name, namespace, new, tls.still_valid(trusted, now), system_bundle)
