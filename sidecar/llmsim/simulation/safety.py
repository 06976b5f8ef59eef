"""Safety outcomes: what `content_filter` and `refusal` faults do to a reply. Pure.

* `content_filter`: the provider's output filter stops each choice after `afterTokens` tokens of
  text (tool calls are dropped); the finish reason is `content_filter`, which each provider
  renders its own way (OpenAI/Azure `finish_reason: content_filter`, Anthropic
  `stop_reason: refusal`, Gemini `finishReason: SAFETY`, Ollama `done_reason: stop`).
* `refusal`: the model declines in words; the finish reason is `refusal` (OpenAI/Azure put the
  text into `message.refusal` and finish with `stop`, Anthropic stops with `refusal`, Gemini and
  Ollama answer with the text and a normal stop).
"""

from __future__ import annotations

import dataclasses

from llmsim.api.faults import FaultType
from llmsim.simulation import tokens
from llmsim.simulation.plan import Choice, FaultDecision

REFUSAL_TEXT = "I'm sorry, but I can't help with that."
"""What a refusing model says."""

SAFETY_FAULTS = frozenset({FaultType.CONTENT_FILTER, FaultType.REFUSAL})
"""Faults that change the reply itself (rather than replacing or breaking the response)."""


def apply(choice: Choice, fault: FaultDecision | None) -> Choice:
    """The choice as the safety outcome of `fault` leaves it (unchanged for other faults)."""
    if fault is None or fault.fault not in SAFETY_FAULTS:
        return choice
    if fault.fault is FaultType.REFUSAL:
        pieces = tuple(tokens.split(REFUSAL_TEXT))
        return dataclasses.replace(choice, pieces=pieces, tool_calls=(), finish_reason="refusal",
                                   stop_sequence=None, logprobs=None)  # fmt: skip
    kept = choice.pieces[: fault.after_tokens]
    probs = choice.logprobs[: fault.after_tokens] if choice.logprobs is not None else None
    return dataclasses.replace(choice, pieces=kept, tool_calls=(), finish_reason="content_filter",
                               stop_sequence=None, logprobs=probs)  # fmt: skip
