"""Certificates, made with `cryptography` (pure: the clock is a parameter).

* the per-namespace CA the sidecars sign intercepted TLS with (mitmproxy's key+cert PEM layout);
* the webhook's own CA and serving certificate for its Service DNS names;
* the combined trust bundle (system CAs plus llmsim CAs) and a Java PKCS#12 trust store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_SIZE = 2048


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("expected an RSA key")
        return key


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def make_ca(common_name: str, now: dt.datetime, days: int) -> KeyPair:
    """A self-signed CA certificate valid from a minute before `now` for `days` days."""
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llmsim"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_serving_cert(ca: KeyPair, dns_names: Sequence[str], now: dt.datetime, days: int) -> KeyPair:
    """A server certificate for `dns_names` (host names; IP addresses become IP SANs), signed by `ca`."""
    key = _new_key()
    ca_cert = ca.cert
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key().public_key()), critical=False
        )
        .sign(ca.private_key(), hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use to reach a Service."""
    return [
        f"{service}.{namespace}.svc",
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def covers(cert_pem: bytes, hosts: Sequence[str]) -> bool:
    """Whether the certificate's subject alternative names include every one of `hosts`."""
    try:
        sans = x509.load_pem_x509_certificate(cert_pem).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except (ValueError, x509.ExtensionNotFound):
        return False
    present = {str(v) for v in sans.value.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in sans.value.get_values_for_type(x509.IPAddress)}
    return all(str(_general_name(h).value) in present for h in hosts)


def expires_at(cert_pem: bytes) -> dt.datetime:
    """The first certificate's `notAfter` (UTC)."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def needs_renewal(cert_pem: bytes | None, now: dt.datetime, renew_before: dt.timedelta) -> bool:
    """True when the certificate is missing, unreadable, or expires within `renew_before`."""
    if not cert_pem:
        return True
    try:
        return expires_at(cert_pem) - renew_before <= now
    except ValueError:
        return True


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


def split_pem(bundle: bytes) -> list[bytes]:
    """The PEM certificate blocks of a bundle, as they are (other blocks are ignored)."""
    return [m.group(0) + b"\n" for m in _PEM_CERT.finditer(bundle)]


def _load_lenient(pem: bytes) -> x509.Certificate | None:
    """Parse a certificate; odd-but-trusted system CAs (e.g. a non-positive serial) must not break us."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return x509.load_pem_x509_certificate(pem)
        except ValueError:
            return None


def still_valid(cert_pems: Sequence[bytes], now: dt.datetime) -> list[bytes]:
    """Those certificates that have not expired, deduplicated, in order."""
    out: list[bytes] = []
    for pem in cert_pems:
        if pem not in out and expires_at(pem) > now:
            out.append(pem)
    return out


def trust_bundle(system_bundle: bytes, llmsim_cas: Sequence[bytes]) -> bytes:
    """System CAs followed by the llmsim CA(s): one file apps can trust for every host."""
    parts = [system_bundle.rstrip(b"\n") + b"\n"] if system_bundle.strip() else []
    parts += [pem.rstrip(b"\n") + b"\n" for pem in llmsim_cas]
    return b"".join(parts)


def java_truststore(cert_pems: Sequence[bytes], password: str) -> bytes:
    """A PKCS#12 trust store Java accepts (`-Djavax.net.ssl.trustStoreType=PKCS12`)."""
    loaded = [cert for cert in (_load_lenient(pem) for pem in cert_pems) if cert is not None]
    certs = [pkcs12.PKCS12Certificate(cert, f"llmsim-{i}".encode()) for i, cert in enumerate(loaded)]
    return pkcs12.serialize_java_truststore(certs, serialization.BestAvailableEncryption(password.encode()))
