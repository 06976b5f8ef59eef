"""The demo app, unchanged, gets its OpenAI calls answered by the simulator (here pointed at it with
OPENAI_BASE_URL; in the cluster the injected sidecar intercepts api.openai.com instead)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from types import ModuleType

import pytest
from examplefiles import EXAMPLES
from served import ServedApp, load_example_module

from llmsim import profiles
from llmsim.server.app import create_app


@pytest.fixture(scope="module")
def demo() -> Iterator[ModuleType]:
    registry = profiles.ProfileRegistry(profiles.load_file(EXAMPLES / "profiles" / "happy-path.yaml"))
    with ServedApp(create_app(registry)) as simulator, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", f"{simulator.url}/v1")
        mp.setenv("OPENAI_API_KEY", "sk-simulated-demo-key")
        mp.setenv("DEMO_MAX_TOKENS", "16")
        yield load_example_module("demo-app/app.py", "llmsim_demo_app")


@pytest.mark.parametrize("stream", [True, False])
def test_the_simulator_answers_the_demo_app(demo: ModuleType, stream: bool) -> None:
    answer = demo.ask("ping", stream)
    assert answer["reply"] == "pong"  # the happy-path profile's scripted rule
    assert answer["systemFingerprint"] == "fp_llmsim"
    assert answer["model"].startswith("gpt-4o-mini")
    assert 0 < answer["ttftMs"] <= answer["totalMs"]
    assert answer["stream"] is stream


def test_the_demo_app_serves_questions_over_http(demo: ModuleType) -> None:
    server = demo.ThreadingHTTPServer(("127.0.0.1", 0), demo.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(f"{base}/ask?q=Say+hello", timeout=20) as response:
            answer = json.load(response)
        assert answer["systemFingerprint"] == "fp_llmsim" and answer["reply"]
        assert answer["chunks"] > 1
        with urllib.request.urlopen(f"{base}/stats", timeout=5) as response:
            assert json.load(response)["answered"] >= 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
