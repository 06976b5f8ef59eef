"""Worker results as `llmsim load` workers produce them (built with the load generator's own types)."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmsim.api.resources import LoadScenarioResourceSpec
from llmsim.loadgen import report
from llmsim.loadgen.results import Partial, RequestRecord
from llmsim.loadgen.wire import ErrorType

SPEC: dict[str, Any] = {
    "target": {"url": "http://chat.team-a.svc:8080", "provider": "openai", "model": "gpt-4o-mini"},
    "durationS": 2,
    "windowS": 1,
    "pattern": {"type": "steady", "rps": 10},
    "parallelism": 2,
    "slos": [
        {"metric": "ttft_ms", "percentile": 95, "threshold": 800},
        {"metric": "error_rate", "threshold": 0.5},
    ],
}


def worker_document(
    spec: dict[str, Any], worker: int, ttft_ms: float, n: int = 10, failures: int = 0
) -> dict[str, Any]:
    """The partial result of one worker: `n` streamed requests with the given TTFT, some failed."""
    load_spec = LoadScenarioResourceSpec.model_validate(spec).load_spec()
    partial = Partial(window_s=1.0, n_windows=2, workers=[worker], parallelism=load_spec.parallelism)
    rng = np.random.default_rng(worker)
    for i in range(n):
        t = i * 0.1
        rec = RequestRecord(index=i, intended_s=t, sent_s=t, stream=True, prompt_tokens=50)
        if i < failures:
            rec.error, rec.status, rec.message, rec.end_s = ErrorType.SERVER_ERROR, 500, "boom", t + 0.01
        else:
            rec.ttft_s = ttft_ms / 1000
            rec.itl_s = [0.02] * 4
            rec.output_tokens = 5
            rec.end_s = t + ttft_ms / 1000 + 0.08
            rec.status = 200
        partial.add(rec, rng)
    partial.scheduled = n
    partial.elapsed_s = 2.0
    return report.partial_document(load_spec, partial)
