"""`llmsim ca export`: print the proxy's CA certificate (PEM) for clients to trust."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from llmsim.proxy.ca import DEFAULT_CA_DIR, CertificateAuthority


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ca", help="the proxy's certificate authority")
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION")
    sub.required = True
    export = sub.add_parser("export", help="print the CA certificate (PEM); creates the CA on first use")
    export.add_argument("--ca-dir", type=Path, default=DEFAULT_CA_DIR, metavar="DIR",
                        help=f"CA directory (default {DEFAULT_CA_DIR}, env LLMSIM_CA_DIR)")  # fmt: skip
    export.add_argument("--bundle", action="store_true",
                        help="print the combined bundle (system CAs + ours) instead")  # fmt: skip
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    ca = CertificateAuthority(args.ca_dir)
    data = ca.bundle_path.read_bytes() if args.bundle else ca.cert_pem()
    sys.stdout.write(data.decode("ascii"))
    return 0
