"""The official `openai` Node SDK (npm), run with the machine's Node, against `llmsim serve`:
streaming, tools (its `runTools` runner and streamed parallel calls), faults (a rate limit and an
authentication failure), the rate-limit headers and a refusal.

The SDK is installed lazily into tests/agents/node/ from the committed package-lock.json (npm ci);
the test skips, saying why, when node or npm is missing or the registry is unreachable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from simserver import FAST, SimServer

NODE_DIR = Path(__file__).parent / "node"
PROFILE = {**FAST, "content": {"mode": "fixed", "text": "Done.", "rules": [
    {"match": "both", "toolCalls": [{"name": "get_weather", "arguments": {"city": "Oslo"}},
                                    {"name": "to_fahrenheit", "arguments": {"celsius": -3}}]},
    {"toolResult": {"name": "get_weather", "match": r"(?P<temp>-?\d+) C"}, "reply": "It is ${temp} C there."},
]}}  # fmt: skip


def node_sdk() -> str:
    """The node binary, with the SDK installed next to the script (skips when that cannot be)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the Node SDK test (Debian: apt-get install nodejs npm)")
    major = int(
        subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
        .stdout[1:]
        .split(".")[0]
    )
    if major < 20:
        pytest.skip(f"the Node SDK test needs Node >= 20, found {major}")
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").is_file():
        try:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                  text=True, timeout=300)  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci timed out: the npm registry is unreachable")
        if done.returncode != 0:
            pytest.skip(f"npm ci could not install the openai package: {done.stderr.strip()[-300:]}")
    return node


@pytest.mark.slow
def test_the_node_sdk_streams_runs_tools_and_raises_the_fault(
    sim_server_factory: Callable[..., SimServer],
) -> None:
    node = node_sdk()
    server = sim_server_factory(PROFILE)
    done = subprocess.run([node, "sdk_checks.mjs", server.url], cwd=NODE_DIR, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)

    stream = seen["stream"]
    assert stream["ids"] == 1 and stream["text"] == "Done." and stream["finish"] == ["stop"]
    assert stream["lastChoices"] == 0 and stream["usage"]["completion_tokens"] == 2
    assert stream["chunks"] == 1 + 2 + 1 + 1  # role, one per token ("Done", "."), finish, usage

    tools = seen["runTools"]
    assert tools["final"] == "It is -3 C there." and tools["requests"] == 2
    assert len(tools["ran"]) == 1 and isinstance(tools["ran"][0]["city"], str)

    parallel = seen["parallel"]
    assert parallel["finish"] == "tool_calls"
    assert [c[1:] for c in parallel["calls"]] == [
        ["get_weather", {"city": "Oslo"}],
        ["to_fahrenheit", {"celsius": -3}],
    ]
    assert (
        all(c[0].startswith("call_") for c in parallel["calls"])
        and parallel["calls"][0][0] != parallel["calls"][1][0]
    )

    fault = seen["fault"]
    assert fault["raised"] and fault["rateLimitError"] and fault["status"] == 429
    assert fault["code"] == "rate_limit_exceeded" and fault["type"] == "requests"
    assert fault["requestID"].startswith("req_") and fault["retryAfter"] and fault["retryAfterMs"]

    assert seen["headers"] == {"limit": "500", "remaining": seen["headers"]["remaining"], "tokens": "30000"}
    assert 0 < int(seen["headers"]["remaining"]) < 500
    auth = seen["auth"]
    assert auth == {"raised": True, "authenticationError": True, "status": 401, "code": "invalid_api_key"}
    refusal = seen["refusal"]
    assert refusal["refusal"] == refusal["streamed"] == "I'm sorry, but I can't help with that."
    assert refusal["content"] is None
