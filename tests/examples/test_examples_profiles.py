"""The example profiles say what their comments promise, and the copies kept for kustomize stay equal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from examplefiles import EXAMPLES
from manifests import load_documents
from served import ServedApp

from llmsim import profiles
from llmsim.api.faults import FaultType
from llmsim.api.profile import Mode
from llmsim.server.app import create_app

PROFILES = EXAMPLES / "profiles"


def load(name: str) -> profiles.NamedProfile:
    return profiles.load_file(PROFILES / f"{name}.yaml")


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_profile_is_named_after_its_file_and_explains_itself(path: Path) -> None:
    assert profiles.load_file(path).name == path.stem
    assert path.read_text(encoding="utf-8").startswith("# ")


def test_happy_path_has_no_faults_and_a_bounded_ttft() -> None:
    spec = load("happy-path").spec
    assert spec.mode is Mode.SIMULATE
    assert spec.faults.rates == {} and spec.faults.windows == [] and spec.faults.rate_limits is None
    assert spec.latency.ttft_ms.max == 2000


def test_rate_limited_limits_per_key_and_adds_random_429s() -> None:
    faults = load("rate-limited").spec.faults
    assert faults.rate_limits is not None
    assert faults.rate_limits.requests_per_minute == 60
    assert faults.rate_limits.key_by == ["api_key", "model"]
    assert set(faults.rates) == {FaultType.RATE_LIMIT}


def test_degraded_streaming_only_injects_stream_faults() -> None:
    spec = load("degraded-streaming").spec
    stream_faults = {
        FaultType.SLOW_STREAM,
        FaultType.DISCONNECT,
        FaultType.MIDSTREAM_ERROR,
        FaultType.MALFORMED_CHUNK,
    }
    assert set(spec.faults.rates) == stream_faults
    assert spec.latency.capacity is not None


def test_outage_window_repeats_so_any_long_run_crosses_an_outage_and_a_recovery() -> None:
    (window,) = load("outage-window").spec.faults.windows
    assert window.fault is FaultType.OVERLOADED and window.probability == 1.0
    assert window.every_s is not None
    # The failover drill runs 240 s: it must contain a whole window and a healthy stretch after it.
    drill = load_documents(EXAMPLES / "failover" / "loadscenario.yaml")[0]["spec"]["durationS"]
    assert window.start_s + window.duration_s < window.every_s <= drill - window.duration_s


def test_gateway_guardrails_requires_test_keys_and_refuses_and_filters_some_answers() -> None:
    import re

    faults = load("gateway-guardrails").spec.faults
    assert faults.require_key is not None
    assert re.fullmatch(faults.require_key.pattern, "sk-test-abc123")
    assert not re.fullmatch(faults.require_key.pattern, "sk-live-abc123")
    assert set(faults.rates) == {FaultType.REFUSAL, FaultType.CONTENT_FILTER, FaultType.PROMPT_FILTER}
    assert sum(faults.rates.values()) <= 0.1 and faults.rate_limits is None
    assert faults.rate_limit_headers.enabled and faults.rate_limit_headers.requests_per_minute == 60


def test_perturb_live_traffic_is_limited_in_every_way() -> None:
    spec = load("perturb-live-traffic").spec
    assert spec.mode is Mode.PERTURB
    assert spec.percentage < 100 and spec.duration_s is not None and spec.match and spec.selector is not None
    assert spec.paused is False


@pytest.mark.parametrize(
    ("copy", "original"),
    [
        ("demo-app/profile.yaml", "profiles/happy-path.yaml"),
        ("failover/primary-profile.yaml", "profiles/outage-window.yaml"),
        ("failover/secondary-profile.yaml", "profiles/happy-path.yaml"),
    ],
)
def test_copies_for_kustomize_equal_their_originals(copy: str, original: str) -> None:
    a, b = profiles.load_file(EXAMPLES / copy), profiles.load_file(EXAMPLES / original)
    assert a.spec == b.spec


def test_scripted_tool_flow_runs_its_three_turns_through_the_openai_sdk() -> None:
    tools: list[Any] = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}
        for name in ("get_weather", "to_fahrenheit")
    ]
    results = {"get_weather": "-3 C and windy", "to_fahrenheit": "27"}
    registry = profiles.ProfileRegistry(load("scripted-tool-flow"))
    with ServedApp(create_app(registry)) as served:
        c = openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0)
        messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
        seen = []
        for _ in range(5):
            message = c.chat.completions.create(model="m", messages=messages, tools=tools).choices[0].message
            if not message.tool_calls:
                break
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                fn = call.function  # type: ignore[union-attr]
                seen.append((fn.name, json.loads(fn.arguments)))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": results[fn.name]})
    assert seen == [("get_weather", {"city": "Oslo"}), ("to_fahrenheit", {"celsius": -3})]
    assert message.content == "It is 27 °F in Oslo."


def test_the_fleet_drill_opens_at_14_berlin_time_on_weekdays_for_every_replica() -> None:
    import datetime as dt

    from llmsim.api import schedule

    spec = load("fleet-outage-drill").spec
    overloaded, slow = spec.faults.windows
    assert spec.mode is Mode.PERTURB and spec.until is not None
    assert schedule.is_absolute(overloaded) and (overloaded.cron, overloaded.time_zone) == (
        slow.cron,
        slow.time_zone,
    )
    # Monday 2027-01-04, winter time: 14:00 in Berlin is 13:00Z; Saturday opens nothing
    monday = dt.datetime(2027, 1, 4, 13, 2, tzinfo=dt.UTC).timestamp()
    saturday = dt.datetime(2027, 1, 9, 13, 2, tzinfo=dt.UTC).timestamp()
    assert schedule.is_open(overloaded, elapsed_s=0, now_unix=monday)
    assert not schedule.is_open(overloaded, elapsed_s=0, now_unix=saturday)
    assert schedule.open_at(overloaded, monday) == schedule.open_at(slow, monday)
