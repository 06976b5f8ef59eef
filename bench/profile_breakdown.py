"""Where `llmsim serve` spends its CPU under load: py-spy samples grouped into request-path steps.

    python -m bench.profile_breakdown RAW_FILE     # a `py-spy record -f raw` output

Each sample is charged to the first step (from the stack's root towards its leaf) whose function
it passes through, so the steps add up to the samples taken inside request handling; the rest is
the HTTP shell (aiohttp's protocol and parser, uvloop, writes) and the event loop.
`bench.request_cost --profile` records the file (py-spy, a bench-only tool: a sampling profiler that
attaches from outside, so the server runs unmodified and at full speed).
"""

from __future__ import annotations

import sys
from collections import Counter

# (step, function-name fragments that mark it), in the pipeline's order; a frame matches when it
# contains the fragment ("name (path" as py-spy writes frames).
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "telemetry: record + observers (metrics, sessions, events)",
        ("RuntimeState.report (", "RecordBuilder.build ("),
    ),
    ("GC", ("gc_policy",)),
    ("body read + facts (intake)", ("read_facts (", "facts_of (")),
    ("parse (provider request)", (".parse (llmsim/providers",)),
    ("enrich (credential hash, request id)", ("enrich (llmsim/runtime",)),
    (
        "profile lookup + checks",
        ("_resolve_profile (", "session_profile (", "_check_mode (", "_check_provider (", "_check_model ("),
    ),
    ("seeding + rng", ("rng_seed (", "new_rng (", "header_seed (", "fault_seed (")),
    ("fault decision + rate limits", ("decide (llmsim/runtime/fault_hooks",)),
    ("capacity gate", ("capacity_gate.py",)),
    ("prompt cache", ("prompt_cache.py",)),
    ("planning", ("plan_response (",)),
    ("rendering", (".render (llmsim/providers", "stream_frames (", "completion_body (")),
    ("fault/headers applied", ("finish (llmsim/runtime",)),
    ("sending (response, writes, deadlines)", ("streaming.py", "deadlines.py")),
    ("error rendering", ("render_error (",)),
    ("request ids, record builder", ("new_request_id (", "RecordBuilder.__init__ (", "trace_carrier (")),
)
FALLBACKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("active-streams middleware (gauge, sessions)", ("active_streams (llmsim",)),
    ("pipeline (other)", ("pipeline.py",)),
    ("aiohttp request handling (routing, middlewares, response objects)", ("aiohttp/web_",)),
)


LOOP = "event loop, protocol, HTTP parser (uvloop / aiohttp C)"


def _step(frames: list[str], table: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    for frame in frames:
        for name, marks in table:
            if any(m in frame for m in marks):
                return name
    return None


def breakdown(lines: list[str]) -> tuple[int, Counter[str]]:
    total = 0
    steps: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        steps[_step(frames, STEPS) or _step(frames, FALLBACKS) or LOOP] += n
    return total, steps


def main() -> None:
    with open(sys.argv[1]) as f:
        total, steps = breakdown(f.readlines())
    print(f"| step | share of server CPU samples ({total}) |\n|---|---|")
    for step, n in steps.most_common():
        print(f"| {step} | {100 * n / total:.1f} % |")


if __name__ == "__main__":
    main()
