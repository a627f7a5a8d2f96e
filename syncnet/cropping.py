"""224x224 face crops of a track, exactly as the reference's `crop_video` makes them.

The reference median-smooths the box centres and half-sizes over 13 frames, pads the
whole frame by `bsi` pixels of value 110 and slices a window around the centre.
Padding a whole frame for every crop is wasted work: `crop_face` works out which
pixels of the padded frame the slice would cover, fills only that window with 110 and
copies in the part that overlaps the image, which gives the same pixels (numpy's
slicing rules, negative indices included, are applied to the padded size).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy import signal

CROP_SIZE = 224
PAD_VALUE = 110
SMOOTH_KERNEL = 13

# Tracks shorter than the 13-frame kernel are zero-padded by medfilt, as in the
# reference; scipy's warning about it is only noise on a long run's console.  A
# filter set once here (catch_warnings is not thread-safe, and chunks run in threads).
warnings.filterwarnings("ignore", message="kernel_size exceeds volume extent", category=UserWarning)


@dataclass
class CropResult:
    """A track's crops (n, 224, 224, 3) uint8 BGR, and the smoothed centres `x`, `y` and half-size `s`."""

    crops: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray


def smooth_track(bbox: np.ndarray | Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box centres x, y and half-size s, each median-filtered over 13 frames as in the reference.

    The filter pads with zeros, so on a track of 6 frames or fewer every median is 0
    (the reference then crashes cutting an empty crop); such short tracks get the
    largest odd window that fits instead.  Tracks of 7 frames or more are as the reference.
    """
    bbox = np.asarray(bbox, dtype=np.float64)
    s = np.maximum(bbox[:, 3] - bbox[:, 1], bbox[:, 2] - bbox[:, 0]) / 2
    y = (bbox[:, 1] + bbox[:, 3]) / 2
    x = (bbox[:, 0] + bbox[:, 2]) / 2
    n = len(bbox)
    kernel = SMOOTH_KERNEL if n > SMOOTH_KERNEL // 2 else max(1, n - 1 + n % 2)
    return (signal.medfilt(x, kernel_size=kernel), signal.medfilt(y, kernel_size=kernel),
            signal.medfilt(s, kernel_size=kernel))


def window_bounds(x: float, y: float, s: float, crop_scale: float, height: int, width: int
                  ) -> tuple[int, int, int, int]:
    """Rows [r0, r1) and columns [c0, c1), in image coordinates (they may reach past the
    image, into the padding), of the reference's slice of its 110-padded frame."""
    bsi = int(s * (1 + 2 * crop_scale))
    my = y + bsi
    mx = x + bsi
    # Bounds in padded coordinates, resolved the way numpy resolves a slice.
    r0, r1, _ = slice(int(my - s), int(my + s * (1 + 2 * crop_scale))).indices(height + 2 * bsi)
    c0, c1, _ = slice(int(mx - s * (1 + crop_scale)), int(mx + s * (1 + crop_scale))).indices(width + 2 * bsi)
    r1, c1 = max(r1, r0), max(c1, c0)
    return r0 - bsi, r1 - bsi, c0 - bsi, c1 - bsi


def crop_window(image: np.ndarray, x: float, y: float, s: float, crop_scale: float,
                origin: tuple[int, int] = (0, 0), frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """The reference's slice of the 110-padded frame, before resizing, without padding the frame.

    `image` may be only part of the frame: its top-left pixel is the frame's (row, column)
    `origin` and the whole frame is `frame_size` (height, width); the part must hold
    every pixel of the frame the window covers.  A view into `image` when the window
    lies inside the frame, otherwise a new array.
    """
    h, w = frame_size or image.shape[:2]
    ir0, ir1, ic0, ic1 = window_bounds(x, y, s, crop_scale, h, w)
    if ir0 >= 0 and ic0 >= 0 and ir1 <= h and ic1 <= w:
        return _frame_part(image, origin, ir0, ir1, ic0, ic1)
    window = np.full((ir1 - ir0, ic1 - ic0) + image.shape[2:], PAD_VALUE, dtype=image.dtype)
    sr0, sr1 = max(ir0, 0), min(ir1, h)
    sc0, sc1 = max(ic0, 0), min(ic1, w)
    if sr1 > sr0 and sc1 > sc0:
        window[sr0 - ir0:sr1 - ir0, sc0 - ic0:sc1 - ic0] = _frame_part(image, origin, sr0, sr1, sc0, sc1)
    return window


def _frame_part(image: np.ndarray, origin: tuple[int, int], r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Frame rows [r0, r1) and columns [c0, c1) from `image`, the part of the frame at `origin`."""
    oy, ox = origin
    part = image[r0 - oy:r1 - oy, c0 - ox:c1 - ox]
    if min(r0 - oy, c0 - ox) < 0 or part.shape[:2] != (r1 - r0, c1 - c0):
        raise ValueError("the crop window reaches outside the part of the frame given")
    return part


def crop_face(image: np.ndarray, x: float, y: float, s: float, crop_scale: float,
              origin: tuple[int, int] = (0, 0), frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """One 224x224 crop, pixel for pixel the reference's `cv2.resize(padded[...], (224, 224))`
    (`origin`, `frame_size`: see `crop_window`)."""
    window = crop_window(image, x, y, s, crop_scale, origin, frame_size)
    if window.size == 0:
        raise ValueError(f"empty crop window at x={x:.1f}, y={y:.1f}, s={s:.1f} in a {image.shape[:2]} frame")
    return cv2.resize(window, (CROP_SIZE, CROP_SIZE))


class TrackCropper:
    """Crops one track frame by frame, so a single pass over a video can serve many tracks.

    The smoothing needs the whole track, so it is done here, up front; `crop` then
    only needs the one frame.
    """

    def __init__(self, track: dict, crop_scale: float = 0.4):
        self.frames = np.asarray(track["frame"]).astype(int)
        self.crop_scale = crop_scale
        self.x, self.y, self.s = smooth_track(track["bbox"])
        # Frame number -> index into the track (tracks are contiguous, but do not rely on it).
        self._index = {int(f): i for i, f in enumerate(self.frames)}

    @property
    def first(self) -> int:
        return int(self.frames[0])

    @property
    def last(self) -> int:
        return int(self.frames[-1])

    def covers(self, frame_no: int) -> bool:
        return int(frame_no) in self._index

    def crop(self, frame_no: int, image: np.ndarray, origin: tuple[int, int] = (0, 0),
             frame_size: tuple[int, int] | None = None) -> np.ndarray | None:
        """The crop for video frame `frame_no`, or None when the track has no box there
        (`image` may be part of the frame: see `crop_window`)."""
        i = self._index.get(int(frame_no))
        if i is None:
            return None
        return self.crop_at(i, image, origin, frame_size)

    def crop_at(self, i: int, image: np.ndarray, origin: tuple[int, int] = (0, 0),
                frame_size: tuple[int, int] | None = None) -> np.ndarray:
        """The crop for the track's i-th box, taken from `image`."""
        return crop_face(image, self.x[i], self.y[i], self.s[i], self.crop_scale, origin, frame_size)

    def extent(self, height: int, width: int) -> tuple[int, int, int, int] | None:
        """Rows [top, bottom) and columns [left, right) of a `height` x `width` frame that
        the track's crops read from; None when every window lies in the padding."""
        bounds = [window_bounds(x, y, s, self.crop_scale, height, width) for x, y, s in zip(self.x, self.y, self.s)]
        b = np.array(bounds, dtype=np.int64).reshape(-1, 4)
        top, bottom = np.clip(b[:, 0], 0, height), np.clip(b[:, 1], 0, height)
        left, right = np.clip(b[:, 2], 0, width), np.clip(b[:, 3], 0, width)
        inside = (bottom > top) & (right > left)
        if not inside.any():
            return None
        return (int(top[inside].min()), int(bottom[inside].max()), int(left[inside].min()), int(right[inside].max()))


def crop_track(frames: Any, track: dict, crop_scale: float = 0.4) -> CropResult:
    """All crops of a track; `frames` is anything indexable by frame number (list, array, lazy source)."""
    cropper = TrackCropper(track, crop_scale)
    crops = np.empty((len(cropper.frames), CROP_SIZE, CROP_SIZE, 3), np.uint8)
    for i, frame_no in enumerate(cropper.frames):
        crops[i] = cropper.crop_at(i, frames[int(frame_no)])
    return CropResult(crops=crops, x=cropper.x, y=cropper.y, s=cropper.s)
