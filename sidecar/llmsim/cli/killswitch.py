"""`llmsim pause` / `llmsim resume`: the namespace kill switch, from a workstation.

`llmsim pause -n team-a` annotates the Namespace `llmsim.io/paused=true` (field manager `llmsim`);
the operator then pauses every SimulationProfile in it, and their sidecars pass all traffic through
within seconds. `--all-namespaces` annotates every namespace (the global kill switch; namespaces
created later are not paused). `llmsim resume` removes the annotation. Uses your kubeconfig.
"""

from __future__ import annotations

import argparse
from typing import Any

from llmsim.api.resources import NAMESPACE_PAUSED_ANNOTATION
from llmsim.errors import LLMSimError

FIELD_MANAGER = "llmsim"


def register(subparsers: Any) -> None:
    for command, helptext in (
        ("pause", "kill switch: pause every SimulationProfile of the namespace(s) (llmsim.io/paused=true)"),
        ("resume", "release the kill switch of the namespace(s)"),
    ):
        parser = subparsers.add_parser(
            command, help=helptext, description=helptext + ". See docs/operator.md."
        )
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("-n", "--namespace", action="append", default=[], metavar="NAMESPACE",
                           help="a namespace (repeatable)")  # fmt: skip
        where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (global)")
        parser.add_argument(
            "--kubeconfig", metavar="FILE", help="kubeconfig (default: $KUBECONFIG, ~/.kube/config)"
        )
        parser.add_argument("--context", metavar="NAME", help="kubeconfig context")
        parser.set_defaults(func=cmd_kill_switch, paused=command == "pause")


def cmd_kill_switch(args: argparse.Namespace) -> int:
    import kubernetes.client
    import kubernetes.config
    from kubernetes.client.exceptions import ApiException

    try:
        kubernetes.config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise LLMSimError(f"--kubeconfig: {exc}") from None
    core = kubernetes.client.CoreV1Api()
    value = "true" if args.paused else None
    patch = {"metadata": {"annotations": {NAMESPACE_PAUSED_ANNOTATION: value}}}
    try:
        names: list[str] = (
            [str(ns.metadata.name) for ns in core.list_namespace().items if ns.metadata is not None]
            if args.all_namespaces
            else [str(n) for n in args.namespace]
        )
        for name in names:
            core.patch_namespace(name, patch, field_manager=FIELD_MANAGER)
    except ApiException as exc:
        raise LLMSimError(f"kubernetes API: {exc.status} {exc.reason}") from None
    verb = "paused" if args.paused else "resumed"
    print(f"{verb} {len(names)} namespace(s): {', '.join(names)}")
    return 0
