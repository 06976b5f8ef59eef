"""The proxy's certificate authority: created once in `--ca-dir`, then used to mint per-host
certificates (mitmproxy's CertStore does the minting) for the TLS the proxy terminates."""

from __future__ import annotations

import logging
import os
import ssl
import stat
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from mitmproxy import certs

log = logging.getLogger("llmsim.proxy")

BASENAME = "llmsim"
KEY_SIZE = 2048
CA_CERT_FILE = f"{BASENAME}-ca-cert.pem"
"""The CA certificate clients trust (public)."""
CA_KEY_FILE = f"{BASENAME}-ca.pem"
"""The CA private key and certificate (mode 0600)."""
BUNDLE_FILE = "bundle.pem"
"""System CAs plus ours: point SSL_CERT_FILE / REQUESTS_CA_BUNDLE here so pass-through hosts keep working."""
PUBLIC_FILES = frozenset({CA_CERT_FILE, f"{BASENAME}-ca-cert.cer", f"{BASENAME}-ca-cert.p12", BUNDLE_FILE})
"""Files other users (the app container) may read; everything else (the key) is 0600."""
DEFAULT_CA_DIR = Path(os.environ.get("LLMSIM_CA_DIR", "~/.llmsim/ca")).expanduser()


class CertificateAuthority:
    """Loads (or creates, once) the CA in `directory` and hands out server-side SSL contexts per host."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.expanduser()
        self._ensure_directory()
        with certs.CertStore.umask_secret():
            self._store = certs.CertStore.from_store(self.directory, BASENAME, KEY_SIZE)
        for name in os.listdir(self.directory):
            _chmod(self.directory / name, 0o644 if name in PUBLIC_FILES else 0o600)
        self._leaf_dir = Path(tempfile.mkdtemp(prefix="llmsim-leaf-"))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self.write_bundle()

    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o022:
            _chmod(self.directory, mode & ~0o022)

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def bundle_path(self) -> Path:
        return self.directory / BUNDLE_FILE

    def cert_pem(self) -> bytes:
        """The CA certificate in PEM (what `llmsim ca export` prints)."""
        return self._store.default_ca.to_pem()

    def write_bundle(self) -> Path:
        """Write system CAs + ours to `bundle.pem` (0644) and return its path."""
        system = b""
        for candidate in (ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
            if candidate and Path(candidate).is_file():
                system = Path(candidate).read_bytes()
                break
        if not system:
            try:
                import certifi

                system = Path(certifi.where()).read_bytes()
            except ImportError:  # pragma: no cover - certifi ships with requests/httpx
                system = b""
        ours = self.cert_pem()
        body = system.rstrip(b"\n") + b"\n" + ours if system else ours
        tmp = self.bundle_path.with_suffix(".tmp")
        tmp.write_bytes(body)
        os.chmod(tmp, 0o644)
        tmp.replace(self.bundle_path)
        return self.bundle_path

    def context_for(self, host: str) -> ssl.SSLContext:
        """A server-side SSL context presenting a certificate for `host` signed by our CA (cached)."""
        host = host.lower().rstrip(".")
        found = self._contexts.get(host)
        if found is not None:
            return found
        with self._lock:
            found = self._contexts.get(host)
            if found is not None:
                return found
            entry = self._store.get_cert(host, [_san(host)], organization="llmsim")
            leaf = self._leaf_dir / f"{len(self._contexts)}.pem"
            chain = b"".join(c.to_pem() for c in entry.chain_certs if c != entry.cert)
            with certs.CertStore.umask_secret():
                leaf.write_bytes(entry.cert.to_pem() + chain)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(leaf), str(self.directory / CA_KEY_FILE))
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[host] = ctx
            return ctx

    def sni_context(self, default_host: str) -> ssl.SSLContext:
        """A context that picks the certificate by SNI (for TLS listeners without CONNECT: host-alias)."""
        base = self.context_for(default_host)

        def pick(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name:
                sslobj.context = self.context_for(name)

        base.sni_callback = pick
        return base


def _chmod(path: Path, mode: int) -> None:
    """Tighten a mode where we may (a mounted CA directory can belong to someone else)."""
    try:
        os.chmod(path, mode)
    except OSError as exc:
        log.warning("cannot chmod %s to %o: %s", path, mode, exc.strerror or exc)


def _san(host: str) -> x509.GeneralName:
    import ipaddress

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def export_pem(directory: Path) -> bytes:
    """The CA certificate PEM in `directory` (created on first use)."""
    return CertificateAuthority(directory).cert_pem()
