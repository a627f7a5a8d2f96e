"""Shot boundaries with PySceneDetect's ContentDetector, as the reference ran it.

The reference used scenedetect 0.5.1: ContentDetector(threshold=30, min_scene_len=15)
on frames subsampled by VideoManager's automatic downscale factor.  In 0.5.1 a cut
is kept when the frame's HSV change reaches the threshold and at least
min_scene_len frames have passed since the previous cut (the first cut may come at
any frame).  scenedetect 0.6 scores frames the same way but filters differently
(its first cut waits min_scene_len frames from the start), so this module asks the
detector for the raw per-frame decision (min_scene_len=0) and applies the 0.5.1
rule itself.  Frames are pushed as they are decoded: no second decode of the video.
"""
from __future__ import annotations

import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import ContentDetector

THRESHOLD = 30.0
MIN_SCENE_LEN = 15
# scenedetect 0.5.1's automatic downscale: frame width -> subsampling step.
_DOWNSCALE = ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 3), (400, 2))


def downscale_factor(frame_width: int) -> int:
    for width, factor in _DOWNSCALE:
        if frame_width >= width:
            return factor
    return 1


class SceneDetector:
    """Streaming shot detection: push BGR frame batches in order, ask for the shots."""

    def __init__(self, threshold: float = THRESHOLD, min_scene_len: int = MIN_SCENE_LEN):
        self.threshold = threshold
        self.min_scene_len = min_scene_len
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0)
        self._factor: int | None = None
        self.cuts: list[int] = []
        self.next_frame = 0

    def restore(self, cuts: list[int], next_frame: int) -> None:
        """Continue a run that stopped before `next_frame`; push frame next_frame-1 first."""
        self.cuts = list(cuts)
        self.next_frame = max(0, next_frame - 1)
        self._detector = ContentDetector(threshold=self.threshold, min_scene_len=0)

    def push(self, frames_bgr: np.ndarray, first_frame: int) -> None:
        if first_frame != self.next_frame:
            raise ValueError(f"frames must be pushed in order: expected {self.next_frame}, got {first_frame}")
        if self._factor is None and len(frames_bgr):
            self._factor = downscale_factor(frames_bgr.shape[2])
        d = self._factor or 1
        for k, frame in enumerate(frames_bgr):
            n = first_frame + k
            small = frame[::d, ::d, :] if d > 1 else frame
            if self._detector.process_frame(n, np.ascontiguousarray(small)):
                if not self.cuts or n - self.cuts[-1] >= self.min_scene_len:
                    self.cuts.append(n)
        self.next_frame = first_frame + len(frames_bgr)

    def scenes(self, n_frames: int) -> list[tuple[int, int]]:
        """Shots as [start, end) frame ranges covering [0, n_frames); one shot when no cut."""
        bounds = [0] + [c for c in self.cuts if 0 < c < n_frames] + [n_frames]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def detect_scenes(frames_bgr: np.ndarray) -> list[tuple[int, int]]:
    """Shots of frames held in memory (tests, short clips)."""
    det = SceneDetector()
    det.push(frames_bgr, 0)
    return det.scenes(len(frames_bgr))


def scene_list_for_pickle(scenes: list[tuple[int, int]], fps: float) -> list[tuple[FrameTimecode, FrameTimecode]]:
    """scene.pckl as the reference wrote it: (start, end) FrameTimecode pairs (`.frame_num`)."""
    return [(FrameTimecode(int(a), fps=float(fps)), FrameTimecode(int(b), fps=float(fps))) for a, b in scenes]
