"""Helpers shared by the telemetry tests: a Prometheus scrape and a threaded HTTP receiver."""

from __future__ import annotations

import urllib.request
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from simserver import SimServer


def scrape(server: SimServer) -> dict[str, list[tuple[dict[str, str], float]]]:
    """`GET /metrics` parsed with prometheus-client's parser: sample name -> [(labels, value)]."""
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **match: str) -> float:
    """Sum of a sample over the label sets that match `match`."""
    return sum(v for labels, v in samples.get(name, []) if all(labels.get(k) == m for k, m in match.items()))


def receiver(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], path: str = "/{tail:.*}"
) -> SimServer:
    """An aiohttp app on 127.0.0.1 (own thread and loop) routing every POST to `handler`."""
    app = web.Application()
    app.router.add_post(path, handler)
    return SimServer(app).start()
