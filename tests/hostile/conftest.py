"""One `llmsim serve` process (started from the CLI) shared by the hostile-input cases of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hostile.harness import Served, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("hostile")) as running:
        yield running
    found = running.traceback()
    assert found is None, f"llmsim serve logged a traceback:\n{found}"
