"""`llmsim proxy`: the interceptor the sidecar runs.

Connections: `frontdoor` (CONNECT, TLS termination, raw tunnels), `tlslistener` (host-alias and
iptables capture), `ca`, `upstream` (client session and resolver). Requests: `datapath` (the
middleware: mode, dispatch), `routing`, `perturbation` and `perturb` (perturb mode's decision and
its pure plan), `relay` (forwarding), `reporting`, all around one `exchange` per request; `safety`,
`scope`, `facts`, `events` and `redact` are pure. Operations: `runner`, `admin`, `reload`, `state`,
`metrics`. What the proxy shares with the simulator lives in `llmsim.runtime`.
"""
