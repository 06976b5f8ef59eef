"""Two replicas of the chart's Deployment share one environment, yet must get distinct kopf peering
priorities (kopf pauses every operator whose live peers share its priority)."""

from __future__ import annotations

import kopf
import pytest

from llmsim_operator.handlers import startup
from llmsim_operator.settings import OperatorSettings


async def priority_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> int:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = kopf.OperatorSettings()
    startup.configure_kopf(settings, OperatorSettings())
    return int(settings.peering.priority)


async def test_replicas_with_the_same_environment_draw_different_priorities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drawn = {await priority_with(monkeypatch) for _ in range(5)}
    assert len(drawn) == 5  # 1-in-a-million collisions per pair
    assert all(p > 0 for p in drawn)  # above kopf's default 0: outranks a stray unconfigured operator


async def test_a_fixed_priority_is_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await priority_with(monkeypatch, LLMSIM_OPERATOR_PEERING_PRIORITY="100") == 100
