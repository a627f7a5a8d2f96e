"""The detection pass: faces of every frame (S3FD or any `FaceDetector`) and the shots, in one loop
shared by the one-video analysis and the long job; then the tracks of each shot."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .options import FaceOptions
from .scenes import SceneDetector
from .tracking import track_shot


class FaceDetector(Protocol):
    def detect_batch(self, images_rgb: np.ndarray, conf_th: float, scale: float) -> list[np.ndarray]: ...


@dataclass
class Detections:
    """Per-frame faces in the reference's faces.pckl format, and the shots.

    `faces[i]` holds the faces of frame `first_frame + i`, so a long job can drop the
    frames it no longer needs and keep memory flat.
    """

    faces: list[list[dict]] = field(default_factory=list)
    scenes: list[tuple[int, int]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    first_frame: int = 0

    @property
    def n_frames(self) -> int:
        """Frames seen so far (the end of the detected range)."""
        return self.first_frame + len(self.faces)

    def faces_of(self, frame: int) -> list[dict]:
        return self.faces[frame - self.first_frame]

    def add_batch(self, boxes: list[np.ndarray]) -> None:
        first = self.n_frames
        for k, frame_boxes in enumerate(boxes):
            self.faces.append([{"frame": first + k, "bbox": b[:-1].tolist(), "conf": float(b[-1])}
                               for b in np.asarray(frame_boxes, dtype=np.float64).reshape(-1, 5)])

    def window(self, start: int, end: int, scenes: list[tuple[int, int]]) -> Detections:
        """Frames [start, end) as a video of their own: frames and shots numbered from `start`."""
        faces = [[{**face, "frame": face["frame"] - start} for face in self.faces_of(i)] for i in range(start, end)]
        clipped = [(max(s, start) - start, min(e, end) - start) for s, e in scenes if min(e, end) > max(s, start)]
        return Detections(faces=faces, scenes=clipped or [(0, end - start)], width=self.width, height=self.height)

    def forget_before(self, frame: int) -> None:
        drop = min(max(0, frame - self.first_frame), len(self.faces))
        del self.faces[:drop]
        self.first_frame += drop


class FrameDetector:
    """Boxes for every frame of a stream, as the reference finds them: S3FD on each frame.

    With `opts.detect_every = n > 1` (a speed option, off by default) S3FD sees only
    frames 0, n, 2n, ... of the frame grid, and the n - 1 frames after each hold its
    boxes; the tracker and the track smoothing then treat them as detections.  `held`
    carries the boxes of the last detected frame into a resumed run.
    """

    def __init__(self, detector: FaceDetector, opts: FaceOptions, held: np.ndarray | None = None):
        self.detector, self.opts, self.held = detector, opts, held
        self.frames_detected = 0

    def _run(self, frames_bgr: np.ndarray) -> list[np.ndarray]:
        self.frames_detected += len(frames_bgr)
        return self.detector.detect_batch(frames_bgr[..., ::-1], conf_th=self.opts.conf_th,
                                          scale=self.opts.facedet_scale)

    def __call__(self, batch_bgr: np.ndarray, first: int) -> list[np.ndarray]:
        """Boxes of frames first .. first + len(batch) - 1 (BGR frames)."""
        every = max(1, int(self.opts.detect_every))
        if every == 1:
            return self._run(batch_bgr)
        picked = [k for k in range(len(batch_bgr)) if (first + k) % every == 0]
        found = iter(self._run(batch_bgr[picked]) if picked else [])
        boxes = []
        for k in range(len(batch_bgr)):
            if (first + k) % every == 0:
                self.held = next(found)
            elif self.held is None:  # a run resumed between detected frames without their boxes
                self.held = self._run(batch_bgr[k:k + 1])[0]
            boxes.append(self.held)
        return boxes


class DetectionPass:
    """The one detection loop: each decoded batch goes to the face detector and the shot
    detector, and its boxes are added to `detections`.

    Used by `detect_video` (one video) and by the long job (whole source, resumable:
    it starts from restored `detections`, shot cuts and held boxes).  `times`, when
    given, collects the seconds of the "detect" and "scenes" stages.
    """

    def __init__(self, detector: FaceDetector, opts: FaceOptions, detections: Detections | None = None,
                 scenes: SceneDetector | None = None, held: np.ndarray | None = None, times=None):
        self.detections = detections if detections is not None else Detections()
        self.scenes = scenes if scenes is not None else SceneDetector()
        self.find_faces = FrameDetector(detector, opts, held=held)
        self.times = times

    @property
    def n_frames(self) -> int:
        return self.detections.n_frames

    def _stage(self, name: str):
        return self.times.stage(name) if self.times is not None else contextlib.nullcontext()

    def push(self, batch: np.ndarray, first: int, scene_batch: np.ndarray | None = None) -> None:
        """Frames first .. first + len(batch) - 1 (BGR), the next ones of the pass; the shot
        detector sees `scene_batch` instead when given (the same frames, decoded its way)."""
        det = self.detections
        if not det.width:
            det.height, det.width = batch.shape[1:3]
        with self._stage("detect"):
            det.add_batch(self.find_faces(batch, first))
        with self._stage("scenes"):
            self.scenes.push(batch if scene_batch is None else scene_batch, first)

    def prime(self, batch: np.ndarray, first: int) -> None:
        """Frames shown to the shot detector only: the one before a resumed pass's first frame,
        so that it compares as if the pass had never stopped."""
        self.scenes.push(batch, first)

    def shots(self) -> list[tuple[int, int]]:
        """The shots of the frames seen so far."""
        return self.scenes.scenes(self.detections.n_frames)


def detect_video(batches: Iterable[np.ndarray], detector: FaceDetector, opts: FaceOptions,
                 sinks: Iterable[Callable[[np.ndarray, int], None]] = (),
                 scene_batches: Iterable[np.ndarray] | None = None) -> Detections:
    """Faces (score > opts.conf_th) and shot boundaries of every frame, in one pass.

    `sinks` see every batch with its first frame number (to dump JPEG frames from the
    same decode).  `scene_batches`, batch for batch the same frames decoded another way,
    go to the shot detector instead (the reference detects faces on JPEG frames and
    shots on video.avi as OpenCV decodes it).
    """
    detection = DetectionPass(detector, opts)
    sinks = list(sinks)
    scene_iter = iter(scene_batches) if scene_batches is not None else None
    for batch in batches:
        first = detection.n_frames
        detection.push(batch, first, None if scene_iter is None else next(scene_iter))
        for sink in sinks:
            sink(batch, first)
    detection.detections.scenes = detection.shots()
    return detection.detections


def find_tracks(det: Detections, opts: FaceOptions) -> list[dict]:
    """The reference's track_shot on every shot of at least min_track frames."""
    tracks: list[dict] = []
    for s, e in det.scenes:
        if e - s < opts.min_track:
            continue
        shot = [[dict(face) for face in det.faces_of(i)] for i in range(s, e)]
        tracks.extend(track_shot(shot, num_failed_det=opts.num_failed_det, min_track=opts.min_track,
                                 min_face_size=opts.min_face_size))
    return tracks
