"""The provider-neutral request that every provider's parser produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["chat", "completion", "responses", "embeddings", "count_tokens"]


@dataclass(frozen=True)
class Message:
    """One message of a conversation, flattened to text."""

    role: str
    text: str


@dataclass(frozen=True)
class ToolSpec:
    """A tool/function the caller offers; `parameters` is its JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolChoice:
    """`auto`: the model may call a tool; `required`: it must; `named`: it must call `name`."""

    mode: Literal["auto", "none", "required", "named"] = "auto"
    name: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What the simulator needs to know about a request, whatever its wire format."""

    provider: str
    operation: Operation
    model: str
    messages: tuple[Message, ...] = ()
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    n: int = 1
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    seed: int | None = None
    include_usage: bool = False
    inputs: tuple[str, ...] = ()
    """Texts to embed (embeddings operation)."""
    dimensions: int | None = None
    """Requested embedding size."""
    client_request_id: str | None = None
    """An id the client sent (idempotency key, x-request-id), for per-request fault decisions."""
    api_key_id: str | None = None
    """A non-reversible fingerprint of the caller's credential (for rate-limit buckets)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider-specific facts the renderer needs (e.g. Azure deployment, Responses `instructions`)."""

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return self.messages[-1].text if self.messages else ""
