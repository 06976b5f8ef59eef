"""The request mix: what each scheduled request asks for (pure; seeded numpy, no I/O except
reading the prompts file once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmsim.api.scenario import RequestMix
from llmsim.errors import LLMSimError
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


class PromptSource:
    """Vectorised draws for the whole schedule; prompt texts are built on demand."""

    def __init__(self, mix: RequestMix, count: int, seed: int, base_dir: Path | None = None) -> None:
        rng = np.random.default_rng([seed, 0x5EED])
        self._mix = mix
        self._lengths = np.maximum(1, np.rint(sampling.sample(mix.prompt_tokens, rng, count))).astype(int)
        self._max_tokens = np.maximum(1, np.rint(sampling.sample(mix.max_tokens, rng, count))).astype(int)
        self._stream = rng.uniform(size=count) < mix.streaming_share
        self._tool = rng.uniform(size=count) < mix.tool_call_share
        self._texts: list[str] = []
        if mix.templates:
            self._texts = [t.text for t in mix.templates]
            weights = np.asarray([t.weight for t in mix.templates], dtype=float)
            self._choice = rng.choice(len(self._texts), size=count, p=weights / weights.sum())
        elif mix.prompts_file:
            self._texts = load_prompts_file(mix.prompts_file, base_dir)
            self._choice = rng.integers(0, len(self._texts), size=count)
        else:
            self._choice = np.zeros(count, dtype=int)

    def request(self, index: int, intended_s: float) -> PlannedRequest:
        if self._texts:
            prompt = self._texts[int(self._choice[index])]
        else:
            prompt = synthetic_prompt(int(self._lengths[index]), index)
        return PlannedRequest(
            index=index,
            intended_s=intended_s,
            prompt=prompt,
            prompt_tokens=tokens.count(prompt),
            max_tokens=int(self._max_tokens[index]),
            stream=bool(self._stream[index]),
            tool_call=bool(self._tool[index]),
            system=self._mix.system,
        )


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
