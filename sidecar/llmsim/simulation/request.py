"""The provider-neutral request that every provider's parser produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["chat", "completion", "responses", "embeddings", "count_tokens"]


@dataclass(frozen=True)
class PastToolCall:
    """A tool call an earlier assistant turn of the conversation made."""

    name: str
    arguments: str = ""
    """The arguments as the client sent them back (JSON text)."""
    call_id: str | None = None
    """The call's id (`call_…`, `toolu_…`); Ollama's calls have none."""


@dataclass(frozen=True)
class ToolResult:
    """The result of a tool call that the client sends back to the model."""

    content: str
    name: str = ""
    """The tool's name when the wire format carries it (Gemini, Ollama's `tool_name`, OpenAI's
    legacy `function` role); otherwise resolved from the call it answers (`conversation`)."""
    call_id: str | None = None
    """The id of the call it answers (`tool_call_id`, `tool_use_id`, `call_id`)."""


@dataclass(frozen=True)
class Message:
    """One message of a conversation, flattened to text (what the token estimator counts), with
    the tool calls it made (assistant) or the tool results it carries (tool, or Anthropic/Gemini
    user turns)."""

    role: str
    text: str
    tool_calls: tuple[PastToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


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
    parallel_tool_calls: bool = True
    """Whether the reply may call several tools at once (OpenAI `parallel_tool_calls`, the
    inverse of Anthropic's `disable_parallel_tool_use`)."""
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    seed: int | None = None
    include_usage: bool = False
    logprobs: int | None = None
    """Requested log probabilities: None when not asked for, else how many top alternatives per
    token (0 for the chosen token's alone)."""
    cache_marks: tuple[int, ...] = ()
    """Indexes into `messages` whose content the client marked for caching (Anthropic
    `cache_control`); -1 marks the tools."""
    context_tokens: tuple[int, ...] = ()
    """Token ids of an earlier exchange the prompt continues (Ollama `/api/generate` `context`);
    they count as prompt tokens."""
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
