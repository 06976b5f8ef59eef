"""The webhook's TLS Secret (its own CA and a serving certificate for the Service), pure."""

from __future__ import annotations

import base64
import datetime as dt
import urllib.parse
from dataclasses import dataclass
from typing import Any

from llmsim_operator import constants as c
from llmsim_operator import tls

CA_CRT, CA_KEY, TLS_CRT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


@dataclass(frozen=True)
class WebhookTls:
    ca: tls.KeyPair
    serving: tls.KeyPair
    ca_bundle: bytes
    """What the API server should trust: the current CA and, during a rotation, the previous one."""


def is_foreign(secret: dict[str, Any]) -> bool:
    """A Secret not written by the operator (cert-manager's, or the user's own)."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    return labels.get(c.MANAGED_BY_LABEL) != c.MANAGED_BY


def serving_files(secret: dict[str, Any]) -> tuple[bytes, bytes]:
    """`tls.crt` and `tls.key` of a kubernetes.io/tls Secret."""
    data = secret.get("data") or {}
    try:
        return base64.b64decode(data[TLS_CRT]), base64.b64decode(data[TLS_KEY])
    except (KeyError, ValueError):
        name = (secret.get("metadata") or {}).get("name")
        raise ValueError(f"Secret {name}: needs tls.crt and tls.key") from None


def parse(secret: dict[str, Any] | None) -> WebhookTls | None:
    data = (secret or {}).get("data") or {}
    try:
        raw = {k: base64.b64decode(data[k]) for k in (CA_CRT, CA_KEY, TLS_CRT, TLS_KEY)}
    except (KeyError, ValueError):
        return None
    bundle, chain = tls.split_pem(raw[CA_CRT]), tls.split_pem(raw[TLS_CRT])
    if not bundle or not chain:
        return None
    # tls.crt is the serving certificate followed by its CA (the chain the server presents)
    return WebhookTls(tls.KeyPair(bundle[0], raw[CA_KEY]), tls.KeyPair(chain[0], raw[TLS_KEY]), raw[CA_CRT])


def plan(
    existing: WebhookTls | None,
    service: str,
    namespace: str,
    now: dt.datetime,
    ca_days: int,
    cert_days: int,
    renew_before: dt.timedelta,
    extra_hosts: tuple[str, ...] = (),
) -> WebhookTls | None:
    """The certificates to store, or None when the existing ones are good for a while (and valid
    for the Service's names and `extra_hosts`)."""
    hosts = [*tls.service_dns_names(service, namespace), *extra_hosts]
    ca_stale = existing is None or tls.needs_renewal(existing.ca.cert_pem, now, renew_before)
    cert_stale = (
        existing is None
        or tls.needs_renewal(existing.serving.cert_pem, now, renew_before)
        or not tls.covers(existing.serving.cert_pem, hosts)
    )
    if not ca_stale and not cert_stale and existing is not None:
        return None
    ca = (
        tls.make_ca(f"llmsim webhook CA ({namespace})", now, ca_days)
        if ca_stale or existing is None
        else existing.ca
    )
    serving = tls.make_serving_cert(ca, hosts, now, cert_days)
    previous = tls.still_valid(tls.split_pem(existing.ca_bundle), now) if existing is not None else []
    bundle = b"".join([ca.cert_pem, *[p for p in previous if p != ca.cert_pem]])
    return WebhookTls(ca, serving, bundle)


def url_hosts(url: str) -> tuple[str, ...]:
    """The host of a webhook URL (LLMSIM_OPERATOR_WEBHOOK_URL), which the certificate must name."""
    host = urllib.parse.urlsplit(url).hostname if url else None
    return (host,) if host else ()


def secret(name: str, namespace: str, certs: WebhookTls) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY}},
        "data": {
            CA_CRT: b64(certs.ca_bundle),
            CA_KEY: b64(certs.ca.key_pem),
            TLS_CRT: b64(certs.serving.cert_pem + certs.ca.cert_pem),
            TLS_KEY: b64(certs.serving.key_pem),
        },
    }
