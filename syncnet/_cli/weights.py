"""Fetch the published SyncNet and S3FD weights.

  python -m syncnet.weights download [--dest DIR]   (also: bash download_model.sh)
  python -m syncnet.weights ensure [--dest DIR]     download only what cannot be found
  python -m syncnet.weights where                   which files the scripts would use

Exit codes: 0 ok, 2 a file missing or not downloadable (one line on stderr).
"""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import torch

from detectors.s3fd.net import S3FDNet

from .. import weights
from ..errors import WeightsError
from ..model import SyncNetModel
from ..weights import S3FD, SYNCNET, WeightSpec, resolve_weights
from .common import ArgumentParser, add_verbose, run_main

# The empty network each file must load into before a download is kept.
NETWORKS: dict[str, Callable[[], torch.nn.Module]] = {SYNCNET.name: SyncNetModel, S3FD.name: S3FDNet}


def download(spec: WeightSpec, dest: Path, quiet: bool) -> Path:
    return weights.download(spec, dest, network=NETWORKS[spec.name], progress=not quiet)


def _targets(dest_dir: str | None) -> list[tuple[WeightSpec, Path]]:
    if dest_dir:
        return [(spec, Path(dest_dir) / spec.filename) for spec in (SYNCNET, S3FD)]
    return [(spec, weights.default_place(spec)) for spec in (SYNCNET, S3FD)]


def cmd_download(args: argparse.Namespace) -> int:
    for spec, dest in _targets(args.dest):
        print(f"{spec.name}: {download(spec, dest, args.quiet)}")
    return 0


def cmd_ensure(args: argparse.Namespace) -> int:
    for spec, dest in _targets(args.dest):
        try:
            path = resolve_weights(spec)
        except WeightsError:
            # A set but dangling $ENV wins over every other place, so fill that one in.
            env = os.environ.get(spec.env)
            path = download(spec, Path(env) if env and not args.dest else dest, args.quiet)
        print(f"{spec.name}: {path}")
    return 0


def cmd_where(args: argparse.Namespace) -> int:
    missing = 0
    for spec in (SYNCNET, S3FD):
        try:
            print(f"{spec.name}: {resolve_weights(spec)}")
        except WeightsError as exc:
            print(f"{spec.name}: {exc}")
            missing += 1
    return 2 if missing else 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=prog, description="Fetch the published SyncNet and S3FD weights.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
            ("download", cmd_download, "download both files (to the reference's places, or DIR)"),
            ("ensure", cmd_ensure, "download only the files that cannot be found (see resolve_weights)"),
            ("where", cmd_where, "show which files would be used (exit 2 if one is missing)")):
        cmd = sub.add_parser(name, help=text, description=text)
        if name != "where":
            cmd.add_argument("--dest", metavar="DIR", help="put the files in DIR instead of the reference's places")
            cmd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        add_verbose(cmd)
        cmd.set_defaults(func=func)
    return parser


def main(args: argparse.Namespace) -> int:
    return args.func(args)


def entry(argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run the command; `prog`: its name in messages (default: the program's, e.g. syncnet-weights)."""
    parser = build_parser(prog)
    run_main(main, parser.parse_args(argv), prog=parser.prog, preload=argv is None)
