"""The main job: cut a long video into chunks and measure the sync of every face in each.

  python process_long_video.py --input_video talk.mp4 --output_dir results/

writes results/chunks/chunk_000.mp4 ..., results/audio/chunk_000.wav ... (16 kHz mono),
results/syncnet_data/{pyavi,pycrop,pywork}/chunk_XXX/ (the files of run_pipeline.py,
run_syncnet.py and run_visualise.py, offsets.txt included) and
results/processing_summary.json (rewritten after every chunk).  With --min_confidence
and/or --max_abs_offset the accepted chunks also go to filtered_chunks/ and
filtered_audio/.  Run the same command again after an interrupt to resume.
At the end: results/report.html (one self-contained page), timeline.png, chunks.csv and
tracks.csv (skip with --no_report; rebuild with `python video_utils.py report results/`),
and a table of the chunks on the console.

One run at a time per output folder: a second one stops at once (exit 2).
Exit codes: 0 every chunk analysed (no faces is a result), 1 some chunks failed, 2 bad input.
"""
from __future__ import annotations

import argparse

from . import common as cli
from .common import add_verbose, run_main
from .options import add_face_options, add_model_options, add_speed_options, face_options


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_video", "--input", dest="input_video", required=True, help="the long video")
    p.add_argument("--output_dir", required=True, help="where everything goes")
    p.add_argument("--chunk_duration", type=cli.positive_float, default=30.0, help="chunk length in s (default 30)")
    p.add_argument("--overlap", type=cli.non_negative_float, default=5.0, help="overlap of chunks in s (default 5)")
    p.add_argument("--chunking", choices=["time", "silence"], default="time",
                   help="fixed-length chunks (default) or cuts in silences")
    p.add_argument("--threshold", type=cli.float_range(-200, 0), default=-30.0,
                   help="silence chunking: level in dB (default -30)")
    p.add_argument("--min_silence", type=cli.positive_float, default=1.0,
                   help="silence chunking: shortest silence (default 1.0)")
    p.add_argument("--min_chunk", type=cli.non_negative_float, default=5.0,
                   help="silence chunking: shortest chunk (default 5.0)")
    p.add_argument("--max_chunk", type=cli.positive_float, default=60.0,
                   help="silence chunking: longest chunk, split at its quietest points (default 60)")
    p.add_argument("--chunk_crf", type=cli.int_range(0, 51), default=18,
                   help="H.264 quality of the chunk files: 18 (default) is visually lossless, 0 is lossless")
    p.add_argument("--chunk_preset", default="veryfast",
                   choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
                   help="x264 preset of the chunk files (default veryfast; ultrafast encodes in about half "
                        "the CPU time, files about 3.6x larger)")
    add_face_options(p, "facedet_scale", "crop_scale", "min_track", "num_failed_det", "min_face_size",
                     min_track=5, min_face_size=10)
    p.add_argument("--vshift", type=cli.positive_int, default=15, help="largest offset searched in frames (default 15)")
    add_model_options(p, syncnet="--syncnet_model", s3fd="--s3fd_model")
    add_speed_options(p)
    p.add_argument("--min_confidence", type=cli.finite_float, default=None,
                   help="filter: keep chunks at least this confident")
    p.add_argument("--max_abs_offset", type=cli.non_negative_int, default=None,
                   help="filter: keep chunks with |offset| <= this")
    p.add_argument("--force", action="store_true", help="redo finished chunks (needed when parameters changed)")
    p.add_argument("--no_visualise", action="store_true", help="skip video_out.avi")
    p.add_argument("--no_report", action="store_true",
                   help="skip report.html, timeline.png, chunks.csv, tracks.csv (an earlier run's are removed; "
                        "rebuild them with: video_utils.py report OUTPUT_DIR)")
    p.add_argument("--chunk_workers", type=cli.non_negative_int, default=0,
                   help="chunks analysed at once while detection goes on (default 0: 1 on the CPU, 3 on a GPU; "
                        "results do not depend on it)")
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from .. import media
    from ..files import ensure_writable_dir
    from ..jobs.longvideo import LongVideoOptions, process_long_video, report
    from ..outlock import output_lock
    from . import models

    cli.quiet_matplotlib(args.verbose)  # before the report imports it: its font-cache notice is not ours to print

    # Each number was checked where it was parsed (finite, in range); what is left are
    # checks of flags against each other.
    if args.chunking == "silence":
        from ..chunking import check_silence_options

        check_silence_options(args.min_chunk, args.max_chunk, args.min_silence)
    faces = face_options(args)
    opts = LongVideoOptions(chunking=args.chunking, chunk_duration=args.chunk_duration, overlap=args.overlap,
                            threshold=args.threshold, min_silence=args.min_silence, min_chunk=args.min_chunk,
                            max_chunk=args.max_chunk,
                            chunk_crf=args.chunk_crf, chunk_preset=args.chunk_preset,
                            faces=faces, vshift=args.vshift, min_confidence=args.min_confidence,
                            max_abs_offset=args.max_abs_offset, visualise=not args.no_visualise,
                            precision=args.precision, chunk_workers=args.chunk_workers)
    # Bad input fails before minutes of model loading.
    info = media.probe(args.input_video)
    media.require_video(info)
    media.require_audio(info)
    if opts.chunking == "time":
        from ..chunking import plan_time_chunks

        plan_time_chunks(info.duration, opts.chunk_duration, opts.overlap)
    media.require_complete(info)
    ensure_writable_dir(args.output_dir)
    with output_lock(args.output_dir):  # taken before the models load: a second run stops at once
        detector, model = models.load_models(args.device, args.s3fd_model, args.syncnet_model,
                                             precision=args.precision)
        summary = process_long_video(args.input_video, args.output_dir, opts, detector, model, force=args.force,
                                     progress=sys.stderr.isatty())
        report_line = report_files(summary, Path(args.output_dir), not args.no_report)
    from ..reports import console_table, elapsed_line

    print(console_table(summary))
    print(report(summary, Path(args.output_dir)))
    print(report_line)
    elapsed = elapsed_line(summary)
    if elapsed:
        print(elapsed)
    return 1 if summary["totals"]["failed"] else 0


def report_files(summary: dict, out_dir, write: bool) -> str:
    """Write (or, with --no_report, remove an earlier run's) report files; the console line
    saying so.  A report that cannot be written costs a warning, not the run's results."""
    import logging

    from ..reports import REPORT_FILES, remove_report, write_report

    rebuild = f"python video_utils.py report {out_dir}"
    if not write:
        gone = remove_report(out_dir)
        return "Report:     skipped (--no_report)" + (
            f"; the earlier run's {', '.join(p.name for p in gone)} removed" if gone else "") + f"; make it: {rebuild}"
    try:
        write_report(summary, out_dir)
    except OSError as exc:
        logging.getLogger("syncnet").warning("report not written: %s; once fixed: %s", exc, rebuild)
        return f"Report:     not written ({exc.strerror or exc})"
    return f"Report:     {out_dir / REPORT_FILES[0]} ({', '.join(REPORT_FILES[1:])} beside it)"


def entry(argv: list[str] | None = None) -> None:
    # long-running: flat memory first where glibc's malloc serves (syncnet/allocator.py)
    run_main(main, build_parser().parse_args(argv), keep_memory=False, preload=argv is None,
             on_conflict="rerun with --force to redo them, or choose another --output_dir")
