"""The webhook's own TLS: issued into its Secret at start-up, served over HTTPS, caBundle kept current."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conftest import SECRETS
from llmsim_operator import constants as c
from llmsim_operator.resources import webhook_tls

OPERATOR_NS = "llmsim-system"
WEBHOOKS = "admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
SERVICE_HOST = f"llmsim-webhook.{OPERATOR_NS}.svc"


@pytest.fixture()
async def tls_env(cluster: Any, operator_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_OPERATOR_WEBHOOK_INSECURE", "false")
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "llmsim-sidecar-injector", "uid": str(uuid.uuid4()), "resourceVersion": "1"},
        "webhooks": [
            {
                "name": f"{path.strip('/')}.llmsim.io",
                "clientConfig": {
                    "service": {"name": "llmsim-webhook", "namespace": OPERATOR_NS, "path": path}
                },
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
            }
            for path in sorted(c.WEBHOOK_PATHS)
        ],
    }
    rsp = await cluster.post(f"/apis/{WEBHOOKS.rsplit('/', 1)[0]}/mutatingwebhookconfigurations", json=config)
    assert rsp.status == 200, await rsp.text()


async def test_the_operator_issues_its_certificate_and_serves_https_with_it(
    cluster: Any, tls_env: None, operator: Any, webhook_port: int, tmp_path: Path
) -> None:
    secret = cluster.objects[SECRETS, OPERATOR_NS, "llmsim-webhook-tls"]
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmsim-operator"
    ca_pem = base64.b64decode(secret["data"]["ca.crt"])
    # The chart's webhooks trust that CA.
    config = cluster.objects[WEBHOOKS, None, "llmsim-sidecar-injector"]
    bundles = {w["clientConfig"].get("caBundle") for w in config["webhooks"]}
    assert bundles == {base64.b64encode(ca_pem).decode()}
    assert (tmp_path / "webhook" / "tls.crt").exists()

    # The server presents a certificate valid for the Service name, signed by that CA.
    context = ssl.create_default_context(cadata=ca_pem.decode())
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": {"username": "tester"},
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {"containers": []},
            },
        },
    }
    url = f"https://127.0.0.1:{webhook_port}/{c.INJECT_POD_WEBHOOK_ID}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # the server starts after the initial resource scan
            try:
                async with session.post(url, json=review, ssl=context, server_hostname=SERVICE_HOST) as rsp:
                    assert rsp.status == 200
                    result = await rsp.json()
                    break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the webhook server never came up")
    assert result["response"] == {"uid": "u1", "allowed": True}


@pytest.fixture()
async def expiring_secret(cluster: Any, tls_env: None) -> webhook_tls.WebhookTls:
    """A certificate the operator issued earlier, now inside the renewal window."""
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(days=80)
    certs = webhook_tls.plan(None, "llmsim-webhook", OPERATOR_NS, issued, 365, 90, dt.timedelta(days=30))
    assert certs is not None
    body = webhook_tls.secret("llmsim-webhook-tls", OPERATOR_NS, certs)
    body["metadata"] |= {"uid": str(uuid.uuid4()), "resourceVersion": "1"}
    rsp = await cluster.post(f"/api/v1/namespaces/{OPERATOR_NS}/secrets", json=body)
    assert rsp.status == 200, await rsp.text()
    return certs


async def test_a_certificate_due_for_renewal_is_reissued_under_the_same_ca(
    cluster: Any, expiring_secret: webhook_tls.WebhookTls, operator: Any, tmp_path: Path
) -> None:
    stored = webhook_tls.parse(cluster.objects[SECRETS, OPERATOR_NS, "llmsim-webhook-tls"])
    assert stored is not None and stored.ca == expiring_secret.ca
    assert stored.serving.cert_pem != expiring_secret.serving.cert_pem
    assert stored.serving.cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=80)
    served = (tmp_path / "webhook" / "tls.crt").read_bytes()
    assert served.startswith(stored.serving.cert_pem)


def stored(certs: webhook_tls.WebhookTls, version: str) -> dict[str, Any]:
    body = webhook_tls.secret("llmsim-webhook-tls", OPERATOR_NS, certs)
    body["metadata"]["resourceVersion"] = version
    return body


@pytest.mark.parametrize("race", ["both-create", "both-rotate"])
def test_a_replica_that_loses_the_race_serves_what_the_winner_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, race: str
) -> None:
    """Read, plan, write only if unchanged; on a conflict, read again and go with the stored one."""
    from llmsim_operator import k8s
    from llmsim_operator.handlers import startup
    from llmsim_operator.settings import OperatorSettings

    now = dt.datetime.now(dt.UTC)
    renew = dt.timedelta(days=30)
    winner = webhook_tls.plan(None, "llmsim-webhook", OPERATOR_NS, now, 365, 90, renew)
    assert winner is not None
    if race == "both-create":
        first_read = None
    else:  # both replicas see the same certificate due for renewal
        old = webhook_tls.plan(
            None, "llmsim-webhook", OPERATOR_NS, now - dt.timedelta(days=80), 365, 90, renew
        )
        assert old is not None
        first_read = stored(old, "1")
    reads = iter([first_read, stored(winner, "2")])
    writes: list[tuple[dict[str, Any], Any]] = []
    bundles: list[bytes] = []
    monkeypatch.setattr(k8s, "read_secret", lambda ns, name: next(reads))
    monkeypatch.setattr(k8s, "write_secret", lambda body, existing: writes.append((body, existing)) and False)
    monkeypatch.setattr(k8s, "patch_webhook_ca_bundle", lambda name, pem: bundles.append(pem) or True)
    settings = OperatorSettings(namespace=OPERATOR_NS, webhook_cert_dir=str(tmp_path / "certs"))

    cert, key = startup.ensure_webhook_tls(settings, now)

    assert len(writes) == 1 and writes[0][1] is first_read  # one conditional write, at the version read
    assert cert.read_bytes() == winner.serving.cert_pem + winner.ca.cert_pem  # the winner's certificate
    assert key.read_bytes() == winner.serving.key_pem
    assert bundles == [winner.ca_bundle]  # and its CA in the caBundle
