"""`llmsim proxy --admin-token-file` as a process: the kill switch answers only the token's holder."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import aiohttp


async def test_the_admin_port_of_the_command_refuses_an_unauthenticated_pause(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-admin-token\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "llmsim.cli.main", "proxy", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        "--ca-dir", str(tmp_path / "ca"), "--admin-token-file", str(token), "--no-uvloop",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        found = re.search(r"admin \('127\.0\.0\.1', (\d+)\), token (\S+),", line)
        assert found is not None, line
        base = f"http://127.0.0.1:{found.group(1)}"
        assert found.group(2) == str(token)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/pause") as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
                assert json.loads(await resp.text())["error"]["code"] == "missing_token"
            async with session.get(f"{base}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["paused"] is False
            auth = {"Authorization": "Bearer s3cret-admin-token"}
            async with session.post(f"{base}/pause", headers=auth) as resp:
                assert resp.status == 200 and (await resp.json())["paused"] is True
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.communicate(), 10)
