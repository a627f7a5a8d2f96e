"""SyncNet results as files and records: offsets.txt / offsets.json / activesd.pckl, track
records and their reliability, the best track, error lines.

Every file is written atomically (`syncnet.files`)."""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

from .files import write_bytes_atomic, write_json_atomic


def error_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as the one line a summary's `error` and the console show: FFmpeg's
    stderr tail and other multi-line messages joined with " | "."""
    text = str(exc) or type(exc).__name__
    if with_type:
        text = f"{type(exc).__name__}: {text}"
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _field(track, name: str, default=None):
    return track.get(name, default) if isinstance(track, dict) else getattr(track, name, default)


def best_track(tracks: list):
    """The highest-confidence reliable track; the highest-confidence one when none is
    reliable (so a chunk of short tracks still shows its numbers, marked unreliable).
    Of `TrackRecord`s or of their dicts."""
    if not tracks:
        return None
    pool = [t for t in tracks if _field(t, "reliable", True)] or tracks
    return max(pool, key=lambda t: _field(t, "confidence"))


def offsets_lines(results: list) -> str:
    """offsets.txt of the reference: one `TRACK i: OFFSET o, CONF c` line per track."""
    return "".join("TRACK %d: OFFSET %d, CONF %.3f\n" % (i, int(r.offset), float(r.confidence))
                   for i, r in enumerate(results))


def min_windows(vshift: int) -> int:
    """SyncNet windows a track needs for a meaningful offset: 2 * vshift + 1 (31 by default).

    Shift k compares the track's windows with audio windows k places away, and the
    reference pads the audio with zeros beyond the track's ends; with n windows, |k|
    of them meet padding.  From n = 2 * vshift + 1 on, every searched shift compares
    mostly real sound, so the mean distances (their argmin: the offset; their median:
    the confidence's baseline) measure the track.  Below it the edge shifts are mostly
    padding, and with fewer than vshift / 2 + 1 windows most of the 2 * vshift + 1
    shifts see nothing but padding: the median is the padding's distance, hence the
    offset +vshift and confidence 0 that such tracks report.
    """
    return 2 * int(vshift) + 1


def reliability(result) -> tuple[bool, str | None]:
    """(reliable, one-line reason when not) of a SyncNet result (see `min_windows`)."""
    n = int(result.dists.shape[0])
    vshift = int(getattr(result, "vshift", (result.dists.shape[1] - 1) // 2))
    need = min_windows(vshift)
    if n >= need:
        return True, None
    return False, (f"too short to measure: {n} SyncNet windows ({int(result.n_frames)} frames), at least {need} "
                   f"needed to search offsets of +-{vshift} frames")


# SyncNet works at 25 fps: one frame of offset is 40 ms.
MS_PER_FRAME = 40


def at_search_edge(offset: int, vshift: int) -> bool:
    """Whether an offset lies on the edge of the search (|offset| == vshift): the true offset
    may then lie beyond it, and a larger vshift would find it."""
    return abs(int(offset)) == int(vshift)


@dataclass
class TrackRecord:
    """One track's numbers as the summaries record them (offsets.json adds framewise_conf
    and the crop file: `track_record`).  `start_frame` / `end_frame` (counted from the
    chunk's first frame) and `start_time` / `end_time` (source seconds): the long job's only.

    The numbers are the reference's, whatever the track's length; `reliable` says
    whether the track was long enough for them to mean anything (`min_windows`).
    `offset_ms` is `offset` in milliseconds (same sign); `at_search_edge`: |offset| is
    the largest shift searched (vshift).
    """

    track: int
    offset: int
    confidence: float
    min_dist: float
    n_frames: int
    reliable: bool = True
    unreliable_reason: str | None = None
    at_search_edge: bool = False
    start_frame: int | None = None
    end_frame: int | None = None
    start_time: float | None = None
    end_time: float | None = None

    @property
    def offset_ms(self) -> int:
        return int(self.offset) * MS_PER_FRAME

    @classmethod
    def of(cls, index: int, result, frames: tuple[int, int] | None = None, start: float | None = None,
           frame_rate: int = 25) -> TrackRecord:
        """The record of SyncNet `result` for track `index`; `frames`: its first and last frame;
        `start`: the source time of frame 0 (seconds), to give the track's source times too."""
        reliable, reason = reliability(result)
        vshift = int(getattr(result, "vshift", (result.dists.shape[1] - 1) // 2))
        first, last = frames if frames is not None else (None, None)
        rec = cls(track=index, offset=int(result.offset), confidence=round(float(result.confidence), 6),
                  min_dist=round(float(result.min_dist), 6), n_frames=int(result.n_frames),
                  reliable=reliable, unreliable_reason=reason, at_search_edge=at_search_edge(result.offset, vshift),
                  start_frame=first, end_frame=last)
        if frames is not None and start is not None:
            rec.set_times(start, frame_rate)
        return rec

    def set_times(self, start: float, frame_rate: int = 25) -> None:
        """Source seconds of the track: its first frame's start, and its last frame's end
        ((end_frame + 1) / frame_rate after `start`, the time of frame 0)."""
        self.start_time = round(start + self.start_frame / frame_rate, 6)
        self.end_time = round(start + (self.end_frame + 1) / frame_rate, 6)

    @classmethod
    def from_dict(cls, d: dict) -> TrackRecord:
        """A record as `to_dict` wrote it (schema 3: `offset_ms` is derived again from `offset`)."""
        return cls(track=d["track"], offset=d["offset"], confidence=d["confidence"], min_dist=d["min_dist"],
                   n_frames=d["n_frames"], reliable=d["reliable"], unreliable_reason=d["unreliable_reason"],
                   at_search_edge=d["at_search_edge"], start_frame=d.get("start_frame"),
                   end_frame=d.get("end_frame"), start_time=d.get("start_time"), end_time=d.get("end_time"))

    def to_dict(self) -> dict:
        d = {"track": self.track, "offset": self.offset, "offset_ms": self.offset_ms,
             "at_search_edge": self.at_search_edge, "confidence": self.confidence, "min_dist": self.min_dist,
             "n_frames": self.n_frames, "reliable": self.reliable, "unreliable_reason": self.unreliable_reason}
        if self.start_frame is not None:
            d.update(start_frame=self.start_frame, end_frame=self.end_frame)
        if self.start_time is not None:
            d.update(start_time=self.start_time, end_time=self.end_time)
        return d


def upgrade_track_v2(d: dict, vshift: int, start: float | None = None, frame_rate: int = 25) -> dict:
    """A track record of a schema-2 summary in the form of schema 3: `offset_ms` and
    `at_search_edge` from its offset and the run's vshift; with `start` (a long job's
    chunk start), `start_time` / `end_time` from its frames."""
    rec = TrackRecord.from_dict({**d, "at_search_edge": at_search_edge(d["offset"], vshift),
                                 "reliable": d.get("reliable", True),
                                 "unreliable_reason": d.get("unreliable_reason")})
    if start is not None and rec.start_frame is not None:
        rec.set_times(start, frame_rate)
    return rec.to_dict()


def track_record(index: int, result, file: str | None = None) -> dict:
    """One track's entry of offsets.json: its `TrackRecord`, its per-frame confidence, its file."""
    rec = TrackRecord.of(index, result).to_dict()
    rec["framewise_conf"] = [round(float(v), 4) for v in result.framewise_conf]
    if file is not None:
        rec["file"] = file
    return rec


def write_sync_results(work_dir: str | Path, results: list, files: list[str], vshift: int) -> None:
    """offsets.txt, offsets.json and activesd.pckl (the per-track dists the visualisation reads)."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(work / "activesd.pckl", pickle.dumps([r.dists for r in results]))
    write_json_atomic(work / "offsets.json", {
        "vshift": vshift,
        "tracks": [track_record(i, r, f) for i, (r, f) in enumerate(zip(results, files))],
    })
    write_bytes_atomic(work / "offsets.txt", offsets_lines(results).encode())
