"""`llmsim proxy`: the interceptor the sidecar runs (simulate, perturb or pass through LLM traffic)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from llmsim import redact
from llmsim.api.profile import Mode
from llmsim.errors import LLMSimError
from llmsim.proxy import frontdoor
from llmsim.proxy.ca import DEFAULT_CA_DIR, DEFAULT_MAX_CONTEXTS
from llmsim.proxy.profile_watch import DEFAULT_GRACE_S, SA_DIR
from llmsim.proxy.runner import ProxyOptions, ProxyServer, parse_address
from llmsim.runtime import gc_policy

log = logging.getLogger("llmsim.proxy")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="run the HTTP(S) interceptor: simulate, perturb or pass through LLM provider traffic",
        description="An HTTPS_PROXY-style proxy that intercepts TLS only for LLM provider hosts and "
        "tunnels everything else untouched. See docs/proxy.md.",
    )
    add = parser.add_argument
    add(
        "--profile",
        default=os.environ.get("LLMSIM_PROFILE"),
        metavar="NAME|FILE",
        help="preset name or profile file; a file is watched and hot-reloaded (env LLMSIM_PROFILE)",
    )
    add("--mode", choices=[m.value for m in Mode], help="replace the profile's mode")
    add(
        "--listen",
        default="127.0.0.1:15080",
        metavar="HOST:PORT",
        help="proxy address (HTTPS_PROXY, base-url capture; default 127.0.0.1:15080)",
    )
    add(
        "--listen-also",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another plain-HTTP listener (repeatable): host-alias capture of an in-cluster provider "
        "on its own port, e.g. 127.0.0.1:11434 for ollama.ml.svc:11434",
    )
    add(
        "--admin",
        default="127.0.0.1:15090",
        metavar="HOST:PORT",
        help="admin address: /healthz /readyz /metrics, POST /pause /resume /reset (default 127.0.0.1:15090)",
    )
    add(
        "--admin-token-file",
        type=Path,
        default=os.environ.get("LLMSIM_ADMIN_TOKEN_FILE"),
        metavar="FILE",
        help="bearer token POST /pause /resume /reset require (default: CA-DIR/admin-token, created "
        "on first start; env LLMSIM_ADMIN_TOKEN_FILE)",
    )
    add(
        "--ca-dir",
        type=Path,
        default=DEFAULT_CA_DIR,
        metavar="DIR",
        help=f"where the CA lives (created once; default {DEFAULT_CA_DIR}, env LLMSIM_CA_DIR)",
    )
    add(
        "--tls-listen",
        metavar="HOST:PORT",
        help="host-alias/iptables capture: also terminate TLS here with our CA's certificates (e.g. 0.0.0.0:443)",
    )
    add(
        "--ipv6-loopback",
        action="store_true",
        help="iptables capture: also listen on [::1] at the --listen and --tls-listen ports (ip6tables redirects there)",
    )
    add(
        "--tls-default-host",
        default="api.openai.com",
        metavar="HOST",
        help="certificate for clients that send no SNI on --tls-listen",
    )
    add(
        "--intercept",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra host to intercept (repeatable), besides the providers' and the profile's interceptHosts",
    )
    add(
        "--upstream",
        action="append",
        default=[],
        metavar="PROVIDER=URL",
        help="base-url capture: where PROVIDER's requests go (repeatable; e.g. azure=https://r.openai.azure.com)",
    )
    add(
        "--watch-profile",
        default=os.environ.get("LLMSIM_WATCH_PROFILE"),
        metavar="NAMESPACE/NAME",
        help="watch this SimulationProfile through the Kubernetes API: paused, changes and deletion "
        "apply within a second; --profile FILE stays the fallback (env LLMSIM_WATCH_PROFILE)",
    )
    add("--kube-api", metavar="URL", help="API server for --watch-profile (default: the in-cluster service)")
    add(
        "--kube-token-file",
        type=Path,
        default=SA_DIR / "token",
        metavar="FILE",
        help="bearer token for the API server (default: the pod's ServiceAccount token)",
    )
    add(
        "--kube-ca-file",
        type=Path,
        default=SA_DIR / "ca.crt",
        metavar="FILE",
        help="CA certificate of the API server (default: the pod's ServiceAccount CA)",
    )
    add(
        "--watch-grace-s",
        type=float,
        default=float(os.environ.get("LLMSIM_WATCH_GRACE_S", DEFAULT_GRACE_S)),
        metavar="SECONDS",
        help=f"pass everything through once the watched profile is unreadable this long (default "
        f"{DEFAULT_GRACE_S:g}; 0: keep the file forever; env LLMSIM_WATCH_GRACE_S)",
    )
    add("--upstream-ca", type=Path, metavar="FILE", help="extra CA file trusted for upstream TLS")
    add(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST=IP:PORT",
        help="pin an upstream host to an address (repeatable)",
    )
    add(
        "--bypass-hosts-file",
        action="store_true",
        help="resolve upstreams via DNS, ignoring /etc/hosts (needed for host-alias capture with perturb/passthrough)",
    )
    add(
        "--record",
        type=Path,
        metavar="FILE",
        help="append measured TTFT/ITL/E2E of forwarded requests as JSON lines (input of `llmsim profile fit`)",
    )
    add(
        "--drain",
        type=float,
        default=10.0,
        metavar="S",
        help="on SIGTERM, how long in-flight requests and streams may take to finish (default 10)",
    )
    add(
        "--head-timeout",
        type=float,
        default=frontdoor.DEFAULT_HEAD_TIMEOUT_S,
        metavar="S",
        help="close a connection whose first request head (CONNECT or plain, or the first request "
        f"after an intercepted TLS handshake) takes longer to complete (default {frontdoor.DEFAULT_HEAD_TIMEOUT_S:g})",
    )
    add(
        "--tunnel-idle-timeout",
        type=float,
        default=frontdoor.DEFAULT_TUNNEL_IDLE_S,
        metavar="S",
        help=f"close a raw tunnel idle this long (default {frontdoor.DEFAULT_TUNNEL_IDLE_S:g})",
    )
    add(
        "--leaf-cache-size",
        type=int,
        default=DEFAULT_MAX_CONTEXTS,
        metavar="N",
        help=f"per-host certificates kept in memory, least recently used evicted (default {DEFAULT_MAX_CONTEXTS})",
    )
    add("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    add(
        "--gc",
        choices=["latency", "default"],
        default="latency",
        help="garbage-collector policy: 'latency' (default) keeps full collections out of busy periods",
    )
    parser.set_defaults(func=cmd_proxy)  # fmt: skip


def options_from(args: argparse.Namespace) -> ProxyOptions:
    """Command-line flags -> ProxyOptions; LLMSimError naming the flag on bad values."""
    try:
        upstreams: dict[str, str] = {}
        for item in args.upstream:
            provider, sep, url = item.partition("=")
            if not sep or not provider or not url:
                raise ValueError(f"--upstream {item!r}: expected PROVIDER=URL")
            upstreams[provider.strip().lower()] = url.strip()
        resolve: dict[str, tuple[str, int]] = {}
        for item in args.resolve:
            host, sep, addr = item.partition("=")
            if not sep or not host:
                raise ValueError(f"--resolve {item!r}: expected HOST=IP:PORT")
            resolve[host.lower()] = parse_address(addr, f"--resolve {host}")
        options = ProxyOptions(
            profile=args.profile,
            mode=Mode(args.mode) if args.mode else None,
            listen=parse_address(args.listen, "--listen"),
            listen_also=tuple(parse_address(a, "--listen-also") for a in args.listen_also),
            admin=parse_address(args.admin, "--admin") if args.admin not in ("", "off", "none") else None,
            ca_dir=args.ca_dir,
            tls_listen=parse_address(args.tls_listen, "--tls-listen") if args.tls_listen else None,
            tls_default_host=args.tls_default_host,
            ipv6_loopback=args.ipv6_loopback,
            intercept=tuple(args.intercept),
            upstreams=upstreams,
            upstream_ca=args.upstream_ca,
            resolve=resolve,
            bypass_hosts_file=args.bypass_hosts_file,
            observations=args.record,
            admin_token_file=Path(args.admin_token_file) if args.admin_token_file else None,
            watch_profile=args.watch_profile or None,
            kube_api=args.kube_api,
            kube_token_file=args.kube_token_file,
            kube_ca_file=args.kube_ca_file,
            watch_grace_s=args.watch_grace_s,
            drain_s=args.drain,
            head_timeout_s=args.head_timeout,
            tunnel_idle_s=args.tunnel_idle_timeout,
            leaf_cache_size=args.leaf_cache_size,
        )
        options.validate()
    except ValueError as exc:
        raise LLMSimError(str(exc)) from None
    return options


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redact.install_logging()  # every record arrives redacted (idempotent: llmsim's main did it)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def cmd_proxy(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    options = options_from(args)
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
            pass
    server = ProxyServer(options)
    if args.gc == "latency":
        gc_policy.install(server.app, gc_policy.GcPolicy(in_flight=lambda: server.datapath.in_flight))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.serve_forever(stop)

    try:
        asyncio.run(serve())
    except OSError as exc:
        raise LLMSimError(f"cannot listen: {exc.strerror or exc}") from None
    return 0
