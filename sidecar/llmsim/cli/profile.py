"""`llmsim profile validate|list|show`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from llmsim import profiles
from llmsim.errors import ProfileError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("profile", help="validate, list and show simulation profiles")
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION")
    sub.required = True

    validate = sub.add_parser("validate", help="check profile files (exit 1 with field paths on problems)")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.set_defaults(func=cmd_validate)

    listing = sub.add_parser("list", help="list the built-in presets")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="print a preset (or a file, resolved) as YAML")
    show.add_argument("name", metavar="NAME|FILE")
    show.add_argument(
        "--resolved", action="store_true", help="print the full spec with every default filled in"
    )
    show.set_defaults(func=cmd_show)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            profile = profiles.load_file(path)
        except ProfileError as exc:
            failed += 1
            for problem in exc.problems:
                print(f"{path}: {problem}", file=sys.stderr)
        else:
            print(f"{path}: ok (profile {profile.name!r})")
    return 1 if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    for name in profiles.preset_names():
        print(f"{name:24} {profiles.preset_summary(name)}".rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    name: str = args.name
    if not args.resolved and name in profiles.preset_names():
        sys.stdout.write(profiles.preset_text(name))
        return 0
    profile = profiles.load(name)
    yaml.safe_dump(profiles.dump_spec(profile.spec), sys.stdout, sort_keys=False)
    return 0
