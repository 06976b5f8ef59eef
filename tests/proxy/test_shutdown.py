"""`llmsim proxy` shutdown and early disconnects, as a process (issue 18, item 5, proxy side):
an idle proxy exits within 2 s of SIGTERM whatever its OTLP collector does; the drain bound is
`--drain` (plus well under a second to cut what is left), not twice it; a client that goes away
early is counted `cancelled`, with no traceback."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.slow

SLOW_STREAM = (
    "latency: {ttftMs: {type: constant, value: 5}, itlMs: {type: constant, value: 100},"
    " outputTokens: {type: constant, value: 300}}\n"
)
SLOW_BODY = "latency: {ttftMs: {type: constant, value: 1500}, outputTokens: {type: constant, value: 4}}\n"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def silent_collector() -> AsyncIterator[str]:
    """Accepts connections and reads requests, never answers (an OTLP collector gone deaf)."""
    held: list[asyncio.StreamWriter] = []

    async def hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    server = await asyncio.start_server(hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    for writer in held:
        writer.close()
    server.close()


async def _start(
    tmp_path: Path, profile: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, int, int]:
    path = tmp_path / "p.yaml"
    path.write_text(profile)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmsim.cli.main", "proxy", "--profile", str(path), "--listen", "127.0.0.1:0",
        "--admin", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"), *extra,
        stderr=asyncio.subprocess.PIPE,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, "PYTHONUNBUFFERED": "1", **(env or {})},
    )  # fmt: skip
    assert proc.stderr is not None
    line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    found = re.search(r"proxy on 127\.0\.0\.1:(\d+) \(admin \('127\.0\.0\.1', (\d+)\)", line)
    assert found, line
    return proc, int(found.group(1)), int(found.group(2))


async def _sigterm_and_time(proc: asyncio.subprocess.Process, limit_s: float) -> tuple[float, str]:
    start = time.monotonic()
    proc.terminate()
    try:
        _, err = await asyncio.wait_for(proc.communicate(), limit_s + 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return time.monotonic() - start, err.decode(errors="replace")


async def test_an_idle_proxy_exits_within_2_s_whatever_its_collector_does(
    tmp_path: Path, silent_collector: str
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": silent_collector}  # traces, metrics and request logs
    proc, port, _ = await _start(tmp_path, SLOW_BODY.replace("1500", "5"), env=env)
    async with aiohttp.ClientSession() as session:  # something for every exporter to flush
        for _ in range(3):
            async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT) as resp:
                assert resp.status == 200
    elapsed, err = await _sigterm_and_time(proc, 2.0)
    assert proc.returncode == 0, err[-2000:]
    assert elapsed < 2.0, f"exited {elapsed:.2f} s after SIGTERM"


async def test_the_drain_bound_is_the_drain_flag_not_twice_it(tmp_path: Path) -> None:
    proc, port, _ = await _start(tmp_path, SLOW_STREAM, "--drain", "2")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={**CHAT, "stream": True}) as resp,
    ):
        assert (await resp.content.readline()).startswith(b"data: ")
        task = asyncio.ensure_future(_sigterm_and_time(proc, 5.0))
        with pytest.raises(aiohttp.ClientPayloadError):  # the 30 s stream is cut after the drain
            await asyncio.wait_for(resp.content.read(), 10)
        elapsed, err = await task
    assert proc.returncode == 0, err[-2000:]
    # aiohttp's own drain waited twice its timeout (4 s and more here)
    assert 2.0 <= elapsed < 3.5, f"exited {elapsed:.2f} s after SIGTERM with --drain 2"
    assert "still in flight after 2 s; cutting them" in err
    assert "Traceback" not in err


async def test_a_client_that_goes_away_early_is_cancelled_without_a_traceback(tmp_path: Path) -> None:
    proc, port, admin = await _start(tmp_path, SLOW_BODY, "--log-level", "debug")
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        await asyncio.sleep(0.3)  # the answer is due at 1.5 s: leave before it
        writer.close()
        await asyncio.sleep(1.6)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{admin}/metrics") as resp,
        ):
            metrics = await resp.text()
    finally:
        _, err = await _sigterm_and_time(proc, 5.0)
    outcomes = re.findall(r'llmsim_requests_total\{[^}]*outcome="([a-z_]+)"[^}]*\} ([0-9.]+)', metrics)
    assert ("cancelled", "1.0") in outcomes, outcomes
    assert not any(o == "internal_error" and float(n) > 0 for o, n in outcomes), outcomes
    assert "Traceback" not in err and " ERROR " not in err, err[-3000:]
