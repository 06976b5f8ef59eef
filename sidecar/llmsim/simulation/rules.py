"""Scripted replies (`content.rules`): which rule applies where the conversation stands, and
what it says, with capture groups of the user message and of the tool result filled in.

A rule applies when all its conditions hold (see `api.profile.ContentRule`): `match` found in
the latest user message; `toolResult` naming one of the tool results the reply answers (and
`toolResult.match` found in its content); the model turn equal to `turn`, which defaults to 1
for rules without `toolResult`. A rule whose tool calls the request does not offer (or whose
tool choice is `none`) is skipped. So a profile scripts a whole tool flow in a few rules:

    - match: "weather in (?P<city>\\w+)"          # turn 1: call A
      toolCall: {name: get_weather, arguments: {city: "${city}"}}
    - toolResult: {name: get_weather, match: "(?P<temp>-?\\d+)"}   # then B, with what A returned
      toolCall: {name: to_fahrenheit, arguments: {celsius: "${temp}"}}
    - toolResult: {name: to_fahrenheit}          # then answer
      reply: "Done."
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmsim import linear_regex
from llmsim.api.profile import ContentRule, ToolCallReply
from llmsim.simulation.conversation import Turn
from llmsim.simulation.request import GenerationRequest, ToolSpec
from llmsim.simulation.tool_plan import PlannedCall, Reply

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}|\$(\d)")
_WHOLE = re.compile(r"\$\{(\w+)\}")


@dataclass(frozen=True)
class Captures:
    """Capture groups a rule's texts may quote: `$1`..`$9` (of the tool result's match when the
    rule has one, else of the user match) and `${name}` (either; the tool result's win)."""

    numbered: tuple[str, ...] = ()
    named: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def of(*found: linear_regex.Match | None) -> Captures:
        numbered: tuple[str, ...] = ()
        named: dict[str, str] = {}
        for match in found:
            if match is None:
                continue
            numbered = tuple(g or "" for g in match.groups())
            named.update({k: v or "" for k, v in match.groupdict().items()})
        return Captures(numbered, named)

    def _lookup(self, found: re.Match[str]) -> str:
        name, digit = found.group(1), found.group(2)
        if name is not None:
            if name in self.named:
                return self.named[name]
            if name.isdigit():
                digit = name
            else:
                return ""
        index = int(digit) - 1
        return self.numbered[index] if 0 <= index < len(self.numbered) else ""

    def expand(self, template: str) -> str:
        """`template` with every `$N` / `${name}` replaced (unknown groups become "")."""
        return _PLACEHOLDER.sub(self._lookup, template)

    def value(self, template: Any) -> Any:
        """A tool-call argument with captures filled in, recursively; a string that is exactly one
        `${name}` becomes the JSON number, boolean or null its capture spells, if it spells one."""
        if isinstance(template, dict):
            return {k: self.value(v) for k, v in template.items()}
        if isinstance(template, list):
            return [self.value(v) for v in template]
        if not isinstance(template, str):
            return template
        whole = _WHOLE.fullmatch(template)
        text = self.expand(template)
        if whole is not None:
            try:
                parsed = json.loads(text)
            except ValueError:
                return text
            if parsed is None or isinstance(parsed, bool | int | float):
                return parsed
        return text


def _conditions(rule: ContentRule, turn: Turn) -> Captures | None:
    """The rule's captures when it applies on this turn, else None."""
    wanted_turn = rule.turn if rule.turn is not None else (None if rule.tool_result is not None else 1)
    if wanted_turn is not None and turn.number != wanted_turn:
        return None
    user = None
    if rule.match is not None:
        user = linear_regex.search(rule.match, turn.user_text, ignore_case=True)
        if user is None:
            return None
    result = None
    if rule.tool_result is not None:
        wanted = rule.tool_result
        for candidate in turn.tool_results:
            if wanted.name is not None and candidate.name != wanted.name:
                continue
            if wanted.match is None:
                break
            result = linear_regex.search(wanted.match, candidate.content, ignore_case=True)
            if result is not None:
                break
        else:
            return None
    return Captures.of(user, result)


def _calls(
    scripted: list[ToolCallReply], offered: dict[str, ToolSpec], captures: Captures
) -> tuple[PlannedCall, ...] | None:
    """The scripted calls, or None when the request does not offer one of their tools."""
    calls: list[PlannedCall] = []
    for call in scripted:
        tool = offered.get(call.name)
        if tool is None:
            return None
        calls.append(PlannedCall(tool, captures.value(dict(call.arguments))))
    return tuple(calls)


def scripted_reply(rules: Sequence[ContentRule], request: GenerationRequest, turn: Turn) -> Reply | None:
    """The reply of the first rule that applies, or None."""
    offered = {t.name: t for t in request.tools}
    for rule in rules:
        captures = _conditions(rule, turn)
        if captures is None:
            continue
        calls: tuple[PlannedCall, ...] = ()
        if rule.calls:
            if request.tool_choice.mode == "none":
                continue
            found = _calls(rule.calls, offered, captures)
            if found is None:
                continue
            calls = found if request.parallel_tool_calls else found[:1]
        text = captures.expand(rule.reply) if rule.reply is not None else ""
        return Reply(text=text, calls=calls, exact=True)
    return None
