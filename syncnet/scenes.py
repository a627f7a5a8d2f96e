"""Shot boundaries with PySceneDetect's ContentDetector, as the reference ran it.

The reference used scenedetect 0.5.1: `ContentDetector()` (threshold 30, min_scene_len
15) on the frames of `VideoManager` after `set_downscale_factor()`, which subsamples
each frame by `frame[::d, ::d, :]` with `d` from a table of frame widths.  A frame whose
mean HSV change from the previous frame reaches the threshold starts a new shot, unless
fewer than min_scene_len frames have passed since the previous cut.  In 0.5.1 there is
no previous cut at the start, so the first cut may come at any frame.

The installed scenedetect (0.6.x) scores frames the same way, but its min_scene_len
filter (FlashFilter, SUPPRESS or MERGE) also counts from the first frame, which would
drop a cut in the first 15 frames that 0.5.1 keeps.  So the detector here is asked for
the raw per-frame decision (min_scene_len=0) and the 0.5.1 rule is applied on top.
Frames are pushed as they are decoded, so the video is never decoded a second time.
"""
from __future__ import annotations

import numpy as np
from scenedetect import FrameTimecode
from scenedetect.detectors import ContentDetector

THRESHOLD = 30.0
MIN_SCENE_LEN = 15
# scenedetect 0.5.1 video_manager.DEFAULT_DOWNSCALE_FACTORS: frame width -> subsampling step.
DOWNSCALE_FACTORS = ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 4), (600, 3), (400, 2))


def downscale_factor(frame_width: int) -> int:
    """scenedetect 0.5.1's automatic downscale factor (`compute_downscale_factor`)."""
    for width, factor in DOWNSCALE_FACTORS:
        if frame_width >= width:
            return factor
    return 1


class SceneDetector:
    """Streaming shot detection: push BGR frame batches in order, then ask for the shots.

    `frame_width` sets the downscale factor; when None it is taken from the first frame.
    """

    def __init__(self, frame_width: int | None = None, threshold: float = THRESHOLD,
                 min_scene_len: int = MIN_SCENE_LEN):
        self.threshold = threshold
        self.min_scene_len = min_scene_len
        self.factor = None if frame_width is None else downscale_factor(frame_width)
        self.cuts: list[int] = []
        self.next_frame = 0
        self._detector = ContentDetector(threshold=threshold, min_scene_len=0)

    def restore(self, cuts: list[int], next_frame: int) -> None:
        """Continue a run that stopped before `next_frame`, with the cuts it had found.

        Push frame `next_frame - 1` again first: it gives the detector the frame to compare
        `next_frame` with, and cannot itself become a cut (it has nothing to compare with).
        """
        self.cuts = [int(c) for c in cuts]
        self.next_frame = max(0, next_frame - 1)
        self._detector = ContentDetector(threshold=self.threshold, min_scene_len=0)

    def push(self, frames_bgr: np.ndarray, first_frame: int) -> None:
        """Feed the next frames (N, H, W, 3) uint8 BGR; `first_frame` is the number of the first."""
        if first_frame != self.next_frame:
            raise ValueError(f"frames must be pushed in order: expected frame {self.next_frame}, got {first_frame}")
        if not len(frames_bgr):
            return
        if self.factor is None:
            self.factor = downscale_factor(frames_bgr[0].shape[1])
        d = self.factor
        for k, frame in enumerate(frames_bgr):
            frame_no = first_frame + k
            small = np.ascontiguousarray(frame[::d, ::d, :]) if d > 1 else frame
            if self._detector.process_frame(frame_no, small) and (
                    not self.cuts or frame_no - self.cuts[-1] >= self.min_scene_len):
                self.cuts.append(frame_no)
        self.next_frame = first_frame + len(frames_bgr)

    def scenes(self, n_frames: int | None = None) -> list[tuple[int, int]]:
        """Shots as [start, end) frame ranges covering [0, n_frames); one shot when there is no cut.

        `n_frames` defaults to the number of frames pushed.
        """
        n = self.next_frame if n_frames is None else int(n_frames)
        bounds = [0, *(c for c in self.cuts if 0 < c < n), n]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def detect_scenes(frames_bgr: np.ndarray) -> list[tuple[int, int]]:
    """Shots of frames held in memory (short clips, tests)."""
    detector = SceneDetector()
    detector.push(frames_bgr, 0)
    return detector.scenes(len(frames_bgr))


def scene_list_for_pickle(scenes: list[tuple[int, int]], fps: float) -> list[tuple[FrameTimecode, FrameTimecode]]:
    """scene.pckl's content as the reference wrote it: (start, end) FrameTimecode pairs.

    Scripts written for the reference read `shot[0].frame_num` and `shot[1].frame_num`.
    """
    return [(FrameTimecode(int(a), fps=float(fps)), FrameTimecode(int(b), fps=float(fps))) for a, b in scenes]
