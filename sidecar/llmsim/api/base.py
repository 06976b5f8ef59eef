"""Shared base model: strict about unknown keys, documented fields, camel-free snake_case."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class StrictModel(BaseModel):
    """Base of every spec model.

    * Unknown keys are rejected (a typo never disappears silently).
    * Files and custom resources use Kubernetes-style camelCase (`maxConcurrency`); Python code
      may use the snake_case attribute names too. Serialise with `model_dump(by_alias=True)`.
    * Attribute docstrings become field descriptions (and so the CRD and JSON Schema docs).
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
    )
