"""The report's rows, read from a processing_summary.json: one per chunk and one per face
track, with the numbers a person reads (times in the source, offsets in ms, verdicts),
and the two places they go besides the HTML page: chunks.csv / tracks.csv and the table
printed at the end of a run.

Summaries written before the record fields `offset_ms`, `at_search_edge`, `start_time`,
`end_time` and `diagnosis` existed are read as well: those are then computed here
(offset x 40 ms, chunk start + frame / 25, |offset| at the searched edge, no diagnosis).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

# Where the long job puts a chunk's files, relative to OUTPUT_DIR (syncnet/jobs/paths.py and
# syncnet/layout.py).  Links are made from these names, not from the summary's absolute
# paths, so that a moved output folder still links to its own files.
CHUNK_FILE = "chunks/{name}.mp4"
AUDIO_FILE = "audio/{name}.wav"
VIDEO_OUT = "syncnet_data/pyavi/{name}/video_out.avi"
OFFSETS_TXT = "syncnet_data/pywork/{name}/offsets.txt"

CONSOLE_LIMIT = 50  # chunks listed one by one at the end of a run; beyond it, the worst


def hms(seconds: float | None) -> str:
    """Seconds as hh:mm:ss (nearest second); '' for None."""
    if seconds is None:
        return ""
    s = int(math.floor(float(seconds) + 0.5))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def signed(n: int | None) -> str:
    return "" if n is None else f"{n:+d}"


def sign_words(offset: int) -> str:
    """The README's offset sign, in words."""
    if offset > 0:
        return "the sound leads the picture"
    if offset < 0:
        return "the sound lags behind the picture"
    return "sound and picture in sync"


@dataclass
class TrackRow:
    chunk_index: int
    chunk: str
    track: int
    start_time: float
    end_time: float
    start_frame: int
    end_frame: int
    n_frames: int
    offset: int
    offset_ms: int
    confidence: float
    min_dist: float
    reliable: bool
    unreliable_reason: str | None
    at_search_edge: bool
    best: bool


@dataclass
class ChunkRow:
    index: int
    name: str
    start: float
    end: float
    status: str
    error: str | None
    tracks: list[TrackRow]
    best: TrackRow | None
    filter_enabled: bool
    accepted: bool | None
    reasons: list[str]
    diagnosis_cause: str | None
    diagnosis_message: str | None
    links: dict[str, str] = field(default_factory=dict)  # label -> path relative to OUTPUT_DIR, existing files only

    @property
    def time_range(self) -> str:
        return f"{hms(self.start)}-{hms(self.end)}"

    @property
    def verdict(self) -> str:
        """accepted / rejected (why) / '' when no filter is on."""
        if not self.filter_enabled:
            return ""
        if self.accepted:
            return "accepted"
        return "rejected" + (f" ({'; '.join(self.reasons)})" if self.reasons else "")

    @property
    def usable(self) -> bool:
        """A reliable best track: an offset a person may believe."""
        return self.best is not None and self.best.reliable

    def badness(self) -> tuple:
        """Sort key, worst first: failed, then rejected by the filter, then without a usable
        face (no faces, only tracks too short, pending), then the lowest confidence."""
        return (self.status != "failed", self.accepted is not False, self.usable,
                self.best.confidence if self.best else -math.inf, self.index)


def frame_rate(summary: dict) -> int:
    return int(summary.get("parameters", {}).get("frame_rate", 25))


def vshift(summary: dict) -> int:
    return int(summary.get("parameters", {}).get("vshift", 15))


def ms_per_frame(summary: dict) -> float:
    return 1000.0 / frame_rate(summary)


def _track_row(chunk: dict, t: dict, fr: int, vs: int, best: dict | None) -> TrackRow:
    start_time = t.get("start_time")
    end_time = t.get("end_time")
    if start_time is None:
        start_time = chunk["start"] + t["start_frame"] / fr
    if end_time is None:
        end_time = chunk["start"] + (t["end_frame"] + 1) / fr  # end_frame is the track's last frame
    offset_ms = t.get("offset_ms")
    if offset_ms is None:
        offset_ms = int(round(t["offset"] * 1000 / fr))
    edge = t.get("at_search_edge")
    if edge is None:
        edge = abs(t["offset"]) >= vs
    is_best = best is not None and t["track"] == best["track"]
    return TrackRow(chunk["index"], chunk["name"], t["track"], float(start_time), float(end_time),
                    t["start_frame"], t["end_frame"], t["n_frames"], t["offset"], int(offset_ms),
                    float(t["confidence"]), float(t["min_dist"]), bool(t.get("reliable", True)),
                    t.get("unreliable_reason"), bool(edge), is_best)


def chunk_rows(summary: dict, out_dir: Path | None = None) -> list[ChunkRow]:
    """One row per chunk.  With `out_dir`, each row's links: the chunk's files there that exist."""
    fr, vs = frame_rate(summary), vshift(summary)
    rows = []
    for c in summary["chunks"]:
        best = c.get("best_track")
        tracks = [_track_row(c, t, fr, vs, best) for t in c.get("tracks", [])]
        best_row = next((t for t in tracks if t.best), None)
        if best is not None and best_row is None:  # a best track not among the tracks: keep it anyway
            best_row = _track_row(c, best, fr, vs, best)
        filt = c.get("filter") or {}
        diagnosis = c.get("diagnosis") or {}
        row = ChunkRow(c["index"], c["name"], float(c["start"]), float(c["end"]), c["status"], c.get("error"),
                       tracks, best_row, bool(filt.get("enabled")), filt.get("accepted"),
                       list(filt.get("reasons", [])), diagnosis.get("cause"), diagnosis.get("message"))
        if out_dir is not None:
            for label, pattern in (("chunk", CHUNK_FILE), ("audio", AUDIO_FILE), ("video_out", VIDEO_OUT),
                                   ("offsets", OFFSETS_TXT)):
                rel = pattern.format(name=c["name"])
                if (out_dir / rel).is_file():
                    row.links[label] = rel
        rows.append(row)
    return rows


def filter_on(summary: dict) -> bool:
    return any((c.get("filter") or {}).get("enabled") for c in summary["chunks"])


def headline(summary: dict, rows: list[ChunkRow]) -> str:
    """One sentence: the offset the chunks agree on (or how far they spread), and its sign."""
    measured = [r for r in rows if r.usable and (r.accepted is not False)]
    what = "accepted chunks" if filter_on(summary) else "chunks with a usable face"
    if not measured:
        return f"No offset measured: no {what}."
    offsets = sorted(r.best.offset for r in measured)
    mid = offsets[(len(offsets) - 1) // 2]  # the lower median: an offset some chunk really has
    ms = round(mid * ms_per_frame(summary))
    text = (f"Median best-track offset of {len(measured)} {what}: {mid:+d} frames ({ms:+d} ms), "
            f"{sign_words(mid)}.")
    if offsets[0] != offsets[-1]:
        text += f" They range from {offsets[0]:+d} to {offsets[-1]:+d} frames."
    elif len(offsets) > 1:
        text += " All of them agree."
    return text


# ---------------------------------------------------------------------- CSV

CHUNK_COLUMNS = ["index", "name", "start", "end", "start_hms", "end_hms", "status", "error", "n_tracks",
                 "best_track", "offset", "offset_ms", "confidence", "min_dist", "reliable", "at_search_edge",
                 "filter_enabled", "accepted", "reasons", "diagnosis_cause", "diagnosis_message"]
TRACK_COLUMNS = ["chunk_index", "chunk", "track", "best", "start_time", "end_time", "start_hms", "end_hms",
                 "start_frame", "end_frame", "n_frames", "offset", "offset_ms", "confidence", "min_dist",
                 "reliable", "unreliable_reason", "at_search_edge"]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _csv(columns: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(v) for v in r])
    return buf.getvalue().encode("utf-8")


def chunks_csv(rows: list[ChunkRow]) -> bytes:
    out = []
    for r in rows:
        b = r.best
        out.append([r.index, r.name, r.start, r.end, hms(r.start), hms(r.end), r.status, r.error, len(r.tracks),
                    b and b.track, b and b.offset, b and b.offset_ms, b and b.confidence, b and b.min_dist,
                    b and b.reliable, b and b.at_search_edge, r.filter_enabled,
                    r.accepted if r.filter_enabled else None, "; ".join(r.reasons),
                    r.diagnosis_cause, r.diagnosis_message])
    return _csv(CHUNK_COLUMNS, out)


def tracks_csv(rows: list[ChunkRow]) -> bytes:
    out = []
    for r in rows:
        for t in r.tracks:
            out.append([t.chunk_index, t.chunk, t.track, t.best, t.start_time, t.end_time, hms(t.start_time),
                        hms(t.end_time), t.start_frame, t.end_frame, t.n_frames, t.offset, t.offset_ms,
                        t.confidence, t.min_dist, t.reliable, t.unreliable_reason, t.at_search_edge])
    return _csv(TRACK_COLUMNS, out)


# ---------------------------------------------------------------------- console


def _note(r: ChunkRow) -> str:
    notes = []
    if r.best is not None and not r.best.reliable:
        notes.append("track too short to measure")
    if r.best is not None and r.best.at_search_edge:
        notes.append("at search edge")
    if r.diagnosis_message:
        notes.append(r.diagnosis_message)
    return "; ".join(notes)


def console_table(summary: dict, limit: int = CONSOLE_LIMIT) -> str:
    """Every chunk (time range, status, best offset in frames and ms, confidence, verdict)
    when there are at most `limit`, else the `limit` worst, in time order, saying which rule."""
    rows = chunk_rows(summary)
    shown = rows
    if len(rows) > limit:
        worst = sorted(rows, key=ChunkRow.badness)[:limit]
        shown = sorted(worst, key=lambda r: r.index)
        title = (f"The {limit} worst of {len(rows)} chunks (failed first, then rejected by the filter, then "
                 f"without a usable face, then the lowest confidence), in time order; every chunk is in "
                 f"chunks.csv and report.html:")
    else:
        title = f"Chunks ({len(rows)}):"
    filt = filter_on(summary)
    header = ["chunk", "time", "status", "offset", "ms", "confidence"] + (["verdict"] if filt else []) + ["note"]
    table = [header]
    for r in shown:
        b = r.best
        line = [r.name, r.time_range, r.status, signed(b and b.offset) or "-", signed(b and b.offset_ms) or "-",
                f"{b.confidence:.3f}" if b else "-"]
        if filt:
            line.append(r.verdict)
        line.append(_note(r))
        table.append(line)
    right = {3, 4, 5}  # numbers
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [title]
    for row in table:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    lines.append(headline(summary, rows))
    return "\n".join(lines)


def elapsed_line(summary: dict) -> str | None:
    total = (summary.get("timings") or {}).get("total")
    if total is None:
        return None
    return f"Elapsed:    {hms(total)} ({total:.1f} s, this run)"
