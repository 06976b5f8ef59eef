from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from llmsim import profiles
from llmsim.api.profile import Mode, SimulationProfileSpec
from llmsim.headers import parse_mode
from llmsim.proxy.facts import RequestInfo
from llmsim.proxy.safety import decide

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def spec(**doc: Any) -> SimulationProfileSpec:
    return profiles.parse_spec({"mode": "perturb", **doc}, "test")


def info(model: str | None = "gpt-4o", stream: bool = True, request_id: str | None = None) -> RequestInfo:
    return RequestInfo(
        "api.openai.com", 443, "POST", "/v1/chat/completions", "openai", model, stream, request_id
    )


def run(s: SimulationProfileSpec, i: RequestInfo | None = None, **kw: Any) -> tuple[Mode, str]:
    args: dict[str, Any] = {
        "requested": None,
        "paused": False,
        "activated_at": T0,
        "now": T0,
        "fallback_key": "x",
    }
    args.update(kw)
    d = decide(s, i or info(), **args)
    return d.mode, d.reason


def test_profile_mode_applies_by_default_and_the_header_wins() -> None:
    assert run(spec()) == (Mode.PERTURB, "profile")
    assert run(spec(), requested=Mode.SIMULATE) == (Mode.SIMULATE, "header")
    assert run(spec(), default_mode=Mode.SIMULATE) == (Mode.SIMULATE, "profile")


def test_kill_switches_pass_everything_through() -> None:
    assert run(spec(), paused=True) == (Mode.PASSTHROUGH, "paused")
    assert run(spec(paused=True), requested=Mode.SIMULATE) == (Mode.PASSTHROUGH, "paused")


def test_duration_and_until_expire_the_profile() -> None:
    s = spec(durationS=60)
    assert run(s, now=T0 + dt.timedelta(seconds=59))[0] is Mode.PERTURB
    assert run(s, now=T0 + dt.timedelta(seconds=60)) == (Mode.PASSTHROUGH, "expired")
    u = spec(until="2026-11-26T12:30:00Z")
    assert run(u, now=T0 + dt.timedelta(minutes=29))[0] is Mode.PERTURB
    assert run(u, now=T0 + dt.timedelta(minutes=30)) == (Mode.PASSTHROUGH, "expired")


@pytest.mark.parametrize(
    ("rule", "request_info", "applies"),
    [
        ({"models": ["gpt-4o*"]}, info("gpt-4o-mini"), True),
        ({"models": ["claude-*"]}, info("gpt-4o"), False),
        ({"models": ["gpt-*"]}, info(None), False),
        ({"stream": False}, info(stream=True), False),
        ({"stream": True}, info(stream=True), True),
        ({"hosts": ["*.openai.com"], "paths": ["/v1/chat/*"]}, info(), True),
        ({"hosts": ["api.anthropic.com"]}, info(), False),
    ],
)
def test_match_rules_narrow_perturbation(
    rule: dict[str, Any], request_info: RequestInfo, applies: bool
) -> None:
    mode, reason = run(spec(match=[rule]), request_info)
    assert (mode is Mode.PERTURB) is applies
    if not applies:
        assert reason == "unmatched"


def test_percentage_is_seeded_by_request_id_and_close_to_the_share() -> None:
    s = spec(percentage=25, seed=9)
    decisions = [run(s, info(request_id=f"req-{i}"))[0] for i in range(2000)]
    again = [run(s, info(request_id=f"req-{i}"))[0] for i in range(2000)]
    assert decisions == again  # same id, same decision (on every replica)
    share = decisions.count(Mode.PERTURB) / len(decisions)
    assert abs(share - 0.25) < 4 * (0.25 * 0.75 / 2000) ** 0.5


def test_passthrough_needs_no_gate() -> None:
    assert run(spec(), requested=Mode.PASSTHROUGH, paused=True) == (Mode.PASSTHROUGH, "header")


def test_bad_mode_header_is_named() -> None:
    assert parse_mode(" Simulate ") is Mode.SIMULATE
    assert parse_mode(None) is None
    with pytest.raises(ValueError, match="x-simulation-mode"):
        parse_mode("chaos")
