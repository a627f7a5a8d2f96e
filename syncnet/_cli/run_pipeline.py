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
from .common import add_detect_every, add_precision, add_verbose, run_main


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="data/work", help="output root (default data/work)")
    p.add_argument("--videofile", required=True, help="input video")
    p.add_argument("--reference", required=True, help="name of this run under DATA_DIR")
    p.add_argument("--facedet_scale", type=cli.float_range(0.01, 4), default=0.25,
                   help="scale of the frames for S3FD (default 0.25)")
    p.add_argument("--crop_scale", type=cli.float_range(0, 4), default=0.40,
                   help="scale of the crop box (default 0.40)")
    p.add_argument("--min_track", type=cli.non_negative_int, default=100,
                   help="shortest face track in frames (default 100)")
    p.add_argument("--frame_rate", type=cli.int_range(1, 240), default=25,
                   help="frame rate of the analysis (default 25)")
    p.add_argument("--num_failed_det", type=cli.non_negative_int, default=25,
                   help="missed detections allowed inside a track (default 25)")
    p.add_argument("--min_face_size", type=cli.non_negative_int, default=100,
                   help="smallest face in pixels (default 100)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--batch_size", type=cli.positive_int, default=16,
                   help="frames per detector forward pass (default 16)")
    p.add_argument("--s3fd_model", default=None,
                   help="S3FD weights (default: $S3FD_MODEL, detectors/s3fd/weights/sfd_face.pth, ~/.cache/syncnet)")
    add_detect_every(p)
    add_precision(p)
    p.add_argument("--keep_frames", action="store_true", help="also write every frame to DATA_DIR/pyframes/R/")
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from detectors import S3FD

    from ..analysis import analyse_video
    from ..layout import Layout, check_reference
    from ..model import default_device
    from ..options import FaceOptions
    from ..outlock import reference_lock
    from ..weights import S3FD as S3FD_WEIGHTS
    from ..weights import resolve_weights

    layout = Layout(Path(args.data_dir), check_reference(args.reference))
    opts = FaceOptions(facedet_scale=args.facedet_scale, crop_scale=args.crop_scale, min_track=args.min_track,
                       frame_rate=args.frame_rate, num_failed_det=args.num_failed_det,
                       min_face_size=args.min_face_size, batch_size=args.batch_size,
                       detect_every=args.detect_every)
    from .. import media

    media.probe(args.videofile)  # bad input fails before the model loads
    # One run per reference: another reference may be written into the same data_dir meanwhile.
    with reference_lock(args.data_dir, layout.reference):
        detector = S3FD(weights=resolve_weights(S3FD_WEIGHTS, args.s3fd_model),
                        device=args.device or default_device(), precision=args.precision)
        result = analyse_video(args.videofile, layout, opts, detector=detector, keep_frames=args.keep_frames,
                               progress=sys.stderr.isatty())
    if result.tracks:
        n = len(result.tracks)
        print(f"{n} face track{'' if n == 1 else 's'} in {result.n_frames} frames -> {layout.crop_dir}")
    else:
        print(f"no face tracks found in {result.n_frames} frames; {layout.crop_dir} is empty")
    return 0



def entry(argv: list[str] | None = None) -> None:
    run_main(main, build_parser().parse_args(argv))
