"""Analyse every video of a folder (mp4, avi, mkv, mov, webm) with a pool of workers.

  python batch_process.py --chunks_dir chunks/ --output_dir batch_results/ --max_workers 2

writes OUTPUT_DIR/pyavi|pycrop|pywork/<name>/ for every file (offsets.txt included)
and OUTPUT_DIR/batch_processing_summary.json.  One failing file never stops the
others; run again to redo only what is missing.  One run at a time per output folder.
Exit codes: 0 all analysed, 1 some files failed, 2 bad input.
"""
from __future__ import annotations

import argparse

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


def build_parser() -> argparse.ArgumentParser:
    p = cli.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks_dir", required=True, help="folder of videos")
    p.add_argument("--output_dir", required=True, help="where the results go")
    p.add_argument("--max_workers", type=cli.positive_int, default=2,
                   help="files analysed at once (default 2; with --ray, one per worker)")
    add_face_options(p, "min_track", "min_face_size", min_track=5, min_face_size=10)
    add_model_options(p, syncnet="--syncnet_model", s3fd="--s3fd_model")
    add_speed_options(p)
    add_reference_decode_option(p)
    p.add_argument("--visualise", action="store_true", help="also write video_out.avi for every file")
    p.add_argument("--force", action="store_true", help="redo files already analysed")
    p.add_argument("--no_report", action="store_true",
                   help="skip batch_report.html (rebuild it with: video_utils.py report OUTPUT_DIR)")
    add_cluster_options(p)
    add_verbose(p)
    return p


def main(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..errors import InputError
    from ..files import ensure_writable_dir
    from ..jobs.batch import find_videos, process_folder
    from ..outlock import output_lock
    from . import models

    cli.quiet_matplotlib(args.verbose)  # before the report imports it
    check_cluster_options(args)
    if args.ray is not None:
        from ..cluster import import_ray

        import_ray()  # missing: one line, exit 2, before anything else
    if not Path(args.chunks_dir).is_dir():
        raise InputError(f"--chunks_dir {args.chunks_dir} is not a directory")
    find_videos(args.chunks_dir)
    ensure_writable_dir(args.output_dir)
    cluster_line = None
    with output_lock(args.output_dir):  # taken before the models load: a second run stops at once
        opts = face_options(args)
        if args.ray is None:
            detector, model = models.load_models(args.device, args.s3fd_model, args.syncnet_model,
                                                 precision=args.precision)
            summary = process_folder(args.chunks_dir, args.output_dir, opts, detector, model,
                                     max_workers=args.max_workers, force=args.force, visualise=args.visualise,
                                     progress=sys.stderr.isatty())
        else:
            from ..cluster import Cluster

            with Cluster(args.ray, model_factory(args), args.cpus_per_worker or 1, args.device,
                         progress=sys.stderr.isatty(), verbose=args.verbose) as cluster:
                summary = process_folder(args.chunks_dir, args.output_dir, opts, None, None, force=args.force,
                                         visualise=args.visualise, precision=args.precision,
                                         execute=cluster.files(Path(args.output_dir), opts, 15, args.visualise))
                cluster_line = cluster.report("files")
        report_line = batch_report(summary, Path(args.output_dir), not args.no_report)
    t = summary["totals"]
    files = f"{t['files']} file{'' if t['files'] == 1 else 's'}"
    print(f"{files}: {t['success']} with faces, {t['no_faces']} without, {t['failed']} failed "
          f"({t['skipped']} done before); summary in {args.output_dir}/batch_processing_summary.json")
    for f in summary["files"]:
        if f["status"] == "failed":
            print(f"  failed {f['file']}: {f['error']}")
    print(report_line)
    if cluster_line:
        print(cluster_line)
    return 1 if t["failed"] else 0


def batch_report(summary: dict, out_dir, write: bool) -> str:
    """Write (or, with --no_report, remove an earlier run's) batch_report.html; the console line saying so."""
    from ..reports.batch import REPORT, write_batch_report

    if not write:
        (out_dir / REPORT).unlink(missing_ok=True)  # it would no longer match the summary
        return f"report skipped (--no_report); make it: {cli.rebuild_report_command(out_dir)}"
    error = cli.try_report(lambda: write_batch_report(summary, out_dir), out_dir)
    if error:
        return f"report not written ({error})"
    return f"report in {out_dir / REPORT}"


def entry(argv: list[str] | None = None) -> None:
    # long-running: flat memory first where glibc's malloc serves (syncnet/allocator.py)
    run_main(main, build_parser().parse_args(argv), keep_memory=False, preload=argv is None,
             on_conflict="rerun with --force to redo them")
