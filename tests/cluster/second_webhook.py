"""Another team's mutating webhook, for re-invocation tests: an HTTPS server on 127.0.0.1 (in a thread)
that adds one environment variable to a pod's first container, registered with the API server after
llmsim's webhook (configurations are called in name order), so the API server calls llmsim's again
(`reinvocationPolicy: IfNeeded`)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubeapi import WEBHOOKS, Kube
from tinyca import TinyCA

NAME = "zz-second-mutator"
ENV = {"name": "ADDED_BY_SECOND_WEBHOOK", "value": "1"}


class SecondWebhook:
    def __init__(self, folder: Path) -> None:
        self.calls = 0
        ca = TinyCA("second-webhook")
        self.ca_pem = ca.cert_pem
        crt, key = ca.serving("second-webhook", ["127.0.0.1"]).write(folder, "second-webhook")
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls += 1
                pod = review["request"]["object"]
                env = pod["spec"]["containers"][0].get("env")
                ops: list[dict[str, Any]] = []
                if env is None:
                    ops.append({"op": "add", "path": "/spec/containers/0/env", "value": [ENV]})
                elif ENV not in env:
                    ops.append({"op": "add", "path": "/spec/containers/0/env/-", "value": ENV})
                response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
                if ops:
                    response |= {
                        "patchType": "JSONPatch",
                        "patch": base64.b64encode(json.dumps(ops).encode()).decode(),
                    }
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "response": response}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="second-webhook", daemon=True)

    def register(self, kube: Kube, namespace: str) -> None:
        """Call this webhook for pods created in `namespace` only."""
        kube.create(WEBHOOKS, None, {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": NAME},
            "webhooks": [{
                "name": "second.example.com",
                "clientConfig": {"url": f"https://127.0.0.1:{self.port}/mutate",
                                 "caBundle": base64.b64encode(self.ca_pem).decode()},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                           "operations": ["CREATE"], "scope": "Namespaced"}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 5,
            }],
        })  # fmt: skip

    def __enter__(self) -> SecondWebhook:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
