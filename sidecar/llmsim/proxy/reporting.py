"""The report of a forwarded request: one record for the runtime's observers (the same telemetry
as simulated requests, labelled with the mode) and, with `--record FILE`, one JSON line of measured
timings for `llmsim profile fit`.

Simulated requests are reported by the simulator's own pipeline; everything else the data path
answers (forwarded, perturbed, substituted, refused) is reported here, once.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import TextIO

from llmsim import headers
from llmsim.providers.base import kind_for_status
from llmsim.proxy.exchange import Exchange
from llmsim.runtime.state import RuntimeState
from llmsim.telemetry import labels
from llmsim.telemetry.facade import trace_carrier
from llmsim.telemetry.records import RecordBuilder

log = logging.getLogger("llmsim.proxy")


def open_observations(path: Path | None) -> TextIO | None:
    """Append-mode JSONL file for measured timings (None: do not record)."""
    return None if path is None else path.open("a", encoding="utf-8")


class Reporter:
    def __init__(self, runtime: RuntimeState, observations: TextIO | None = None) -> None:
        self.runtime = runtime
        self.observations = observations

    def close(self) -> None:
        if self.observations is not None:
            self.observations.close()

    def report(self, ex: Exchange, end: float) -> None:
        """Report `ex`, finished at loop time `end`. Never raises into the data path."""
        try:
            self.runtime.report(record_of(ex, end).build())
            if self.observations is not None and ex.status < 400 and ex.times and ex.error is None:
                self._observe(ex, end)
        except Exception:  # telemetry never breaks the data path
            log.exception("reporting a forwarded request failed")

    def _observe(self, ex: Exchange, end: float) -> None:
        assert self.observations is not None
        t0, times = ex.started, ex.times
        line = {
            "mode": ex.mode.value, "provider": ex.info.provider, "model": ex.info.model, "stream": ex.info.stream,
            "ttftMs": round((times[0] - t0) * 1000, 3), "e2eMs": round((end - t0) * 1000, 3),
            "outputChunks": len(times), "itlMs": [round((b - a) * 1000, 3) for a, b in itertools.pairwise(times)],
        }  # fmt: skip
        self.observations.write(json.dumps(line) + "\n")
        self.observations.flush()


def record_of(ex: Exchange, end: float) -> RecordBuilder:
    """The record of a request the data path answered (not simulated): events forwarded to the
    client count as output tokens of a stream; a whole body's first read is its first token."""
    record = RecordBuilder(
        ex.request_id,
        ex.info.provider,
        ex.endpoint.operation if ex.endpoint is not None else "chat",
        started_at=ex.started_at,
        mode=ex.mode.value,
    )
    record.model = record.response_model = ex.info.model or ""
    record.profile = ex.profile
    record.stream, record.status = ex.info.stream, ex.status
    record.session_id = ex.request.headers.get(headers.SESSION)
    record.carrier = trace_carrier(ex.request.headers)
    if ex.fault is not None:
        record.fault, record.fault_reason = ex.fault.fault.value, ex.fault.reason
    relative = [t - ex.started for t in ex.times]
    record.token_times_s = relative if ex.info.stream else relative[:1]
    record.output_tokens = len(relative) if ex.info.stream else 0
    record.e2e_s = end - ex.started
    if ex.gone:
        record.cancel()
    elif ex.error is not None:
        record.fail(ex.error.kind.value, ex.error.message)
    elif ex.broken:
        record.fail(labels.ERROR, "the upstream broke off its answer")
    elif ex.status >= 400:
        record.fail(kind_for_status(ex.status).value)
    return record
