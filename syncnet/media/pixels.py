"""Raw frames as FFmpeg pipes them (BGR, or I420 planes) and the regions of a picture
a decode may be narrowed to."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .probe import MediaInfo

PIXEL_FORMATS = ("bgr24", "yuv420p")

# 8-bit planar YUV: FFmpeg converts each pixel to BGR from its own samples, so a
# region cut before the conversion (at even offsets, even sizes) is exactly that part
# of the converted frame.  Not so for 10-bit sources (the dither to 8 bits depends on
# the position) nor for odd sizes in 4:2:0 (measured on FFmpeg 5.1; see test_media).
_REGION_EXACT_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})


@dataclass(frozen=True)
class Region:
    """A rectangle of the displayed frame: columns [left, left + width), rows [top, top + height)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width


def region_exact(info: MediaInfo) -> bool:
    """Whether `iter_frames(region=...)` gives exactly the pixels of slicing full frames.

    Only then may a decode be narrowed to the part of the picture it is needed for.
    """
    w, h = info.display_size
    return info.pix_fmt in _REGION_EXACT_FORMATS and w % 2 == 0 and h % 2 == 0


def even_region(top: int, bottom: int, left: int, right: int, width: int, height: int) -> Region:
    """The smallest region with even offsets and sizes that holds rows [top, bottom) and
    columns [left, right) of an even-sized `width` x `height` frame (at least 2x2)."""
    top = min(max(0, top), height - 2) // 2 * 2
    left = min(max(0, left), width - 2) // 2 * 2
    bottom = min(height, (max(bottom, top + 2) + 1) // 2 * 2)
    right = min(width, (max(right, left + 2) + 1) // 2 * 2)
    return Region(left, top, right - left, bottom - top)


def frame_shape(width: int, height: int, pix_fmt: str = "bgr24") -> tuple[int, ...]:
    """Shape of one raw frame: (H, W, 3) for BGR; for I420 (yuv420p) the three planes
    flat, Y then U then V, each chroma plane ceil(W/2) x ceil(H/2) (see `i420_planes`)."""
    if pix_fmt == "bgr24":
        return (height, width, 3)
    if pix_fmt == "yuv420p":
        return (width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2),)
    raise ValueError(f"pixel format {pix_fmt!r} is not one of {PIXEL_FORMATS}")


def i420_planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable (H, W), (ceil(H/2), ceil(W/2)) x 2 views of an I420 frame's Y, U and V planes."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y_end, u_end = width * height, width * height + cw * ch
    return (frame[:y_end].reshape(height, width), frame[y_end:u_end].reshape(ch, cw),
            frame[u_end:u_end + cw * ch].reshape(ch, cw))
