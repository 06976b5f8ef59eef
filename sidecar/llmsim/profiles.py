"""Loading profiles: files (YAML/JSON, bare spec or a whole SimulationProfile resource), built-in
presets, `extends` resolution, and a registry of named profiles for a serving process."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmsim import spec_documents
from llmsim.api import schedule
from llmsim.api.profile import SimulationProfileSpec
from llmsim.errors import ProfileError, describe_validation_error

DEFAULT_PROFILE_NAME = "default"
_MAX_EXTENDS_DEPTH = 8


@dataclass(frozen=True)
class NamedProfile:
    """A validated profile with the name clients select it by (`x-llmsim-profile`)."""

    name: str
    spec: SimulationProfileSpec
    source: str


def preset_names() -> list[str]:
    """Names of the built-in presets, sorted."""
    folder = resources.files("llmsim") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_document(name: str) -> dict[str, Any]:
    """The raw document of a built-in preset (its comments stay in the file)."""
    path = resources.files("llmsim") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ProfileError(name, [f"no built-in preset named {name!r}; known: {', '.join(preset_names())}"])
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise ProfileError(name, ["preset is not a mapping"])
    return doc


def preset_text(name: str) -> str:
    """The preset file as shipped, comments included."""
    preset_document(name)  # raises for unknown names
    return (resources.files("llmsim") / "presets" / f"{name}.yaml").read_text(encoding="utf-8")


def preset_summary(name: str) -> str:
    """The first comment line of a preset file (its one-line description)."""
    for line in preset_text(name).splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; lists and scalars in `override` replace those in `base`.

    A distribution (a mapping with `type`) is replaced whole when the type changes, so that
    `ttftMs: {type: constant, value: 5}` over a lognormal does not inherit `median`.
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            if "type" in value and old.get("type") != value.get("type"):
                out[key] = dict(value)
            else:
                out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def resolve_extends(doc: Mapping[str, Any], source: str, depth: int = 0) -> dict[str, Any]:
    """Return `doc` with the presets it `extends` merged beneath it (recursively)."""
    if depth > _MAX_EXTENDS_DEPTH:
        raise ProfileError(source, [f"extends: nested deeper than {_MAX_EXTENDS_DEPTH} levels (a cycle?)"])
    names = doc.get("extends") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProfileError(source, ["extends: must be a list of preset names"])
    merged: dict[str, Any] = {}
    for name in names:
        if name not in preset_names():
            raise ProfileError(
                source, [f"extends: no built-in preset named {name!r}; known: {', '.join(preset_names())}"]
            )
        merged = deep_merge(merged, resolve_extends(preset_document(name), f"preset {name}", depth + 1))
    own = {k: v for k, v in doc.items() if k != "extends"}
    result = deep_merge(merged, own)
    result["extends"] = list(names)
    return result


def parse_spec(doc: Any, source: str, prefix: str = "") -> SimulationProfileSpec:
    """Validate a spec mapping (after `extends`), raising ProfileError with field paths."""
    if not isinstance(doc, Mapping):
        raise ProfileError(source, [f"{prefix or '<root>'}: expected a mapping, got {type(doc).__name__}"])
    resolved = resolve_extends(doc, source)
    try:
        return SimulationProfileSpec.model_validate(resolved)
    except ValidationError as exc:
        raise ProfileError(source, describe_validation_error(exc, prefix)) from None


def split_document(doc: Any, source: str, default_name: str) -> tuple[str, Any, str]:
    """Accept a bare spec or a whole SimulationProfile resource; return (name, spec, path prefix)."""
    if isinstance(doc, Mapping) and "kind" in doc:
        if doc.get("kind") != "SimulationProfile":
            raise ProfileError(source, [f"kind: expected SimulationProfile, got {doc.get('kind')!r}"])
        api_version = doc.get("apiVersion")
        if api_version != "llmsim.io/v1alpha1":
            raise ProfileError(source, [f"apiVersion: expected llmsim.io/v1alpha1, got {api_version!r}"])
        meta = doc.get("metadata") or {}
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return str(name or default_name), doc.get("spec") or {}, "spec"
    return default_name, doc, ""


def load_text(text: str, source: str, default_name: str) -> NamedProfile:
    """Parse YAML or JSON text holding one profile (empty text is an error, see `spec_documents`)."""
    try:
        doc = spec_documents.parse_text(text)
    except spec_documents.DocumentError as exc:
        raise ProfileError(source, [str(exc)]) from None
    return _named(doc, source, default_name)


def _named(doc: Any, source: str, default_name: str) -> NamedProfile:
    name, spec_doc, prefix = split_document(doc, source, default_name)
    return NamedProfile(name=name, spec=parse_spec(spec_doc, source, prefix), source=source)


def load_file(path: Path) -> NamedProfile:
    """Load a profile file; its name is `metadata.name` or the file stem. Unreadable, empty,
    non-UTF-8 and over-deep files are ProfileErrors naming the file and the problem."""
    try:
        doc = spec_documents.read_file(path)
    except spec_documents.DocumentError as exc:
        raise ProfileError(str(path), [str(exc)]) from None
    return _named(doc, str(path), path.stem)


def load_preset(name: str) -> NamedProfile:
    """A built-in preset as a profile."""
    return NamedProfile(
        name=name, spec=parse_spec(preset_document(name), f"preset {name}"), source=f"preset:{name}"
    )


def load(ref: str) -> NamedProfile:
    """`ref` is a file path (if it exists or looks like one) or a preset name."""
    path = Path(ref)
    if path.exists() or path.suffix in {".yaml", ".yml", ".json"} or "/" in ref:
        return load_file(path)
    return load_preset(ref)


def default_profile() -> NamedProfile:
    """The profile used when none is given: answers every model, realistic latency, no faults."""
    return NamedProfile(name=DEFAULT_PROFILE_NAME, spec=SimulationProfileSpec(), source="builtin:default")


def dump_spec(spec: SimulationProfileSpec) -> dict[str, Any]:
    """Serialise a spec the way files and custom resources hold it (camelCase, JSON-compatible)."""
    out: dict[str, Any] = json.loads(spec.model_dump_json(by_alias=True, exclude_none=True))
    return out


def expiry(spec: SimulationProfileSpec, created: dt.datetime | None) -> dt.datetime | None:
    """When a SimulationProfile resource stops perturbing: `until`, or `durationS` after its
    creation, whichever comes first."""
    candidates = [t for t in (spec.until,) if t is not None]
    if spec.duration_s is not None and created is not None:
        candidates.append(created + dt.timedelta(seconds=spec.duration_s))
    return min(candidates) if candidates else None


def anchored_doc(spec: SimulationProfileSpec, created: dt.datetime | None) -> dict[str, Any]:
    """A SimulationProfile resource's spec as its sidecars run it: `extends` resolved, relative
    fault windows made absolute from the resource's creation (`startAt` = creation + `startS`),
    and the expiry made absolute (`until`). So every sidecar, also one started late or restarted,
    opens, closes and expires at the same instants, whether it reads the rendered ConfigMap or the
    resource itself."""
    doc = dump_spec(spec)
    doc.pop("extends", None)
    faults = doc.get("faults") or {}
    if created is not None and faults.get("windows"):
        faults["windows"] = [schedule.absolute_from(w, created) for w in faults["windows"]]
    until = expiry(spec, created)
    if until is not None:
        doc["until"] = until.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return doc


def anchored(spec: SimulationProfileSpec, created: dt.datetime | None) -> SimulationProfileSpec:
    """`anchored_doc` as a spec; pydantic's ValidationError when it no longer validates (a window
    moved past `until`, say)."""
    return SimulationProfileSpec.model_validate(anchored_doc(spec, created))


class ProfileRegistry:
    """The named profiles a serving process knows; one of them is the default."""

    def __init__(self, default: NamedProfile, others: list[NamedProfile] | None = None) -> None:
        self._profiles: dict[str, NamedProfile] = {default.name: default}
        self.default_name = default.name
        for profile in others or []:
            self._profiles[profile.name] = profile

    def get(self, name: str | None) -> NamedProfile:
        """The named profile (presets are loaded on first use); KeyError for unknown names."""
        if not name:
            return self._profiles[self.default_name]
        if name not in self._profiles:
            if name in preset_names():
                self._profiles[name] = load_preset(name)
            else:
                raise KeyError(name)
        return self._profiles[name]

    @property
    def default(self) -> NamedProfile:
        return self._profiles[self.default_name]

    def replace(self, profile: NamedProfile, make_default: bool = False) -> None:
        """Install or replace a profile (hot reload)."""
        self._profiles[profile.name] = profile
        if make_default:
            self.default_name = profile.name

    def names(self) -> list[str]:
        return sorted(self._profiles)
