"""The main job: cut a long video into chunks and measure the sync of every face in each.

  python process_long_video.py --input_video talk.mp4 --output_dir results/

writes results/chunks/chunk_000.mp4 ..., results/audio/chunk_000.wav ... (16 kHz mono),
results/syncnet_data/{pyavi,pycrop,pywork}/chunk_XXX/ (the files of run_pipeline.py,
run_syncnet.py and run_visualise.py, offsets.txt included) and
results/processing_summary.json (rewritten after every chunk).  With --min_confidence
and/or --max_abs_offset the accepted chunks also go to filtered_chunks/ and
filtered_audio/.  Run the same command again after an interrupt to resume.
With --export_synced the accepted chunks are also written re-synced (their sound shifted
by their best track's offset) to synced_chunks/ and synced_audio/; --export_synced_video
writes the whole input re-synced, results/synced_<input name>, when the offset is
constant over time (the summary's `drift`).
At the end: results/report.html (one self-contained page), timeline.png, chunks.csv and
tracks.csv (skip with --no_report; rebuild with `python video_utils.py report results/`),
and a table of the chunks on the console.

Several inputs (files and/or folders of videos):

  python process_long_video.py --input_video a.mp4 b.mp4 news/ --output_dir results/

analyses each one, one after another, into results/<its name>/ (the layout above) and
writes results/dataset_summary.json over all of them (rewritten after every input).
An input that fails is recorded and the others go on (exit 1).

One run at a time per output folder: a second one stops at once (exit 2).
Exit codes: 0 every chunk analysed (no faces is a result), 1 some chunks failed (or
--export_synced_video refused: the offset is not constant), 2 bad input.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import common as cli
from .common import add_verbose, run_main
from .options import (
    add_cluster_options,
    add_face_options,
    add_model_options,
    add_reference_decode_option,
    add_speed_options,
    check_cluster_options,
    face_options,
    model_factory,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ..jobs.longvideo import LongVideoOptions


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_video", "--input", dest="input_video", required=True, action="extend", nargs="+",
                   metavar="INPUT", help="the long video; or several videos and/or folders of videos, each "
                                         "analysed into OUTPUT_DIR/<its name>/ with a dataset_summary.json")
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
    add_reference_decode_option(p)
    p.add_argument("--min_confidence", type=cli.finite_float, default=None,
                   help="filter: keep chunks at least this confident")
    p.add_argument("--max_abs_offset", type=cli.non_negative_int, default=None,
                   help="filter: keep chunks with |offset| <= this")
    p.add_argument("--export_synced", action="store_true",
                   help="write each chunk the filter accepts with its sound shifted by its offset into synced_chunks/ "
                        "and synced_audio/ (needs --min_confidence and/or --max_abs_offset)")
    p.add_argument("--export_synced_video", action="store_true",
                   help="write the whole input re-synced by the fitted offset into OUTPUT_DIR, when the offset is "
                        "constant over time (else refused with exit code 1, the chunks' results kept)")
    p.add_argument("--force", action="store_true", help="redo finished chunks (needed when parameters changed)")
    p.add_argument("--no_visualise", action="store_true", help="skip video_out.avi")
    p.add_argument("--no_report", action="store_true",
                   help="skip report.html, timeline.png, chunks.csv, tracks.csv (an earlier run's are removed; "
                        "rebuild them with: video_utils.py report OUTPUT_DIR)")
    p.add_argument("--chunk_workers", type=cli.non_negative_int, default=0,
                   help="chunks analysed at once while detection goes on (default 0: 1 on the CPU, 3 on a GPU; "
                        "results do not depend on it)")
    add_cluster_options(p)
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..files import ensure_writable_dir
    from ..jobs.longvideo import LongVideoOptions, check_source, process_long_video, report
    from ..outlock import output_lock
    from . import models

    cli.quiet_matplotlib(args.verbose)  # before the report imports it: its font-cache notice is not ours to print
    check_cluster_options(args)
    if args.ray is not None:
        from ..cluster import import_ray

        import_ray()  # missing: one line, exit 2, before anything else

    # Each number was checked where it was parsed (finite, in range); what is left are
    # checks of flags against each other.
    if args.chunking == "silence":
        from ..chunking import check_silence_options

        check_silence_options(args.min_chunk, args.max_chunk, args.min_silence)
    if args.export_synced and args.min_confidence is None and args.max_abs_offset is None:
        from ..errors import InputError

        raise InputError("--export_synced exports the chunks the quality filter accepts: give --min_confidence "
                         "and/or --max_abs_offset")
    faces = face_options(args)
    opts = LongVideoOptions(chunking=args.chunking, chunk_duration=args.chunk_duration, overlap=args.overlap,
                            threshold=args.threshold, min_silence=args.min_silence, min_chunk=args.min_chunk,
                            max_chunk=args.max_chunk,
                            chunk_crf=args.chunk_crf, chunk_preset=args.chunk_preset,
                            faces=faces, vshift=args.vshift, min_confidence=args.min_confidence,
                            max_abs_offset=args.max_abs_offset, visualise=not args.no_visualise,
                            precision=args.precision, chunk_workers=args.chunk_workers,
                            export_synced=args.export_synced, export_synced_video=args.export_synced_video)
    from ..jobs.dataset import several_inputs

    if several_inputs(args.input_video):
        return main_several(args, opts)
    source = args.input_video[0]
    check_source(source, opts)  # bad input fails before minutes of model loading
    ensure_writable_dir(args.output_dir)
    cluster_line = None
    with output_lock(args.output_dir):  # taken before the models load: a second run stops at once
        if args.ray is None:
            detector, model = models.load_models(args.device, args.s3fd_model, args.syncnet_model,
                                                 precision=args.precision)
            summary = process_long_video(source, args.output_dir, opts, detector, model,
                                         force=args.force, progress=sys.stderr.isatty())
        else:
            from ..cluster import Cluster

            with Cluster(args.ray, model_factory(args), args.cpus_per_worker or 1, args.device,
                         progress=sys.stderr.isatty(), verbose=args.verbose) as cluster:
                summary = cluster.long_video(source, args.output_dir, opts, force=args.force)
                cluster_line = cluster.report("chunks")
        report_line = report_files(summary, Path(args.output_dir), not args.no_report)
    from ..reports import console_table, elapsed_line

    print(console_table(summary))
    print(report(summary, Path(args.output_dir)))
    print(report_line)
    elapsed = elapsed_line(summary)
    if elapsed:
        print(elapsed)
    if cluster_line:
        print(cluster_line)
    refused = refused_export(summary)
    if refused:
        print_error(refused)
        return 1
    return 1 if summary["totals"]["failed"] else 0


def print_error(line: str) -> None:
    """One `process_long_video.py: error: ...` line on stderr, as a failed run prints it."""
    import os
    import sys

    print(f"{os.path.basename(sys.argv[0]) or 'process_long_video.py'}: error: {line}", file=sys.stderr)


def refused_export(summary: dict) -> str | None:
    """Why --export_synced_video was refused (the offset is not constant), if it was."""
    video = summary.get("exports", {}).get("synced_video")
    return video["refused"] if video is not None and video["refused"] else None


def main_several(args: argparse.Namespace, opts: LongVideoOptions) -> int:
    """Several inputs (files, folders): each into OUTPUT_DIR/<its name>/ as one input would be,
    one after another with the same models; dataset_summary.json over them all."""
    import sys
    from pathlib import Path

    from ..files import ensure_writable_dir
    from ..jobs.dataset import DatasetSummary, check_input, expand_inputs, input_output_dir, report, run_inputs
    from ..outlock import output_lock
    from . import models

    inputs = expand_inputs(args.input_video)  # refuses a missing path and two inputs with one name
    out = Path(args.output_dir)
    ensure_writable_dir(out)
    with output_lock(out):  # each input's job locks its own folder too
        # Bad inputs are recorded, not fatal; an earlier run with other parameters is refused
        # (exit 2) before any input runs or any model loads.
        checked = [check_input(p, opts, input_output_dir(out, p, True), args.force) for p in inputs]
        runnable = any(c.error is None for c in checked)
        detector = model = None
        if runnable and args.ray is None:
            detector, model = models.load_models(args.device, args.s3fd_model, args.syncnet_model,
                                                 precision=args.precision)
        dataset = DatasetSummary.rebuild(out, inputs, opts.result_parameters(), opts.filter_parameters())

        refusals: list[str] = []

        def after(source: Path, summary: dict, out_dir: Path) -> None:
            report_files(summary, out_dir, not args.no_report)
            refused = refused_export(summary)
            if refused:
                refusals.append(f"{source.name}: {refused}")

        cluster_line = None
        if args.ray is None or not runnable:
            summary = run_inputs(checked, dataset, opts, detector, model, force=args.force,
                                 progress=sys.stderr.isatty(), after=after)
        else:
            from ..cluster import Cluster

            with Cluster(args.ray, model_factory(args), args.cpus_per_worker or 1, args.device,
                         progress=sys.stderr.isatty(), verbose=args.verbose) as cluster:
                # each input in turn across all the workers, in spans
                summary = run_inputs(checked, dataset, opts, None, None, force=args.force,
                                     progress=sys.stderr.isatty(), after=after,
                                     run=lambda source, out_dir: cluster.long_video(source, out_dir, opts,
                                                                                   force=args.force))
                cluster_line = cluster.report("chunks")
        overview = dataset_report(summary, out, not args.no_report)
    print(report(summary))
    if cluster_line:
        print(cluster_line)
    print(overview)
    for line in refusals:
        print_error(line)
    t = summary["totals"]
    return 1 if refusals or t["failed"] or t["partial"] or t["incomplete"] or t["pending"] else 0


def dataset_report(summary: dict, out: Path, write: bool) -> str:
    """dataset_report.html (or, with --no_report, an earlier one removed); the console line saying so."""
    from ..reports.dataset import REPORT, write_dataset_report

    if not write:
        (out / REPORT).unlink(missing_ok=True)
        return f"Report:     skipped (--no_report); make it: {cli.rebuild_report_command(out)}"
    error = cli.try_report(lambda: write_dataset_report(summary, out), out)
    if error:
        return f"Report:     not written ({error})"
    return f"Report:     {out / REPORT} (each input's report.html in its folder)"


def report_files(summary: dict, out_dir, write: bool) -> str:
    """Write (or, with --no_report, remove an earlier run's) report files; the console line saying so."""
    from ..reports import REPORT_FILES, remove_report, write_report

    if not write:
        gone = remove_report(out_dir)
        return "Report:     skipped (--no_report)" + (
            f"; the earlier run's {', '.join(p.name for p in gone)} removed" if gone else "") + \
            f"; make it: {cli.rebuild_report_command(out_dir)}"
    error = cli.try_report(lambda: write_report(summary, out_dir), out_dir)
    if error:
        return f"Report:     not written ({error})"
    return f"Report:     {out_dir / REPORT_FILES[0]} ({', '.join(REPORT_FILES[1:])} beside it)"


def entry(argv: list[str] | None = None) -> None:
    # long-running: flat memory first where glibc's malloc serves (syncnet/allocator.py)
    run_main(main, build_parser().parse_args(argv), keep_memory=False, preload=argv is None,
             on_conflict="rerun with --force to redo them, or choose another --output_dir")
