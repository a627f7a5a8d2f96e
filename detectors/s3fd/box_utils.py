"""Priors, box decoding and the two NMS passes of the published S3FD detector.

The reference (`Detect` + `nms` + `detect_faces` + `nms_`) runs a per-box Python
loop over every prior scoring above 0.05, keeps up to 750 boxes, and only then
drops those at or below the caller's threshold.  Greedy NMS lets a box be
suppressed only by one visited before it, and boxes are visited in descending
score order, so the boxes above the caller's threshold are a prefix of the
visiting order and their fate does not depend on the boxes after them: running
the greedy pass on that prefix alone keeps exactly the reference's boxes, in
its order.  The visiting order itself (which of the 5000 best candidates, and
the order of tied scores) is taken from the very sort the reference runs, on
the same array, so that ties come out the same way too.

The suppression tests are computed as blocks of IoU matrices with the
reference's arithmetic (same operations, same operand order, same dtype), and a
light loop over rows replaces the per-box tensor ops.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
import torch

STEPS = (4, 8, 16, 32, 64, 128)
MIN_SIZES = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)
CANDIDATE_THRESHOLD = 0.05  # Detect's conf_thresh: only these priors enter its NMS
NMS_THRESHOLD = 0.3  # Detect's nms_thresh
NMS_TOP_K = 5000  # Detect's nms_top_k: the best candidates its NMS visits
TOP_K = 750  # Detect's top_k: boxes it keeps per image
FINAL_NMS_THRESHOLD = 0.1  # detect_faces' NMS over the boxes of all scales

_BLOCK_ROWS = 512  # rows of an IoU matrix computed at once (bounds memory at 5000 boxes)


@lru_cache(maxsize=32)
def _prior_boxes(height: int, width: int, sizes: tuple[tuple[int, int], ...], device: str) -> torch.Tensor:
    rows = []
    for (fh, fw), step, min_size in zip(sizes, STEPS, MIN_SIZES):
        i, j = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        # Same float64 expressions as the reference's PriorBox, rounded to float32 once at the end.
        cx = (j.ravel() + 0.5) / (width / step)
        cy = (i.ravel() + 0.5) / (height / step)
        rows.append(np.stack([cx, cy, np.full(cx.shape, min_size / width), np.full(cy.shape, min_size / height)], 1))
    return torch.from_numpy(np.concatenate(rows).astype(np.float32)).to(device)


def prior_boxes(height: int, width: int, sizes: Sequence[tuple[int, int]],
                device: torch.device | str = "cpu") -> torch.Tensor:
    """(P, 4) float32 priors cx, cy, w, h (relative to the input) for a `height` x `width`
    input whose sources have feature maps `sizes`; cached, since every frame of a video
    has the same size."""
    return _prior_boxes(int(height), int(width), tuple((int(h), int(w)) for h, w in sizes), str(device))


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """(P, 4) offsets -> x1, y1, x2, y2 relative to the input, with the reference's operations.

    Decode all the priors of one image at once, as the reference does: vectorised
    and scalar `exp` may differ in the last bit, and which elements take which path
    depends on the tensor's length.
    """
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def _greedy(n: int, suppression: Callable[[np.ndarray, np.ndarray], np.ndarray],
            limit: int | None = None) -> np.ndarray:
    """Greedy NMS over `n` boxes already in visiting order; returns the kept positions, at
    most `limit`.  `suppression(rows, cols)` tells, for each box in `rows` and each in `cols`,
    whether keeping the first removes the second.  It is asked only about boxes still alive,
    a block of rows at a time, and not past the box that fills the limit."""
    alive = np.ones(n, dtype=bool)
    keep: list[int] = []
    start = 0
    while start < n and (limit is None or len(keep) < limit):
        rows = start + np.flatnonzero(alive[start:])[:_BLOCK_ROWS]
        if len(rows) == 0:
            break
        cols = rows[0] + np.flatnonzero(alive[rows[0]:])
        block = suppression(rows, cols)
        for k, i in enumerate(rows):
            if not alive[i]:
                continue
            keep.append(int(i))
            if limit is not None and len(keep) >= limit:
                break
            later = np.searchsorted(cols, i, side="right")
            alive[cols[later:]] &= ~block[k, later:]
        start = int(rows[-1]) + 1
    return np.asarray(keep, dtype=np.int64)


def _detect_suppression(boxes: np.ndarray, overlap: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Rows of the reference `nms`'s test on float32 boxes: IoU = inter / ((area_j - inter) + area_i),
    a box surviving only if IoU <= overlap (so that a NaN IoU suppresses, as there).  Each step is
    one correctly rounded float32 operation, as in the reference's torch code, so the bits agree."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    limit = np.float32(overlap)

    def rows_of(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        w = np.maximum(np.minimum(x2[None, cols], x2[rows][:, None])
                       - np.maximum(x1[None, cols], x1[rows][:, None]), np.float32(0))
        h = np.maximum(np.minimum(y2[None, cols], y2[rows][:, None])
                       - np.maximum(y1[None, cols], y1[rows][:, None]), np.float32(0))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / ((area[None, cols] - inter) + area[rows][:, None])
        return ~(iou <= limit)

    return rows_of


def detect(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor, conf_th: float) -> np.ndarray:
    """One image: the rows of the reference's `Detect` output that `detect_faces` reads.

    `loc` (P, 4) and `conf` (P, 2) are one image's network outputs.  Returns (N, 5)
    float32 x1, y1, x2, y2 (relative to the input), score: the boxes Detect keeps whose
    score is above `conf_th`, best first, at most 750 (where the reference would run off
    the end of its output instead).  Decoding and the sort stay in torch (its `exp` and
    its order of tied scores); the NMS runs in numpy, with no threads to wake per step.
    """
    boxes = decode(loc, priors)
    face = conf[:, 1]
    candidates = torch.nonzero(face > CANDIDATE_THRESHOLD).squeeze(1)
    _, ascending = face[candidates].sort(0)  # the reference's sort, same input: same order of ties
    order = candidates[ascending[-NMS_TOP_K:]].flip(0)
    order = order[face[order] > conf_th]
    rows = torch.cat((boxes[order], face[order].unsqueeze(1)), 1).cpu().numpy()
    if len(rows) == 0:
        return np.zeros((0, 5), dtype=np.float32)
    return rows[_greedy(len(rows), _detect_suppression(rows[:, :4], NMS_THRESHOLD), TOP_K)]


def final_nms(dets: np.ndarray, thresh: float = FINAL_NMS_THRESHOLD) -> np.ndarray:
    """Indices kept by the reference's `nms_` (pixel boxes of all scales, float64), in its order.

    Same arithmetic (areas and widths without +1, `ovr <= thresh` survives) and the same
    `argsort` call on the same array, so tied scores are visited in the same order.
    """
    dets = np.ascontiguousarray(dets, dtype=np.float64)
    if len(dets) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    x1, y1, x2, y2, areas = x1[order], y1[order], x2[order], y2[order], areas[order]

    def rows_of(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        w = np.maximum(0.0, np.minimum(x2[rows][:, None], x2[None, cols])
                       - np.maximum(x1[rows][:, None], x1[None, cols]))
        h = np.maximum(0.0, np.minimum(y2[rows][:, None], y2[None, cols])
                       - np.maximum(y1[rows][:, None], y1[None, cols]))
        inter = w * h
        with np.errstate(divide="ignore", invalid="ignore"):
            ovr = inter / (areas[rows][:, None] + areas[None, cols] - inter)
        return ~(ovr <= thresh)

    return order[_greedy(len(order), rows_of)]


__all__ = ["decode", "detect", "final_nms", "prior_boxes"]
