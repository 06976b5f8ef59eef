"""Shared fixtures: real simulator servers on 127.0.0.1 with ephemeral ports (see simserver.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llmsim.profiles import NamedProfile, ProfileRegistry
from llmsim.runtime.state import RuntimeSettings
from llmsim.server.app import create_app
from simserver import FAST, SimServer, profile_from


@pytest.fixture
def sim_server_factory() -> Iterator[Callable[..., SimServer]]:
    """Start servers with given profile specs; all are stopped at the end of the test."""
    started: list[SimServer] = []

    def start(
        spec: dict[str, Any] | None = None, *extra: NamedProfile, settings: RuntimeSettings | None = None
    ) -> SimServer:
        default = profile_from(spec if spec is not None else FAST, name="test")
        server = SimServer(create_app(ProfileRegistry(default, list(extra)), settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sim_server(sim_server_factory: Callable[..., SimServer]) -> SimServer:
    """A server with the FAST profile."""
    return sim_server_factory()
