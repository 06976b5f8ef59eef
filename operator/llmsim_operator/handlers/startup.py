"""Start-up and clean-up: kopf settings, the webhook server and its TLS, metrics, rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
from pathlib import Path
from typing import Any

import kopf
from prometheus_client import start_http_server

from llmsim_operator import constants as c
from llmsim_operator import k8s, metrics, peering
from llmsim_operator.handlers import scenarios
from llmsim_operator.handlers.common import (
    CA_NAMESPACES_KEY,
    PEERING_MISSING_KEY,
    PROFILE_CACHE_KEY,
    SCENARIOS_KEY,
    SETTINGS_KEY,
    SHARED_KEYS,
    WRITE_ATTEMPTS,
    ensure_ca_secret,
    settings_of,
    utcnow,
)
from llmsim_operator.profile_cache import ProfileCache
from llmsim_operator.resources import webhook_tls
from llmsim_operator.settings import OperatorSettings
from llmsim_operator.webhook_server import NamespacedWebhookServer

log = logging.getLogger("llmsim.operator")
HOUSEKEEPING_TASK = "llmsim_housekeeping_task"
HOUSEKEEPING_STOP = "llmsim_housekeeping_stop"
PEERING_RECHECK_S = 60.0
"""While the peering object is missing, how often the operator looks again (and warns again)."""


def _write_if_changed(folder: Path, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    if not cert_path.exists() or cert_path.read_bytes() != cert_pem or key_path.read_bytes() != key_pem:
        key_path.write_bytes(key_pem)
        os.chmod(key_path, 0o600)
        cert_path.write_bytes(cert_pem)  # kopf's server restarts when these files change
    return cert_path, key_path


def ensure_webhook_tls(settings: OperatorSettings, now: dt.datetime) -> tuple[Path, Path]:
    """Create/rotate the webhook certificates in their Secret, write them for the server, and keep
    the chart's MutatingWebhookConfiguration `caBundle` current. A Secret the operator did not create
    (e.g. issued by cert-manager, whose CA injector sets the caBundle) is only read, never written.

    Replicas start together: each reads the Secret and writes only if nobody wrote it meanwhile
    (create, or replace at the resourceVersion read); the one that loses reads again and serves
    what the winner stored. So every replica serves one certificate, of one CA, which the
    `caBundle` verifies."""
    folder = Path(settings.webhook_cert_dir)
    for _ in range(WRITE_ATTEMPTS):
        secret = k8s.read_secret(settings.namespace, settings.webhook_tls_secret)
        if secret is not None and webhook_tls.is_foreign(secret):
            cert_pem, key_pem = webhook_tls.serving_files(secret)
            return _write_if_changed(folder, cert_pem, key_pem)
        current = webhook_tls.parse(secret)
        planned = webhook_tls.plan(
            current,
            settings.webhook_service,
            settings.namespace,
            now,
            settings.ca_days,
            settings.webhook_cert_days,
            dt.timedelta(days=settings.renew_before_days),
            webhook_tls.url_hosts(settings.webhook_url),
        )
        if planned is None and current is not None:
            certs = current
            break
        assert planned is not None
        body = webhook_tls.secret(settings.webhook_tls_secret, settings.namespace, planned)
        if k8s.write_secret(body, secret):
            certs = planned
            metrics.CERT_ROTATIONS.labels("webhook").inc()
            log.info(
                "webhook certificate (re)generated, valid until %s", planned.serving.cert.not_valid_after_utc
            )
            break
        log.info("webhook certificate Secret changed meanwhile (another replica); reading it again")
    else:
        raise kopf.TemporaryError(
            f"Secret {settings.namespace}/{settings.webhook_tls_secret} kept changing while being written",
            delay=k8s.RETRY_DELAY_S,
        )
    k8s.patch_webhook_ca_bundle(settings.webhook_configuration, certs.ca_bundle)
    return _write_if_changed(folder, certs.serving.cert_pem + certs.ca.cert_pem, certs.serving.key_pem)


async def housekeeping(memo: kopf.Memo, settings: OperatorSettings, stop: asyncio.Event) -> None:
    """One background loop instead of per-object daemons: tick LoadScenarios (follow Jobs, start
    scheduled runs) and rotate the webhook certificate and the namespaces' CAs when due."""
    loop = asyncio.get_running_loop()
    last_rotation = last_peering_check = loop.time()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.scenario_poll_interval_s)
        except TimeoutError:
            pass
        if stop.is_set():
            return
        if memo.get(PEERING_MISSING_KEY) and loop.time() - last_peering_check >= PEERING_RECHECK_S:
            last_peering_check = loop.time()
            memo[PEERING_MISSING_KEY] = await check_peering(settings)
        for namespace, name in sorted(memo.get(SCENARIOS_KEY, ())):
            try:
                await asyncio.to_thread(scenarios.tick, namespace, name, settings, utcnow())
            except Exception:  # one bad scenario must not stop the others
                log.exception("LoadScenario %s/%s: tick failed; retrying", namespace, name)
        if loop.time() - last_rotation < settings.rotation_check_interval_s:
            continue
        last_rotation = loop.time()
        for namespace in sorted(memo.get(CA_NAMESPACES_KEY, ())):
            try:
                await asyncio.to_thread(ensure_ca_secret, namespace, settings, utcnow())
            except Exception:
                log.exception("CA rotation in namespace %s failed; retrying", namespace)
        if not settings.webhook_insecure:
            try:
                await asyncio.to_thread(ensure_webhook_tls, settings, utcnow())
            except Exception:  # keep serving with the current certificate; retry later
                log.exception("webhook certificate rotation failed; retrying")


async def check_peering(settings: OperatorSettings) -> bool:
    """Warn (with the fix) when the peering object is missing; True while it is."""
    try:
        absent = await asyncio.to_thread(peering.missing, settings)
    except Exception as exc:  # e.g. RBAC; kopf itself will complain about the same call
        log.warning("peering %r: cannot check the peering object (%s)", settings.peering, exc)
        return False
    if absent:
        log.warning(peering.advice(settings, absent))
    return bool(absent)


def configure_kopf(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """kopf's settings for this operator (no I/O)."""
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # Peering name and standalone mode are kopf.run's arguments (main.kopf_options), not set here:
    # this runs after kopf has decided them, and overriding them silently undid --standalone.
    settings.peering.priority = (  # replicas of one Deployment share their env: draw distinct priorities
        ours.peering_priority
        if ours.peering_priority is not None
        else random.SystemRandom().randint(1, 1_000_000)
    )
    settings.networking.error_backoffs = [1, 2, 5, 10, 20, 30]
    settings.watching.server_timeout = 300
    settings.admission.managed = None  # the Helm chart ships the MutatingWebhookConfiguration


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = settings_of(memo)  # main.run puts the command line's settings there
    memo[SETTINGS_KEY] = ours
    for shared_key, factory in SHARED_KEYS.items():  # shared by every per-object copy of the memo
        memo[shared_key] = factory()
    configure_kopf(settings, ours)
    await asyncio.to_thread(k8s.configure_client)
    if not settings.peering.standalone:
        memo[PEERING_MISSING_KEY] = await check_peering(ours)
    memo[PROFILE_CACHE_KEY] = ProfileCache(ours.watch_namespaces).start()
    if ours.webhook_insecure:
        server = NamespacedWebhookServer(addr=ours.webhook_addr, port=ours.webhook_port, insecure=True)
    else:
        cert, key = await asyncio.to_thread(ensure_webhook_tls, ours, utcnow())
        server = NamespacedWebhookServer(
            addr=ours.webhook_addr, port=ours.webhook_port, certfile=str(cert), pkeyfile=str(key)
        )
    stop = asyncio.Event()
    memo[HOUSEKEEPING_STOP] = stop
    memo[HOUSEKEEPING_TASK] = asyncio.create_task(housekeeping(memo, ours, stop), name="llmsim-housekeeping")
    settings.admission.server = server
    if ours.metrics_port:
        start_http_server(ours.metrics_port)


@kopf.on.cleanup()
async def stop_background_tasks(memo: kopf.Memo, **_: Any) -> None:
    """Let the housekeeping loop finish its current step (its API calls run in threads that cannot be
    cancelled), then cancel it if it takes too long."""
    stop, task = memo.get(HOUSEKEEPING_STOP), memo.get(HOUSEKEEPING_TASK)
    cache = memo.get(PROFILE_CACHE_KEY)
    if isinstance(cache, ProfileCache):
        cache.stop()
    if isinstance(stop, asyncio.Event):
        stop.set()
    if isinstance(task, asyncio.Task):
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=40)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
