"""Where a conversation stands: which turn the model is answering, and the tool results it answers.

Every provider's parser records the tool calls of assistant messages and the tool results the
client sends back (`request.Message.tool_calls` / `tool_results`). From those this module
derives, for any wire format alike:

* the exchange that answers the latest user message (a user message that is not merely a
  carrier of tool results, as Anthropic's and Gemini's tool-result turns are);
* its turn number: 1 is the model's first reply to that message, 2 its reply after the first
  round of tool results, and so on (one round = the consecutive tool-result messages between
  two assistant turns, however many calls they answer);
* the tool results the model answers now (the latest round, when the conversation ends with it),
  each with its tool's name: given by the wire format, or resolved from the id of the call it
  answers, or else from its position among the calls of the assistant message before it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from llmsim.simulation.request import Message, ToolResult


@dataclass(frozen=True)
class Turn:
    """The model's turn in the exchange that answers the latest user message."""

    number: int
    """1: the first reply to the user's message; n + 1: the reply after n rounds of tool results."""
    user_text: str
    """The latest user message ("" when the conversation has none)."""
    tool_results: tuple[ToolResult, ...] = ()
    """The results this reply answers (empty unless the conversation ends with tool results)."""

    @property
    def answers_tools(self) -> bool:
        return bool(self.tool_results)


def _is_user_text(message: Message) -> bool:
    return message.role == "user" and not message.tool_results


def _named(messages: Sequence[Message]) -> list[Message]:
    """The messages with every tool result's name filled in where it can be resolved."""
    by_id: dict[str, str] = {}
    recent: list[str] = []
    position = 0
    out: list[Message] = []
    for message in messages:
        if message.tool_calls:
            recent = [c.name for c in message.tool_calls]
            position = 0
            by_id.update({c.call_id: c.name for c in message.tool_calls if c.call_id})
        if not message.tool_results:
            out.append(message)
            continue
        results = []
        for result in message.tool_results:
            name = result.name
            if not name and result.call_id:
                name = by_id.get(result.call_id, "")
            if not name and position < len(recent):
                name = recent[position]
            position += 1
            results.append(dataclasses.replace(result, name=name) if name != result.name else result)
        out.append(dataclasses.replace(message, tool_results=tuple(results)))
    return out


def current_turn(messages: Sequence[Message]) -> Turn:
    """The turn the model answers at the end of `messages`. Pure."""
    named = _named(messages)
    start = next((i for i in range(len(named) - 1, -1, -1) if _is_user_text(named[i])), -1)
    user_text = named[start].text if start >= 0 else ""
    rounds = 0
    in_round = False
    latest: list[ToolResult] = []
    for message in named[start + 1 :]:
        if message.tool_results:
            if not in_round:
                rounds += 1
                latest = []
            in_round = True
            latest.extend(message.tool_results)
        elif message.role != "system":
            in_round = False
    ends_with_results = bool(named) and bool(named[-1].tool_results)
    return Turn(
        number=1 + rounds, user_text=user_text, tool_results=tuple(latest) if ends_with_results else ()
    )
