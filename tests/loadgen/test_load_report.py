"""report.json: schema, SLOs overall and per window, cost, merging partials, comparing reports."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loadfake import Fake, start

from llmsim.api.scenario import LoadScenarioSpec, ModelPrice, Slo
from llmsim.errors import LLMSimError
from llmsim.loadgen import pricing, report, runner, slo
from llmsim.loadgen.results import Partial, RequestRecord, Stats, window_length
from llmsim.loadgen.wire import ErrorType


def spec_of(**kw: Any) -> LoadScenarioSpec:
    doc: dict[str, Any] = {"durationS": 4, "pattern": {"type": "steady", "rps": 25}, "arrival": "constant"}
    return LoadScenarioSpec.model_validate(doc | kw)


def synthetic_records(n: int, seed: int = 3) -> list[RequestRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        intended = i * 4.0 / n
        lag = float(rng.exponential(0.002))
        ttft = float(rng.lognormal(np.log(0.25), 0.2))
        gaps = list(rng.normal(0.02, 0.002, 20).clip(0.001))
        failed = i % 17 == 0
        out.append(
            RequestRecord(
                index=i, intended_s=intended, sent_s=intended + lag, stream=True, prompt_tokens=100 + i,
                output_tokens=0 if failed else 21, ttft_s=None if failed else ttft,
                itl_s=[] if failed else gaps, end_s=intended + lag + ttft + sum(gaps),
                error=ErrorType.RATE_LIMIT if failed else None, message="HTTP 429: slow down" if failed else "",
            )
        )  # fmt: skip
    return out


def test_merged_partials_equal_a_single_partial_exactly(tmp_path: Path) -> None:
    spec = spec_of(parallelism=4)
    window_s, n = window_length(spec.duration_s, spec.window_s)
    records = synthetic_records(400)
    single = Partial(window_s=window_s, n_windows=n, workers=[0, 1, 2, 3], parallelism=4)
    parts = [Partial(window_s=window_s, n_windows=n, workers=[i], parallelism=4) for i in range(4)]
    rng = np.random.default_rng(0)
    for rec in records:
        single.add(rec, rng)
        parts[rec.index % 4].add(rec, rng)
    files = []
    for i, part in enumerate(parts):
        files.append(tmp_path / f"partial-{i}.json")
        report.write_json(files[-1], report.partial_document(spec, part))
    merged_spec, merged = report.merge_partials([report.read_partial(f) for f in reversed(files)])
    assert merged_spec == spec
    for name in ("ttft_ms", "itl_ms", "e2e_ms", "tpot_ms"):
        assert merged.total.latency[name].counts == single.total.latency[name].counts
        assert merged.total.intended[name].counts == single.total.intended[name].counts
    for mine, theirs in zip(merged.windows, single.windows, strict=True):
        assert (
            mine.sent == theirs.sent
            and mine.stats.latency["ttft_ms"].counts == theirs.stats.latency["ttft_ms"].counts
        )
    a, b = report.build(spec, merged), report.build(spec, single)
    for key in ("summary", "latency", "latency_from_intended_send", "slo"):
        assert a[key] == b[key], key
    assert merged.notes == [] and a["run"]["complete"]


def test_missing_workers_make_the_merged_report_partial(tmp_path: Path) -> None:
    spec = spec_of(parallelism=3)
    window_s, n = window_length(spec.duration_s, None)
    part = Partial(window_s=window_s, n_windows=n, workers=[1], parallelism=3)
    _, merged = report.merge_partials([(spec, part)])
    doc = report.build(spec, merged)
    assert not doc["run"]["complete"] and "[0, 2]" in doc["run"]["notes"][0]
    with pytest.raises(LLMSimError, match="more than one partial"):
        report.merge_partials([(spec, part), (spec, Partial.from_dict(part.to_dict()))])
    with pytest.raises(LLMSimError, match="different scenarios"):
        report.merge_partials([(spec, part), (spec_of(parallelism=3, seed=9), part)])


def test_report_has_the_documented_schema() -> None:
    spec = spec_of(
        slos=[{"metric": "ttft_ms", "percentile": 95, "threshold": 1000}], target={"model": "gpt-4o"}
    )
    window_s, n = window_length(spec.duration_s, None)
    part = Partial(window_s=window_s, n_windows=n, workers=[0])
    for rec in synthetic_records(100):
        part.add(rec, np.random.default_rng(0))
    doc = json.loads(json.dumps(report.build(spec, part)))
    assert doc["schema_version"] == 2
    for key in ("requests", "succeeded", "failed", "target_rps", "achieved_rps", "output_tokens_per_s",
                "error_rate", "cost_usd", "availability", "concurrency"):  # fmt: skip
        assert key in doc["summary"], key
    for key in ("concurrency", "target_concurrency", "availability"):
        assert key in doc["windows"][0], key
    assert doc["windows"][0]["target_concurrency"] is None  # a rate curve has no nominal concurrency
    assert doc["summary"]["availability"] == 1.0  # 429s are the caller's, not the target's, failures
    assert doc["by_model"] == {} and doc["workflows"] == {}
    assert [r["rule"] for r in doc["recommendations"]] == ["rate_limited"]  # 6 of 100 are 429s
    # Little's law over the run: mean in flight = requests / elapsed * mean time in flight.
    busy = sum((r.end_s or 0) - r.sent_s for r in synthetic_records(100))
    assert doc["summary"]["concurrency"]["mean"] == pytest.approx(busy / doc["run"]["elapsed_s"], abs=1e-3)
    for section in ("latency", "latency_from_intended_send"):
        for metric in ("ttft_ms", "itl_ms", "e2e_ms", "tpot_ms"):
            assert set(doc[section][metric]) >= {"p50", "p90", "p95", "p99", "max"}
    assert doc["summary"]["requests"] == 100 and doc["summary"]["failed"] == 6
    assert doc["summary"]["target_rps"] == pytest.approx(25)
    assert len(doc["windows"]) == n and doc["windows"][0]["target_rps"] == pytest.approx(25)
    assert doc["slo"]["objectives"][0]["name"] == "ttft_ms p95 < 1000"
    assert doc["errors"]["examples"] == {"rate_limit": ["HTTP 429: slow down"]}
    expected_cost = (doc["summary"]["prompt_tokens"] * 2.5 + doc["summary"]["output_tokens"] * 10.0) / 1e6
    assert doc["summary"]["cost_usd"] == pytest.approx(expected_cost, rel=1e-6)


def stats_with(ttfts_ms: list[float], failures: int = 0) -> Stats:
    stats = Stats()
    for i, ttft in enumerate(ttfts_ms):
        stats.add(RequestRecord(index=i, intended_s=0, sent_s=0, stream=True, prompt_tokens=1, output_tokens=2,
                                ttft_s=ttft / 1000, itl_s=[0.02], end_s=ttft / 1000 + 0.02))  # fmt: skip
    for i in range(failures):
        stats.add(RequestRecord(index=i, intended_s=0, sent_s=0, stream=True, prompt_tokens=1,
                                error=ErrorType.SERVER_ERROR, end_s=0.1))  # fmt: skip
    return stats


def test_slo_verdicts_overall_and_per_window() -> None:
    fast, slow = stats_with([100.0] * 20), stats_with([100.0] * 10 + [900.0] * 10, failures=5)
    objective = Slo(metric="ttft_ms", percentile=95, threshold=500)
    errors = Slo(metric="error_rate", threshold=0.1)
    total = Stats()
    total.merge(fast)
    total.merge(slow)
    section = slo.evaluate([objective, errors], total, [fast, slow, Stats()], window_s=5)
    ttft, err = section["objectives"]
    assert ttft["passed"] is False and ttft["windows_failed"] == [1] and ttft["windows_evaluated"] == 2
    assert ttft["windows_failed_at_s"] == [[5, 10]]
    assert err["value"] == pytest.approx(5 / 45) and err["passed"] is False and err["windows_failed"] == [1]
    assert section["passed"] is False
    good = slo.evaluate([Slo(metric="ttft_ms", percentile=50, threshold=500)], total, [fast, slow], 5)
    assert good["passed"] is True and good["windows_passed"] is True
    nothing = slo.evaluate([objective], stats_with([], failures=3), [], 5)
    assert nothing["objectives"][0]["passed"] is False  # all failed: a latency SLO cannot be met


def test_prices_come_from_overrides_first_then_the_table() -> None:
    assert pricing.find_price("gpt-4o-mini-2024-07-18") == pricing.Price(
        "gpt-4o-mini*", 0.15, 0.60, "built-in"
    )
    mine = [ModelPrice(model="gpt-4o*", input_per_million_usd=1, output_per_million_usd=2)]
    price = pricing.find_price("GPT-4o-mini", mine)
    assert price is not None and (price.input_per_million_usd, price.source) == (1, "scenario")
    theirs = [ModelPrice(model="gpt-4o-mini", input_per_million_usd=5, output_per_million_usd=6)]
    price = pricing.find_price("gpt-4o-mini", mine, theirs)
    assert price is not None and (price.input_per_million_usd, price.source) == (5, "file")
    assert pricing.find_price("my-finetune") is None
    assert pricing.cost_usd(pricing.Price("x", 1, 2, "s"), 1_000_000, 500_000) == pytest.approx(2.0)


def test_price_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("- {model: x, inputPerMillionUsd: -1, outputPerMillionUsd: 1}\n")
    with pytest.raises(LLMSimError, match=r"\[0\]\.inputPerMillionUsd"):
        pricing.load_price_file(path)


@pytest.fixture
async def fake_url() -> AsyncIterator[str]:
    server = await start(Fake(ttft_s=0.04, itl_s=0.008, tokens=6))
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def test_four_workers_merged_match_a_single_run(fake_url: str) -> None:
    doc = {"target": {"url": fake_url}, "durationS": 1.5, "pattern": {"type": "steady", "rps": 40},
           "arrival": "constant", "seed": 11}  # fmt: skip
    single_spec = LoadScenarioSpec.model_validate(doc)
    multi_spec = LoadScenarioSpec.model_validate(doc | {"parallelism": 4})
    single, *parts = await asyncio.gather(
        runner.run_worker(single_spec, api_key=None),
        *(runner.run_worker(multi_spec, api_key=None, worker_index=i) for i in range(4)),
    )
    _, merged = report.merge_partials([(multi_spec, p) for p in parts])
    assert merged.total.requests == single.total.requests == 60
    assert [w.stats.requests for w in merged.windows] == [w.stats.requests for w in single.windows]
    for name in ("ttft_ms", "itl_ms", "e2e_ms"):
        a, b = merged.total.latency[name], single.total.latency[name]
        assert a.count == b.count
        for q in (0.5, 0.9):
            x, y = a.quantile(q) or 0, b.quantile(q) or 0
            # equal within histogram resolution plus the timer noise of two separate runs
            assert abs(x - y) <= 2 * a.accuracy * max(x, y) + 3.0, (name, q, x, y)


async def test_a_fault_window_shows_up_as_the_failed_windows() -> None:
    fake = Fake(
        ttft_s=0.01, itl_s=0.002, tokens=4, fail_between=(0.7375, 1.2375)
    )  # arrivals are 12.5 ms from either edge
    server = await start(fake)
    try:
        spec = LoadScenarioSpec.model_validate(
            {"target": {"url": f"http://127.0.0.1:{server.port}"}, "durationS": 2, "windowS": 0.5,
             "pattern": {"type": "steady", "rps": 40}, "arrival": "constant",
             "slos": [{"metric": "error_rate", "threshold": 0.05}]}
        )  # fmt: skip
        doc = report.build(spec, await runner.run_worker(spec, api_key=None))
    finally:
        await server.close()
    objective = doc["slo"]["objectives"][0]
    assert objective["windows_failed"] == [1, 2], [w["error_rate"] for w in doc["windows"]]
    assert objective["passed"] is False and set(doc["summary"]["errors_by_type"]) == {"overloaded"}
    assert 18 <= doc["summary"]["failed"] <= 22  # 20, give or take a request at an edge on a busy machine
    assert [w.get("slo_failed", []) for w in doc["windows"]] == [
        [],
        ["error_rate < 0.05"],
        ["error_rate < 0.05"],
        [],
    ]


def test_the_documented_price_table_is_the_built_in_one() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "loadgen.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([\d.]+) \| ([\d.]+) \|$", docs, flags=re.M)
    assert [(p, float(i), float(o)) for p, i, o in rows] == list(pricing.BUILTIN_PRICES)


def test_credentials_in_headers_or_the_url_never_reach_reports_or_partials() -> None:
    spec = spec_of(
        target={"url": "http://127.0.0.1:9/?key=AIzaSECRET&x=1",
                "headers": {"Authorization": "Bearer sk-SECRET", "X-Goog-Api-Key": "SECRET2", "x-llmsim-profile": "p"}}
    )  # fmt: skip
    window_s, n = window_length(spec.duration_s, None)
    part = Partial(window_s=window_s, n_windows=n, workers=[0])
    for doc in (report.build(spec, part), report.partial_document(spec, part)):
        text = json.dumps(doc)
        assert "SECRET" not in text
        target = doc["scenario"]["target"]
        assert target["headers"] == {"Authorization": "<redacted>", "X-Goog-Api-Key": "<redacted>",
                                     "x-llmsim-profile": "p"}  # fmt: skip
        assert target["url"] == "http://127.0.0.1:9/?key=<redacted>&x=1"


async def test_a_model_mix_is_broken_down_per_model_with_its_cost(sim_server: Any) -> None:
    spec = LoadScenarioSpec.model_validate(
        {
            "target": {"url": sim_server.url},
            "durationS": 1.5,
            "pattern": {"type": "steady", "rps": 80},
            "arrival": "constant",
            "requests": {
                "models": [{"name": "gpt-4o-mini", "weight": 3}, {"name": "my-finetune", "weight": 1}]
            },
        }
    )
    doc = report.build(spec, await runner.run_worker(spec, api_key=None))
    by_model = doc["by_model"]
    assert set(by_model) == {"gpt-4o-mini", "my-finetune"}
    n = doc["summary"]["requests"]
    assert sum(m["requests"] for m in by_model.values()) == n == 120
    # Binomial(120, 3/4): 90 expected, sd 4.7; 4 sd either side.
    assert 71 <= by_model["gpt-4o-mini"]["requests"] <= 109
    assert by_model["gpt-4o-mini"]["cost_usd"] > 0 and by_model["my-finetune"]["cost_usd"] is None
    assert doc["summary"]["cost_usd"] == pytest.approx(by_model["gpt-4o-mini"]["cost_usd"])
    assert doc["cost"]["unpriced_models"] == ["my-finetune"]
    assert by_model["my-finetune"]["latency"]["ttft_ms"]["count"] == by_model["my-finetune"]["succeeded"]


def test_version_1_partials_still_merge(tmp_path: Path) -> None:
    spec = spec_of(parallelism=2)
    window_s, n = window_length(spec.duration_s, None)
    docs = []
    for worker in (0, 1):
        part = Partial(window_s=window_s, n_windows=n, workers=[worker], parallelism=2)
        for rec in synthetic_records(40, seed=worker)[worker::2]:
            part.add(rec, np.random.default_rng(0))
        doc = report.partial_document(spec, part)
        doc["version"] = 1
        for key in ("busy_s", "by_model", "workflows"):
            del doc["partial"][key]  # what a version 1 worker wrote
        for win in doc["partial"]["windows"]:
            del win["busy_s"]
        path = tmp_path / f"partial-{worker}.json"
        report.write_json(path, doc)
        docs.append(path)
    _, merged = report.merge_partials([report.read_partial(p) for p in docs])
    built = report.build(spec, merged)
    assert built["summary"]["requests"] == 40 and built["run"]["complete"]
    assert built["summary"]["concurrency"]["mean"] == 0.0  # not measured by version 1 workers
    doc = json.loads(docs[0].read_text())
    doc["version"] = 7
    docs[0].write_text(json.dumps(doc))
    with pytest.raises(LLMSimError, match="partial version 7 is not 1 or 2"):
        report.read_partial(docs[0])
