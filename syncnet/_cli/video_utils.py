"""Video utilities: inspect a file, extract its audio, cut it into chunks, re-sync its sound.

  python video_utils.py info --input talk.mp4 [--json]
  python video_utils.py extract-audio --input talk.mp4 --output talk.wav --sample_rate 16000 --channels 1
  python video_utils.py chunk-time --input talk.mp4 --output_dir chunks --duration 30 --overlap 5
  python video_utils.py chunk-silence --input talk.mp4 --output_dir chunks --threshold -30 \
      --min_silence 1.0 --min_chunk 5.0 --max_chunk 60
  python video_utils.py report results/
  python video_utils.py resync --input talk.mp4 --output talk_synced.mp4 --offset 3

`resync` shifts the sound against the picture so that a file measured at offset N
(frames at 25 fps; --offset_ms for milliseconds) measures 0: the sound is delayed by N
frames (advanced when N is negative), the picture stream-copied, the length kept.

`report` (re)makes report.html, timeline.png, chunks.csv and tracks.csv in the output
folder of process_long_video.py from its processing_summary.json (byte-identical to
what the run wrote), or batch_report.html beside a batch_processing_summary.json.

Chunks are re-encoded and cut on the source's frame times, so sound and picture
stay aligned; both chunkers write chunks.json (index, file, start, end, duration)
and remove the chunk_NNN.mp4 files an earlier plan left in the folder.
Exit codes: 0 ok, 1 FFmpeg failed on a valid input, 2 bad input (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import media
from ..chunking import (
    audio_levels,
    check_silence_options,
    cut_chunks,
    plan_silence_chunks,
    plan_time_chunks,
)
from ..errors import InputError
from ..files import ensure_writable_dir
from ..outlock import output_lock
from .common import ArgumentParser, add_verbose, finite_float, float_range, int_range, quiet_matplotlib, run_main
from .common import non_negative_float as seconds_or_zero
from .common import positive_float as seconds


def cmd_info(args: argparse.Namespace) -> int:
    info = media.probe(args.input)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    lines = [f"File:       {info.path}", f"Container:  {info.format_name}", f"Duration:   {info.duration:.3f} s"]
    if info.has_video:
        w, h = info.display_size
        rate = f"{info.fps:.3f} fps ({info.fps_fraction})" + (", variable" if info.variable_frame_rate else "")
        lines += [f"Video:      {info.video_codec}, {w}x{h}, {rate}"
                  + (f", rotated {info.rotation} deg" if info.rotation else "")]
        if info.n_frames:
            lines.append(f"Frames:     {info.n_frames}")
    else:
        lines.append("Video:      none")
    if info.audio:
        for a in info.audio:
            lines.append(f"Audio:      stream {a.index}: {a.codec}, {a.sample_rate} Hz, {a.channels} ch")
    else:
        lines.append("Audio:      none")
    print("\n".join(lines))
    return 0


def cmd_extract_audio(args: argparse.Namespace) -> int:
    output = Path(args.output)
    media.require_audio(media.probe(args.input))  # bad input first: no folder made for nothing
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a file name such as {output / 'audio.wav'}")
    ensure_writable_dir(output.parent)  # as the chunkers do for theirs
    out = media.extract_audio(args.input, output, sample_rate=args.sample_rate, channels=args.channels)
    print(f"wrote {out}")
    return 0


def _write_chunks(args: argparse.Namespace, info: media.MediaInfo, plan) -> int:
    with output_lock(args.output_dir):  # one writer per chunk folder
        records = cut_chunks(args.input, plan, args.output_dir, info=info, progress=sys.stderr.isatty())
    for r in records:
        print(f"{r['file']}: {r['start']:.3f}-{r['end']:.3f} s ({r['duration']:.3f} s)")
    n = len(records)
    print(f"wrote {n} chunk{'' if n == 1 else 's'} and chunks.json to {args.output_dir}")
    return 0


def cmd_chunk_time(args: argparse.Namespace) -> int:
    info = media.probe(args.input)
    media.require_video(info)
    plan = plan_time_chunks(info.duration, args.duration, args.overlap)
    media.require_complete(info)
    ensure_writable_dir(args.output_dir)
    return _write_chunks(args, info, plan)


def cmd_chunk_silence(args: argparse.Namespace) -> int:
    info = media.probe(args.input)
    media.require_video(info)
    media.require_audio(info)
    check_silence_options(args.min_chunk, args.max_chunk, args.min_silence)
    media.require_complete(info)
    ensure_writable_dir(args.output_dir)
    silences = media.detect_silences(args.input, args.threshold, args.min_silence, info=info)
    plan = plan_silence_chunks(info.duration, silences, args.min_chunk, args.max_chunk,
                               levels=audio_levels(args.input, info))
    return _write_chunks(args, info, plan)


def cmd_report(args: argparse.Namespace) -> int:
    quiet_matplotlib(args.verbose)
    out = Path(args.output_dir)
    if not out.is_dir():
        raise InputError(f"{out} is not a directory")
    if not (out / "processing_summary.json").exists() and (out / "batch_processing_summary.json").exists():
        return _batch_report(out)
    if not (out / "processing_summary.json").exists() and (out / "dataset_summary.json").exists():
        return _dataset_report(out)
    from ..reports import load_summary, write_report

    summary = load_summary(out)  # a missing or unreadable summary is bad input (exit 2)
    with output_lock(out):  # not while a run writes there
        written = write_report(summary, out)
    print(f"wrote {', '.join(p.name for p in written)} in {out}")
    return 0


def _read_json(path: Path):
    """A summary written by a run; one line (exit 2) when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None


def _batch_report(out: Path) -> int:
    from ..reports.batch import write_batch_report

    summary = _read_json(out / "batch_processing_summary.json")
    with output_lock(out):
        written = write_batch_report(summary, out)
    print(f"wrote {written}")
    return 0


def _dataset_report(out: Path) -> int:
    """The overview page of a run over several inputs; each input's own report is its folder's."""
    from ..reports.dataset import write_dataset_report

    path = out / "dataset_summary.json"
    summary = _read_json(path)
    if not isinstance(summary, dict) or not isinstance(summary.get("inputs"), list) or "totals" not in summary:
        raise InputError(f"{path} is not a dataset summary of process_long_video.py")
    with output_lock(out):
        written = write_dataset_report(summary, out)
    print(f"wrote {written} (each input's own report: python video_utils.py report {out}/<input>)")
    return 0


def cmd_resync(args: argparse.Namespace) -> int:
    from ..media.resync import FRAME_MS, resync

    shift_ms = args.offset_ms if args.offset_ms is not None else args.offset * FRAME_MS
    output = Path(args.output)
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a file name such as {output / 'synced.mp4'}")
    info = media.probe(args.input)  # bad input first: no folder made for nothing
    media.require_video(info)
    media.require_audio(info)
    from ..media.resync import check_shift

    check_shift(shift_ms, info)
    ensure_writable_dir(output.parent)
    resync(args.input, output, shift_ms, info=info)
    how = "delayed" if shift_ms > 0 else "advanced" if shift_ms < 0 else "kept in place"
    print(f"wrote {output}: sound {how} by {abs(shift_ms):g} ms, picture copied")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a media file")
    p.add_argument("--input", required=True)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("extract-audio", help="extract the audio as 16-bit PCM WAV")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--sample_rate", type=int_range(1000, 384000), default=16000, help="Hz (default 16000)")
    p.add_argument("--channels", type=int_range(1, 8), default=1, help="1 to 8 (default 1)")
    p.set_defaults(func=cmd_extract_audio)

    p = sub.add_parser("chunk-time", help="fixed-length chunks with overlap")
    p.add_argument("--input", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--duration", type=seconds, default=30.0, help="chunk length in seconds (default 30)")
    p.add_argument("--overlap", type=seconds_or_zero, default=5.0, help="overlap in seconds (default 5)")
    p.set_defaults(func=cmd_chunk_time)

    p = sub.add_parser("chunk-silence", help="cut in the middle of silences")
    p.add_argument("--input", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--threshold", type=float_range(-200, 0), default=-30.0,
                   help="silence level in dB, -200 to 0 (default -30)")
    p.add_argument("--min_silence", type=seconds, default=1.0, help="shortest silence in s (default 1.0)")
    p.add_argument("--min_chunk", type=seconds_or_zero, default=5.0,
                   help="shortest chunk in s (default 5.0); a shorter piece joins the piece after it")
    p.add_argument("--max_chunk", type=seconds, default=60.0,
                   help="longest chunk in s (default 60, at least twice --min_chunk); a longer piece is split "
                        "at its quietest points")
    p.set_defaults(func=cmd_chunk_silence)

    p = sub.add_parser("report", help="rebuild report.html, timeline.png, chunks.csv, tracks.csv of a run")
    p.add_argument("output_dir", help="the --output_dir of process_long_video.py (or of batch_process.py)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("resync", help="shift the sound against the picture by a measured offset")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True, help="the re-synced copy (its picture stream-copied)")
    shift = p.add_mutually_exclusive_group(required=True)
    shift.add_argument("--offset", type=finite_float,
                       help="the offset measured on the input, in frames at 25 fps (positive: the sound leads)")
    shift.add_argument("--offset_ms", type=finite_float, help="the same in milliseconds (40 ms a frame)")
    p.set_defaults(func=cmd_resync)

    for action in sub.choices.values():
        add_verbose(action)
    return parser


def entry(argv: list[str] | None = None) -> None:
    arguments = build_parser().parse_args(argv)
    run_main(arguments.func, arguments, preload=argv is None)
