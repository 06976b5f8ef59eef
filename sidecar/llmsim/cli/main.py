"""Entry point of the `llmsim` console script.

Each subcommand lives in its own module in this package and exposes
`register(subparsers) -> None`, which adds its parser(s) and sets `func` (returning an exit code).
User-facing errors (LLMSimError) print as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from llmsim import __version__, redact
from llmsim.errors import LLMSimError, ProfileError

COMMANDS = {
    "serve": "llmsim.cli.serve",
    "profile": "llmsim.cli.profile",
    "load": "llmsim.cli.load",
    "report": "llmsim.cli.report",
    "proxy": "llmsim.cli.proxy",
    "ca": "llmsim.cli.ca",
    "operator": "llmsim.cli.operator",
    "pause": "llmsim.cli.killswitch",
    "resume": "llmsim.cli.killswitch",
}
"""Subcommand -> the module that registers it, in the order they appear in `llmsim --help`."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `only`, just that subcommand's module is imported (fast start-up:
    the proxy, operator and report modules pull in mitmproxy, kopf and matplotlib)."""
    parser = argparse.ArgumentParser(
        prog="llmsim",
        description="Simulated LLM providers for testing LLM applications, locally and on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"llmsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    registered: set[str] = set()
    for name, module in COMMANDS.items():
        if (only is None or name == only) and module not in registered:  # one module may add several
            importlib.import_module(module).register(subparsers)
            registered.add(module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    redact.install_logging()  # every command's log records, whoever logs them
    arguments = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(first if first in COMMANDS else None)
    args = parser.parse_args(arguments)
    try:
        code = args.func(args)
    except ProfileError as exc:
        for problem in exc.problems:
            print(redact.redact_text(f"llmsim: {exc.source}: {problem}"), file=sys.stderr)
        return 2
    except LLMSimError as exc:
        print(redact.redact_text(f"llmsim: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
