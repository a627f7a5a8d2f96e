"""Draw each face track with its framewise SyncNet confidence (the reference's run_visualise.py).

  python run_visualise.py --data_dir data/work --reference talk

reads pywork/talk/tracks.pckl and activesd.pckl and pyavi/talk/video.avi, and writes
pyavi/talk/video_out.avi (boxes from red to green by confidence, `Track i, Conf x.xxx`).
"""
from __future__ import annotations

import argparse

from . import common as cli
from .common import add_verbose, run_main
from .options import add_face_options


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data/work", help="output root (default data/work)")
    p.add_argument("--reference", required=True, help="name of the run under DATA_DIR")
    add_face_options(p, "frame_rate")
    p.add_argument("--videofile", default="", help="accepted for compatibility with the reference; unused")
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    from ..visualise import write_visualisation

    out = write_visualisation(cli.layout(args.data_dir, args.reference), args.frame_rate)
    print(f"wrote {out}")
    return 0


def entry(argv: list[str] | None = None) -> None:
    run_main(main, build_parser().parse_args(argv), preload=argv is None)
