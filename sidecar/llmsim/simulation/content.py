"""What a simulated reply says: lorem, echo, fixed text, scripted rules, tool calls, JSON."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

import numpy as np

from llmsim.api.profile import Content, ContentRule
from llmsim.simulation import schema_instance, tokens
from llmsim.simulation.request import GenerationRequest, ToolSpec

_LOREM = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "ut",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "ut",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "dolor",
    "in",
    "reprehenderit",
    "in",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "dolore",
    "eu",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "in",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
]


@dataclass(frozen=True)
class Reply:
    """Text and/or a tool call chosen for a reply, before length limits apply."""

    text: str
    tool: ToolSpec | None = None
    tool_arguments: dict[str, object] | None = None
    exact: bool = False
    """True when the text is fixed (echo, fixed, rule, JSON): its length is not sampled."""


@functools.cache
def _word_tokens(word: str) -> int:
    return tokens.count(" " + word)


def lorem(n_tokens: int, rng: np.random.Generator) -> str:
    """Deterministic (given rng) lorem-ipsum prose of at least `n_tokens` tokens.

    Word choices and sentence lengths are drawn in batches (one numpy call each, not one per word).
    """
    words: list[str] = []
    approx = 0
    batch = n_tokens + 8
    while approx < n_tokens + 2:
        picks = rng.integers(len(_LOREM), size=batch)
        sentence_ends = np.cumsum(rng.integers(6, 16, size=batch // 6 + 1))
        end_set = set(sentence_ends.tolist())
        capital = not words or words[-1].endswith(".")
        for i, pick in enumerate(picks.tolist(), start=1):
            word = _LOREM[pick]
            if capital:
                word = word.capitalize()
            capital = i in end_set
            if capital:
                word += "."
            words.append(word)
            approx += _word_tokens(word)
            if approx >= n_tokens + 2:
                break
    return " ".join(words)


def _expand(rule: ContentRule, match: re.Match[str]) -> str:
    template = rule.reply or ""
    template = re.sub(r"\$\{(\w+)\}", r"\\g<\1>", template)
    template = re.sub(r"\$(\d)", r"\\\1", template)
    try:
        return match.expand(template)
    except (re.error, IndexError):
        return rule.reply or ""


def choose_reply(content: Content, request: GenerationRequest, rng: np.random.Generator) -> Reply:
    """Pick the reply: scripted rules first, then forced tools, JSON formats, then `content.mode`."""
    last = request.last_user_text
    offered = {t.name: t for t in request.tools}
    for rule in content.rules:
        found = re.search(rule.match, last, flags=re.IGNORECASE)
        if not found:
            continue
        if rule.tool_call is not None:
            tool = offered.get(rule.tool_call.name)
            if tool is None or request.tool_choice.mode == "none":
                continue
            return Reply(text="", tool=tool, tool_arguments=dict(rule.tool_call.arguments), exact=True)
        return Reply(text=_expand(rule, found), exact=True)

    tool = _forced_or_sampled_tool(content, request, rng)
    if tool is not None:
        return Reply(text="", tool=tool, tool_arguments=None, exact=True)
    if request.json_schema is not None:
        value = schema_instance.instance(request.json_schema, rng)
        return Reply(text=json.dumps(value), exact=True)
    if request.json_mode:
        return Reply(text=json.dumps({"answer": lorem(8, rng)}), exact=True)
    if content.mode == "echo":
        return Reply(text=last, exact=True)
    if content.mode == "fixed":
        return Reply(text=content.text or "", exact=True)
    return Reply(text="", exact=False)


def _forced_or_sampled_tool(
    content: Content, request: GenerationRequest, rng: np.random.Generator
) -> ToolSpec | None:
    if not request.tools or content.tool_calls == "never":
        return None
    choice = request.tool_choice
    if choice.mode == "named":
        return next((t for t in request.tools if t.name == choice.name), None)
    if choice.mode == "required":
        return request.tools[int(rng.integers(len(request.tools)))]
    if choice.mode == "auto" and content.tool_call_share > 0 and rng.random() < content.tool_call_share:
        return request.tools[int(rng.integers(len(request.tools)))]
    return None


def tool_arguments(reply: Reply, rng: np.random.Generator) -> dict[str, object]:
    """Arguments for the reply's tool call: scripted, or generated from the tool's schema."""
    if reply.tool_arguments is not None:
        return reply.tool_arguments
    assert reply.tool is not None
    value = schema_instance.instance(reply.tool.parameters or {"type": "object"}, rng)
    return value if isinstance(value, dict) else {"value": value}
