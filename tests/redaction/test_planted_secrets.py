"""Planted secrets never leave a real run (issue 18, item 3).

`llmsim serve` and `llmsim proxy` run as processes at `--log-level debug`, exporting spans, OTLP
logs and CloudEvents to a collector on 127.0.0.1; requests carry credentials in every header,
query parameter and URL form llmsim knows, including malformed requests whose parser errors
print raw header lines. `llmsim load` runs against them with credentials in its scenario. Then
every artefact is searched for the marker every planted secret contains: stderr, stdout, the
collector's raw payloads (protobuf strings are UTF-8), report.json, report.html, the worker's
partial, and the ConfigMap the operator stores the merged report in.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from llmsim_operator import results
from llmsim_operator.resources import scenario as scenario_resources
from simserver import SimServer

pytestmark = pytest.mark.slow

MARK = "PLANTED"
SECRET_HEADERS = {
    "Authorization": f"Bearer sk-{MARK}auth0001",
    "Proxy-Authorization": f"Basic {MARK}proxyauth",
    "Cookie": f"session={MARK}cookie; theme=dark",
    "x-api-key": f"sk-ant-{MARK}xapikey",
    "api-key": f"{MARK}azurekey",
    "Ocp-Apim-Subscription-Key": f"{MARK}apim",
    "x-goog-api-key": f"AIza{MARK}googkey0000000000",
}
SECRET_QUERY = (
    f"key={MARK}q1&api_key={MARK}q2&api-key={MARK}q3&token={MARK}q4&sig={MARK}q5&access_token={MARK}q6"
)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


class Collector:
    """Every POST body, raw, by path (OTLP traces/logs/metrics and CloudEvents)."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.lock:
            self.bodies.setdefault(request.path, []).append(body)
        return web.Response(status=200, body=b"", content_type="application/x-protobuf")

    def everything(self) -> bytes:
        with self.lock:
            return b"\n".join(b for bodies in self.bodies.values() for b in bodies)


@pytest.fixture
def collector() -> Iterator[tuple[Collector, SimServer]]:
    found = Collector()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", found.handle)
    server = SimServer(app).start()
    yield found, server
    server.stop()


def _env(collector_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LLMSIM_"))}
    return env | {
        "PYTHONUNBUFFERED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "LLMSIM_EVENTS_SINK_URL": f"{collector_url}/events",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _raw(port: int, data: bytes, head_only: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        if head_only:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def _request(path: str, headers: dict[str, str], body: bytes, port: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _plant(port: int) -> list[bytes]:
    """Requests carrying the planted secrets in every form; the answers (for sanity checks)."""
    body = json.dumps(CHAT).encode()
    stream = json.dumps({**CHAT, "stream": True}).encode()
    answers = [
        await _raw(port, _request(f"/v1/chat/completions?{SECRET_QUERY}", SECRET_HEADERS, body, port)),
        await _raw(port, _request("/v1/chat/completions", SECRET_HEADERS, stream, port)),
        await _raw(
            port,
            _request(
                "/v1/chat/completions", {**SECRET_HEADERS, "x-llmsim-fault": "server_error"}, body, port
            ),
        ),
        await _raw(
            port,
            _request(f"/v1beta/models/gemini-2.0-flash:generateContent?{SECRET_QUERY}", {}, b"{", port),
        ),
        # aiohttp's parser errors print the raw header line: too long, and with a control byte
        await _raw(
            port,
            _request("/v1/chat/completions", {"Authorization": f"Bearer sk-{MARK}{'A' * 9000}"}, body, port),
        ),
        await _raw(port, _request("/v1/chat/completions", {"x-api-key": f"sk-{MARK}\x01ctl"}, body, port)),
        await _raw(port, _request("/v1/chat/completions", {"Cookie": f"a={MARK}\x01b"}, body, port)),
    ]
    return answers


async def _run(argv: list[str], env: dict[str, str], ready: str) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmsim.cli.main", *argv,
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = b""
    for _ in range(50):
        line = await asyncio.wait_for(proc.stderr.readline(), 30)
        seen += line
        found = re.search(ready.encode(), line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError(seen.decode(errors="replace"))


async def _stop(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    proc.terminate()
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return out, err


def _assert_clean(where: str, data: bytes | str) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    hits = [text[max(0, m.start() - 80) : m.end() + 40] for m in re.finditer(MARK, text)]
    assert not hits, f"{where} leaks planted secrets: {hits[:3]}"


@pytest.mark.parametrize("command", ["serve", "proxy"])
async def test_no_planted_secret_reaches_logs_or_exports(
    command: str, collector: tuple[Collector, SimServer], tmp_path: Path
) -> None:
    found, server = collector
    env = _env(server.url)
    if command == "serve":
        argv = ["serve", "--port", str(_free_port()), "--log-level", "debug"]
        ready = r"127\.0\.0\.1:(\d+)"
    else:
        argv = [
            "proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "debug",
            "--ca-dir", str(tmp_path / "ca"),
            # passthrough to an upstream that is not there: its URL carries userinfo and a key
            "--upstream", f"openai=http://planted:{MARK}pw@127.0.0.1:1/x?key={MARK}up",
        ]  # fmt: skip
        ready = r"proxy on 127\.0\.0\.1:(\d+)"
    proc, port = await _run(argv, env, ready)
    try:
        if command == "serve":
            port = int(argv[2])
        answers = await _plant(port)
        if command == "proxy":
            headers = {**SECRET_HEADERS, "x-simulation-mode": "passthrough"}
            answers.append(
                await _raw(port, _request(f"/v1/chat/completions?{SECRET_QUERY}", headers, b"{}", port))
            )
            connect = f"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\nProxy-Authorization: Basic {MARK}c\r\n\r\n"
            answers.append(await _raw(port, connect.encode(), head_only=True))
        for _ in range(100):  # batch exporters flush every 100 ms (bounded: 10 s)
            paths = set(found.bodies)
            if {"/v1/traces", "/v1/logs", "/events"} <= paths:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # and whatever the last requests add
    finally:
        out, err = await _stop(proc)
    assert answers[0].startswith(b"HTTP/1.1 200") and answers[1].startswith(b"HTTP/1.1 200")
    assert answers[2].startswith(b"HTTP/1.1 500") and answers[3].startswith(b"HTTP/1.1 400")
    # aiohttp answers a malformed head itself (HTTP/1.0 400, quoting the line to its own sender)
    assert all(re.match(rb"HTTP/1\.[01] 4", a) or a == b"" for a in answers[4:7]), answers[4:7]
    if command == "proxy":
        assert answers[7].startswith(b"HTTP/1.1 502") and answers[8].startswith(b"HTTP/1.1 200")
    assert b"DEBUG" in err  # the run logged at debug level
    assert b"Error handling request" in err or b"BadHttpMessage" in err or b"LineTooLong" in err
    assert any("/v1/traces" in p for p in found.bodies), found.bodies.keys()
    assert any("/v1/logs" in p for p in found.bodies) and "/events" in found.bodies
    _assert_clean(f"{command} stderr", err)
    _assert_clean(f"{command} stdout", out)
    _assert_clean(f"{command} OTLP and CloudEvents payloads", found.everything())


def test_no_planted_secret_reaches_load_reports_or_the_operators_config_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmsim.cli.main import main

    dead = _free_port()  # nothing listens: every request fails, the run stops early with notes
    target = {
        "url": f"http://planted:{MARK}pw@127.0.0.1:{dead}/v1?{SECRET_QUERY}",
        "headers": SECRET_HEADERS,
        "provider": "openai",
    }
    scenario = tmp_path / "s.json"
    scenario.write_text(
        json.dumps({"target": target, "durationS": 1, "pattern": {"type": "steady", "rps": 20}})
    )
    out = tmp_path / "out"
    code = main(["load", "--scenario", str(scenario), "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code != 0 and "stopped early" in stderr
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["notes"] and report["summary"]["failed"] > 0
    assert report["scenario"]["target"]["headers"]["Authorization"] == "<redacted>"
    for name in ("report.json", "report.html"):
        _assert_clean(name, (out / name).read_text())
    _assert_clean("load stdout", stdout)
    _assert_clean("load stderr", stderr)
    # a parallel worker's partial, as printed to its log, and the operator's merge of it
    code = main(
        ["load", "--scenario", str(scenario), "--out", str(tmp_path / "w"), "--parallelism", "2",
         "--worker-index", "0", "--quiet"]
    )  # fmt: skip
    capsys.readouterr()
    [partial] = (tmp_path / "w").glob("partial-*.json")
    line = results.encode(json.loads(partial.read_text()))
    _assert_clean("worker partial", partial.read_text())
    merged = results.merge([results.decode(line) or {}])
    cm = scenario_resources.report_config_map("s", "ns", "s-1", merged)
    _assert_clean("report ConfigMap", json.dumps(cm))
    # a parallelism-1 report is stored as the worker printed it: redacted again on the way in
    leaky: dict[str, Any] = {**report, "run": {**report["run"], "notes": [f"GET /?key={MARK}x"]}}
    _assert_clean(
        "report ConfigMap", json.dumps(scenario_resources.report_config_map("s", "ns", "s-1", leaky))
    )
