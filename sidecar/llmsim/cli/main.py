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

from llmsim import __version__
from llmsim.errors import LLMSimError, ProfileError

COMMAND_MODULES = (
    "llmsim.cli.serve",
    "llmsim.cli.profile",
    "llmsim.cli.load",
    "llmsim.cli.report",
    "llmsim.cli.proxy",
    "llmsim.cli.ca",
    "llmsim.cli.operator",
)
"""Subcommand modules, in the order they appear in `llmsim --help`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmsim",
        description="Simulated LLM providers for testing LLM applications, locally and on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"llmsim {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except ProfileError as exc:
        for problem in exc.problems:
            print(f"llmsim: {exc.source}: {problem}", file=sys.stderr)
        return 2
    except LLMSimError as exc:
        print(f"llmsim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
