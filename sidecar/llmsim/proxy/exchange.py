"""One intercepted request on its way through the data path.

The data path creates an `Exchange` when a request comes in; routing, the perturbation decision,
the relay and the report each read what they need from it and add what they learn, instead of
passing a handful of values from function to function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from llmsim.api.profile import Mode
from llmsim.providers.base import ApiError, Endpoint
from llmsim.proxy.facts import RequestInfo
from llmsim.proxy.perturb import PerturbPlan
from llmsim.proxy.routing import Destination
from llmsim.runtime import intake
from llmsim.simulation.plan import FaultDecision
from llmsim.simulation.request import GenerationRequest


@dataclass
class Exchange:
    request: web.Request
    destination: Destination
    info: RequestInfo
    body: bytes
    endpoint: Endpoint | None
    """The simulator's endpoint for this route (None: a route the simulator does not know)."""
    number: int
    """The data path's request counter (ids, sampling seeds)."""
    started: float
    """Loop time the data path took the request in (timings are relative to it)."""
    started_at: float
    """Unix time of the same moment."""
    profile: str
    """The profile that applies (its name, for the report)."""
    upstream_base: str | None = None
    """base-url capture: the base URL `x-llmsim-upstream` asked for, when the profile allows it."""
    mode: Mode = Mode.PASSTHROUGH
    measure: bool = True
    """Report this request (False for hosts outside the scope, which are only forwarded)."""
    plan: PerturbPlan | None = None
    """perturb: what is added to the upstream's answer."""
    fault: FaultDecision | None = None
    """perturb: the fault the core decided (also when it replaced the answer)."""
    generation: GenerationRequest | None = None
    """perturb: the request as the fault renderers see it."""
    extra_headers: dict[str, str] = field(default_factory=dict)
    """Response headers to set on the forwarded answer (rate-limit headers)."""
    status: int = 0
    """Status sent to the client."""
    error: ApiError | None = None
    """The error llmsim answered with itself (a substituted fault, a bad header, an unreachable upstream)."""
    broken: bool = False
    """The upstream broke off the answer midway."""
    gone: bool = False
    """The client went away before the answer was complete."""
    times: list[float] = field(default_factory=list)
    """Loop times at which events (or reads, for bodies) reached the client."""
    request_id: str = field(default_factory=intake.new_request_id)
    """The id llmsim assigned (as the simulator does: in its error bodies and the telemetry record);
    the client's own id, if it sent one, is `info.request_id`."""

    def written(self, at: float) -> None:
        self.times.append(at)
