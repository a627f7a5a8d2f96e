"""LSE-C / LSE-D of generated talking-face videos, as the published evaluation protocol computes them.

  python score_videos.py --videos results/ --output scores/                  each video a face crop
  python score_videos.py --videos a.mp4 b.mp4 --output scores/ --faces detect   detect, track, crop first
  python score_videos.py --videos results/ --output scores/ --protocol reference

writes OUTPUT/scores.json (schemas/scores.schema.json), scores.csv (one row per file,
or per track) and all_scores.txt (the protocol's `<min_dist> <confidence>` lines), and
prints LSE-C (mean confidence) and LSE-D (mean min dist).  --faces detect also keeps
the pipeline's folders in OUTPUT/work/.  A failing file is recorded and the others go on.
Exit codes: 0 all scored, 1 some files failed, 2 bad input.
"""
from __future__ import annotations

import argparse

from . import common as cli
from .common import add_verbose, run_main
from .options import add_face_options, add_model_options, face_options


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", nargs="+", required=True, metavar="DIR_OR_FILE",
                   help="videos, or folders of videos (mp4, avi, mkv, mov, webm; sorted by name)")
    p.add_argument("--output", required=True, metavar="DIR", help="where the scores go")
    p.add_argument("--faces", choices=("cropped", "detect"), default="cropped",
                   help="cropped (default): each video is a face crop, resized to 224x224 and scored whole; "
                        "detect: find, track and crop the faces first, score each track")
    p.add_argument("--protocol", choices=("ours", "reference"), default="ours",
                   help="ours (default): decode straight from the file; reference: the protocol's own decode "
                        "(JPEG dump with FFmpeg's defaults, sound with -async 1), to reproduce its numbers")
    p.add_argument("--batch_size", type=cli.positive_int, default=20, help="SyncNet windows per forward pass "
                                                                            "(default 20)")
    p.add_argument("--vshift", type=cli.positive_int, default=15,
                   help="largest offset searched, in frames (default 15, the protocol's)")
    add_face_options(p)
    add_model_options(p, syncnet="--initial_model", s3fd="--s3fd_model")
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys

    from ..files import ensure_writable_dir
    from ..jobs.scoring import ALL_SCORES, SCORES_CSV, SCORES_JSON, ScoreSettings, expand_inputs, score_videos
    from ..lse import LseMeans, averages_lines
    from ..outlock import output_lock
    from . import models

    videos = expand_inputs(args.videos)
    ensure_writable_dir(args.output)
    settings = ScoreSettings(faces=args.faces, protocol=args.protocol, vshift=args.vshift,
                             batch_size=args.batch_size, face_options=face_options(args))
    with output_lock(args.output):  # taken before the models load: a second run stops at once
        detector, model = models.load_models(args.device, s3fd_path=args.s3fd_model, syncnet_path=args.initial_model,
                                             need_s3fd=args.faces == "detect", precision=args.precision)
        summary = score_videos(videos, args.output, settings, model, detector, progress=sys.stderr.isatty())
    t, m = summary["totals"], summary["means"]
    for f in summary["files"]:
        if f["status"] == "failed":
            print(f"  failed {f['file']}: {f['error']}")
        elif f["status"] == "no_faces":
            print(f"  no face track in {f['file']}")
    print(f"{t['files']} file{'' if t['files'] == 1 else 's'}: {t['success']} scored, {t['no_faces']} without "
          f"a face track, {t['failed']} failed; {t['tracks']} track{'' if t['tracks'] == 1 else 's'} "
          f"({args.faces} faces, {args.protocol} decode)")
    print(f"scores in {args.output}/{SCORES_JSON}, {SCORES_CSV} and {ALL_SCORES}")
    if m["n_tracks"]:
        print(f"LSE-C (mean confidence) {m['lse_c']:.3f}, LSE-D (mean min dist) {m['lse_d']:.3f} "
              f"over {m['n_tracks']} track{'' if m['n_tracks'] == 1 else 's'}")
        for line in averages_lines(LseMeans(m["lse_c"], m["lse_d"], m["n_tracks"])):
            print(line)
    else:
        print("no track was scored: no LSE-C / LSE-D")
    return 1 if t["failed"] else 0


def entry(argv: list[str] | None = None) -> None:
    run_main(main, build_parser().parse_args(argv))
