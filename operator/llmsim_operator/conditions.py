"""Status conditions, pure: set one, keeping `lastTransitionTime` when its status did not change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from llmsim.api.status import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def parse(items: Sequence[dict[str, Any]] | None) -> list[Condition]:
    out: list[Condition] = []
    for item in items or []:
        try:
            out.append(Condition.model_validate(item))
        except ValueError:
            continue
    return out


def set_condition(
    current: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: dt.datetime,
    generation: int | None,
) -> list[Condition]:
    """`current` with condition `type_` set (appended if new)."""
    out: list[Condition] = []
    found = False
    for cond in current:
        if cond.type != type_:
            out.append(cond)
            continue
        found = True
        since = cond.last_transition_time if cond.status == status and cond.last_transition_time else now
        out.append(Condition(type=type_, status=status, reason=reason, message=message,
                             last_transition_time=since, observed_generation=generation))  # fmt: skip
    if not found:
        out.append(Condition(type=type_, status=status, reason=reason, message=message,
                             last_transition_time=now, observed_generation=generation))  # fmt: skip
    return out


def dump(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in conditions]
