"""`llmsim profile fit`: observed percentiles in, a profile that reproduces them out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmsim import profiles
from llmsim.cli.main import main
from llmsim.errors import LLMSimError
from llmsim.loadgen.histogram import LogHistogram
from llmsim.profile_fit import Observations, fit_empirical, fit_observations, fit_report
from llmsim.simulation import sampling

QS = (0.1, 0.5, 0.9, 0.99)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


@pytest.mark.parametrize(("median", "sigma", "n"), [(300, 0.4, 3000), (20, 0.25, 20000), (900, 1.0, 800)])
def test_sampling_the_fit_reproduces_the_observed_percentiles(median: float, sigma: float, n: int) -> None:
    rng = np.random.default_rng(11)
    observed = _lognormal(rng, median, sigma, n)
    dist = fit_empirical(list(observed))
    drawn = sampling.sample(dist, np.random.default_rng(12), 200_000)
    for q in QS:
        if n * (1 - q) < 5:
            continue
        want, got = np.quantile(observed, q), np.quantile(drawn, q)
        # sampling error of the 200k draw is tiny; what remains is interpolation between fitted points
        assert abs(got - want) / want < 0.03, (q, want, got)


def test_zero_gaps_and_short_inputs() -> None:
    dist = fit_empirical([0.0, 0.0, 0.0, 5.0, 6.0])
    assert all(v > 0 for v in dist.percentiles.values())
    with pytest.raises(ValueError, match="at least 2"):
        fit_empirical([1.0])
    with pytest.raises(LLMSimError, match="cannot fit"):
        fit_observations(Observations())


def test_a_load_report_fits_from_its_histograms() -> None:
    rng = np.random.default_rng(3)
    observed = _lognormal(rng, 400, 0.5, 5000)
    hist = LogHistogram()
    hist.record_many(observed)
    itl = LogHistogram()
    itl.record_many(_lognormal(rng, 25, 0.2, 5000))
    report = {
        "schema_version": 1,
        "summary": {"succeeded": 100, "output_tokens": 12000},
        "histograms": {"latency": {"ttft_ms": hist.to_dict(), "itl_ms": itl.to_dict()}},
    }
    spec = fit_report(report)
    drawn = sampling.sample(spec.latency.ttft_ms, np.random.default_rng(1), 100_000)
    for q in (0.5, 0.9, 0.99):
        assert abs(np.quantile(drawn, q) / np.quantile(observed, q) - 1) < 0.04
    assert sampling.mean_of(spec.latency.output_tokens) == 120


def test_the_command_turns_proxy_records_into_a_loadable_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(5)
    records = tmp_path / "obs.jsonl"
    with records.open("w") as fh:
        for _ in range(300):
            gaps = list(_lognormal(rng, 30, 0.2, 40))
            fh.write(json.dumps({"mode": "passthrough", "stream": True, "ttftMs": float(_lognormal(rng, 250, 0.3, 1)[0]),
                                 "itlMs": gaps, "outputChunks": 41}) + "\n")  # fmt: skip
    out = tmp_path / "fitted.yaml"
    assert main(["profile", "fit", str(records), "--name", "prod-like", "-o", str(out)]) == 0
    fitted = profiles.load_file(out)
    assert fitted.name == "prod-like"
    assert fitted.spec.latency.ttft_ms.type == "empirical"
    assert 200 < sampling.quantile_of(fitted.spec.latency.ttft_ms, 0.5) < 300
    assert 28 < sampling.quantile_of(fitted.spec.latency.itl_ms, 0.5) < 32
    assert main(["profile", "fit", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
