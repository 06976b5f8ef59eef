"""Which destinations the proxy intercepts. Pure."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from llmsim.providers import catalog

DEFAULT_TLS_HOSTS: tuple[str, ...] = catalog.TLS_HOSTS
"""LLM provider hosts whose TLS is always intercepted (the provider catalog's)."""


@dataclass(frozen=True)
class Scope:
    """Host patterns (`api.openai.com`, `*.openai.azure.com`) and exact `host:port` destinations.

    A pattern without a port matches any port; `host:port` entries match that destination only (and
    are how plain-HTTP providers such as an in-cluster Ollama or vLLM are named).
    """

    patterns: tuple[str, ...] = DEFAULT_TLS_HOSTS
    destinations: tuple[tuple[str, int], ...] = ()

    @classmethod
    def build(cls, extra: Iterable[str] = (), defaults: Iterable[str] = DEFAULT_TLS_HOSTS) -> Scope:
        """Defaults plus extra entries (`host`, `*.domain` or `host:port`); ValueError on bad entries."""
        patterns = [p.lower() for p in defaults]
        destinations: list[tuple[str, int]] = []
        for raw in extra:
            entry = raw.strip().lower()
            if not entry or "/" in entry or " " in entry:
                raise ValueError(f"interceptHosts: {raw!r} is not a host or host:port")
            host, sep, port = entry.rpartition(":")
            if sep and port.isdigit() and host and not host.endswith("]"):
                if not 0 < int(port) < 65536:
                    raise ValueError(f"interceptHosts: {raw!r} has an invalid port")
                destinations.append((host, int(port)))
            elif sep and not entry.startswith("["):
                raise ValueError(f"interceptHosts: {raw!r} has an invalid port")
            else:
                patterns.append(entry)
        return cls(tuple(dict.fromkeys(patterns)), tuple(dict.fromkeys(destinations)))

    def intercepts(self, host: str, port: int | None = None) -> bool:
        """True when traffic to `host` (on `port`) is an LLM provider's and must be intercepted."""
        name = host.lower().rstrip(".")
        if port is not None and any(fnmatch.fnmatchcase(name, h) and port == p for h, p in self.destinations):
            return True
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)
