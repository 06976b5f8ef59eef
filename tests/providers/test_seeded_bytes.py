"""Seeded answers are byte-identical across changes to the planner and the renderers.

`data/seeded_bytes.json` pins the digest of every route's answer (status, headers, every frame's
time, token index and bytes) for fixed requests, profiles, seed, id and timestamp
(`seeded_bytes_cases.py`). A change that is meant to alter the bytes regenerates it:
`cd tests && python providers/seeded_bytes_cases.py > providers/data/seeded_bytes.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

from providers import seeded_bytes_cases

PINNED = Path(__file__).with_name("data") / "seeded_bytes.json"


def test_every_seeded_answer_has_its_pinned_bytes() -> None:
    pinned = json.loads(PINNED.read_text())
    current = dict(seeded_bytes_cases.cases())
    assert current.keys() == pinned.keys()
    changed = sorted(case for case in current if current[case] != pinned[case])
    assert not changed, f"{len(changed)} answers changed, e.g. {changed[:5]}"


def test_the_cases_cover_every_route() -> None:
    from llmsim.server import routes

    covered = {case.split(" [")[0] for case, _ in seeded_bytes_cases.cases()}
    assert covered == {f"{r.method} {r.path}" for r in routes.all_routes()}
