"""Bounded metric labels: every label value comes from a small, known set.

Model names are the one open-ended label. `ModelLabeler` normalises a name (surrounding white
space dropped; a name that is empty, longer than 128 characters or has characters outside
`A-Z a-z 0-9 . _ : / @ + -` is `other`), lets the names a profile knows through (listed models,
aliases and allow patterns without wildcards), admits the first `limit` other names it sees, and
maps every name after that to `other`. Provider, mode and outcome values outside their closed sets
become `other` too. No label carries a request, session or trace id.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode, Provider, SimulationProfileSpec
from llmsim.providers.base import ErrorKind

OTHER = "other"
"""The label value that absorbs everything outside the bounded sets."""

OK = "ok"
"""Outcome of a request answered without error."""
CANCELLED = "cancelled"
"""Outcome of a request whose client went away before the answer was complete."""
ERROR = "error"
"""Outcome of a failure that has no finer class (e.g. an upstream transport error)."""
INTERNAL_ERROR = "internal_error"
"""Outcome of a request that llmsim itself failed to process (answered with a provider 500)."""

PROVIDERS = frozenset(p.value for p in Provider if p is not Provider.ANY) | {"llmsim"}
MODES = frozenset(m.value for m in Mode)
_ERROR_KINDS = frozenset(kind.value for kind in ErrorKind)
"""The provider-neutral error kinds (`providers.base.ErrorKind`)."""
OUTCOMES = (
    frozenset({OK, CANCELLED, ERROR, INTERNAL_ERROR})
    | _ERROR_KINDS
    | {f.value for f in FaultType if f is not FaultType.NONE}
)
"""`ok`, `cancelled`, `error`, the provider-neutral error kinds and the fault types."""
FAULTS = frozenset(f.value for f in FaultType if f is not FaultType.NONE)
DIRECTIONS = frozenset({"input", "output"})

DEFAULT_MODEL_LIMIT = 50
"""Distinct model names (beyond the profile's own) that get their own series."""
_MAX_NAME_LENGTH = 128
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
"""What a model (or Azure deployment) name looks like: e.g. `gpt-4o-2024-08-06`, `llama3.1:8b`,
`models/gemini-2.0-flash`, `claude-3-5-sonnet@20240620`. Anything else (prompts pasted into the
field, JSON, control characters) gets no series of its own."""


def normalise_model(name: str | None) -> str | None:
    """The label form of a model name, or None when it does not look like one."""
    if name is None:
        return None
    name = name.strip()
    if len(name) > _MAX_NAME_LENGTH or not _MODEL_NAME.fullmatch(name):
        return None
    return name


def bounded(value: str | None, allowed: frozenset[str]) -> str:
    """`value` when it is in `allowed`, else `other`."""
    return value if value is not None and value in allowed else OTHER


def provider_label(value: str | None) -> str:
    return bounded(value, PROVIDERS)


def mode_label(value: str | None) -> str:
    return bounded(value, MODES)


def outcome_label(value: str | None) -> str:
    return bounded(value, OUTCOMES)


def fault_label(value: str | None) -> str:
    return bounded(value, FAULTS)


def known_models(specs: Iterable[SimulationProfileSpec]) -> set[str]:
    """Model names the profiles name explicitly: listed models, aliases (both sides), literal allows."""
    names: set[str] = set()
    for spec in specs:
        names.update(spec.models.listed)
        names.update(spec.models.aliases)
        names.update(spec.models.aliases.values())
        names.update(p for p in spec.models.allow if not any(ch in p for ch in "*?["))
    return names


class ModelLabeler:
    """Maps model names to label values with a hard bound on distinct values.

    Thread-safe; the bound is `len(known) + 2 * limit + 1` values (`other` included): the names
    known up front, up to `limit` names declared later (`add_known`), the first `limit` other
    names seen, and `other`.
    """

    def __init__(self, known: Iterable[str] = (), limit: int = DEFAULT_MODEL_LIMIT) -> None:
        if limit < 0:
            raise ValueError(f"model label limit must be >= 0, got {limit}")
        self._known = {n for n in map(normalise_model, known) if n is not None}
        self._extra: set[str] = set()
        self._limit = limit
        self._declared = 0
        self._lock = threading.Lock()

    def add_known(self, names: Iterable[str]) -> None:
        """Declare more names as known (e.g. a session's inline profile).

        At most `limit` names are declared this way over the labeler's life, so that creating
        sessions cannot grow the series count without bound either.
        """
        with self._lock:
            for raw in names:
                if self._declared >= self._limit:
                    return
                name = normalise_model(raw)
                if name is not None and name not in self._known:
                    self._known.add(name)
                    self._declared += 1

    def __call__(self, raw: str | None) -> str:
        model = normalise_model(raw)
        if model is None:
            return OTHER
        if model in self._known or model in self._extra:
            return model
        with self._lock:
            if model in self._extra:
                return model
            if len(self._extra) < self._limit:
                self._extra.add(model)
                return model
        return OTHER

    @property
    def distinct(self) -> int:
        """How many distinct non-`other` values have been handed out or declared."""
        return len(self._known) + len(self._extra)
