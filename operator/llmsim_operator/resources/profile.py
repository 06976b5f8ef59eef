"""The ConfigMap a SimulationProfile renders into, mounted by its sidecars."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from llmsim import profiles
from llmsim.api.profile import SimulationProfileSpec
from llmsim_operator import constants as c
from llmsim_operator.resources import names


def expiry(spec: SimulationProfileSpec, created: dt.datetime | None) -> dt.datetime | None:
    """When the profile stops perturbing: `until`, or `durationS` after the resource's creation,
    whichever comes first. Rendered as an absolute `until` so that every sidecar (also one started
    late, or restarted) expires at the same moment."""
    candidates = [t for t in (spec.until,) if t is not None]
    if spec.duration_s is not None and created is not None:
        candidates.append(created + dt.timedelta(seconds=spec.duration_s))
    return min(candidates) if candidates else None


def render(name: str, spec: SimulationProfileSpec, created: dt.datetime | None) -> str:
    """profile.yaml: a whole SimulationProfile document (so the sidecar knows the name), with
    `extends` already resolved and the expiry made absolute."""
    doc = profiles.dump_spec(spec)
    doc.pop("extends", None)
    until = expiry(spec, created)
    if until is not None:
        doc["until"] = until.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
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
