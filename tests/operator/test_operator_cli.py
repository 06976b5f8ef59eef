"""`llmsim operator` on the command line."""

from __future__ import annotations

from typing import Any

import pytest

from llmsim.cli import main as cli


def test_the_operator_command_runs_the_operator_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmsim_operator import main as operator_main

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(operator_main, "run", lambda **kwargs: calls.append(kwargs) or 0)
    assert cli.main(["operator", "-n", "team-a", "-n", "team-b", "--standalone"]) == 0
    assert calls == [{"namespaces": ["team-a", "team-b"], "standalone": True, "verbose": False}]


def test_the_operator_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "operator" in capsys.readouterr().out
