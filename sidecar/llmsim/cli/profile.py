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

    fit = sub.add_parser(
        "fit",
        help="fit a profile to measured traffic (`llmsim proxy --record` JSON lines or a load report.json)",
    )
    fit.add_argument("inputs", nargs="+", type=Path, metavar="FILE")
    fit.add_argument("--name", default="fitted", help="metadata.name of the printed SimulationProfile")
    fit.add_argument("--base", metavar="NAME|FILE", help="profile whose other settings the fit keeps")
    fit.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    fit.set_defaults(func=cmd_fit)


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


def cmd_fit(args: argparse.Namespace) -> int:
    from llmsim import profile_fit

    observations, reports = profile_fit.load_inputs(args.inputs)
    base = profiles.load(args.base).spec if args.base else None
    if observations.ttft_ms:
        spec = profile_fit.fit_observations(observations, base)
    elif reports:
        spec = profile_fit.fit_report(reports[0], base)
    else:
        print("llmsim: no observations or reports found in the input files", file=sys.stderr)
        return 2
    doc = {
        "apiVersion": "llmsim.io/v1alpha1",
        "kind": "SimulationProfile",
        "metadata": {"name": args.name},
        "spec": profiles.dump_spec(spec),
    }
    text = yaml.safe_dump(doc, sort_keys=False)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
