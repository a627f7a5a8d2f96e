"""OUTPUT_DIR/batch_report.html: a batch run's summary (batch_processing_summary.json) as one
page a person can read.

One self-contained file that works offline: no script, no external font or style sheet, the
two histograms embedded as data: URIs; the only links point at the run's own
pyavi/<stem>/video_out.avi, beside the report, and only where they exist.  The same summary
and folder give the same bytes (no clock, PNGs without a Software stamp).

Each file is judged by its best track (`syncnet.results.best_track`: the most confident
reliable one).  The offset's sign is the summaries': positive, the sound of a frame sits
that many frames earlier in the file (the audio leads); SyncNet's frames are 40 ms (25 fps).
Works with summaries written before the per-track `offset_ms` / `at_search_edge` and the
per-file `diagnosis` fields existed: the first two are then computed, the third is absent.
"""
from __future__ import annotations

import base64
import io
import math
import re
from pathlib import Path
from urllib.parse import quote

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import write_bytes_atomic
from ..results import best_track
from . import plain

REPORT = "batch_report.html"
TEMPLATE = "batch_report.html.j2"
# The thresholds people commonly apply: a best track passes (conf, off) when its confidence
# is at least conf and its offset at most off frames either way.
CONFIDENCE_LEVELS = (3, 5, 8)
OFFSET_LEVELS = (1, 3, 6)
DEFAULT_FRAME_RATE = 25
DEFAULT_VSHIFT = 15

_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)):")
_NO_TRACK = "no face track found"


def write_batch_report(summary: dict, out_dir: str | Path) -> Path:
    """Write OUTPUT_DIR/batch_report.html (atomically) from a batch summary; return its path."""
    out = Path(out_dir)
    html = render_batch_report(plain(summary), out)  # as read back from its file: a rebuild gives these bytes
    return write_bytes_atomic(out / REPORT, html.encode("utf-8"))


def render_batch_report(summary: dict, out_dir: str | Path) -> str:
    """The page's HTML; `out_dir`: where it goes (the folder holding pyavi/)."""
    out = Path(out_dir)
    params = summary.get("parameters") or {}
    ms_per_frame = 1000.0 / float(params.get("frame_rate") or DEFAULT_FRAME_RATE)
    vshift = int(params.get("vshift") or DEFAULT_VSHIFT)
    files = summary.get("files") or []
    rows = [_row(f, out, ms_per_frame, vshift) for f in files]
    measured = [r for r in rows if r["reliable"]]
    unreliable = [r for r in rows if r["best"] is not None and not r["reliable"]]
    env = jinja2.Environment(loader=jinja2.PackageLoader("syncnet.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    return env.get_template(TEMPLATE).render(
        chunks_dir=summary.get("chunks_dir", ""),
        software=summary.get("software") or {},
        parameters=sorted(params.items()),
        totals=summary.get("totals") or {},
        wall_seconds=summary.get("wall_seconds"),
        ms_per_frame=_number(ms_per_frame),
        vshift=vshift,
        rows=rows,
        n_measured=len(measured),
        n_unreliable=len(unreliable),
        thresholds=threshold_table(measured),
        confidence_levels=CONFIDENCE_LEVELS,
        offset_levels=OFFSET_LEVELS,
        pictures=[
            _picture("Offsets of the best tracks", _offset_histogram(measured, unreliable, vshift, ms_per_frame),
                     "Histogram of the best tracks' offsets in frames"),
            _picture("Confidences of the best tracks", _confidence_histogram(measured, unreliable),
                     "Histogram of the best tracks' confidences, with the thresholds 3, 5 and 8 marked"),
        ],
        groups=problem_groups(files),
    )


def threshold_table(measured: list[dict]) -> list[dict]:
    """Per confidence level, per offset level: how many of `measured` (rows with a reliable
    best track) pass both, and which share of them."""
    n = len(measured)
    table = []
    for conf in CONFIDENCE_LEVELS:
        cells = []
        for off in OFFSET_LEVELS:
            count = sum(1 for r in measured if r["confidence"] >= conf and abs(r["offset"]) <= off)
            cells.append({"count": count, "percent": f"{100.0 * count / n:.1f}%" if n else "-"})
        table.append({"confidence": conf, "cells": cells})
    return table


def failure_cause(record: dict) -> str:
    """What went wrong with one file, in words shared by every file it happened to: the
    diagnosis's cause when the summary has one; else, of an error line, the exception's type
    or the message's leading part with the file's own name taken out; else 'no face track
    found' for a file without faces."""
    diagnosis = record.get("diagnosis")
    if isinstance(diagnosis, dict) and diagnosis.get("cause"):
        return str(diagnosis["cause"])
    error = record.get("error")
    if not error:
        return _NO_TRACK if record.get("status") == "no_faces" else "unknown"
    m = _EXCEPTION.match(error)
    if m:
        return m.group(1)
    text = error
    for name in sorted({record.get("path") or "", record.get("file") or ""}, key=len, reverse=True):
        if name:
            text = text.replace(name, "<file>")
    cut = min((i for i in (text.find(": "), text.find(" (")) if i > 0), default=len(text))
    return text[:cut].strip() or "unknown"


def problem_groups(files: list[dict]) -> list[dict]:
    """Files that failed, found no face, or carry a diagnosis, grouped by status and
    `failure_cause`; largest groups first, then by status and cause (a stable order)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in files:
        if f.get("status") == "success" and not f.get("diagnosis"):
            continue
        groups.setdefault((f.get("status", "?"), failure_cause(f)), []).append(f.get("file", "?"))
    order = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [{"status": status, "cause": cause, "count": len(names), "files": names}
            for (status, cause), names in order]


def _row(record: dict, out: Path, ms_per_frame: float, vshift: int) -> dict:
    tracks = record.get("tracks") or []
    best = best_track(tracks)
    diagnosis = record.get("diagnosis") if isinstance(record.get("diagnosis"), dict) else None
    row = {"file": record.get("file", "?"), "status": record.get("status", "?"), "n_tracks": len(tracks),
           "best": best, "reliable": False, "offset": None, "offset_ms": None, "confidence": None,
           "min_dist": None, "at_edge": False, "note": "", "note_kind": "", "link": None}
    if best is not None:
        offset = int(best["offset"])
        offset_ms = best.get("offset_ms")
        edge = best.get("at_search_edge")
        row.update(reliable=bool(best.get("reliable", True)), offset=offset, confidence=float(best["confidence"]),
                   min_dist=float(best["min_dist"]), track=best.get("track"),
                   offset_ms=float(offset_ms) if offset_ms is not None else offset * ms_per_frame,
                   at_edge=bool(edge) if edge is not None else abs(offset) >= vshift)
        row.update(offset_text=_signed(offset), offset_ms_text=_signed(round(row["offset_ms"])),
                   confidence_text=f"{row['confidence']:.3f}", min_dist_text=f"{row['min_dist']:.3f}")
    if diagnosis and diagnosis.get("message"):
        row.update(note=str(diagnosis["message"]), note_kind="diagnosis")
    elif record.get("error"):
        row.update(note=str(record["error"]), note_kind="error")
    elif record.get("status") == "no_faces":
        row.update(note=_NO_TRACK, note_kind="diagnosis")
    elif best is not None and not row["reliable"]:
        row.update(note=str(best.get("unreliable_reason") or "unreliable"), note_kind="unreliable")
    stem = Path(row["file"]).stem
    if (out / "pyavi" / stem / "video_out.avi").is_file():
        row["link"] = f"pyavi/{quote(stem)}/video_out.avi"
    return row


def _signed(n: int) -> str:
    """+3, -2, 0."""
    return f"{n:+d}" if n else "0"


def _number(x: float) -> str:
    return f"{x:g}"


def _picture(title: str, png: bytes, alt: str) -> dict:
    return {"title": title, "alt": alt, "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=(6.4, 3.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _offset_histogram(measured: list[dict], unreliable: list[dict], vshift: int, ms_per_frame: float) -> bytes:
    fig, ax = _figure()
    offsets = [r["offset"] for r in measured + unreliable]
    lo = min([-vshift, *offsets])
    hi = max([vshift, *offsets])
    xs = list(range(lo, hi + 1))
    good = [sum(1 for r in measured if r["offset"] == x) for x in xs]
    bad = [sum(1 for r in unreliable if r["offset"] == x) for x in xs]
    ax.bar(xs, good, width=0.8, color="#2b6cb0", label="reliable best track")
    if unreliable:
        ax.bar(xs, bad, width=0.8, bottom=good, color="#cbd5e0", hatch="//", edgecolor="#718096",
               label="unreliable (too short)")
    ax.axvline(0, color="#2f855a", linewidth=1, linestyle=":")
    ax.set_xlim(lo - 1, hi + 1)
    ax.set_xlabel(f"offset (frames of {_number(ms_per_frame)} ms; + = audio leads)")
    ax.set_ylabel("files")
    _finish(ax, bool(offsets))
    fig.tight_layout()
    return _png(fig)


def _confidence_histogram(measured: list[dict], unreliable: list[dict]) -> bytes:
    fig, ax = _figure()
    confs = [r["confidence"] for r in measured + unreliable]
    top = max(10.0, math.ceil(max(confs, default=0.0)) + 1.0)
    edges = [i * 0.5 for i in range(int(top * 2) + 1)]
    good = [r["confidence"] for r in measured]
    bad = [r["confidence"] for r in unreliable]
    ax.hist([good, bad] if unreliable else [good], bins=edges, stacked=True,
            color=["#2b6cb0", "#cbd5e0"][:2 if unreliable else 1],
            label=["reliable best track", "unreliable (too short)"][:2 if unreliable else 1])
    for level in CONFIDENCE_LEVELS:
        ax.axvline(level, color="#c53030", linewidth=1, linestyle="--")
    ax.set_xlim(0, top)
    ax.set_xlabel("confidence (dashed: 3, 5, 8)")
    ax.set_ylabel("files")
    _finish(ax, bool(confs))
    fig.tight_layout()
    return _png(fig)


def _finish(ax, any_data: bool) -> None:
    ax.yaxis.get_major_locator().set_params(integer=True)
    if any_data:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "no measured track", transform=ax.transAxes, ha="center", va="center", color="#718096")
