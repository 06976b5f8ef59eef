"""`llmsim proxy` and `llmsim ca export` as a user runs them (uvloop, real subprocess)."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from pathlib import Path

import aiohttp
import pytest

from llmsim.cli.main import main

pytestmark = pytest.mark.slow


def test_ca_export_prints_the_pem_and_keeps_the_key_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ca", "export", "--ca-dir", str(tmp_path / "ca")]) == 0
    first = capsys.readouterr().out
    assert first.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in first
    assert main(["ca", "export", "--ca-dir", str(tmp_path / "ca")]) == 0
    assert capsys.readouterr().out == first  # generated once, then reused
    key = tmp_path / "ca" / "llmsim-ca.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / "llmsim-ca-cert.pem").stat().st_mode) == 0o644
    assert main(["ca", "export", "--bundle", "--ca-dir", str(tmp_path / "ca")]) == 0
    bundle = capsys.readouterr().out
    assert bundle.count("BEGIN CERTIFICATE") > 1 and bundle.rstrip().endswith(first.rstrip())


def test_bad_flags_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy", "--listen", "nowhere"]) == 2
    assert "--listen: 'nowhere' is not HOST:PORT" in capsys.readouterr().err
    assert main(["proxy", "--upstream", "azure"]) == 2
    assert "PROVIDER=URL" in capsys.readouterr().err


def test_there_is_no_engine_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`--engine mitmproxy` was accepted but never started an engine; it is gone, not ignored."""
    with pytest.raises(SystemExit) as exited:
        main(["proxy", "--engine", "mitmproxy"])
    assert exited.value.code == 2 and "unrecognized arguments: --engine" in capsys.readouterr().err


async def test_the_command_serves_simulated_answers_under_uvloop(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "latency: {ttftMs: {type: constant, value: 5}, outputTokens: {type: constant, value: 4}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmsim.cli.main", "proxy", "--profile", str(profile), "--listen", "127.0.0.1:0",
        "--admin", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        port = int(re.search(r"proxy on 127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        import ssl

        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca" / "llmsim-ca-cert.pem"))
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                "https://api.anthropic.com/v1/messages",
                json={"model": "claude-sonnet-4", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-api-key": "sk-ant-SECRET", "anthropic-version": "2023-06-01"},
                proxy=f"http://127.0.0.1:{port}", ssl=ctx,
            ) as resp,
        ):  # fmt: skip
            doc = await resp.json()
        assert resp.status == 200 and doc["type"] == "message" and doc["content"][0]["text"]
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert b"SECRET" not in err


async def test_sigterm_lets_an_in_flight_stream_finish(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "latency: {ttftMs: {type: constant, value: 20}, itlMs: {type: constant, value: 40},"
        " outputTokens: {type: constant, value: 20}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmsim.cli.main", "proxy", "--profile", str(profile), "--listen", "127.0.0.1:0",
        "--admin", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        port = int(re.search(r"proxy on 127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
            ) as resp,
        ):
            first = await resp.content.readline()
            assert first.startswith(b"data: ")
            proc.terminate()  # mid-stream
            rest = await asyncio.wait_for(resp.content.read(), 10)
        assert rest.rstrip().endswith(b"data: [DONE]")
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
