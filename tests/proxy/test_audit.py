"""The audit trail: every control action is counted, emitted as a `control.action` event (a
CloudEvent with a sink), and, when only the sidecar knows of it, a Kubernetes Event."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from llmsim.proxy.audit import ControlAudit, ScheduleObserver
from llmsim.proxy.metrics import ProxyMetrics
from llmsim.proxy.profile_watch import ProfileWatch
from llmsim.proxy.state import ProxyState
from llmsim.telemetry.events import EventBus

from .conftest import QUIET, ProxyFactory, named
from .fakes import Upstream
from .test_admin_reload import admin
from .test_profile_watch import FakeClock, resource, watch_of

OPENS = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)


def counted(metrics: ProxyMetrics, action: str, source: str) -> float:
    value = metrics.registry.get_sample_value(
        "llmsim_control_actions_total", {"action": action, "source": source}
    )
    return value or 0.0


def audit_of(
    state: ProxyState, caplog: pytest.LogCaptureFixture
) -> tuple[ControlAudit, list[tuple[str, str, str]]]:
    posted: list[tuple[str, str, str]] = []
    bus = EventBus(source="/llmsim/test", logger=logging.getLogger("test.events"))
    caplog.set_level(logging.INFO, logger="test.events")
    audit = ControlAudit(state, ProxyMetrics(), bus, kube_event=lambda *e: posted.append(e), pod="chat-0")
    return audit, posted


def control_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "test.events"]
    return [line for line in lines if line["event"] == "control.action"]


def test_an_action_is_counted_emitted_and_posted_only_when_the_sidecar_alone_knows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = ProxyState(named(QUIET, "drill"))
    audit, posted = audit_of(state, caplog)
    audit.record("paused", "admin-api", "admin token holder at 127.0.0.1", "POST /pause")
    audit.record("paused", "profile", "kubectl-patch", "generation 2")
    assert counted(audit.metrics, "paused", "admin-api") == counted(audit.metrics, "paused", "profile") == 1
    events = control_events(caplog)
    assert [(e["action"], e["source"], e["who"]) for e in events] == [
        ("paused", "admin-api", "admin token holder at 127.0.0.1"), ("paused", "profile", "kubectl-patch"),
    ]  # fmt: skip
    assert (
        events[0]["profile"] == "drill" and events[0]["pod"] == "chat-0" and events[0]["subject"] == "drill"
    )
    # the operator posts the profile's own changes (once per profile); the sidecar its admin API's
    assert posted == [
        (
            "Warning",
            "SidecarPaused",
            "paused on pod chat-0 via admin-api by admin token holder at 127.0.0.1: POST /pause",
        )
    ]


def test_windows_opening_and_closing_and_the_expiry_are_recorded_by_the_clock(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = {**QUIET, "until": "2026-03-02T14:10:00Z",
            "faults": {"windows": [{"fault": "overloaded", "startAt": "2026-03-02T14:00:00Z", "durationS": 300}]}}  # fmt: skip
    wall = [OPENS.timestamp() - 1]
    state = ProxyState(named(spec, "drill"), clock=lambda: dt.datetime.fromtimestamp(wall[0], dt.UTC))
    audit, _ = audit_of(state, caplog)
    observer = ScheduleObserver(state, audit, lambda: wall[0])
    for t in (-1, 0, 1, 299, 300, 599, 600, 601):
        wall[0] = OPENS.timestamp() + t
        observer.tick(elapsed_s=-1.0)
    assert [(a.action, a.detail.split(":")[0]) for a in audit.recorded] == [
        ("window_opened", "window 0 (overloaded)"), ("window_closed", "window 0 (overloaded)"),
        ("expired", "until/durationS reached"),
    ]  # fmt: skip
    assert counted(audit.metrics, "expired", "schedule") == 1


def test_a_paused_flip_through_the_api_names_its_field_manager(caplog: pytest.LogCaptureFixture) -> None:
    state, clock = ProxyState(named(QUIET, "drill")), FakeClock()
    audit, _ = audit_of(state, caplog)
    watch: ProfileWatch = watch_of(state, clock)
    watch.audit = audit
    managed = [{"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}]
    watch.apply(resource({**QUIET, "paused": True}, version=2, managedFields=managed))
    watch.apply(
        resource(
            QUIET, version=3, annotations={"llmsim.io/kill-switch": "namespace team llmsim.io/paused=true"}
        )
    )
    watch.apply(resource(QUIET, version=4))
    watch.apply(None)
    assert [(a.action, a.source, a.who) for a in audit.recorded] == [
        ("installed", "watch", None), ("paused", "profile", "kubectl-patch"),
        # version 3 changes nothing that applies (still paused, now by the kill switch)
        ("installed", "watch", None), ("resumed", "kill-switch", "namespace team llmsim.io/paused=true"),
        ("failsafe", "watch", None),
    ]  # fmt: skip


async def test_the_admin_port_counts_its_actions_in_metrics(
    proxy_factory: ProxyFactory, upstream: Upstream
) -> None:
    proxy = await proxy_factory()
    assert (await admin(proxy, "POST", "/pause"))[0] == 200
    assert (await admin(proxy, "POST", "/resume"))[0] == 200
    _, text = await admin(proxy, "GET", "/metrics", token=None)
    assert 'llmsim_control_actions_total{action="paused",source="admin-api"} 1.0' in text
    assert 'llmsim_control_actions_total{action="resumed",source="admin-api"} 1.0' in text
    assert proxy.audit.recorded[0].who is not None and "127.0.0.1" in proxy.audit.recorded[0].who
