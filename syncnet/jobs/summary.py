"""The long job's summary (processing_summary.json): its chunk records and totals, the
filter's decisions and folders, what an earlier run left to reuse, and its writing.

Chunk workers and the detection loop both record and write: every change is made
under one lock, and the file is rewritten atomically after each."""
from __future__ import annotations

import logging
import os
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..chunking import Chunk
from ..drift import describe
from ..files import write_json_atomic
from ..media import MediaInfo
from ..timing import StageTimes
from . import export
from .paths import SUMMARY, Paths, frame_range
from .previous import previous_summary
from .records import ChunkRecord, ChunkResult, FilterDecision, Status, count_statuses, upgrade_chunk_v2

if TYPE_CHECKING:
    from .longvideo import LongVideoOptions

log = logging.getLogger(__name__)

# 2: tracks carry `reliable` / `unreliable_reason`; `detector_frames_this_run` at the top level.
# 3: chunks carry `diagnosis` (why a chunk has no track); tracks carry `offset_ms`,
#    `at_search_edge`, `start_time` / `end_time`.  A schema-2 summary is upgraded on resume.
# 4: `drift` (the offset over time) and `exports` (re-synced chunks and video).  A schema-3
#    summary is upgraded on resume (drift is recomputed from the chunks; no exports yet).
SCHEMA_VERSION = 4


def upgrade_v2(old: dict) -> dict:
    """A schema-2 processing_summary.json as schema 3 (what 3 adds derives from what 2 has).
    A chunk record that cannot be upgraded is left as it was: it fails to load and is redone."""
    vshift, rate = old["parameters"]["vshift"], old["parameters"]["frame_rate"]
    chunks = []
    for d in old.get("chunks", []):
        try:
            chunks.append(upgrade_chunk_v2(d, vshift, rate))
        except (KeyError, TypeError, ValueError, AttributeError):
            chunks.append(d)
    log.info("upgraded the schema-2 summary's chunks to schema %d", SCHEMA_VERSION)
    return {**old, "schema_version": SCHEMA_VERSION, "chunks": chunks}


def upgrade_v3(old: dict) -> dict:
    """A schema-3 processing_summary.json as schema 4: its chunks are kept as they are."""
    return {**old, "schema_version": SCHEMA_VERSION, "exports": {"synced_chunks": None, "synced_video": None}}


def filter_decision(record: ChunkRecord, opts: LongVideoOptions) -> FilterDecision:
    """Accept a chunk when its best track passes --min_confidence and --max_abs_offset."""
    if not opts.filtering:
        return FilterDecision(False)
    reasons = []
    best = record.best_track
    if record.status != Status.SUCCESS or best is None:
        reasons.append("no face track" if record.status == Status.NO_FACES else f"status {record.status.value}")
    else:
        if not best.reliable:
            reasons.append(f"best track unreliable ({best.unreliable_reason})")
        if opts.min_confidence is not None and best.confidence < opts.min_confidence:
            reasons.append(f"confidence {best.confidence:.3f} < {opts.min_confidence:g}")
        if opts.max_abs_offset is not None and abs(best.offset) > opts.max_abs_offset:
            reasons.append(f"|offset| {abs(best.offset)} > {opts.max_abs_offset}")
    return FilterDecision(True, not reasons, reasons)


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class LongSummary:
    """processing_summary.json of one source's run."""

    def __init__(self, paths: Paths, opts: LongVideoOptions, source: Path, info: MediaInfo, chunks: list[Chunk]):
        self.paths, self.opts, self.source = paths, opts, source
        fr = opts.faces.frame_rate
        self.chunks = [ChunkRecord(c.index, c.name, c.start, c.end, *frame_range(c, fr),
                                   files=paths.chunk_files(c, opts.visualise), filter=FilterDecision(opts.filtering))
                       for c in chunks]
        w, h = info.display_size
        self.input = {"path": str(source), "duration": info.duration, "fps": info.fps, "width": w, "height": h,
                      "variable_frame_rate": info.variable_frame_rate}
        self.parameters = opts.result_parameters()
        self.complete = False
        self.source_frames = int(round(info.duration * fr))
        self.detector_frames = 0
        self.exports: dict = {"synced_chunks": None, "synced_video": None}
        self._previous_synced: dict[int, dict] = {}  # an earlier run's exports of the chunks kept
        self._previous_video: dict | None = None
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- an earlier run
    def reuse_previous(self, force: bool) -> set[int] | None:
        """Take over the finished chunks of an earlier run with these parameters; their indices.
        None when nothing of it can be reused (its outputs are then to be cleared)."""
        old = previous_summary(self.paths.summary, self.parameters, SCHEMA_VERSION, force, "chunk",
                               same_input=self._same_input,
                               upgrades={2: lambda o: upgrade_v3(upgrade_v2(o)), 3: upgrade_v3})
        if old is None:
            return None
        self.detector_frames = old.get("detector_frames", 0)
        done = set()
        for d in old.get("chunks", []):
            try:
                rec = ChunkRecord.from_dict(d)
            except (KeyError, TypeError, ValueError):
                continue  # not a record of this schema: the chunk is redone
            if self._reusable(rec) and rec.index < len(self.chunks):
                rec.filter = filter_decision(rec, self.opts)
                self.chunks[rec.index] = rec
                done.add(rec.index)
        exports = old.get("exports") or {}
        self._previous_synced = {e["index"]: e for e in exports.get("synced_chunks") or [] if e.get("index") in done}
        self._previous_video = exports.get("synced_video")
        if exports.get("synced_chunks") is not None:  # still true of the chunks kept, should this run stop early
            self.exports["synced_chunks"] = sorted(self._previous_synced.values(), key=lambda e: e["index"])
        return done

    def _same_input(self, old: dict) -> bool:
        return old.get("input", {}).get("duration") == self.input["duration"] and \
            Path(old.get("input", {}).get("path", "")).name == self.source.name

    def _reusable(self, rec: ChunkRecord) -> bool:
        if not rec.status.finished:
            return False
        needed = [rec.files.get("chunk"), rec.files.get("audio"), rec.files.get("offsets")]
        if self.opts.visualise and rec.status == Status.SUCCESS:
            needed.append(rec.files.get("video_out"))
        return all(f and Path(f).exists() for f in needed)

    # ---------------------------------------------------------------- this run
    def record(self, index: int, result: ChunkResult) -> None:
        with self._lock:
            rec = self.chunks[index]
            rec.record(result)
            rec.filter = filter_decision(rec, self.opts)

    def detected(self, n_frames: int) -> None:
        with self._lock:
            self.detector_frames = max(self.detector_frames, n_frames)

    def finish(self) -> None:
        with self._lock:
            self.complete = all(r.status != Status.PENDING for r in self.chunks)

    def totals(self) -> dict:
        accepted = [c.filter.accepted for c in self.chunks]
        return {"chunks": len(self.chunks),
                **count_statuses(self.chunks, (Status.SUCCESS, Status.NO_FACES, Status.FAILED, Status.PENDING)),
                "accepted": accepted.count(True), "rejected": accepted.count(False)}

    def to_dict(self, times: StageTimes, detector_frames_this_run: int) -> dict:
        with self._lock:
            chunks = [c.to_dict() for c in self.chunks]
            return {
                "schema_version": SCHEMA_VERSION,
                "software": {"name": "syncnet-longvideo", "version": __version__},
                "input": dict(self.input),
                "parameters": dict(self.parameters),
                "filter_parameters": self.opts.filter_parameters(),
                "complete": self.complete,
                "source_frames": self.source_frames,
                "detector_frames": self.detector_frames,
                "detector_frames_this_run": detector_frames_this_run,
                "chunks": chunks,
                "totals": self.totals(),
                "drift": export.drift_dict(chunks, self.opts.filtering),
                "exports": {k: v for k, v in self.exports.items()},
                "timings": {**times.rounded(), "detector_frames_this_run": detector_frames_this_run},
            }

    def export(self, source: Path, synced_chunks: bool, synced_video: bool) -> None:
        """The re-synced exports asked for (syncnet.jobs.export), recorded in `exports`."""
        with self._lock:
            chunks = [c.to_dict() for c in self.chunks]
        if synced_chunks:
            self.exports["synced_chunks"] = export.export_synced_chunks(chunks, self.paths, self._previous_synced)
        else:
            export.remove_synced_chunks(self.paths)
            self.exports["synced_chunks"] = None
        self.exports["synced_video"] = None
        if synced_video:
            fit = export.run_drift(chunks, self.opts.filtering)
            self.exports["synced_video"] = export.export_synced_video(source, self.paths, fit, self._previous_video)

    def write(self, times: StageTimes, detector_frames_this_run: int) -> dict:
        """Write the summary (atomically) and return it."""
        with self._lock:
            summary = self.to_dict(times, detector_frames_this_run)
            write_json_atomic(self.paths.summary, summary)
            return summary

    def apply_filter(self) -> None:
        """Rebuild filtered_chunks/ and filtered_audio/ from the chunks' decisions; without
        a filter, remove them (an earlier run's would no longer match the summary)."""
        folders = (self.paths.filtered_chunks, self.paths.filtered_audio)
        for d in folders:
            shutil.rmtree(d, ignore_errors=True)
        if not self.opts.filtering:
            return
        for d in folders:
            d.mkdir(parents=True)
        with self._lock:
            for rec in self.chunks:
                rec.filter = filter_decision(rec, self.opts)
                if rec.filter.accepted:
                    _link_or_copy(Path(rec.files["chunk"]), self.paths.filtered_chunks / f"{rec.name}.mp4")
                    _link_or_copy(Path(rec.files["audio"]), self.paths.filtered_audio / f"{rec.name}.wav")


def report(summary: dict, out_dir: Path) -> str:
    """The one-screen report printed at the end of a run."""
    t = summary["totals"]
    bests = [c["best_track"] for c in summary["chunks"] if c.get("best_track")]
    confs = [b["confidence"] for b in bests if b.get("reliable", True)]
    lines = [
        f"Input:      {summary['input']['path']} ({summary['input']['duration']:.1f} s)",
        f"Chunks:     {t['chunks']} ({t['success']} with faces, {t['no_faces']} without, {t['failed']} failed)",
        f"Detection:  {summary['detector_frames']} frames for {summary['source_frames']} source frames "
        f"({summary.get('detector_frames_this_run', 0)} in this run)",
    ]
    if confs:
        lines.append(f"Confidence: mean best-track confidence {np.mean(confs):.3f}")
    if len(confs) < len(bests):
        lines.append(f"Unreliable: {len(bests) - len(confs)} chunks have only face tracks too short to measure")
    causes = Counter(c["diagnosis"]["cause"] for c in summary["chunks"] if c.get("diagnosis"))
    if causes:
        lines.append("No track:   " + ", ".join(f"{n} {cause.replace('_', ' ')}" for cause, n in causes.most_common()))
    edge = sum(1 for b in bests if b.get("at_search_edge") and b.get("reliable", True))
    if edge:
        lines.append(f"Edge:       {edge} chunks' best track at the edge of the offset search (+-"
                     f"{summary['parameters']['vshift']} frames); a larger vshift widens it")
    if summary["chunks"] and summary["chunks"][0]["filter"]["enabled"]:
        lines.append(f"Filter:     {t['accepted']} accepted, {t['rejected']} rejected "
                     f"-> {out_dir / 'filtered_chunks'}")
    drift = summary.get("drift")
    if drift:
        lines.append(f"Drift:      {describe(drift)}")
    exports = summary.get("exports") or {}
    if exports.get("synced_chunks") is not None:
        lines.append(f"Re-synced:  {len(exports['synced_chunks'])} accepted chunks -> {out_dir / 'synced_chunks'}")
    if (exports.get("synced_video") or {}).get("path"):
        v = exports["synced_video"]
        lines.append(f"Re-synced:  the input, sound shifted by {v['shift_ms']:+d} ms -> {v['path']}")
    failed = [c for c in summary["chunks"] if c["status"] == "failed"]
    for c in failed[:5]:
        lines.append(f"  failed {c['name']}: {c['error']}")
    lines += [f"Outputs:    {out_dir / 'chunks'}, {out_dir / 'audio'}, {out_dir / 'syncnet_data'}",
              f"Summary:    {out_dir / SUMMARY}"]
    return "\n".join(lines)
