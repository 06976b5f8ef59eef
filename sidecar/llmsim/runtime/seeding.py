"""Where a request's randomness comes from.

Two seeds per request, both derived here so that the simulator and the proxy agree:

* the fault seed (`fault_seed`): what the core's fault decisions hash with
  (`simulation.faults.unit(seed, key, attempt, rule)`): the `x-llmsim-seed` header, else the
  profile's `seed`, else the process seed; the same request meets the same fault on every replica;
* the sampling seed (`rng_seed`): what latency and content are drawn from: the header alone; else
  the base seed with the request's own `seed` and body (identical requests, identical answers);
  else the base seed with the process's request number.

The `x-llmsim-seed` header is parsed once (`header_seed`), and a malformed one is a 400.
"""

from __future__ import annotations

import zlib

from llmsim import headers
from llmsim.api.profile import SimulationProfileSpec
from llmsim.providers.base import ApiError, ErrorKind, HttpRequestFacts
from llmsim.runtime.state import RuntimeState
from llmsim.simulation.request import GenerationRequest


def header_seed(facts: HttpRequestFacts) -> int | None:
    """The `x-llmsim-seed` value (None when absent); ApiError naming the header when malformed."""
    header = facts.headers.get(headers.SEED)
    if header is None:
        return None
    try:
        return int(header)
    except ValueError:
        raise ApiError(
            ErrorKind.INVALID_REQUEST,
            f"Invalid value for header '{headers.SEED}': {header!r}; expected an integer.",
            param=headers.SEED,
        ) from None


def fault_seed(state: RuntimeState, spec: SimulationProfileSpec, header: int | None) -> int:
    """The seed of the request's fault decisions."""
    return header if header is not None else state.seed_for(spec)


def rng_seed(
    state: RuntimeState,
    spec: SimulationProfileSpec,
    facts: HttpRequestFacts,
    gen: GenerationRequest | None,
    header: int | None,
    number: int,
) -> list[int]:
    """The entropy of the request's sampling generator (`planner.new_rng(*seed)`); `number`: the
    process's request counter; `gen`: None for a request the simulator could not parse."""
    if header is not None:
        return [header]
    base = state.seed_for(spec)
    if gen is not None and gen.seed is not None:
        return [base, gen.seed, zlib.crc32(facts.body)]
    return [base, number]
