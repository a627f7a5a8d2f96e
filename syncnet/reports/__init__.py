"""What a person reads after a long-video run: report.html, timeline.png, chunks.csv and
tracks.csv in OUTPUT_DIR, all made from processing_summary.json alone, and the table
printed at the end of the run.

    from syncnet.reports import write_report, rebuild_report
    write_report(summary, out_dir)      # after process_long_video returns
    rebuild_report(out_dir)             # later, from OUTPUT_DIR/processing_summary.json

Rebuilding from the same summary gives the same bytes.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..files import json_default, write_bytes_atomic
from .page import report_html
from .tables import chunk_rows, chunks_csv, console_table, elapsed_line, tracks_csv
from .timeline import SIZE_PX, timeline_png

__all__ = ["REPORT_FILES", "SIZE_PX", "SUMMARY", "console_table", "elapsed_line", "load_summary", "rebuild_report",
           "remove_report", "write_report"]

SUMMARY = "processing_summary.json"
REPORT_FILES = ("report.html", "timeline.png", "chunks.csv", "tracks.csv")


def plain(summary: dict) -> dict:
    """The summary as it reads back from its JSON file (numpy numbers and paths as JSON values),
    so a report made from the returned dict equals one rebuilt from the file."""
    return json.loads(json.dumps(summary, default=json_default))


def write_report(summary: dict, out_dir: str | Path) -> list[Path]:
    """Write report.html, timeline.png, chunks.csv and tracks.csv into `out_dir` (each atomically)."""
    out = Path(out_dir)
    summary = plain(summary)
    png = timeline_png(summary)
    rows = chunk_rows(summary)
    files = {"timeline.png": png, "chunks.csv": chunks_csv(rows), "tracks.csv": tracks_csv(rows),
             "report.html": report_html(summary, out, png).encode("utf-8")}
    return [write_bytes_atomic(out / name, files[name]) for name in REPORT_FILES]


def load_summary(out_dir: str | Path) -> dict:
    path = Path(out_dir) / SUMMARY
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} not found: not the output folder of process_long_video.py") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("chunks"), list) or "input" not in summary:
        raise InputError(f"{path} is not a summary of process_long_video.py")
    return summary


def rebuild_report(out_dir: str | Path) -> list[Path]:
    """The report files again, from OUTPUT_DIR/processing_summary.json."""
    return write_report(load_summary(out_dir), out_dir)


def remove_report(out_dir: str | Path) -> list[Path]:
    """Remove an earlier run's report files (they would not match the new summary); those removed."""
    gone = []
    for name in REPORT_FILES:
        p = Path(out_dir) / name
        if p.is_file():
            p.unlink()
            gone.append(p)
    return gone
