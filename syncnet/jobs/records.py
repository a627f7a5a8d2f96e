"""The summaries' records, typed: a status, a chunk (long job), a file (batch job), a filter
decision; each serialised to exactly the JSON the schemas describe (same keys, same order).

Tracks are `syncnet.results.TrackRecord`s.  `track_records` turns one video's analysis
into them for both jobs, with the one console line about tracks too short to measure.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from ..results import TrackRecord, best_track, min_windows

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


def track_records(name: str, analysis, vshift: int, with_frames: bool) -> list[TrackRecord]:
    """The records of one video's tracks (`with_frames`: their first and last frame too),
    and one warning line when some are too short to measure."""
    tracks = []
    for i, t in enumerate(analysis.tracks):
        frames = (int(t.track["frame"][0]), int(t.track["frame"][-1])) if with_frames else None
        tracks.append(TrackRecord.of(i, t.sync, frames))
    short = sum(not r.reliable for r in tracks)
    if short:  # once per video, not once per track
        log.warning("%s: %d of %d face tracks too short to measure (fewer than %d SyncNet windows); "
                    "marked unreliable", name, short, len(tracks), min_windows(vshift))
    return tracks


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

    @classmethod
    def from_dict(cls, d: dict) -> ChunkRecord:
        f = d.get("filter") or {}
        return cls(index=d["index"], name=d["name"], start=d["start"], end=d["end"], frame_start=d["frame_start"],
                   frame_end=d["frame_end"], files=dict(d["files"]), status=Status(d["status"]),
                   error=d.get("error"), tracks=[TrackRecord.from_dict(t) for t in d.get("tracks", [])],
                   filter=FilterDecision(f.get("enabled", False), f.get("accepted"), list(f.get("reasons", []))))

    def to_dict(self) -> dict:
        best = self.best_track
        return {"index": self.index, "name": self.name, "start": self.start, "end": self.end,
                "frame_start": self.frame_start, "frame_end": self.frame_end, "files": dict(self.files),
                "status": self.status.value, "error": self.error, "tracks": [t.to_dict() for t in self.tracks],
                "best_track": best.to_dict() if best is not None else None, "filter": self.filter.to_dict()}


@dataclass
class FileRecord:
    """One video of the batch job's summary."""

    file: str
    path: str
    status: Status = Status.FAILED
    error: str | None = None
    tracks: list[TrackRecord] = field(default_factory=list)
    seconds: float | None = None

    @classmethod
    def from_dict(cls, d: dict) -> FileRecord:
        return cls(file=d["file"], path=d["path"], status=Status(d["status"]), error=d.get("error"),
                   tracks=[TrackRecord.from_dict(t) for t in d.get("tracks", [])], seconds=d.get("seconds"))

    def to_dict(self) -> dict:
        return {"file": self.file, "path": self.path, "status": self.status.value, "error": self.error,
                "tracks": [t.to_dict() for t in self.tracks], "seconds": self.seconds}
