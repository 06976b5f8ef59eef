"""The serving runtime that both front ends stand on: the simulator (`llmsim serve`, `server/`) and
the proxy (`llmsim proxy`, `proxy/`).

It holds what a request needs between the HTTP shell and the pure core (`simulation/`,
`providers/`), whoever answers it: the shared state (`state`), request intake and enrichment
(`intake`), seeding (`seeding`), the route -> endpoint lookup (`endpoints`), the fault hooks that
ask the core's fault engine and the rate limiter (`fault_hooks`), the capacity gate, the
rate-limit stores, attempt counters and the GC policy. The server and the proxy import it; it
imports neither.
"""
