"""A response plan: everything about one simulated response, decided up front.

Provider renderers turn a plan into bytes; the streaming executor sends those bytes at the
plan's deadlines. Nothing in a plan depends on wall-clock time.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from llmsim.api.faults import FaultType
from llmsim.simulation.logprobs import TokenLogprob

FinishReason = Literal["stop", "length", "tool_calls", "stop_sequence", "content_filter", "refusal"]
"""`content_filter` and `refusal` come from safety faults (`simulation/safety.py`)."""


@dataclass(frozen=True)
class ToolCall:
    """A tool call in the reply; `argument_pieces` is `arguments_json` split into stream fragments."""

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_json: str
    argument_pieces: tuple[str, ...]


@dataclass(frozen=True)
class Choice:
    """One alternative of the reply (OpenAI `n`); most requests have exactly one."""

    index: int
    pieces: tuple[str, ...]
    """The reply text as token pieces (their concatenation is the text)."""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: FinishReason = "stop"
    stop_sequence: str | None = None
    """The stop sequence that ended the reply, if one did."""
    logprobs: tuple[TokenLogprob, ...] | None = None
    """Per text piece, when the request asked for log probabilities."""

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + sum(len(c.argument_pieces) for c in self.tool_calls)


@dataclass(frozen=True)
class FaultDecision:
    """The fault this request meets (if any) and why; rendered by the provider."""

    fault: FaultType
    reason: str
    """`forced` (header), `window`, `rate`, `fail_first`, `rate_limit`, `capacity`, `context`."""
    after_tokens: int = 0
    """For stream faults: tokens delivered before it strikes."""
    retry_after_s: float | None = None
    """What to put into retry-after, when the fault has one."""
    detail: dict[str, Any] = field(default_factory=dict)
    """Renderer hints, e.g. the rate-limit headers or the context-length numbers."""


@dataclass(frozen=True)
class Timing:
    """When each output token is due, relative to the moment the request was admitted.

    `token_offsets_s[k]` is when token k (of every choice) is emitted; `token_offsets_s[0]` is the
    TTFT. Queue time (capacity model) is included in the offsets and reported separately.
    """

    queue_s: float
    ttft_s: float
    token_offsets_s: tuple[float, ...]

    @property
    def e2e_s(self) -> float:
        return self.token_offsets_s[-1] if self.token_offsets_s else self.ttft_s

    @property
    def itl_s(self) -> tuple[float, ...]:
        offs = self.token_offsets_s
        return tuple(b - a for a, b in itertools.pairwise(offs))


@dataclass(frozen=True)
class ResponsePlan:
    """A complete simulated answer."""

    response_id: str
    """Provider-neutral random id; renderers add their prefixes (`chatcmpl-`, `msg_`, ...)."""
    model: str
    """The model name reported back (after aliasing)."""
    created: int
    """Unix time the response claims to be created at."""
    choices: tuple[Choice, ...]
    prompt_tokens: int
    timing: Timing
    fault: FaultDecision | None = None
    embeddings: tuple[tuple[float, ...], ...] = ()
    """For embeddings requests: one vector per input."""
    cached_tokens: int = 0
    """Prompt tokens read from the prompt cache."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the prompt cache (explicit caching: Anthropic)."""
    stream_groups: tuple[int, ...] = ()
    """Token slots per stream chunk, in order, where the format groups tokens (Gemini); empty:
    one chunk per slot. The sizes add up to `stream_length`."""

    @property
    def completion_tokens(self) -> int:
        return sum(c.output_tokens for c in self.choices)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def stream_length(self) -> int:
        """Number of token slots in the stream (the longest choice)."""
        return max((c.output_tokens for c in self.choices), default=0)
