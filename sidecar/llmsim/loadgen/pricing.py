"""Cost estimate from token usage and a per-model price table (USD per million tokens).

The built-in table holds list prices of common models as published by the providers (standard
tier, no batch or caching discounts); prices change, so treat the estimate as indicative and
override entries with the scenario's `pricing` list or `llmsim load --prices FILE` (which wins
over the scenario). Patterns are globs matched against the target's model name; first match wins.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from llmsim.api.scenario import ModelPrice
from llmsim.errors import LLMSimError, describe_validation_error

BUILTIN_PRICES: tuple[tuple[str, float, float], ...] = (
    # model glob, input USD / 1M tokens, output USD / 1M tokens
    ("gpt-4o-mini*", 0.15, 0.60),
    ("gpt-4o*", 2.50, 10.00),
    ("gpt-4.1-nano*", 0.10, 0.40),
    ("gpt-4.1-mini*", 0.40, 1.60),
    ("gpt-4.1*", 2.00, 8.00),
    ("gpt-4-turbo*", 10.00, 30.00),
    ("gpt-3.5-turbo*", 0.50, 1.50),
    ("o1-mini*", 1.10, 4.40),
    ("o3-mini*", 1.10, 4.40),
    ("o4-mini*", 1.10, 4.40),
    ("o1*", 15.00, 60.00),
    ("o3*", 2.00, 8.00),
    ("claude-3-haiku*", 0.25, 1.25),
    ("claude-3-5-haiku*", 0.80, 4.00),
    ("claude-haiku-4*", 1.00, 5.00),
    ("claude-3-5-sonnet*", 3.00, 15.00),
    ("claude-3-7-sonnet*", 3.00, 15.00),
    ("claude-sonnet-4*", 3.00, 15.00),
    ("claude-3-opus*", 15.00, 75.00),
    ("claude-opus-4*", 15.00, 75.00),
    ("gemini-1.5-flash*", 0.075, 0.30),
    ("gemini-1.5-pro*", 1.25, 5.00),
    ("gemini-2.0-flash-lite*", 0.075, 0.30),
    ("gemini-2.0-flash*", 0.10, 0.40),
    ("gemini-2.5-flash-lite*", 0.10, 0.40),
    ("gemini-2.5-flash*", 0.30, 2.50),
    ("gemini-2.5-pro*", 1.25, 10.00),
    # self-hosted models (Ollama, vLLM): no per-token price
    ("llama*", 0.0, 0.0),
    ("mistral*", 0.0, 0.0),
    ("qwen*", 0.0, 0.0),
    ("gemma*", 0.0, 0.0),
    ("phi*", 0.0, 0.0),
)
"""The built-in price table (docs/loadgen.md lists it)."""


@dataclass(frozen=True)
class Price:
    pattern: str
    input_per_million_usd: float
    output_per_million_usd: float
    source: str
    """`scenario`, `file` or `built-in`."""


def find_price(
    model: str, scenario: Sequence[ModelPrice] = (), file: Sequence[ModelPrice] = ()
) -> Price | None:
    """The price entry for `model` (case-insensitive glob match): `--prices` file entries first,
    then the scenario's, then the built-in table."""
    name = model.lower()
    for entries, source in ((file, "file"), (scenario, "scenario")):
        for entry in entries:
            if fnmatch.fnmatchcase(name, entry.model.lower()):
                return Price(entry.model, entry.input_per_million_usd, entry.output_per_million_usd, source)
    for pattern, inp, out in BUILTIN_PRICES:
        if fnmatch.fnmatchcase(name, pattern):
            return Price(pattern, inp, out, "built-in")
    return None


def cost_usd(price: Price, prompt_tokens: int, output_tokens: int) -> float:
    return (prompt_tokens * price.input_per_million_usd + output_tokens * price.output_per_million_usd) / 1e6


def load_price_file(path: Path) -> list[ModelPrice]:
    """A YAML/JSON list of `{model, inputPerMillionUsd, outputPerMillionUsd}` entries."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LLMSimError(f"--prices: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise LLMSimError(f"--prices: {path} is not valid YAML: {exc}") from None
    try:
        return TypeAdapter(list[ModelPrice]).validate_python(doc)
    except ValidationError as exc:
        raise LLMSimError(f"--prices: {path}: " + "; ".join(describe_validation_error(exc))) from None
