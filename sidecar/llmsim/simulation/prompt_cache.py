"""Prompt caching: repeated prompt prefixes are read from a cache (`promptCaching` in a profile).

A prompt is its token pieces in the order the provider caches them: the tools, then the
messages. The cache holds chained hashes of prefixes that end on a *boundary*:

* automatic caching (OpenAI, Azure, Gemini's implicit caching; Ollama reuses its KV cache the
  same way): every `blockTokens` tokens from `minPrefixTokens` on (OpenAI: 1,024, then steps
  of 128);
* explicit caching (Anthropic): the ends of the blocks that carry `cache_control` (and of the
  last message for a top-level `cache_control`), once at least `minPrefixTokens` long.

A request reads the longest cached prefix (`cached_tokens`), then every boundary of its prompt
is stored, so the next request that repeats the prefix finds it; for explicit caching the part
between the read prefix and the last breakpoint is reported as written. Entries expire
`ttlS` after their last use, the cache keeps at most `maxEntries` (least recently used out),
and entries are scoped by (model, credential fingerprint), as the providers scope them by
organisation. A stored prefix is found with probability `hitRate` (real caches are
best-effort); that draw is a hash of (seed, prefix, uses so far), so a run is reproducible for
the same sequence of requests. Time is passed in (`now`); nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass

from llmsim.api.profile import PromptCaching
from llmsim.simulation import tokens
from llmsim.simulation.request import GenerationRequest

EXPLICIT_PROVIDERS = frozenset({"anthropic"})
"""Formats whose clients mark what to cache (`cache_control`); the others cache automatically."""


@dataclass(frozen=True)
class CacheUse:
    """What the cache did for one request."""

    read_tokens: int = 0
    """Prompt tokens read from the cache (`cached_tokens`, `cache_read_input_tokens`, ...)."""
    written_tokens: int = 0
    """Prompt tokens written to the cache (Anthropic's `cache_creation_input_tokens`)."""


@dataclass
class _Entry:
    expires: float
    uses: int = 0


def _segments(request: GenerationRequest) -> list[str]:
    texts = [json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters},
                        sort_keys=True) for t in request.tools]  # fmt: skip
    return ["\n".join(texts), *(f"{m.role}\n{m.text}" for m in request.messages)]


def boundaries(request: GenerationRequest, settings: PromptCaching) -> list[tuple[int, str]]:
    """(prefix length in tokens, chained prefix hash) at each cacheable boundary, shortest first."""
    scope = f"{request.provider}\x1f{request.model}\x1f{request.api_key_id or ''}"
    explicit = request.provider in EXPLICIT_PROVIDERS
    marks = {m + 1 for m in request.cache_marks}  # segment 0 is the tools block, then the messages
    pieces: list[str] = []
    ends: list[int] = []  # token count at the end of each segment
    for text in _segments(request):
        pieces.extend(tokens.split(text))
        pieces.append("\x1e")  # a segment separator, not counted as a token
        ends.append(len(pieces) - len(ends) - 1)
    real = [p for p in pieces if p != "\x1e"]
    if explicit:
        cuts = sorted({ends[i] for i in marks if i < len(ends) and ends[i] >= settings.min_prefix_tokens})
    else:
        first, step = settings.min_prefix_tokens, settings.block_tokens
        cuts = list(range(first, len(real) + 1, step))
    digest = hashlib.blake2b(scope.encode(), digest_size=16)
    out: list[tuple[int, str]] = []
    done = 0
    for cut in cuts:
        digest.update("\x1f".join(real[done:cut]).encode() + b"\x1e")
        done = cut
        out.append((cut, digest.hexdigest()))
    return out


def _unit(seed: int, key: str, uses: int) -> float:
    raw = hashlib.blake2b(f"{seed}\x1f{key}\x1f{uses}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "big") / 2.0**64


class PromptCache:
    """A bounded, expiring store of prompt-prefix hashes (one per profile in a serving process)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def use(self, request: GenerationRequest, settings: PromptCaching, *, seed: int, now: float) -> CacheUse:
        """Look the request's prompt up, then store its prefixes. Deterministic given the
        sequence of calls (and `now`)."""
        if not settings.enabled or request.operation in ("embeddings", "count_tokens"):
            return CacheUse()
        points = boundaries(request, settings)
        read = 0
        for length, key in reversed(points):
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now:
                continue
            hit = _unit(seed, key, entry.uses) < settings.hit_rate
            entry.uses += 1
            if hit:
                read = length
                break
        for _, key in points:
            entry = self._entries.pop(key, None) or _Entry(0.0)
            entry.expires = now + settings.ttl_s
            self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        explicit = request.provider in EXPLICIT_PROVIDERS
        written = max(points[-1][0] - read, 0) if explicit and points else 0
        return CacheUse(read_tokens=read, written_tokens=written)
