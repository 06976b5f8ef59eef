"""The request mix: what each scheduled request asks for (pure; seeded numpy, no I/O except
reading the prompts file once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmsim.api.distributions import Distribution
from llmsim.api.scenario import RequestMix
from llmsim.errors import LLMSimError
from llmsim.loadgen.conversation import Conversation
from llmsim.simulation import sampling, tokens

_WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "while", "seven", "clever",
    "owls", "watch", "from", "an", "old", "oak", "tree", "near", "river", "bank", "where", "small",
    "boats", "drift", "past", "quiet", "green", "hills", "under", "pale", "blue", "sky", "and",
    "warm", "sun",
)  # fmt: skip


@dataclass(frozen=True)
class PlannedRequest:
    """One request of the schedule."""

    index: int
    """Position in the whole (all-worker) schedule."""
    intended_s: float
    """Intended send time, seconds after the run starts."""
    prompt: str
    prompt_tokens: int
    """Prompt length estimated with llmsim's token estimator (used when the target reports no usage)."""
    max_tokens: int
    stream: bool
    tool_call: bool
    system: str | None = None
    model: str | None = None
    """The model of a `requests.models` mix (None: `target.model`)."""
    conversation: Conversation | None = None
    """A workflow turn: the history replaces `prompt` and `system`."""


class LazyDraws:
    """Draws of one distribution by index, made in growing vectorised chunks: draw i is the same
    for a given seed however many are asked for (closed-loop runs do not know their count)."""

    def __init__(self, dist: Distribution, rng: np.random.Generator, first: int = 1024) -> None:
        self._dist, self._rng = dist, rng
        self._values = np.zeros(0)
        self._next = max(1, first)

    def __getitem__(self, index: int) -> float:
        while index >= len(self._values):
            chunk = sampling.sample(self._dist, self._rng, self._next)
            self._values = np.concatenate([self._values, np.asarray(chunk, dtype=float)])
            self._next = len(self._values)
        return float(self._values[index])


class PromptSource:
    """Vectorised draws for the schedule, grown in chunks past `count` when asked (closed loops);
    prompt texts are built on demand."""

    def __init__(self, mix: RequestMix, count: int, seed: int, base_dir: Path | None = None) -> None:
        self._rng = np.random.default_rng([seed, 0x5EED])
        self._mix = mix
        self._texts: list[str] = []
        self._weights: np.ndarray | None = None
        if mix.templates:
            self._texts = [t.text for t in mix.templates]
            weights = np.asarray([t.weight for t in mix.templates], dtype=float)
            self._weights = weights / weights.sum()
        elif mix.prompts_file:
            self._texts = load_prompts_file(mix.prompts_file, base_dir)
        self._models = [m.name for m in mix.models]
        weights = np.asarray([m.weight for m in mix.models], dtype=float)
        self._model_weights = weights / weights.sum() if len(self._models) > 1 else None
        self._lengths = np.zeros(0, dtype=int)
        self._max_tokens = np.zeros(0, dtype=int)
        self._stream = np.zeros(0, dtype=bool)
        self._tool = np.zeros(0, dtype=bool)
        self._choice = np.zeros(0, dtype=int)
        self._model = np.zeros(0, dtype=int)
        self._grow(max(1, count))

    def _grow(self, count: int) -> None:
        rng, mix = self._rng, self._mix
        lengths = np.maximum(1, np.rint(sampling.sample(mix.prompt_tokens, rng, count))).astype(int)
        max_tokens = np.maximum(1, np.rint(sampling.sample(mix.max_tokens, rng, count))).astype(int)
        stream = rng.uniform(size=count) < mix.streaming_share
        tool = rng.uniform(size=count) < mix.tool_call_share
        if self._weights is not None:
            choice = rng.choice(len(self._texts), size=count, p=self._weights)
        elif self._texts:
            choice = rng.integers(0, len(self._texts), size=count)
        else:
            choice = np.zeros(count, dtype=int)
        if self._model_weights is not None:
            model = rng.choice(len(self._models), size=count, p=self._model_weights)
        else:
            model = np.zeros(count, dtype=int)
        self._lengths = np.concatenate([self._lengths, lengths])
        self._max_tokens = np.concatenate([self._max_tokens, max_tokens])
        self._stream = np.concatenate([self._stream, stream])
        self._tool = np.concatenate([self._tool, tool])
        self._choice = np.concatenate([self._choice, choice])
        self._model = np.concatenate([self._model, model])

    def request(
        self, index: int, intended_s: float, conversation: Conversation | None = None
    ) -> PlannedRequest:
        while index >= len(self._lengths):
            self._grow(len(self._lengths))
        if conversation is not None:
            prompt = ""
        elif self._texts:
            prompt = self._texts[int(self._choice[index])]
        else:
            prompt = synthetic_prompt(int(self._lengths[index]), index)
        return PlannedRequest(
            index=index,
            intended_s=intended_s,
            prompt=prompt,
            prompt_tokens=tokens.count(prompt) if conversation is None else conversation_tokens(conversation),
            max_tokens=int(self._max_tokens[index]),
            stream=bool(self._stream[index]),
            tool_call=bool(self._tool[index]) and conversation is None,
            system=self._mix.system if conversation is None else conversation.system,
            model=self._models[int(self._model[index])] if self._models else None,
            conversation=conversation,
        )


def conversation_tokens(conv: Conversation) -> int:
    """llmsim's estimate of a conversation's prompt length (used when the target reports no usage)."""
    parts = [conv.system or ""] + [m.text for m in conv.messages]
    parts += [str(m.result) for m in conv.messages if m.role == "tool"]
    return tokens.count(" ".join(p for p in parts if p))


def synthetic_prompt(n_tokens: int, offset: int = 0) -> str:
    """Text of exactly `n_tokens` tokens by llmsim's estimator (short words, one token each)."""
    start = offset % len(_WORDS)
    words = [_WORDS[(start + i) % len(_WORDS)] for i in range(max(1, n_tokens))]
    return " ".join(words)


def load_prompts_file(name: str, base_dir: Path | None) -> list[str]:
    """Prompts from a JSONL file of `{"prompt": "..."}` lines; raises LLMSimError naming the line."""
    path = Path(name)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LLMSimError(f"requests.promptsFile: cannot read {name}: {exc.strerror or exc}") from None
    prompts: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LLMSimError(f"requests.promptsFile: {name} line {number}: not JSON ({exc.msg})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("prompt"), str) or not doc["prompt"]:
            raise LLMSimError(f'requests.promptsFile: {name} line {number}: expected {{"prompt": "<text>"}}')
        prompts.append(doc["prompt"])
    if not prompts:
        raise LLMSimError(f"requests.promptsFile: {name} holds no prompts")
    return prompts
