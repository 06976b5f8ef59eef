"""The pod runner's API client: JSON over HTTPS with the credentials of a kubeconfig (client
certificate or token), stdlib only, so the runner process needs nothing but the checkout."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

MERGE = "application/merge-patch+json"
TIMEOUT_S = 15.0


class ApiFailed(RuntimeError):
    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"{method} {path}: {status}: {message}")


class Api:
    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        self.url = str(cluster["server"])
        self.ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        self.headers: dict[str, str] = {}
        if "token" in user:
            self.headers["Authorization"] = f"Bearer {user['token']}"
        else:
            with tempfile.TemporaryDirectory() as tmp:
                crt, key = Path(tmp, "c.crt"), Path(tmp, "c.key")
                crt.write_bytes(base64.b64decode(user["client-certificate-data"]))
                key.write_bytes(base64.b64decode(user["client-key-data"]))
                self.ctx.load_cert_chain(crt, key)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                raw: bool = False) -> Any:  # fmt: skip
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": content_type, **self.headers}
        )
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=TIMEOUT_S) as rsp:
                payload = rsp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                text = str(json.loads(text).get("message") or text)
            except ValueError:
                pass
            raise ApiFailed(method, path, exc.code, text) from None
        return payload if raw else json.loads(payload)

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def find(self, path: str) -> Any:
        """The object, or None when it does not exist."""
        try:
            return self.get(path)
        except ApiFailed as exc:
            if exc.status == 404:
                return None
            raise

    def items(self, path: str, **query: str) -> list[dict[str, Any]]:
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        found: list[dict[str, Any]] = self.get(path + suffix)["items"]
        return found

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, body, content_type=MERGE)
