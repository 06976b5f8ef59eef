"""A real simulator server on 127.0.0.1 with an ephemeral port, for tests.

`SimServer` runs `llmsim.server.app.create_app` on its own event loop in a background thread,
so synchronous SDK clients (openai, anthropic, google-genai, ollama) can talk to it from the
test thread. It is stopped and joined when the fixture ends.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from llmsim import profiles
from llmsim.profiles import NamedProfile


class SimServer:
    """An llmsim app served on 127.0.0.1:<ephemeral> from a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, name="llmsim-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def profile_from(spec: dict[str, Any], name: str = "test") -> NamedProfile:
    """A validated profile from a spec mapping (camelCase, like a file)."""
    return NamedProfile(name=name, spec=profiles.parse_spec(spec, name), source="test")


FAST = {
    "seed": 7,
    "latency": {
        "ttftMs": {"type": "constant", "value": 5},
        "itlMs": {"type": "constant", "value": 1},
        "outputTokens": {"type": "constant", "value": 12},
    },
}
"""A quick, deterministic profile for functional tests."""
