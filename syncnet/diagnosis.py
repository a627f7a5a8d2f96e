"""Why a video gave no face track: the measured cause, in one line a person can read.

`diagnose` takes what the analysis already has (each frame's faces, the shots, the face
options, the sound's length) and names the cause that really removed the faces, by
running the tracker's own sweep (`syncnet.tracking`) without its two filters and
looking at which filter each face run failed:

* ``audio_too_short``: the sound is shorter than one SyncNet window (6 frames, 0.24 s),
  so no track could be scored whatever the faces (checked first: no face setting helps);
* ``no_face_detected``: the detector found no face in any frame;
* ``faces_too_small``: no face run is larger than ``min_face_size`` by the tracker's
  measure (a run's mean box width or height, whichever is larger), whatever its length;
* ``face_runs_too_short``: some runs are large enough, but none of them has more than
  ``min_track`` detections in a shot of at least ``min_track`` frames (the tracker's
  rules; shot cuts end runs, and a gap of more than ``num_failed_det`` frames or a box
  that moved (IoU <= 0.5) starts a new one).

A track is kept only by a run that is both long and large enough, so when the tracker
keeps none, each run failed at least one of the two tests: either no run is large
enough (`faces_too_small`), or the large ones all failed on length.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .evaluate import SAMPLE_RATE, SAMPLES_PER_FRAME, WINDOW
from .options import FaceOptions
from .tracking import bbox_iou, interpolate_track, take_track

# track_shot's default, which find_tracks uses: a detection joins a run when it overlaps
# the run's last box by more than this.
IOU_THRES = 0.5
# SyncNet needs min(frames, samples // 640) - 5 >= 1 windows (syncnet.evaluate.count_windows).
MIN_AUDIO_SAMPLES = (WINDOW + 1) * SAMPLES_PER_FRAME

CAUSES = ("audio_too_short", "no_face_detected", "faces_too_small", "face_runs_too_short")


@dataclass(frozen=True)
class Diagnosis:
    """Why a video (a chunk, a file) has no face track; `to_dict` is the summaries' `diagnosis`.

    frames: frames analysed; frames_with_faces: of those, frames with at least one face;
    largest_face_px: the largest face run by the tracker's measure (None without faces);
    longest_run: detections in the longest run of faces large enough to keep (of all
    runs when none is large enough), counted as the tracker counts them against
    min_track (a run in a shot shorter than min_track counts at most the shot's frames);
    shot_cuts_in_runs: shot cuts that ended a face run the tracker would otherwise have
    continued; audio_seconds: the sound's length.
    """

    cause: str
    message: str
    frames: int
    frames_with_faces: int
    largest_face_px: float | None
    longest_run: int
    shot_cuts_in_runs: int
    audio_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Diagnosis:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass
class _Run:
    detections: int
    shot_frames: int
    size: float


def _runs(faces: Sequence[Sequence[dict]], scenes: Sequence[tuple[int, int]], opts: FaceOptions) -> list[_Run]:
    """Every face run the tracker's sweep takes, shot by shot, before its length and size tests."""
    runs = []
    for s, e in scenes:
        remaining = [[dict(face) for face in faces[i]] for i in range(s, min(e, len(faces)))]
        while True:
            track = take_track(remaining, opts.num_failed_det, IOU_THRES)
            if not track:
                break
            bbox = interpolate_track(track)["bbox"] if len(track) > 1 else np.array([track[0]["bbox"]], float)
            size = max(np.mean(bbox[:, 2] - bbox[:, 0]), np.mean(bbox[:, 3] - bbox[:, 1]))  # as track_shot
            runs.append(_Run(len(track), e - s, float(size)))
    return runs


def _length(run: _Run, min_track: int) -> int:
    """A run's length as it counts against min_track: a shot shorter than min_track is skipped whole."""
    return run.detections if run.shot_frames >= min_track else min(run.detections, run.shot_frames)


def _cuts_in_runs(faces: Sequence[Sequence[dict]], scenes: Sequence[tuple[int, int]], num_failed_det: int) -> int:
    """Shot cuts between two faces the tracker would have joined (close enough in time, IoU > 0.5)."""
    with_faces = [i for i, f in enumerate(faces) if f]
    n = 0
    for _, cut in sorted(scenes)[:-1]:
        k = bisect_left(with_faces, cut)  # with_faces[k]: the first frame with faces from the cut on
        if k == 0 or k == len(with_faces):
            continue
        before, after = with_faces[k - 1], with_faces[k]
        if after - before > num_failed_det:
            continue
        if any(bbox_iou(a["bbox"], b["bbox"]) > IOU_THRES for a in faces[before] for b in faces[after]):
            n += 1
    return n


def _percent(n: int, total: int) -> str:
    p = 100.0 * n / total if total else 0.0
    if 0 < p < 1:
        return "<1%"
    if 99 < p < 100:
        return ">99%"
    return f"{round(p)}%"


def _frames(n: int) -> str:
    return f"{n} frame{'' if n == 1 else 's'}"


def _px(size: float) -> str:
    return f"{round(size, 1):g}"


def diagnose(faces: Sequence[Sequence[dict]], scenes: Sequence[tuple[int, int]], opts: FaceOptions,
             n_audio_samples: int) -> Diagnosis | None:
    """Why the tracker keeps no face track in this video, or None when it keeps one and the sound
    holds a SyncNet window.

    `faces[i]`: the faces of frame i (`{"frame", "bbox", "conf"}`, as `Detections.faces`),
    `scenes`: the shots as (first, end) frames, `opts`: the face options the tracks were
    made with, `n_audio_samples`: the sound's length at 16 kHz.
    """
    frames = len(faces)
    with_faces = sum(1 for f in faces if f)
    runs = _runs(faces, scenes or [(0, frames)], opts)
    big = [r for r in runs if r.size > opts.min_face_size]
    long = [r for r in runs if r.shot_frames >= opts.min_track and r.detections > opts.min_track]
    kept = [r for r in big if r.shot_frames >= opts.min_track and r.detections > opts.min_track]
    if (kept or (with_faces and not runs)) and n_audio_samples >= MIN_AUDIO_SAMPLES:
        return None  # a track is kept (or faces lie outside every shot: nothing to say)
    largest = max((r.size for r in runs), default=None)
    longest = max((_length(r, opts.min_track) for r in (big or runs)), default=0)
    cuts = _cuts_in_runs(faces, scenes, opts.num_failed_det)
    seconds = round(n_audio_samples / SAMPLE_RATE, 4)
    numbers = dict(frames=frames, frames_with_faces=with_faces,
                   largest_face_px=None if largest is None else round(largest, 1), longest_run=longest,
                   shot_cuts_in_runs=cuts, audio_seconds=seconds)
    seen = f"faces detected in {_percent(with_faces, frames)} of {frames} frames"
    if n_audio_samples < MIN_AUDIO_SAMPLES:
        have = n_audio_samples * 1000 // SAMPLE_RATE / 1000  # rounded down: never shown as enough
        return Diagnosis("audio_too_short", f"audio too short for a SyncNet window: {have:.3f} s of sound, "
                         f"at least {MIN_AUDIO_SAMPLES / SAMPLE_RATE:.3f} s needed", **numbers)
    if not with_faces:
        return Diagnosis("no_face_detected", f"no face detected in any of {frames} frames", **numbers)
    if not big and runs:
        message = (f"{seen}, but none larger than min_face_size {opts.min_face_size:g} "
                   f"(largest seen: {_px(largest)} px)")
        if not long:
            message += f"; their runs are too short for min_track {opts.min_track} too (longest: {_frames(longest)})"
        return Diagnosis("faces_too_small", message, **numbers)
    return Diagnosis("face_runs_too_short", f"{seen}, but in runs too short to track: the longest was "
                     f"{_frames(longest)}, min_track {opts.min_track} needs more than {opts.min_track}; "
                     f"{cuts} shot cut{'' if cuts == 1 else 's'} split face runs", **numbers)
