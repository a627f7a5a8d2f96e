"""Fetch the published SyncNet and S3FD weights (and the reference's example video); run its demo.

  python -m syncnet.weights download [--dest DIR]   both weights and data/example.avi (also: bash download_model.sh)
  python -m syncnet.weights ensure [--dest DIR]     download only what cannot be found (--example: the video too)
  python -m syncnet.weights where                   which files the scripts would use
  python -m syncnet.weights demo                    SyncNet on the example, beside the reference's published numbers

Exit codes: 0 ok (demo: our numbers agree with the published ones), 1 the demo's numbers
disagree, 2 a file missing or not downloadable (one line on stderr).
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
from ..weights import EXAMPLE, S3FD, SYNCNET, WeightSpec, resolve_weights
from .common import ArgumentParser, add_verbose, run_main
from .options import add_model_options

# The empty network each file must load into before a download is kept.
NETWORKS: dict[str, Callable[[], torch.nn.Module]] = {SYNCNET.name: SyncNetModel, S3FD.name: S3FDNet}
EXAMPLE_MIN_SECONDS = 1.0  # the published example is a few seconds of one face; less is not it


def check_example(path: Path) -> None:
    """A downloaded example must be a video with sound, at least a second long (its checksum is not
    published; a captive portal's HTML page or a cut-off transfer fails here)."""
    from .. import media
    from ..errors import SyncNetError

    try:
        info = media.probe(path)
        media.require_video(info)
        media.require_audio(info)
    except SyncNetError as exc:
        raise WeightsError(f"not a video with sound ({exc})") from exc
    if not info.duration >= EXAMPLE_MIN_SECONDS:
        raise WeightsError(f"only {info.duration:.2f} s long, the example is longer")


def download(spec: WeightSpec, dest: Path, quiet: bool) -> Path:
    if spec is EXAMPLE:
        return weights.download(spec, dest, check=check_example, progress=not quiet)
    return weights.download(spec, dest, network=NETWORKS[spec.name], progress=not quiet)


def _targets(dest_dir: str | None, example: bool = False) -> list[tuple[WeightSpec, Path]]:
    specs = (SYNCNET, S3FD, EXAMPLE) if example else (SYNCNET, S3FD)
    if dest_dir:
        return [(spec, Path(dest_dir) / spec.filename) for spec in specs]
    return [(spec, weights.default_place(spec)) for spec in specs]


def cmd_download(args: argparse.Namespace) -> int:
    for spec, dest in _targets(args.dest, example=True):
        print(f"{spec.name}: {download(spec, dest, args.quiet)}")
    return 0


def cmd_ensure(args: argparse.Namespace) -> int:
    for spec, dest in _targets(args.dest, example=args.example):
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


def cmd_demo(args: argparse.Namespace) -> int:
    """The reference's demo_syncnet.py on its example video, and whether we agree with its README."""
    from .. import demo
    from ..facescore import score_face_video
    from ..trackfile import sync_report
    from . import models

    video = resolve_weights(EXAMPLE, args.videofile)
    _, model = models.load_models(args.device, syncnet_path=args.initial_model, need_s3fd=False,
                                  precision=args.precision)
    how = "as the reference's demo_syncnet.py does" if args.protocol == "reference" else "our way"
    print(f"SyncNet on {video}, decoded {how}:")
    result = score_face_video(video, model, protocol=args.protocol)
    print(sync_report(result))
    check = demo.compare(demo.DemoNumbers(int(result.offset), float(result.min_dist), float(result.confidence)))
    print("beside the reference's published demo result (its README):")
    print(check.text)
    return 0 if check.agree else 1


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=prog, description="Fetch the published SyncNet and S3FD weights and the "
                                                   "reference's example video; run its demo.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
            ("download", cmd_download, "download both weights files and the example video (to the reference's "
                                       "places, or DIR)"),
            ("ensure", cmd_ensure, "download only the files that cannot be found (see resolve_weights)"),
            ("where", cmd_where, "show which files would be used (exit 2 if one is missing)"),
            ("demo", cmd_demo, "SyncNet on the reference's example video, beside its published result "
                               "(exit 1 when they disagree)")):
        cmd = sub.add_parser(name, help=text, description=text)
        if name in ("download", "ensure"):
            cmd.add_argument("--dest", metavar="DIR", help="put the files in DIR instead of the reference's places")
            cmd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        if name == "ensure":
            cmd.add_argument("--example", action="store_true",
                             help=f"also the example video ({EXAMPLE.filename}) the demo runs on")
        if name == "demo":
            cmd.add_argument("--videofile", default=None,
                             help=f"the example video (default: ${EXAMPLE.env}, {EXAMPLE.reference_path}, "
                                  "~/.cache/syncnet)")
            cmd.add_argument("--protocol", choices=("reference", "ours"), default="reference",
                             help="reference (default): decode as demo_syncnet.py did for the published numbers "
                                  "(JPEG dump, sound with -async 1); ours: our direct decode")
            add_model_options(cmd, syncnet="--initial_model")
        add_verbose(cmd)
        cmd.set_defaults(func=func)
    return parser


def main(args: argparse.Namespace) -> int:
    return args.func(args)


def entry(argv: list[str] | None = None, prog: str | None = None) -> None:
    """Run the command; `prog`: its name in messages (default: the program's, e.g. syncnet-weights)."""
    parser = build_parser(prog)
    run_main(main, parser.parse_args(argv), prog=parser.prog, preload=argv is None)
