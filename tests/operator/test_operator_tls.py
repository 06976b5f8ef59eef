"""Certificates: the sidecar CA Secret (readable by the proxy), the webhook TLS, and their rotation."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from llmsim_operator import constants as c
from llmsim_operator import tls
from llmsim_operator.resources import ca, webhook_tls

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
RENEW = dt.timedelta(days=30)


@pytest.fixture(scope="module")
def system_bundle() -> bytes:
    other = tls.make_ca("some public root", NOW, 3650)
    return other.cert_pem


def data(secret: dict[str, object], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])  # type: ignore[index]


def test_a_serving_certificate_is_issued_by_its_ca_for_the_service_names() -> None:
    root = tls.make_ca("webhook CA", NOW, 365)
    names = tls.service_dns_names("llmsim-webhook", "llmsim-system")
    leaf = tls.make_serving_cert(root, names, NOW, 90).cert
    leaf.verify_directly_issued_by(root.cert)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == names and "llmsim-webhook.llmsim-system.svc" in names
    assert leaf.not_valid_after_utc == NOW + dt.timedelta(days=90)


def test_renewal_is_due_within_the_window_or_when_unreadable() -> None:
    pem = tls.make_ca("x", NOW, 60).cert_pem
    assert not tls.needs_renewal(pem, NOW, RENEW)
    assert tls.needs_renewal(pem, NOW + dt.timedelta(days=31), RENEW)
    assert tls.needs_renewal(None, NOW, RENEW) and tls.needs_renewal(b"junk", NOW, RENEW)


def test_the_ca_secret_is_what_the_proxy_and_the_apps_need(system_bundle: bytes, tmp_path: Path) -> None:
    secret = ca.plan(None, "llmsim-ca", "team-a", NOW, 365, RENEW, system_bundle)
    assert secret is not None
    assert set(secret["data"]) == {c.CA_KEY_FILE, c.CA_CERT_FILE, c.BUNDLE_FILE, c.TRUSTSTORE_FILE}
    bundle = tls.split_pem(data(secret, c.BUNDLE_FILE))
    ours = data(secret, c.CA_CERT_FILE)
    assert bundle == [system_bundle, ours]  # system CAs first, then ours
    _, _, store = pkcs12.load_key_and_certificates(
        data(secret, c.TRUSTSTORE_FILE), c.TRUSTSTORE_PASSWORD.encode()
    )
    assert len(store) == 2
    # The proxy loads the key + certificate file as its CA (mitmproxy's CertStore layout).
    from llmsim.proxy.ca import CA_KEY_FILE, CertificateAuthority

    assert CA_KEY_FILE == c.CA_KEY_FILE
    (tmp_path / c.CA_KEY_FILE).write_bytes(data(secret, c.CA_KEY_FILE))
    assert CertificateAuthority(tmp_path).cert_pem() == ours


def test_a_fresh_ca_is_kept_and_a_stale_one_rotated_with_the_old_one_still_trusted(
    system_bundle: bytes,
) -> None:
    first = ca.plan(None, "llmsim-ca", "team-a", NOW, 365, RENEW, system_bundle)
    assert first is not None
    assert (
        ca.plan(first, "llmsim-ca", "team-a", NOW + dt.timedelta(days=300), 365, RENEW, system_bundle) is None
    )
    later = NOW + dt.timedelta(days=340)
    second = ca.plan(first, "llmsim-ca", "team-a", later, 365, RENEW, system_bundle)
    assert second is not None
    old, new = data(first, c.CA_CERT_FILE), tls.split_pem(data(second, c.CA_CERT_FILE))
    assert new[1] == old and new[0] != old  # the new signing CA first, the previous one still trusted
    signer, _ = ca.current(second)
    assert signer is not None and signer.cert_pem == new[0]
    after_expiry = ca.plan(
        second, "llmsim-ca", "team-a", later + dt.timedelta(days=400), 365, RENEW, system_bundle
    )
    assert after_expiry is not None and len(tls.split_pem(data(after_expiry, c.CA_CERT_FILE))) == 1


def test_odd_system_certificates_do_not_break_the_trust_store() -> None:
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    good = tls.make_ca("x", NOW, 10).cert_pem
    store = tls.java_truststore([broken, good], "pw")
    _, _, certs = pkcs12.load_key_and_certificates(store, b"pw")
    assert [cert.public_bytes(Encoding.PEM) for cert in certs] == [good]


def test_webhook_certificates_are_planned_renewed_and_keep_the_previous_ca_in_the_bundle() -> None:
    first = webhook_tls.plan(None, "llmsim-webhook", "llmsim-system", NOW, 365, 90, RENEW)
    assert first is not None
    secret = webhook_tls.secret("llmsim-webhook-tls", "llmsim-system", first)
    parsed = webhook_tls.parse(secret)
    assert parsed is not None and parsed.ca == first.ca and not webhook_tls.is_foreign(secret)
    assert webhook_tls.plan(parsed, "llmsim-webhook", "llmsim-system", NOW, 365, 90, RENEW) is None
    # The serving certificate renews under the same CA ...
    cert_due = webhook_tls.plan(
        parsed, "llmsim-webhook", "llmsim-system", NOW + dt.timedelta(days=70), 365, 90, RENEW
    )
    assert cert_due is not None and cert_due.ca == first.ca and cert_due.serving != first.serving
    # ... and a CA rotation keeps the old CA in the caBundle until it expires.
    ca_due = webhook_tls.plan(
        parsed, "llmsim-webhook", "llmsim-system", NOW + dt.timedelta(days=340), 365, 90, RENEW
    )
    assert ca_due is not None and ca_due.ca != first.ca
    assert tls.split_pem(ca_due.ca_bundle) == [ca_due.ca.cert_pem, first.ca.cert_pem]


def test_a_cert_manager_secret_is_only_read() -> None:
    foreign = {"metadata": {"name": "tls", "labels": {}}, "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}}
    assert webhook_tls.is_foreign(foreign)
    assert webhook_tls.serving_files(foreign) == (b"cert", b"key")
    with pytest.raises(ValueError, match=r"tls\.crt and tls\.key"):
        webhook_tls.serving_files({"metadata": {"name": "x"}, "data": {}})
