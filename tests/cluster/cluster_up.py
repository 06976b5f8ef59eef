"""`make cluster`: start a test control plane by hand (etcd, kube-apiserver, kube-controller-manager
from the binaries `make cluster-bins` built), print how to use it, and stop everything on Ctrl-C
(or SIGTERM), leaving nothing behind.

    make cluster                      # the control plane alone
    make cluster ARGS=--chart         # ... with the llmsim chart installed (webhook at 127.0.0.1:9443)

Then, in another terminal, `export KUBECONFIG=<printed path>` and use kubectl (the built one is
printed too), helm, or `llmsim operator`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

# tests/cluster and tests/ (testbins) on the path, as under pytest
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import chart_release
from controlplane import ControlPlane

import testbins

CHART_WEBHOOK_PORT = 9443
"""`llmsim operator`'s default webhook port, so the operator needs no settings to be called."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--chart", action="store_true", help="install the llmsim chart (local-control-plane values)"
    )
    args = parser.parse_args(argv)
    reason = testbins.missing_reason()
    if reason:
        print(f"make cluster: {reason}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    plane = ControlPlane(testbins.binaries())
    began = time.monotonic()
    try:
        plane.start(controller_manager=False)
        if args.chart:
            chart_release.install(plane, webhook_port=CHART_WEBHOOK_PORT)
        plane.start_controller_manager()  # after the chart's CRDs: its garbage collector knows them
        print(f"control plane up in {time.monotonic() - began:.1f} s: {plane.url}")
        print(f"  export KUBECONFIG={plane.admin.kubeconfig}")
        print(f"  kubectl: {plane.bins.kubectl}   helm: {plane.bins.helm}")
        print(f"  logs: {plane.workdir / 'logs'}")
        print(f"  pids: {' '.join(str(pid) for pid in plane.pids)}")
        if args.chart:
            print("  chart installed; run the operator with:  .venv/bin/llmsim operator")
        print("Ctrl-C stops it and removes everything.", flush=True)
        while not stop.wait(1.0):
            plane.check_alive()
    finally:
        plane.stop()
        print("control plane stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
