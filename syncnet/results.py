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


@dataclass
class TrackRecord:
    """One track's numbers as the summaries record them (offsets.json adds framewise_conf
    and the crop file: `track_record`).  `start_frame` / `end_frame`: the long job's only.

    The numbers are the reference's, whatever the track's length; `reliable` says
    whether the track was long enough for them to mean anything (`min_windows`).
    """

    track: int
    offset: int
    confidence: float
    min_dist: float
    n_frames: int
    reliable: bool = True
    unreliable_reason: str | None = None
    start_frame: int | None = None
    end_frame: int | None = None

    @classmethod
    def of(cls, index: int, result, frames: tuple[int, int] | None = None) -> TrackRecord:
        """The record of SyncNet `result` for track `index`; `frames`: its first and last frame."""
        reliable, reason = reliability(result)
        start, end = frames if frames is not None else (None, None)
        return cls(track=index, offset=int(result.offset), confidence=round(float(result.confidence), 6),
                   min_dist=round(float(result.min_dist), 6), n_frames=int(result.n_frames),
                   reliable=reliable, unreliable_reason=reason, start_frame=start, end_frame=end)

    @classmethod
    def from_dict(cls, d: dict) -> TrackRecord:
        return cls(track=d["track"], offset=d["offset"], confidence=d["confidence"], min_dist=d["min_dist"],
                   n_frames=d["n_frames"], reliable=d.get("reliable", True),
                   unreliable_reason=d.get("unreliable_reason"), start_frame=d.get("start_frame"),
                   end_frame=d.get("end_frame"))

    def to_dict(self) -> dict:
        d = {"track": self.track, "offset": self.offset, "confidence": self.confidence, "min_dist": self.min_dist,
             "n_frames": self.n_frames, "reliable": self.reliable, "unreliable_reason": self.unreliable_reason}
        if self.start_frame is not None:
            d.update(start_frame=self.start_frame, end_frame=self.end_frame)
        return d


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
