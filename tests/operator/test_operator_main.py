"""How `llmsim operator` starts kopf: standalone (flag or variable) means no peering at all;
otherwise peering is mandatory under LLMSIM_OPERATOR_PEERING. (kopf makes peering mandatory as soon
as it is given a peering name, and mandatory peering plus standalone paused every watch forever.)"""

from __future__ import annotations

import pytest

from llmsim_operator import main
from llmsim_operator.settings import OperatorSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LLMSIM_OPERATOR_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    ("flag", "env"), [(True, None), (False, "true"), (True, "false")], ids=["flag", "variable", "flag-wins"]
)
def test_standalone_from_the_flag_or_the_variable_passes_no_peering_name(
    monkeypatch: pytest.MonkeyPatch, flag: bool, env: str | None
) -> None:
    if env is not None:
        monkeypatch.setenv("LLMSIM_OPERATOR_STANDALONE", env)
    settings = main.effective_settings(None, flag, OperatorSettings())
    assert settings.standalone is True
    options = main.kopf_options(settings)
    assert options["standalone"] is True and "peering_name" not in options


def test_without_standalone_peering_is_mandatory_under_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSIM_OPERATOR_PEERING", "llmsim-staging")
    options = main.kopf_options(main.effective_settings(None, False, OperatorSettings()))
    assert options == {
        "clusterwide": True,
        "namespaces": [],
        "standalone": False,
        "peering_name": "llmsim-staging",
    }


def test_namespaces_from_the_command_line_reach_every_part_of_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMSIM_OPERATOR_WATCH_NAMESPACES", "from-env")
    settings = main.effective_settings(["team-a", "team-b"], False, OperatorSettings())
    assert settings.watch_namespaces == ["team-a", "team-b"]
    options = main.kopf_options(settings)
    assert (options["clusterwide"], options["namespaces"]) == (False, ["team-a", "team-b"])
    assert main.kopf_options(main.effective_settings([], False, OperatorSettings()))["namespaces"] == [
        "from-env"
    ]


def test_run_hands_kopf_the_effective_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(main.kopf, "run", lambda **kwargs: calls.append(kwargs))
    assert main.run(namespaces=["team-a"], standalone=True) == 0
    (call,) = calls
    memo = call.pop("memo")
    assert call == {"clusterwide": False, "namespaces": ["team-a"], "standalone": True}
    settings = memo["llmsim_settings"]  # type: ignore[index]
    assert settings.standalone is True and settings.watch_namespaces == ["team-a"]
