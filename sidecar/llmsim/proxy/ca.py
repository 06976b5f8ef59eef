"""The proxy's certificate authority: created once in `--ca-dir`, then used to mint per-host
certificates (mitmproxy's CertStore does the minting) for the TLS the proxy terminates."""

from __future__ import annotations

import logging
import os
import ssl
import stat
import tempfile
import threading
from collections import OrderedDict
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
DEFAULT_MAX_CONTEXTS = 512
"""Per-host certificates (SSL contexts, ~25 KB each) kept; more hosts evict the least recently used."""
DEFAULT_CA_DIR = Path(os.environ.get("LLMSIM_CA_DIR", "~/.llmsim/ca")).expanduser()


class LeafContext(ssl.SSLContext):
    """A server-side context presenting the certificate of one intercepted `host` (the data path
    reads it back from the connection: the TLS listener's destination is the name chosen by SNI)."""

    host: str = ""


class CertificateAuthority:
    """Loads (or creates, once) the CA in `directory` and hands out server-side SSL contexts per host."""

    def __init__(self, directory: Path, max_contexts: int = DEFAULT_MAX_CONTEXTS) -> None:
        if max_contexts < 1:
            raise ValueError(f"--leaf-cache-size: {max_contexts} must be at least 1")
        self.directory = directory.expanduser()
        self._ensure_directory()
        with certs.CertStore.umask_secret():
            self._store = certs.CertStore.from_store(self.directory, BASENAME, KEY_SIZE)
        for name in os.listdir(self.directory):
            _chmod(self.directory / name, 0o644 if name in PUBLIC_FILES else 0o600)
        self.max_contexts = max_contexts
        self._contexts: OrderedDict[str, ssl.SSLContext] = OrderedDict()
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
        """A server-side SSL context presenting a certificate for `host` signed by our CA (cached:
        the `max_contexts` most recently used hosts; the least recently used is evicted first)."""
        host = host.lower().rstrip(".")
        with self._lock:
            found = self._contexts.get(host)
            if found is not None:
                self._contexts.move_to_end(host)
                return found
            ctx = self._new_context(host)
            self._contexts[host] = ctx
            while len(self._contexts) > self.max_contexts:
                self._contexts.popitem(last=False)  # connections using it keep their reference
            return ctx

    def _new_context(self, host: str) -> LeafContext:
        entry = self._store.get_cert(host, [_san(host)], organization="llmsim")
        chain = b"".join(c.to_pem() for c in entry.chain_certs if c != entry.cert)
        ctx = LeafContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.host = host
        _load_chain(ctx, entry.cert.to_pem() + chain, self.directory / CA_KEY_FILE)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    @property
    def cached_hosts(self) -> list[str]:
        """Hosts with a cached context, least recently used first."""
        with self._lock:
            return list(self._contexts)

    def sni_context(self, default_host: str) -> ssl.SSLContext:
        """A context that picks the certificate by SNI (for TLS listeners without CONNECT: host-alias).
        Its own context, not the cached one of `default_host` (CONNECTs to that host must never
        switch certificates by SNI)."""
        with self._lock:
            base = self._new_context(default_host.lower().rstrip("."))

        def pick(sslobj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            if name:
                sslobj.context = self.context_for(name)

        base.sni_callback = pick
        return base


def _load_chain(ctx: ssl.SSLContext, chain_pem: bytes, key_file: Path) -> None:
    """Load a certificate chain held in memory: `ssl` reads chains only from paths, so the PEM goes
    to an anonymous memory file (Linux `memfd`) or, elsewhere, a private file removed at once.
    Nothing per host stays on disk (a pod's /tmp is a small emptyDir)."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("llmsim-leaf", os.MFD_CLOEXEC)
        try:
            os.write(fd, chain_pem)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}", str(key_file))
            return
        except OSError:  # pragma: no cover - /proc not mounted: fall back to a file
            pass
        finally:
            os.close(fd)
    with certs.CertStore.umask_secret(), tempfile.NamedTemporaryFile(prefix="llmsim-leaf-") as leaf:
        leaf.write(chain_pem)
        leaf.flush()
        ctx.load_cert_chain(leaf.name, str(key_file))


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
