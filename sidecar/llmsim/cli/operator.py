"""`llmsim operator`: run the kopf operator with its admission webhook."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the Kubernetes operator and the sidecar injection webhook (settings: LLMSIM_OPERATOR_*)",
        description="Run the llmsim operator (kopf) with its sidecar injection webhook. Settings come from "
        "LLMSIM_OPERATOR_* environment variables; see docs/operator.md.",
    )
    parser.add_argument("--namespace", "-n", action="append", default=[], metavar="NS",
                        help="reconcile only these namespaces (repeatable; default: LLMSIM_OPERATOR_WATCH_NAMESPACES, else all)")  # fmt: skip
    parser.add_argument("--standalone", action="store_true", help="no peering (a single replica)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.set_defaults(func=cmd_operator)


def cmd_operator(args: argparse.Namespace) -> int:
    from llmsim_operator import main

    return main.run(
        namespaces=list(args.namespace), standalone=bool(args.standalone), verbose=bool(args.verbose)
    )
