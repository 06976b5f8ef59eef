"""The Dockerfiles keep their promises: multi-stage, wheels only, a non-root numeric user matching what
the operator runs them as, no compiler in the final stage, a HEALTHCHECK, and ports that match the
settings and constants. (Building them needs Docker: `make images`, and the kind suite.)"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from llmsim_operator import constants
from llmsim_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {"sidecar": REPO / "sidecar" / "Dockerfile", "operator": REPO / "operator" / "Dockerfile"}
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make ", "clang", "cargo", "rustc", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]


def stages(path: Path) -> list[Stage]:
    """The Dockerfile's stages with their instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    out: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            parts = rest.split()
            out.append(Stage(parts[0], parts[2] if len(parts) > 2 else ""))
        elif out:
            out[-1].instructions.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_multi_stage_from_a_slim_python_312(image: str) -> None:
    text = DOCKERFILES[image].read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.12-slim", text, re.M)
    built = stages(DOCKERFILES[image])
    assert len(built) == 2 and all(s.base == "${PYTHON_IMAGE}" for s in built)
    final = built[-1]
    assert any(a.startswith("--from=build /opt/llmsim") for a in final.args("COPY"))


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_dependencies_come_from_wheels_and_no_build_tool_reaches_the_final_stage(image: str) -> None:
    build, final = stages(DOCKERFILES[image])
    install = " ".join(build.args("RUN"))
    assert "--only-binary=:all:" in install and "-c constraints.txt" in install
    assert "compileall" in install  # bytecode at build time: nothing to write on a read-only root
    final_runs = " ".join(final.args("RUN"))
    assert not [tool for tool in BUILD_TOOLS if tool in final_runs]
    assert "pip install" not in final_runs


def test_the_users_are_the_uids_the_chart_and_the_operator_run_them_as() -> None:
    sidecar_user = stages(DOCKERFILES["sidecar"])[-1].args("USER")
    operator_user = stages(DOCKERFILES["operator"])[-1].args("USER")
    assert sidecar_user == [f"{constants.SIDECAR_UID}:{constants.SIDECAR_UID}"]
    values = (REPO / "charts" / "llmsim" / "values.yaml").read_text(encoding="utf-8")
    uid = re.search(r"runAsUser: (\d+)", values)
    assert uid is not None and operator_user == [f"{uid[1]}:{uid[1]}"]


@pytest.mark.parametrize("image", list(DOCKERFILES))
def test_a_healthcheck_and_a_writable_home_outside_the_root_filesystem(image: str) -> None:
    final = stages(DOCKERFILES[image])[-1]
    assert final.args("HEALTHCHECK")
    env = " ".join(final.args("ENV"))
    assert "HOME=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env


def test_exposed_ports_match_the_settings_and_constants() -> None:
    sidecar = stages(DOCKERFILES["sidecar"])[-1].args("EXPOSE")[0].split()
    assert {str(constants.PROXY_PORT), str(constants.ADMIN_PORT), "8080"} == set(sidecar)
    operator = stages(DOCKERFILES["operator"])[-1].args("EXPOSE")[0].split()
    defaults = OperatorSettings.model_fields
    assert {str(defaults["webhook_port"].default), str(defaults["metrics_port"].default)} == set(operator)


def test_the_sidecar_image_carries_what_the_injected_init_containers_run() -> None:
    final = stages(DOCKERFILES["sidecar"])[-1]
    assert "iptables" in " ".join(final.args("RUN"))  # the iptables capture mode's init container


def test_the_build_context_is_limited_to_the_sources() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "**"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    copied = {
        src for image in DOCKERFILES.values() for a in stages(image)[0].args("COPY") for src in a.split()[:-1]
    }
    assert {"pyproject.toml", "constraints.txt", "sidecar/llmsim", "operator/llmsim_operator"} <= copied
    for source in copied:
        assert any(source.rstrip("/") == entry.removesuffix("/**") for entry in allowed), source
