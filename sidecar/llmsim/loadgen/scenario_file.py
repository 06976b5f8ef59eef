"""Loading scenario files (YAML or JSON; a bare spec or a whole LoadScenario resource) and API keys."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmsim import spec_documents
from llmsim.api import resources
from llmsim.api.scenario import ApiKeySource, LoadScenarioSpec
from llmsim.errors import LLMSimError, describe_validation_error


class ScenarioError(LLMSimError):
    """A scenario could not be loaded; `problems` are 'field.path: message' lines."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


def load_file(path: Path) -> LoadScenarioSpec:
    """Read and validate a scenario file; raises ScenarioError with field paths."""
    source = str(path)
    try:
        doc = spec_documents.read_file(path)  # unreadable, empty, not UTF-8, over-deep: one line
    except spec_documents.DocumentError as exc:
        raise ScenarioError(source, [str(exc)]) from None
    return parse(doc, source)


def parse(doc: Any, source: str = "<scenario>") -> LoadScenarioSpec:
    """A bare spec, or a whole LoadScenario resource (its operator-only fields, such as
    `schedule`, are validated and then ignored: `llmsim load` runs the scenario once)."""
    prefix = ""
    model: type[LoadScenarioSpec] = LoadScenarioSpec
    if isinstance(doc, dict) and "kind" in doc:
        if doc.get("kind") != "LoadScenario":
            raise ScenarioError(source, [f"kind: expected LoadScenario, got {doc.get('kind')!r}"])
        doc = doc.get("spec")
        prefix = "spec"
        model = resources.LoadScenarioResourceSpec
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ScenarioError(source, [f"{prefix or '<root>'}: expected a mapping, got {type(doc).__name__}"])
    try:
        spec = model.model_validate(doc)
    except ValidationError as exc:
        raise ScenarioError(source, describe_validation_error(exc, prefix)) from None
    if isinstance(spec, resources.LoadScenarioResourceSpec):
        return spec.load_spec()
    return spec


def read_api_key(source: ApiKeySource | None, base_dir: Path | None = None) -> str | None:
    """The key from the environment variable or file; raises LLMSimError (never showing the key)."""
    if source is None:
        return None
    if source.env is not None:
        value = os.environ.get(source.env, "").strip()
        if not value:
            raise LLMSimError(f"target.apiKey.env: environment variable {source.env} is not set or empty")
        return value
    assert source.file is not None
    path = Path(source.file).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LLMSimError(f"target.apiKey.file: cannot read {source.file}: {exc.strerror or exc}") from None
    if not value:
        raise LLMSimError(f"target.apiKey.file: {source.file} is empty")
    return value
