"""SyncNet offset and confidence of face-track videos (the reference's run_syncnet.py).

  python run_syncnet.py --data_dir data/work --reference talk
      evaluates every track video in DATA_DIR/pycrop/talk/ (sorted) and writes
      DATA_DIR/pywork/talk/offsets.txt, offsets.json and activesd.pckl
  python run_syncnet.py --videofile face.avi
      evaluates one 224x224 face video on its own (the reference's demo_syncnet.py)

For every video it prints the reference's three lines (AV offset, Min dist, Confidence).
"""
from __future__ import annotations

import argparse

from . import common as cli
from .common import add_verbose, run_main
from .options import add_model_options, add_reference_decode_option


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=cli.positive_int, default=20, help="windows per forward pass (default 20)")
    p.add_argument("--vshift", type=cli.positive_int, default=15,
                   help="largest offset searched, in frames (default 15)")
    p.add_argument("--data_dir", default="data/work", help="output root (default data/work)")
    p.add_argument("--videofile", default="", help="a face video to evaluate on its own")
    p.add_argument("--reference", default="", help="name of the run under DATA_DIR")
    add_model_options(p, syncnet="--initial_model")
    add_reference_decode_option(p)
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    from ..errors import InputError

    layout = cli.layout(args.data_dir, args.reference) if args.reference else None
    use_reference = layout is not None and layout.crop_dir.is_dir()
    if layout is not None and not use_reference and not args.videofile:
        raise InputError(f"there are no track videos under {layout.crop_dir} (no such folder): run "
                         f"run_pipeline.py with --reference {args.reference} --data_dir {args.data_dir} first")
    if not use_reference and not args.videofile:
        raise InputError("give --reference R (with DATA_DIR/pycrop/R/ from run_pipeline.py) or --videofile FILE")
    # torch only now: bad arguments are told at once
    from ..trackfile import evaluate_track_file, evaluate_tracks
    from . import models

    _, model = models.load_models(args.device, syncnet_path=args.initial_model, need_s3fd=False,
                                  precision=args.precision)
    if use_reference:
        results = evaluate_tracks(layout, model, vshift=args.vshift, batch_size=args.batch_size, report=print,
                                  reference_decode=args.reference_decode)
        if not results:
            print(f"no face tracks in {layout.crop_dir}; wrote an empty {layout.work('offsets.txt')}")
        return 0
    evaluate_track_file(args.videofile, model, vshift=args.vshift, batch_size=args.batch_size, report=print,
                        reference_decode=args.reference_decode)
    return 0


def entry(argv: list[str] | None = None) -> None:
    run_main(main, build_parser().parse_args(argv), preload=argv is None)
