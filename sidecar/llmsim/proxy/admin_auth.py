"""The admin port's bearer token: what `POST /pause`, `/resume` and `/reset` require.

A loopback bind protects nothing in a pod (the app shares the network namespace), so every route
that changes behaviour asks for `Authorization: Bearer <token>`. The token lives in a file: in a
pod, a Secret the operator creates and mounts into the sidecar container only (the app container
cannot read it); on a workstation, `<ca-dir>/admin-token`, created (mode 0600) on first start. The
file is read on every call, so a rotated Secret applies without a restart. `/healthz`, `/readyz`
and `/metrics` stay open for probes and scraping.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web

TOKEN_FILE = "admin-token"
"""The token's file name in the CA directory when `--admin-token-file` is not given."""
REALM = 'Bearer realm="llmsim-admin"'


class AdminToken:
    """The token file and the check against it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def ensure(cls, path: Path) -> AdminToken:
        """The token at `path`, generated there (0600, 256 random bits) when the file is missing."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        return cls(path)

    def read(self) -> bytes | None:
        """The current token (surrounding whitespace stripped), None when unreadable or empty."""
        try:
            token = self.path.read_bytes().strip()
        except OSError:
            return None
        return token or None

    def refusal(self, authorization: str | None) -> tuple[str, str] | None:
        """None when `authorization` carries the token; else (code, message) of the refusal."""
        expected = self.read()
        if expected is None:
            return "token_unavailable", f"the admin token file {self.path} cannot be read; control is refused"
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "missing_token", "this route needs Authorization: Bearer <admin token>"
        if not hmac.compare_digest(given.strip().encode(), expected):
            return "invalid_token", "the bearer token is not the admin token"
        return None


def unauthorized(code: str, message: str) -> web.Response:
    """401 in JSON, with the challenge."""
    body = {"error": {"message": message, "type": "authentication_error", "code": code}}
    return web.json_response(body, status=401, headers={"WWW-Authenticate": REALM})
