"""A client that goes away before its answer is `cancelled`, never an error with a traceback, in
every mode of the data path (issue 18, item 5, proxy side)."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from .conftest import QUIET, ProxyFactory
from .fakes import Upstream

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


async def _leave_early(port: int, after_s: float) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    await writer.drain()
    await asyncio.sleep(after_s)
    writer.close()


@pytest.mark.parametrize("mode", ["simulate", "perturb", "passthrough"])
async def test_an_early_disconnect_is_cancelled_without_a_traceback(
    proxy_factory: ProxyFactory, upstream: Upstream, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.ttft_s = 0.6  # the provider's answer comes after the client left
    slow = {**QUIET, "latency": {**QUIET["latency"], "ttftMs": {"type": "constant", "value": 600}}}
    proxy = await proxy_factory({**(slow if mode == "simulate" else QUIET), "mode": mode})
    assert proxy.listen_address is not None
    with caplog.at_level(logging.DEBUG):
        await _leave_early(proxy.listen_address[1], 0.15)
        metrics = ""
        for _ in range(60):  # the outcome is reported when the answer would have been sent
            await asyncio.sleep(0.05)
            metrics = proxy.telemetry.prometheus.render()[0].decode()
            if 'outcome="cancelled"' in metrics:
                break
    counts = dict(re.findall(r'llmsim_requests_total\{[^}]*outcome="([a-z_]+)"[^}]*\} ([0-9.]+)', metrics))
    assert counts.get("cancelled") == "1.0", counts
    assert all(float(n) == 0 for o, n in counts.items() if o != "cancelled"), counts
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text
