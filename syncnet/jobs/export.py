"""Acting on the long job's offsets: the drift of the run, and the re-synced exports.

- `run_drift`: the confident chunks' best-track offsets against source time, through
  `syncnet.drift.fit_drift` (the summary's `drift`).
- `export_synced_chunks`: each chunk the filter accepts, its sound shifted by its best
  track's offset (`synced_chunks/`, `synced_audio/`); offset 0 is a hard link.
- `export_synced_video`: the whole input shifted by the fitted offset, only when the
  verdict is `constant`.

Both exports keep what an earlier run made when it still holds (same chunk, same shift,
files present): a resumed run does not redo them.  Every file is written under a
temporary name and renamed.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

from .. import media
from ..drift import DriftFit, fit_drift
from ..files import part_path
from ..media.resync import FRAME_MS
from .paths import Paths

log = logging.getLogger(__name__)

# Without a filter, the points of the drift fit are the chunks whose reliable best track
# is at least this confident (the level dataset pipelines keep; the filter's own
# decisions are used when a filter is given).
DRIFT_MIN_CONFIDENCE = 3.0


def synced_dirs(paths: Paths) -> tuple[Path, Path]:
    return paths.out / "synced_chunks", paths.out / "synced_audio"


def synced_video_path(paths: Paths, source: Path) -> Path:
    return paths.out / f"synced_{source.name}"


def drift_points(chunks: list[dict], filtering: bool) -> tuple[list[float], list[float], list[float]]:
    """(source times s, offsets ms, confidences) of the chunks whose offset counts: a reliable
    best track not at the edge of the search, accepted by the filter (or, without one, at
    least DRIFT_MIN_CONFIDENCE confident).  A track's time is its middle."""
    t, y, w = [], [], []
    for c in chunks:
        b = c.get("best_track")
        if not b or not b.get("reliable", True) or b.get("at_search_edge") or not b["confidence"] > 0 \
                or not math.isfinite(b["confidence"]):  # a weight must be positive and finite
            continue
        keep = c["filter"]["accepted"] if filtering else b["confidence"] >= DRIFT_MIN_CONFIDENCE
        if not keep or b.get("start_time") is None:
            continue
        t.append((b["start_time"] + b["end_time"]) / 2)
        y.append(b["offset"] * FRAME_MS)
        w.append(b["confidence"])
    return t, y, w


def run_drift(chunks: list[dict], filtering: bool) -> DriftFit:
    return fit_drift(*drift_points(chunks, filtering))


def drift_dict(chunks: list[dict], filtering: bool) -> dict:
    """The summary's `drift`: the fit, its thresholds, and which chunks were its points."""
    return {**run_drift(chunks, filtering).to_dict(),
            "min_confidence": None if filtering else DRIFT_MIN_CONFIDENCE, "uses_filter": filtering}


def _link_atomic(src: Path, dst: Path) -> None:
    """`dst` becomes a hard link to `src` (a copy across file systems), in one rename."""
    tmp = part_path(dst)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _still_there(entry: dict | None, shift_ms: int) -> bool:
    return bool(entry) and entry.get("shift_ms") == shift_ms and Path(entry["chunk"]).exists() \
        and Path(entry["audio"]).exists()


def export_synced_chunks(chunks: list[dict], paths: Paths, previous: dict[int, dict]) -> list[dict]:
    """Re-synced copies of the accepted chunks; their records.  `previous`: an earlier run's
    records of chunks it did not redo (index -> record), kept when their shift still holds.
    Files of chunks no longer accepted are removed, so the folders match the summary."""
    vdir, adir = synced_dirs(paths)
    vdir.mkdir(exist_ok=True)
    adir.mkdir(exist_ok=True)
    records = []
    for c in chunks:
        if not c["filter"]["accepted"]:
            continue
        offset = int(c["best_track"]["offset"])
        shift = int(round(offset * FRAME_MS))
        chunk, wav = vdir / f"{c['name']}.mp4", adir / f"{c['name']}.wav"
        entry = {"index": c["index"], "name": c["name"], "offset": offset, "shift_ms": shift, "linked": shift == 0,
                 "chunk": str(chunk), "audio": str(wav)}
        if _still_there(previous.get(c["index"]), shift):
            records.append(entry)
            continue
        if shift == 0:
            _link_atomic(Path(c["files"]["chunk"]), chunk)
            _link_atomic(Path(c["files"]["audio"]), wav)
        else:
            media.resync(c["files"]["chunk"], chunk, shift)
            media.extract_audio(chunk, wav, 16000, 1)
        log.info("%s: sound shifted by %+d ms -> %s", c["name"], shift, chunk)
        records.append(entry)
    keep = {Path(r["chunk"]).name for r in records} | {Path(r["audio"]).name for r in records}
    for d in (vdir, adir):
        for p in d.iterdir():
            if p.name not in keep:
                p.unlink()
    return records


def export_synced_video(source: Path, paths: Paths, drift: DriftFit, previous: dict | None) -> dict:
    """The whole input shifted by the fitted offset (rounded to whole ms), when the verdict is
    `constant`; else nothing is written and `refused` says why."""
    if drift.verdict != "constant":
        why = ("too few confident chunks to fit the offset over time" if drift.verdict == "unknown" else
               f"the offset is {drift.verdict} over time (slope {drift.slope_ms_per_hour:+.1f} ms/h, spread "
               f"{drift.spread_ms:.1f} ms)")
        return {"path": None, "shift_ms": None,
                "refused": f"--export_synced_video needs a constant offset: {why}; "
                           "--export_synced writes each accepted chunk re-synced by its own offset"}
    shift = int(round(drift.offset_ms))
    dst = synced_video_path(paths, source)
    if not (previous and previous.get("shift_ms") == shift and previous.get("path") == str(dst) and dst.exists()):
        media.resync(source, dst, shift)
        log.info("the input re-synced by %+d ms -> %s", shift, dst)
    return {"path": str(dst), "shift_ms": shift, "refused": None}


def remove_synced_chunks(paths: Paths) -> None:
    """Without --export_synced the folders go (an earlier run's would not match the summary)."""
    for d in synced_dirs(paths):
        shutil.rmtree(d, ignore_errors=True)
