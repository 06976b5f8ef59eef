"""The SimulationProfile spec: defaults, validation errors with field paths, presets, extends."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmsim import profiles
from llmsim.api.distributions import Constant, Empirical, LogNormal
from llmsim.api.profile import SimulationProfileSpec
from llmsim.errors import ProfileError

ROOT = Path(__file__).resolve().parents[2]


def problems(doc: object) -> list[str]:
    with pytest.raises(ProfileError) as info:
        profiles.parse_spec(doc, "test")
    return info.value.problems


def test_empty_spec_is_the_default_profile_that_answers_every_model() -> None:
    spec = profiles.parse_spec({}, "test")
    assert spec.models.allow == ["*"] and spec.models.strict is False
    assert isinstance(spec.latency.ttft_ms, LogNormal)
    assert spec.faults.rates == {}


def test_unknown_keys_are_rejected_with_their_path() -> None:
    assert problems({"latency": {"ttftMS": {"type": "constant", "value": 1}}}) == [
        "latency.ttftMS: unknown field (not part of the schema; check the spelling)"
    ]


def test_invalid_values_name_the_field_path_and_the_problem() -> None:
    found = problems({"latency": {"ttftMs": {"type": "lognormal", "median": -3, "sigma": 0.2}}})
    assert len(found) == 1
    assert found[0].startswith("latency.ttftMs.lognormal.median: ")
    assert "greater than 0" in found[0]


def test_unknown_distribution_type_is_rejected() -> None:
    [problem] = problems({"latency": {"itlMs": {"type": "weibull", "k": 1}}})
    assert problem.startswith("latency.itlMs: ") and "weibull" in problem


def test_fault_rates_must_sum_to_at_most_one() -> None:
    [problem] = problems({"faults": {"rates": {"rate_limit": 0.7, "server_error": 0.6}}})
    assert "sum to 1.3" in problem


def test_empirical_percentiles_must_not_decrease() -> None:
    [problem] = problems(
        {"latency": {"ttftMs": {"type": "empirical", "percentiles": {"p50": 300, "p90": 200}}}}
    )
    assert "p90=200.0 < p50=300.0" in problem


def test_bad_percentile_key_is_named() -> None:
    [problem] = problems(
        {"latency": {"ttftMs": {"type": "empirical", "percentiles": {"median": 300, "p90": 400}}}}
    )
    assert "'median'" in problem


def test_content_rule_regex_is_checked() -> None:
    [problem] = problems({"content": {"rules": [{"match": "(unclosed", "reply": "x"}]}})
    assert problem.startswith("content.rules[0].match: ") and "regular expression" in problem


def test_until_needs_a_time_zone() -> None:
    [problem] = problems({"until": "2026-01-01T00:00:00"})
    assert problem.startswith("until: ") and "time zone" in problem


def test_snake_case_names_work_in_python_and_camel_case_in_files() -> None:
    spec = SimulationProfileSpec(latency={"ttft_ms": Constant(value=5)})  # type: ignore[arg-type]
    assert profiles.dump_spec(spec)["latency"]["ttftMs"] == {"type": "constant", "value": 5.0}


@pytest.mark.parametrize("name", profiles.preset_names())
def test_every_preset_loads_and_validates(name: str) -> None:
    profile = profiles.load_preset(name)
    assert profile.name == name
    assert profiles.preset_summary(name), "every preset starts with a one-line description comment"


def test_presets_cover_the_required_names() -> None:
    required = {"gpt-4-turbo-default", "gpt-4-default", "production-realistic", "production-stable",
                "minimal-errors", "production-error-rate", "degraded", "outage"}  # fmt: skip
    assert required <= set(profiles.preset_names())
    model_presets = [n for n in profiles.preset_names() if "Source:" in profiles.preset_text(n)]
    assert len(model_presets) >= 6


def test_extends_merges_presets_beneath_the_spec() -> None:
    spec = profiles.parse_spec(
        {"extends": ["gpt-4o", "degraded"], "latency": {"itlMs": {"type": "constant", "value": 3}}}, "t"
    )
    assert spec.latency.itl_ms == Constant(value=3)
    assert isinstance(spec.latency.ttft_ms, LogNormal) and spec.latency.ttft_ms.median == 450
    assert spec.faults.rates  # from degraded


def test_extends_unknown_preset_is_reported() -> None:
    [problem] = problems({"extends": ["gpt-99"]})
    assert "gpt-99" in problem and "known:" in problem


def test_a_changed_distribution_type_replaces_the_inherited_one() -> None:
    spec = profiles.parse_spec(
        {
            "extends": ["gpt-4o"],
            "latency": {"ttftMs": {"type": "empirical", "percentiles": {"p50": 1, "p99": 2}}},
        },
        "t",
    )
    assert isinstance(spec.latency.ttft_ms, Empirical)


def test_whole_custom_resource_and_bare_spec_files_both_load(tmp_path: Path) -> None:
    fixed = profiles.load_file(ROOT / "examples/profiles/fixed-latency.yaml")
    assert fixed.name == "fixed-latency"
    bare = tmp_path / "bare.yaml"
    bare.write_text("seed: 3\n")
    assert profiles.load_file(bare).name == "bare"


def test_wrong_kind_and_api_version_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: llmsim.io/v1alpha1\nkind: LoadScenario\nspec: {}\n")
    with pytest.raises(ProfileError, match="kind: expected SimulationProfile"):
        profiles.load_file(path)
    path.write_text("apiVersion: llmsim.io/v2\nkind: SimulationProfile\nspec: {}\n")
    with pytest.raises(ProfileError, match="apiVersion"):
        profiles.load_file(path)


def test_spec_paths_are_prefixed_in_custom_resources(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "apiVersion: llmsim.io/v1alpha1\nkind: SimulationProfile\nmetadata: {name: x}\nspec: {seed: -1}\n"
    )
    with pytest.raises(ProfileError) as info:
        profiles.load_file(path)
    assert info.value.problems[0].startswith("spec.seed: ")


def test_fixed_latency_example_is_exactly_what_the_issue_asks() -> None:
    spec = profiles.load_file(ROOT / "examples/profiles/fixed-latency.yaml").spec
    assert spec.latency.ttft_ms == Constant(value=250)
    assert spec.latency.itl_ms == Constant(value=20)
    assert spec.latency.output_tokens == Constant(value=64)
    assert spec.faults.rates == {} and spec.faults.windows == []


def test_registry_loads_presets_on_demand_and_rejects_unknown_names() -> None:
    registry = profiles.ProfileRegistry(profiles.default_profile())
    assert registry.get(None).name == "default"
    assert registry.get("gpt-4o").name == "gpt-4o"
    with pytest.raises(KeyError):
        registry.get("nope")
