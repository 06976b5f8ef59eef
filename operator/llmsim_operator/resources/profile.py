"""The ConfigMap a SimulationProfile renders into, mounted by its sidecars."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from llmsim import profiles
from llmsim.api import schedule
from llmsim.api.profile import SimulationProfileSpec
from llmsim.api.status import WindowStatus
from llmsim_operator import constants as c
from llmsim_operator.resources import names


def expiry(spec: SimulationProfileSpec, created: dt.datetime | None) -> dt.datetime | None:
    """When the profile stops perturbing (see `profiles.expiry`); rendered as an absolute `until`."""
    return profiles.expiry(spec, created)


def absolute_spec(spec: SimulationProfileSpec, created: dt.datetime | None) -> SimulationProfileSpec:
    """What the sidecars run (`profiles.anchored`)."""
    return profiles.anchored(spec, created)


def next_window(spec: SimulationProfileSpec, now: dt.datetime) -> WindowStatus | None:
    """The window of an absolute spec open at `now`, else the next to open (before the expiry)."""
    t = now.timestamp()
    best: tuple[schedule.Occurrence, int] | None = None
    for index, window in enumerate(spec.faults.windows):
        if not schedule.is_absolute(window):
            continue
        found = schedule.next_at(window, t)
        if found is None or (spec.until is not None and found.start >= spec.until.timestamp()):
            continue
        if best is None or (found.contains(t), -found.start) > (best[0].contains(t), -best[0].start):
            best = (found, index)
    if best is None:
        return None
    found, index = best
    return WindowStatus(
        index=index,
        fault=spec.faults.windows[index].fault.value,
        starts_at=dt.datetime.fromtimestamp(found.start, dt.UTC),
        ends_at=dt.datetime.fromtimestamp(found.end, dt.UTC),
        open=found.contains(t),
    )


def render(name: str, spec: SimulationProfileSpec, created: dt.datetime | None) -> str:
    """profile.yaml: a whole SimulationProfile document (so the sidecar knows the name), as
    `profiles.anchored_doc` makes it."""
    doc = profiles.anchored_doc(spec, created)
    resource = {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "SimulationProfile",
        "metadata": {"name": name},
        "spec": doc,
    }
    text: str = yaml.safe_dump(resource, sort_keys=False)
    return text


def config_map(
    name: str, namespace: str, spec: SimulationProfileSpec, created: dt.datetime | None
) -> dict[str, Any]:
    """The profile's ConfigMap (the caller adopts it: ownerReferences to the profile)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.profile_config_map(name),
            "namespace": namespace,
            "labels": {c.PROFILE_LABEL: name, c.MANAGED_BY_LABEL: c.MANAGED_BY},
        },
        "data": {c.PROFILE_FILE: render(name, spec, created)},
    }


def window_events(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(message, reason) of the window transitions between two `status.nextWindow` values."""
    events: list[tuple[str, str]] = []
    was_open = before is not None and before.get("open")
    same = before is not None and after is not None and (
        before.get("index"), before.get("startsAt")) == (after.get("index"), after.get("startsAt"))  # fmt: skip
    if was_open and not (same and after is not None and after.get("open")):
        assert before is not None
        events.append((
            f"fault window {before['index']} ({before['fault']}) closed at {before['endsAt']}", "WindowClosed"
        ))  # fmt: skip
    if after is not None and after.get("open") and not (same and was_open):
        events.append((
            f"fault window {after['index']} ({after['fault']}) opened at {after['startsAt']}, "
            f"until {after['endsAt']}",
            "WindowOpened",
        ))  # fmt: skip
    return events
