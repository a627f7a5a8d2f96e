"""The summaries' records, typed: a status, a chunk (long job), a file (batch job), a filter
decision; each serialised to exactly the JSON the schemas describe (same keys, same order).

Tracks are `syncnet.results.TrackRecord`s.  `track_records` turns one video's analysis
into them for both jobs, with the console lines about tracks too short to measure and a
best track at the edge of the offset search; `no_track_line` is the one line about a
video without a track (its `syncnet.diagnosis.Diagnosis`).  `upgrade_chunk_v2` /
`upgrade_file_v2` bring a schema-2 summary's records to schema 3 on resume.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from ..diagnosis import Diagnosis
from ..results import TrackRecord, best_track, min_windows, upgrade_track_v2

log = logging.getLogger(__name__)


class Status(str, Enum):
    """A chunk's or a file's state, as written in the summaries."""

    PENDING = "pending"
    SUCCESS = "success"
    NO_FACES = "no_faces"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        """A result that a rerun with the same parameters reuses."""
        return self in (Status.SUCCESS, Status.NO_FACES)


def count_statuses(records: list, statuses: tuple[Status, ...]) -> dict:
    """{status: how many records have it}, in the order of `statuses` (the totals' key order)."""
    got = [r.status for r in records]
    return {s.value: got.count(s) for s in statuses}


def track_records(name: str, analysis, vshift: int, chunk_start: float | None = None,
                  frame_rate: int = 25) -> list[TrackRecord]:
    """The records of one video's tracks; with `chunk_start` (the long job's chunk, its snapped
    start in source seconds) their first and last frame and their source times too.

    One warning line when some tracks are too short to measure, and one when the best
    track is reliable and its offset lies on the edge of the search (an unreliable best
    track's offset is the padding's, not a measurement: its own warning says so)."""
    tracks = []
    for i, t in enumerate(analysis.tracks):
        frames = (int(t.track["frame"][0]), int(t.track["frame"][-1])) if chunk_start is not None else None
        tracks.append(TrackRecord.of(i, t.sync, frames, start=chunk_start, frame_rate=frame_rate))
    short = sum(not r.reliable for r in tracks)
    if short:  # once per video, not once per track
        log.warning("%s: %d of %d face tracks too short to measure (fewer than %d SyncNet windows); "
                    "marked unreliable", name, short, len(tracks), min_windows(vshift))
    best = best_track(tracks)
    if best is not None and best.reliable and best.at_search_edge:
        log.warning("%s: the best track's offset (%+d frames) is at the edge of the search (+-%d frames); the "
                    "true offset may lie beyond it, a larger vshift widens the search", name, best.offset, vshift)
    return tracks


def no_track_line(name: str, diagnosis: Diagnosis | None) -> str:
    """The console's one line about a video (chunk, file) without a face track."""
    return f"{name}: no face track: {diagnosis.message}" if diagnosis is not None else f"{name}: no face track"


def status_of(tracks: list) -> Status:
    return Status.SUCCESS if tracks else Status.NO_FACES


@dataclass
class FilterDecision:
    enabled: bool
    accepted: bool | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "accepted": self.accepted, "reasons": list(self.reasons)}


@dataclass
class ChunkResult:
    """What analysing one chunk gives (`LongVideoJob.analyse_chunk`): the snapped cut and the
    tracks; a failed chunk has its error line and nothing else."""

    status: Status
    start: float | None = None
    end: float | None = None
    tracks: list[TrackRecord] = field(default_factory=list)
    error: str | None = None
    diagnosis: Diagnosis | None = None  # why there is no track (no tracks, not failed)

    @classmethod
    def failed(cls, error: str) -> ChunkResult:
        return cls(status=Status.FAILED, error=error)


@dataclass
class ChunkRecord:
    """One chunk of the long job's summary."""

    index: int
    name: str
    start: float
    end: float
    frame_start: int
    frame_end: int
    files: dict
    status: Status = Status.PENDING
    error: str | None = None
    diagnosis: Diagnosis | None = None
    tracks: list[TrackRecord] = field(default_factory=list)
    filter: FilterDecision = field(default_factory=lambda: FilterDecision(False))

    @property
    def best_track(self) -> TrackRecord | None:
        return best_track(self.tracks)

    def record(self, result: ChunkResult) -> None:
        """Take a chunk's result: a success replaces the planned cut by the snapped one."""
        if result.start is not None:
            self.start, self.end = result.start, result.end
        self.status, self.error, self.tracks = result.status, result.error, list(result.tracks)
        self.diagnosis = result.diagnosis

    @classmethod
    def from_dict(cls, d: dict) -> ChunkRecord:
        f = d.get("filter") or {}
        return cls(index=d["index"], name=d["name"], start=d["start"], end=d["end"], frame_start=d["frame_start"],
                   frame_end=d["frame_end"], files=dict(d["files"]), status=Status(d["status"]),
                   error=d.get("error"), diagnosis=_diagnosis(d["diagnosis"]),
                   tracks=[TrackRecord.from_dict(t) for t in d.get("tracks", [])],
                   filter=FilterDecision(f.get("enabled", False), f.get("accepted"), list(f.get("reasons", []))))

    def to_dict(self) -> dict:
        best = self.best_track
        return {"index": self.index, "name": self.name, "start": self.start, "end": self.end,
                "frame_start": self.frame_start, "frame_end": self.frame_end, "files": dict(self.files),
                "status": self.status.value, "error": self.error, "diagnosis": _diagnosis_dict(self.diagnosis),
                "tracks": [t.to_dict() for t in self.tracks],
                "best_track": best.to_dict() if best is not None else None, "filter": self.filter.to_dict()}


@dataclass
class FileRecord:
    """One video of the batch job's summary."""

    file: str
    path: str
    status: Status = Status.FAILED
    error: str | None = None
    diagnosis: Diagnosis | None = None
    tracks: list[TrackRecord] = field(default_factory=list)
    seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> FileRecord:
        return cls(file=d["file"], path=d["path"], status=Status(d["status"]), error=d.get("error"),
                   diagnosis=_diagnosis(d["diagnosis"]), tracks=[TrackRecord.from_dict(t) for t in d.get("tracks", [])],
                   seconds=d.get("seconds"))

    def to_dict(self) -> dict:
        return {"file": self.file, "path": self.path, "status": self.status.value, "error": self.error,
                "diagnosis": _diagnosis_dict(self.diagnosis), "tracks": [t.to_dict() for t in self.tracks],
                "seconds": self.seconds}


def _diagnosis(d: dict | None) -> Diagnosis | None:
    return Diagnosis.from_dict(d) if d is not None else None


def _diagnosis_dict(diagnosis: Diagnosis | None) -> dict | None:
    return diagnosis.to_dict() if diagnosis is not None else None


# Schema 2 -> 3 (on resume): what 3 adds is derived from what 2 has; a record without a
# track gets `diagnosis: null`, which claims nothing (its cause was not measured then).
def upgrade_chunk_v2(d: dict, vshift: int, frame_rate: int) -> dict:
    """A chunk record of a schema-2 processing_summary.json in the form of schema 3."""
    tracks = [upgrade_track_v2(t, vshift, d["start"], frame_rate) for t in d.get("tracks", [])]
    best = d.get("best_track")
    return {**d, "diagnosis": None, "tracks": tracks,
            "best_track": upgrade_track_v2(best, vshift, d["start"], frame_rate) if best is not None else None}


def upgrade_file_v2(d: dict, vshift: int) -> dict:
    """A file record of a schema-2 batch_processing_summary.json in the form of schema 3."""
    return {**d, "diagnosis": None, "tracks": [upgrade_track_v2(t, vshift) for t in d.get("tracks", [])]}
