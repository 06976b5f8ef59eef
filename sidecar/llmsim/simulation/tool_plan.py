"""Which tools a reply calls when no scripted rule decides: forced by the request, or sampled.

* tool choice `none` (or `content.toolCalls: never`): no call;
* a named tool (OpenAI `{"type":"function",...}`, Anthropic `{"type":"tool"}`, Gemini `ANY`
  with one allowed name): that tool, on every turn, as the real APIs force it;
* `required` (Anthropic `any`, Gemini `ANY`): a call on every turn;
* `auto` (and Ollama, which has no tool choice): a call with probability `toolCallShare` on a
  turn that answers a user message and `toolFollowUpShare` on one that answers tool results.

A reply that calls tools calls several at once with probability `parallelToolCallShare` when
the request allows parallel calls (2 to `maxParallelToolCalls`, uniformly): distinct tools
while there are enough, then the offered tools again in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmsim.api.profile import Content
from llmsim.simulation.conversation import Turn
from llmsim.simulation.request import GenerationRequest, ToolSpec


@dataclass(frozen=True)
class PlannedCall:
    """A tool call a reply will make; `arguments` None means: generate them from the schema."""

    tool: ToolSpec
    arguments: dict[str, object] | None = None


@dataclass(frozen=True)
class Reply:
    """Text and/or tool calls chosen for a reply, before length limits apply."""

    text: str
    calls: tuple[PlannedCall, ...] = ()
    exact: bool = False
    """True when the text is fixed (echo, fixed, rule, JSON, tool calls): its length is not sampled."""


def sampled_calls(
    content: Content, request: GenerationRequest, turn: Turn, rng: np.random.Generator
) -> tuple[PlannedCall, ...]:
    """The calls of a reply that no rule scripted (empty: answer with text). Pure given `rng`."""
    tools = request.tools
    choice = request.tool_choice
    if not tools or content.tool_calls == "never" or choice.mode == "none":
        return ()
    if choice.mode == "named":
        named = next((t for t in tools if t.name == choice.name), None)
        return (PlannedCall(named),) if named is not None else ()
    if choice.mode == "auto":
        share = content.tool_follow_up_share if turn.answers_tools else content.tool_call_share
        if share <= 0 or rng.random() >= share:
            return ()
    count = 1
    if (
        request.parallel_tool_calls
        and content.parallel_tool_call_share > 0
        and rng.random() < content.parallel_tool_call_share
    ):
        count = int(rng.integers(2, content.max_parallel_tool_calls + 1))
    order = rng.permutation(len(tools)).tolist() if count > 1 else [int(rng.integers(len(tools)))]
    return tuple(PlannedCall(tools[order[i % len(order)]]) for i in range(count))
