"""A pod's volumes as directories, written the way the kubelet's atomic writer does for ConfigMap,
Secret and projected volumes: the files live in a timestamped `..<ts>` directory, `..data` is a
symlink to it and every user-visible name is a symlink through `..data`; an update writes a new
`..<ts>` directory and swaps `..data` with one rename, so a reader never sees half an update (and a
watcher that polls the file's content sees the change). `emptyDir` is a plain directory.

`sync()` recomputes every volume's payload from the API (ConfigMaps, Secrets, service-account
tokens by TokenRequest) and swaps only when it changed; the runner calls it at its sync period,
standing in for the kubelet's periodic pod sync (about a minute on a node; configurable here)."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pod_env import ConfigError, field_value

Lookup = Callable[[str, str], dict[str, Any] | None]
TokenFor = Callable[[str, str | None, int], str]
"""(service account, audience, expirationSeconds) -> a TokenRequest token."""

Payload = dict[str, tuple[bytes, int]]
"""relative path -> (content, mode)"""


def _object_files(obj: Mapping[str, Any], kind: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        out[key] = base64.b64decode(value) if kind == "secrets" else str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        out[key] = base64.b64decode(value)
    return out


def _project(source: Mapping[str, Any], kind: str, default_mode: int, lookup: Lookup, what: str) -> Payload:
    name = source.get("name") or source.get("secretName")
    obj = lookup(kind, str(name))
    optional = bool(source.get("optional"))
    if obj is None:
        if optional:
            return {}
        raise ConfigError(f"volume {what}: {kind[:-1]} {name!r} not found")
    files = _object_files(obj, kind)
    mode = int(source.get("defaultMode", default_mode))
    items = source.get("items")
    if not items:
        return {key: (data, mode) for key, data in files.items()}
    out: Payload = {}
    for item in items:
        if item["key"] not in files:
            if optional:
                continue
            raise ConfigError(f"volume {what}: key {item['key']!r} not in {kind[:-1]} {name!r}")
        out[item["path"]] = (files[item["key"]], int(item.get("mode", mode)))
    return out


def payload(
    pod: Mapping[str, Any], volume: Mapping[str, Any], lookup: Lookup, token_for: TokenFor
) -> Payload | None:
    """The files of a ConfigMap/Secret/projected/downwardAPI volume; None for emptyDir."""
    name = volume["name"]
    if "emptyDir" in volume:
        return None
    if "configMap" in volume:
        return _project(volume["configMap"], "configmaps", 0o644, lookup, name)
    if "secret" in volume:
        return _project(volume["secret"], "secrets", 0o644, lookup, name)
    if "projected" in volume:
        spec = volume["projected"]
        mode = int(spec.get("defaultMode", 0o644))
        out: Payload = {}
        for source in spec.get("sources") or []:
            if "configMap" in source:
                out.update(_project(source["configMap"], "configmaps", mode, lookup, name))
            elif "secret" in source:
                out.update(_project(source["secret"], "secrets", mode, lookup, name))
            elif "serviceAccountToken" in source:
                sat = source["serviceAccountToken"]
                account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
                token = token_for(account, sat.get("audience"), int(sat.get("expirationSeconds", 3600)))
                out[sat["path"]] = (token.encode(), mode)
            elif "downwardAPI" in source:
                out.update(_downward(pod, source["downwardAPI"], mode))
            else:
                raise ConfigError(f"volume {name}: unsupported projected source {sorted(source)}")
        return out
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        return _downward(pod, spec, int(spec.get("defaultMode", 0o644)))
    raise ConfigError(
        f"volume {name}: type {sorted(set(volume) - {'name'})} is not supported by the pod runner"
    )


def _downward(pod: Mapping[str, Any], spec: Mapping[str, Any], mode: int) -> Payload:
    out: Payload = {}
    for item in spec.get("items") or []:
        if "fieldRef" not in item:
            raise ConfigError(f"downwardAPI item {item.get('path')}: only fieldRef is supported")
        out[item["path"]] = (
            field_value(pod, item["fieldRef"]["fieldPath"]).encode(),
            int(item.get("mode", mode)),
        )
    return out


def _current(root: Path) -> Payload:
    data = root / "..data"
    if not data.is_symlink():
        return {}
    target = root / os.readlink(data)
    out: Payload = {}
    for path in target.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(target))] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return out


def write_atomic(root: Path, files: Payload) -> bool:
    """Install `files` under `root` the atomic-writer way; False when nothing changed."""
    root.mkdir(parents=True, exist_ok=True)
    if (root / "..data").is_symlink() and _current(root) == files:
        return False
    stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    fresh = root / stamp
    fresh.mkdir()
    for rel, (content, mode) in files.items():
        path = fresh / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old = os.readlink(root / "..data") if (root / "..data").is_symlink() else None
    tmp = root / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(stamp)
    tmp.rename(root / "..data")  # the swap: one rename(2)
    tops = {rel.split("/", 1)[0] for rel in files}
    for entry in root.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    for top in tops:
        link = root / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    if old is not None and old != stamp:
        shutil.rmtree(root / old, ignore_errors=True)
    return True


def sync(pod: Mapping[str, Any], root: Path, lookup: Lookup, token_for: TokenFor) -> list[str]:
    """Create or update every volume of the pod under `root/<volume>`; the names that changed.
    Raises ConfigError (nothing half-done for that volume) when a source is missing."""
    changed: list[str] = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        target = root / volume["name"]
        files = payload(pod, volume, lookup, token_for)
        if files is None:
            if not target.exists():
                target.mkdir(parents=True)
                target.chmod(0o777)  # the kubelet's emptyDir mode
                changed.append(volume["name"])
        elif write_atomic(target, files):
            target.chmod(0o755)
            changed.append(volume["name"])
    return changed
