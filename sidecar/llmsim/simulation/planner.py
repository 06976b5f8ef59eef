"""Turn (profile, request, rng, load) into a ResponsePlan: the heart of the simulator."""

from __future__ import annotations

import json

import numpy as np

from llmsim.api.faults import FaultType
from llmsim.api.profile import SimulationProfileSpec
from llmsim.simulation import content, embeddings, logprobs, request_memo, safety, sampling, tokens, tool_plan
from llmsim.simulation.capacity import slowdown
from llmsim.simulation.plan import Choice, FaultDecision, FinishReason, ResponsePlan, Timing, ToolCall
from llmsim.simulation.prompt_cache import CacheUse
from llmsim.simulation.request import GenerationRequest

DEFAULT_MAX_OUTPUT_TOKENS = 4096
"""Cap on sampled reply lengths when a request gives no max tokens."""
MAX_OUTPUT_TOKENS = 65_536
"""Hard cap on any reply's length, whatever the request's max tokens and the profile's
`outputTokens` say (the largest output limit of current models: Gemini 2.5's 65,536 tokens,
Claude's 64K): a `max_tokens: 1e9` with a profile of a billion tokens cannot make a reply grow
without limit."""


def prompt_tokens(request: GenerationRequest) -> int:
    """Input tokens of a request, by the documented estimator (counted once per request)."""
    return request_memo.remembered(request, "prompt_tokens", _prompt_tokens)


def _prompt_tokens(request: GenerationRequest) -> int:
    if request.operation == "embeddings":
        return sum(tokens.count(t) for t in request.inputs)
    if request.operation == "completion":
        return sum(tokens.count(m.text) for m in request.messages) + len(request.context_tokens)
    texts = [m.text for m in request.messages]
    for tool in request.tools:
        texts.append(
            json.dumps({"name": tool.name, "description": tool.description, "parameters": tool.parameters})
        )
    return tokens.count_messages(texts)


def new_rng(*seed_parts: int) -> np.random.Generator:
    """A Generator from integer seed parts (e.g. profile seed, request number)."""
    return np.random.default_rng([p & 0xFFFFFFFFFFFFFFFF for p in seed_parts])


def plan_response(
    spec: SimulationProfileSpec,
    request: GenerationRequest,
    rng: np.random.Generator,
    *,
    response_id: str,
    created: int,
    active_streams: int = 1,
    queue_s: float = 0.0,
    fault: FaultDecision | None = None,
    cache: CacheUse | None = None,
) -> ResponsePlan:
    """Decide content, lengths and timing of the response. Pure. `cache`: what the prompt cache
    did for this request (lower TTFT, usage fields)."""
    model = spec.models.aliases.get(request.model, request.model)
    n_prompt = prompt_tokens(request)
    cache = cache or CacheUse()
    cached = min(cache.read_tokens, n_prompt)
    if request.operation == "embeddings":
        vectors = tuple(embeddings.embed(t, model, request.dimensions) for t in request.inputs)
        ttft = _ttft(spec, n_prompt, rng, active_streams)
        timing = Timing(queue_s=queue_s, ttft_s=queue_s + ttft, token_offsets_s=())
        return ResponsePlan(response_id, model, created, (), n_prompt, timing, fault, vectors)

    choices = tuple(safety.apply(_choice(spec, request, rng, i), fault) for i in range(max(1, request.n)))
    slots = max((c.output_tokens for c in choices), default=0)
    ttft = _ttft(spec, n_prompt, rng, active_streams, cached)
    gaps = _gaps(spec, rng, max(slots - 1, 0), active_streams)
    if fault is not None and fault.fault is FaultType.SLOW_STREAM:
        gaps = gaps * float(fault.detail.get("factor", spec.faults.params.slow_stream_factor))
    start = queue_s + ttft
    offsets = start + np.concatenate(([0.0], np.cumsum(gaps))) if slots else np.array([start])
    timing = Timing(queue_s=queue_s, ttft_s=start, token_offsets_s=tuple(offsets.tolist()))
    groups = _stream_groups(spec, request, rng, slots)
    return ResponsePlan(response_id, model, created, choices, n_prompt, timing, fault, stream_groups=groups,
                        cached_tokens=cached, cache_write_tokens=min(cache.written_tokens, n_prompt - cached))  # fmt: skip


def _stream_groups(
    spec: SimulationProfileSpec, request: GenerationRequest, rng: np.random.Generator, slots: int
) -> tuple[int, ...]:
    """Chunk sizes of a stream whose format groups tokens (one draw per chunk, at most `slots`)."""
    dist = spec.streaming.chunk_tokens(request.provider)
    if dist is None or not request.stream or slots == 0:
        return ()
    sizes = np.maximum(np.rint(sampling.sample(dist, rng, slots)), 1).astype(int)
    ends = np.cumsum(sizes)
    count = int(np.searchsorted(ends, slots)) + 1
    out = sizes[:count].tolist()
    out[-1] -= int(ends[count - 1]) - slots
    return tuple(int(x) for x in out)


def _ttft(
    spec: SimulationProfileSpec, n_prompt: int, rng: np.random.Generator, active: int, cached: int = 0
) -> float:
    lat = spec.latency
    share = cached / n_prompt if n_prompt else 0.0
    saved = 1.0 - spec.prompt_caching.ttft_reduction * share
    prefill_ms = lat.ttft_per_input_token_ms * (n_prompt - cached)
    base_ms = sampling.sample_one(lat.ttft_ms, rng) * saved + prefill_ms
    return base_ms / 1000.0 * slowdown(lat.capacity, active).ttft


def _gaps(spec: SimulationProfileSpec, rng: np.random.Generator, count: int, active: int) -> np.ndarray:
    lat = spec.latency
    factor = slowdown(lat.capacity, active).itl
    if lat.tokens_per_second is not None:
        tps = max(sampling.sample_one(lat.tokens_per_second, rng), 1e-6)
        return np.full(count, factor / tps)
    if count == 0:
        return np.zeros(0)
    return sampling.sample(lat.itl_ms, rng, count) / 1000.0 * factor


def output_limit(request: GenerationRequest) -> int:
    """The most output tokens a reply to `request` may have."""
    wanted = request.max_tokens if request.max_tokens is not None else DEFAULT_MAX_OUTPUT_TOKENS
    return min(wanted, MAX_OUTPUT_TOKENS)


def _tool_call(
    index: int, call: tool_plan.PlannedCall, rng: np.random.Generator, request: GenerationRequest
) -> ToolCall:
    args = content.tool_arguments(call, rng, request)
    args_json = json.dumps(args)
    return ToolCall(
        id=f"{index}{rng.integers(1 << 62):016x}"[:24],
        name=call.tool.name,
        arguments=args,
        arguments_json=args_json,
        argument_pieces=tuple(tokens.split(args_json)),
    )


def _choice(
    spec: SimulationProfileSpec, request: GenerationRequest, rng: np.random.Generator, index: int
) -> Choice:
    reply = content.choose_reply(spec.content, request, rng)
    limit = output_limit(request)
    calls = tuple(_tool_call(index, call, rng, request) for call in reply.calls)
    if reply.exact:
        # a reply longer than max tokens can hold (an echoed 30 MB prompt) is cut before it is
        # tokenized: no token is longer than 8 characters, save a run of spaces
        text = reply.text if len(reply.text) <= 8 * limit + 8 else reply.text[: 8 * limit + 8]
        wanted = tokens.count(text)
        pieces: list[str] = tokens.split(text)
    else:
        wanted = max(1, round(sampling.sample_one(spec.latency.output_tokens, rng)))
        pieces = content.lorem_pieces(min(wanted, limit), rng)[:wanted]
    finish: FinishReason = "tool_calls" if calls else "stop"
    stop_hit: str | None = None
    if request.stop and pieces:
        joined = "".join(pieces)
        cut = min(((joined.find(s), s) for s in request.stop if s and s in joined), default=None)
        if cut is not None:
            pieces = tokens.split(joined[: cut[0]])
            finish, stop_hit, calls = "stop_sequence", cut[1], ()
    if len(pieces) > limit:
        pieces = pieces[:limit]
        finish, stop_hit, calls = "length", None, ()
    probs = logprobs.for_pieces(pieces, request.logprobs, rng) if request.logprobs is not None else None
    return Choice(index=index, pieces=tuple(pieces), tool_calls=calls, finish_reason=finish,
                  stop_sequence=stop_hit, logprobs=probs)  # fmt: skip
