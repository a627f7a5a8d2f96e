"""Faces, shots, tracks and 224x224 face crops of one video (the reference's run_pipeline.py).

  python run_pipeline.py --videofile talk.mp4 --reference talk --data_dir data/work

writes DATA_DIR/pyavi/talk/{video.avi,audio.wav}, DATA_DIR/pycrop/talk/00000.avi ...
and DATA_DIR/pywork/talk/{faces,scene,tracks}.pckl + tracks.json.  Then run
run_syncnet.py and run_visualise.py with the same --data_dir and --reference.
Earlier outputs of that reference are replaced only once the new ones are complete;
a second run of the same reference stops at once (exit 2).
"""
from __future__ import annotations

import argparse

from . import common as cli
from .common import add_verbose, run_main
from .options import add_face_options, add_model_options, add_reference_decode_option, add_speed_options, face_options


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data/work", help="output root (default data/work)")
    p.add_argument("--videofile", required=True, help="input video")
    p.add_argument("--reference", required=True, help="name of this run under DATA_DIR")
    add_face_options(p)
    add_model_options(p, s3fd="--s3fd_model")
    add_speed_options(p)
    add_reference_decode_option(p)
    p.add_argument("--keep_frames", action="store_true", help="also write every frame to DATA_DIR/pyframes/R/")
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys

    from .. import media
    from ..analysis import analyse_video
    from ..outlock import reference_lock
    from . import models

    layout = cli.layout(args.data_dir, args.reference)
    opts = face_options(args)
    media.probe(args.videofile)  # bad input fails before the model loads
    # One run per reference: another reference may be written into the same data_dir meanwhile.
    with reference_lock(args.data_dir, layout.reference):
        detector, _ = models.load_models(args.device, s3fd_path=args.s3fd_model, need_syncnet=False,
                                         precision=args.precision)
        result = analyse_video(args.videofile, layout, opts, detector=detector, keep_frames=args.keep_frames,
                               progress=sys.stderr.isatty())
    if result.tracks:
        n = len(result.tracks)
        print(f"{n} face track{'' if n == 1 else 's'} in {result.n_frames} frames -> {layout.crop_dir}")
    else:
        why = f": {result.diagnosis.message}" if result.diagnosis is not None else f" in {result.n_frames} frames"
        print(f"no face tracks found{why}; {layout.crop_dir} is empty")
    return 0


def entry(argv: list[str] | None = None) -> None:
    run_main(main, build_parser().parse_args(argv), preload=argv is None)
