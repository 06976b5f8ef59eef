"""A container's environment and command line, resolved the way the kubelet does: the image's
environment, the `kubernetes` Service variables, `envFrom` (ConfigMaps, Secrets, with prefix), then
`env` in order (`value` with `$(VAR)` expansion of earlier variables, `valueFrom` fieldRef /
resourceFieldRef / configMapKeyRef / secretKeyRef), and `$(VAR)` expansion in command and args
(`$$` escapes). Pure: objects come from a lookup function.

A missing ConfigMap/Secret/key that is not `optional` raises ConfigError, which the runner reports
as the kubelet does (`CreateContainerConfigError`, the container waits)."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Lookup = Callable[[str, str], dict[str, Any] | None]
"""(kind `configmaps`/`secrets`, name) -> the object in the pod's namespace, or None."""

_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


class ConfigError(ValueError):
    """A reference the container's environment needs and cannot have."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known variables are replaced, unknown ones kept, `$$` -> `$`."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(sub, text)


def _data(obj: dict[str, Any], kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


def field_value(pod: Mapping[str, Any], path: str) -> str:
    """A downward-API fieldRef."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ConfigError(f"fieldRef.fieldPath {path!r} is not supported by the pod runner")


_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def _quantity(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    if not match or (match.group(2) and match.group(2) not in _SUFFIX):
        raise ConfigError(f"cannot read quantity {text!r}")
    return float(match.group(1)) * _SUFFIX.get(match.group(2), 1.0)


def resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    """resourceFieldRef (rounded up to the divisor, as the kubelet does)."""
    kind, name = str(ref["resource"]).split(".", 1)
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        raise ConfigError(f"resourceFieldRef {ref['resource']}: the container sets no {kind}.{name}")
    divisor = _quantity(str(ref.get("divisor", "1")))
    return str(math.ceil(_quantity(str(value)) / divisor))


def _key_ref(ref: Mapping[str, Any], kind: str, lookup: Lookup, var: str) -> str | None:
    obj = lookup(kind, ref["name"])
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f"env {var}: {kind[:-1]} {ref['name']!r} not found")
    data = _data(obj, kind)
    if ref["key"] not in data:
        if optional:
            return None
        raise ConfigError(f"env {var}: key {ref['key']!r} not in {kind[:-1]} {ref['name']!r}")
    return data[ref["key"]]


def environment(
    pod: Mapping[str, Any], container: Mapping[str, Any], base: Mapping[str, str], lookup: Lookup
) -> dict[str, str]:
    """The container's variables (`base`: the image's and the Service variables)."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for field, kind in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            if field not in source:
                continue
            ref = source[field]
            obj = lookup(kind, ref["name"])
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f"envFrom: {kind[:-1]} {ref['name']!r} not found")
            env.update({prefix + k: v for k, v in _data(obj, kind).items()})
    for var in container.get("env") or []:
        name = var["name"]
        source = var.get("valueFrom")
        value: str | None
        if source is None:
            value = expand(str(var.get("value", "")), env)
        elif "fieldRef" in source:
            value = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"])
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], "configmaps", lookup, name)
        elif "secretKeyRef" in source:
            value = _key_ref(source["secretKeyRef"], "secrets", lookup, name)
        else:
            raise ConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


def command_line(
    container: Mapping[str, Any], image_entrypoint: list[str], env: Mapping[str, str]
) -> list[str]:
    """command + args ($(VAR) expanded); without `command`, the image's entrypoint."""
    command = list(container.get("command") or image_entrypoint)
    args = list(container.get("args") or [])
    argv = [expand(str(part), env) for part in command + args]
    if not argv:
        raise ConfigError(f"container {container['name']}: no command and the image has no entrypoint")
    return argv
