"""What a simulated reply says: scripted rules, tool calls, JSON, or lorem / echo / fixed text.

The order of precedence: a scripted rule that applies where the conversation stands
(`rules`), then a forced or sampled tool call (`tool_plan`), then a JSON reply
(`response_format` / structured outputs), then `content.mode`.
"""

from __future__ import annotations

import functools
import json

import numpy as np

from llmsim.api.profile import Content
from llmsim.simulation import conversation, rules, schema_instance, tokens, tool_plan
from llmsim.simulation.request import GenerationRequest
from llmsim.simulation.tool_plan import PlannedCall, Reply

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


@functools.cache
def _word_tokens(word: str) -> int:
    return tokens.count(" " + word)


def _word_forms(word: str) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """The token pieces of a lorem word's four forms (plain, +".", capitalised, capitalised +"."),
    without and with the leading space."""
    cap = word.capitalize()
    forms = (word, word + ".", cap, cap + ".")
    return tuple(tuple(tokens.split(f)) for f in forms), tuple(tuple(tokens.split(" " + f)) for f in forms)


_PIECES = [_word_forms(word) for word in _LOREM]
"""_PIECES[word][leading space][form]: the word's token pieces in each form."""


def lorem_pieces(n_tokens: int, rng: np.random.Generator) -> list[str]:
    """`tokens.split(lorem(n_tokens, rng))`, from the same draws, without building and re-splitting
    the text: the estimator splits at every space before a letter, so a text of lorem words is
    split word by word, and each word's pieces are known in advance."""
    pieces: list[str] = []
    approx = 0
    batch = n_tokens + 8
    table = _PIECES
    while approx < n_tokens + 2:
        picks = rng.integers(len(_LOREM), size=batch)
        sentence_ends = np.cumsum(rng.integers(6, 16, size=batch // 6 + 1))
        end_set = set(sentence_ends.tolist())
        capital = not pieces or pieces[-1].endswith(".")
        for i, pick in enumerate(picks.tolist(), start=1):
            form = 2 if capital else 0
            capital = i in end_set
            if capital:
                form += 1
            word = table[pick][1 if pieces else 0][form]
            pieces.extend(word)
            approx += len(table[pick][1][form])
            if approx >= n_tokens + 2:
                break
    return pieces


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


def choose_reply(content: Content, request: GenerationRequest, rng: np.random.Generator) -> Reply:
    """Pick the reply for where the conversation stands. Pure given `rng`."""
    turn = conversation.current_turn(request.messages)
    scripted = rules.scripted_reply(content.rules, request, turn)
    if scripted is not None:
        return scripted
    calls = tool_plan.sampled_calls(content, request, turn, rng)
    if calls:
        return Reply(text="", calls=calls, exact=True)
    if request.json_schema is not None:
        value = schema_instance.instance(request.json_schema, rng, max_chars=_schema_chars(request))
        return Reply(text=json.dumps(value), exact=True)
    if request.json_mode:
        return Reply(text=json.dumps({"answer": lorem(8, rng)}), exact=True)
    if content.mode == "echo":
        return Reply(text=turn.user_text or request.last_user_text, exact=True)
    if content.mode == "fixed":
        return Reply(text=content.text or "", exact=True)
    return Reply(text="", exact=False)


def _schema_chars(request: GenerationRequest) -> int:
    """The most characters a schema-generated value needs: what max tokens lets through (a token
    of the estimator is at most 8 characters), within the generator's hard budget."""
    if request.max_tokens is None:
        return schema_instance.MAX_CHARS
    return min(schema_instance.MAX_CHARS, 8 * max(request.max_tokens, 0) + 16)


def tool_arguments(
    call: PlannedCall, rng: np.random.Generator, request: GenerationRequest | None = None
) -> dict[str, object]:
    """Arguments for a planned call: scripted, or generated from the tool's schema."""
    if call.arguments is not None:
        return call.arguments
    limit = schema_instance.MAX_CHARS if request is None else _schema_chars(request)
    value = schema_instance.instance(call.tool.parameters or {"type": "object"}, rng, max_chars=limit)
    return value if isinstance(value, dict) else {"value": value}
