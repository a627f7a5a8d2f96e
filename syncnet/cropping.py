"""224x224 face crops of a track, exactly as the reference's `crop_video` makes them.

The reference pads the whole frame by `bsi` pixels of value 110 and slices a square
around the median-smoothed box centre.  Padding a whole frame per crop is wasted
work: only the crop window is built here (filled with 110, the overlapping part of
the image copied in), which gives the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import signal

CROP_SIZE = 224
PAD_VALUE = 110
SMOOTH_KERNEL = 13


@dataclass
class CropResult:
    """The crops (n, 224, 224, 3) BGR uint8 and the smoothed centres `x`, `y` and half-size `s`."""

    crops: np.ndarray
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray


def smooth_track(bbox: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box centres and half-sizes, median-filtered over 13 frames (the reference's smoothing)."""
    bbox = np.asarray(bbox, dtype=np.float64)
    s = np.maximum(bbox[:, 3] - bbox[:, 1], bbox[:, 2] - bbox[:, 0]) / 2
    y = (bbox[:, 1] + bbox[:, 3]) / 2
    x = (bbox[:, 0] + bbox[:, 2]) / 2
    return (signal.medfilt(x, kernel_size=SMOOTH_KERNEL), signal.medfilt(y, kernel_size=SMOOTH_KERNEL),
            signal.medfilt(s, kernel_size=SMOOTH_KERNEL))


def crop_face(image: np.ndarray, x: float, y: float, s: float, crop_scale: float) -> np.ndarray:
    """One crop: the same pixels as slicing the reference's padded frame, without padding it."""
    bsi = int(s * (1 + 2 * crop_scale))
    my, mx = y + bsi, x + bsi  # centre in padded coordinates
    r0, r1 = int(my - s), int(my + s * (1 + 2 * crop_scale))
    c0, c1 = int(mx - s * (1 + crop_scale)), int(mx + s * (1 + crop_scale))
    h, w = image.shape[:2]
    # numpy slicing of the padded frame clips to its bounds [0, h + 2*bsi)
    r0c, r1c = min(max(r0, 0), h + 2 * bsi), min(max(r1, 0), h + 2 * bsi)
    c0c, c1c = min(max(c0, 0), w + 2 * bsi), min(max(c1, 0), w + 2 * bsi)
    out = np.full((max(r1c - r0c, 0), max(c1c - c0c, 0), image.shape[2]), PAD_VALUE, np.uint8)
    ir0, ir1 = max(r0c - bsi, 0), min(r1c - bsi, h)
    ic0, ic1 = max(c0c - bsi, 0), min(c1c - bsi, w)
    if ir1 > ir0 and ic1 > ic0:
        out[ir0 + bsi - r0c:ir1 + bsi - r0c, ic0 + bsi - c0c:ic1 + bsi - c0c] = image[ir0:ir1, ic0:ic1]
    return cv2.resize(out, (CROP_SIZE, CROP_SIZE))


class TrackCropper:
    """Crops one track frame by frame, so a single pass over a video can serve many tracks."""

    def __init__(self, track: dict, crop_scale: float = 0.4):
        self.frames = np.asarray(track["frame"]).astype(int)
        self.first = int(self.frames[0])
        self.crop_scale = crop_scale
        self.x, self.y, self.s = smooth_track(track["bbox"])

    def covers(self, frame_no: int) -> bool:
        return self.first <= frame_no <= int(self.frames[-1])

    def crop(self, frame_no: int, image: np.ndarray) -> np.ndarray:
        i = frame_no - self.first
        return crop_face(image, self.x[i], self.y[i], self.s[i], self.crop_scale)


def crop_track(frames, track: dict, crop_scale: float = 0.4) -> CropResult:
    """All crops of a track; `frames` is anything indexable by frame number."""
    cropper = TrackCropper(track, crop_scale)
    crops = np.stack([cropper.crop(int(f), frames[int(f)]) for f in cropper.frames])
    return CropResult(crops=crops, x=cropper.x, y=cropper.y, s=cropper.s)
