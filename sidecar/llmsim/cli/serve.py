"""`llmsim serve`: the simulated provider backend."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from aiohttp import web

from llmsim import profiles
from llmsim.runtime import gc_policy
from llmsim.runtime.state import DEFAULT_MAX_BODY_BYTES, STATE, RuntimeSettings, RuntimeState
from llmsim.server import peers, workers
from llmsim.server.app import create_app

log = logging.getLogger("llmsim.serve")

DEFAULT_DRAIN_TIMEOUT_S = 10.0
"""How long `serve` lets in-flight answers finish after SIGTERM/SIGINT before it closes them."""

LISTEN_BACKLOG = 4096
"""Pending connections the kernel queues for us (aiohttp's default of 128 resets bursts of new streams)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the simulated LLM provider backend (every provider on one port)"
    )
    parser.add_argument("--profile", action="append", default=[], metavar="NAME|FILE",
                        help="profile file or preset name; repeat to load several (the first is the default; "
                             "others are picked with the x-llmsim-profile header)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default: 8080; 0 picks a free one)"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest accepted request body"
    )
    parser.add_argument("--drain-timeout", type=_drain_seconds, default=DEFAULT_DRAIN_TIMEOUT_S, metavar="SECONDS",
                        help="on SIGTERM/SIGINT, let in-flight answers finish for at most this long, then close "
                             f"them (default: {DEFAULT_DRAIN_TIMEOUT_S:g}); held `timeout` faults end at once")  # fmt: skip
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio event loop")
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N|auto",
        help="worker processes on the one port, each with its own event loop (default: 1; 'auto': one per "
        "CPU). Metrics, sessions, rate limits and seeded faults stay those of one simulator (docs/serve.md)",
    )
    parser.add_argument(
        "--gc",
        choices=["latency", "default"],
        default="latency",
        help="garbage-collector policy: 'latency' (default) runs full collections only when idle or every "
        "5 minutes, so they never stall streams; 'default' leaves CPython's collector alone",
    )
    parser.set_defaults(func=cmd_serve)
    global _PARSER
    _PARSER = parser


_PARSER: argparse.ArgumentParser | None = None
"""The serve parser (its options are what the supervisor hands on to its workers)."""


def worker_args(args: argparse.Namespace) -> list[str]:
    """The command-line options of `args` for a worker: every option as given, less `--workers`
    and `--port` (the supervisor passes the port it resolved)."""
    assert _PARSER is not None
    out: list[str] = []
    for action in _PARSER._actions:
        if not action.option_strings or action.dest in ("help", "workers", "port", "func"):
            continue
        flag, value = action.option_strings[-1], getattr(args, action.dest, action.default)
        if isinstance(action, argparse._StoreTrueAction):
            out += [flag] if value else []
        elif isinstance(action, argparse._AppendAction):
            for item in value or []:
                out += [flag, str(item)]
        elif value != action.default:
            out += [flag, str(value)]
    return out


def _drain_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--drain-timeout: {raw!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"--drain-timeout: {value:g} must be between 0 and 3600 seconds")
    return value


def build_registry(refs: list[str]) -> profiles.ProfileRegistry:
    loaded = [profiles.load(ref) for ref in refs]
    if not loaded:
        return profiles.ProfileRegistry(profiles.default_profile())
    return profiles.ProfileRegistry(loaded[0], loaded[1:])


def raise_fd_limit() -> None:
    """Each concurrent stream holds a socket: lift the soft open-files limit to the hard limit."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on this platform / not allowed
        pass


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    raise_fd_limit()
    registry = build_registry(args.profile)
    ctx = peers.WorkerContext.from_env()
    count = workers.worker_count(args.workers)
    settings = RuntimeSettings(max_body_bytes=args.max_body_bytes)
    if ctx is None and count > 1:
        return workers.supervise(worker_args(args), count, args.host, args.port, settings.process_seed)
    if ctx is not None:
        settings.process_seed = int(os.environ[peers.PROCESS_SEED_ENV])
    state = RuntimeState(registry, settings)
    siblings = peers.prepare(state, ctx) if ctx is not None else None
    app = create_app(state=state)
    if ctx is not None and siblings is not None:
        peers.install(app, ctx, siblings)
    if args.gc == "latency":
        state = app[STATE]
        gc_policy.install(app, gc_policy.GcPolicy(in_flight=lambda: state.in_flight))
    log.info("profiles: %s (default %s)", ", ".join(registry.names()), registry.default_name)
    if not args.no_uvloop:
        try:
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
            pass

    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=_announce if ctx is None else peers.announce_ready(ctx),
        handle_signals=True,
        backlog=LISTEN_BACKLOG,
        shutdown_timeout=args.drain_timeout,
        reuse_port=ctx is not None,
    )
    return 0


def _announce(message: str) -> None:
    """aiohttp's "======== Running on http://h:p ========", trimmed: it is what users look for."""
    print(message.strip("= ").strip(), file=sys.stderr, flush=True)
