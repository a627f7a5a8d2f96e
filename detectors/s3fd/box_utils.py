"""Priors, box decoding and non-maximum suppression of the published S3FD detector.

The reference runs a per-box Python loop for NMS over every prior scoring above
0.05, then keeps only boxes above the caller's threshold.  Greedy NMS only lets a
higher score suppress a lower one, so running it on the boxes above the caller's
threshold alone gives exactly the same kept boxes, in the same order; here it is
done on a precomputed IoU matrix.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

STEPS = (4, 8, 16, 32, 64, 128)
MIN_SIZES = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)
CANDIDATE_THRESHOLD = 0.05  # Detect's conf_thresh
NMS_THRESHOLD = 0.3  # Detect's nms_thresh
NMS_TOP_K = 5000  # candidates considered by Detect's NMS
TOP_K = 750  # boxes Detect keeps per image
FINAL_NMS_THRESHOLD = 0.1  # detect_faces' NMS across scales


@lru_cache(maxsize=16)
def _priors(height: int, width: int, sizes: tuple[tuple[int, int], ...]) -> torch.Tensor:
    rows = []
    for (fh, fw), step, min_size in zip(sizes, STEPS, MIN_SIZES):
        i, j = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (j.ravel() + 0.5) / (width / step)
        cy = (i.ravel() + 0.5) / (height / step)
        rows.append(np.stack([cx, cy, np.full_like(cx, min_size / width), np.full_like(cy, min_size / height)], 1))
    return torch.from_numpy(np.concatenate(rows).astype(np.float32))


def priors(height: int, width: int, sizes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """(P, 4) prior boxes cx, cy, w, h (relative) of an input of `height` x `width`."""
    return _priors(height, width, tuple(sizes)).to(device)


def decode(loc: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Offsets -> x1, y1, x2, y2 relative to the input (same operations as the reference)."""
    boxes = torch.cat((prior[:, :2] + loc[:, :2] * VARIANCES[0] * prior[:, 2:],
                       prior[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def greedy_nms(boxes: torch.Tensor, order: torch.Tensor, overlap: float = NMS_THRESHOLD,
               top_k: int = TOP_K) -> torch.Tensor:
    """Indices kept by the reference's Detect NMS, visiting boxes in `order` (best first)."""
    if order.numel() == 0:
        return order
    b = boxes[order]
    x1, y1, x2, y2 = b.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    w = (torch.minimum(x2[:, None], x2[None, :]) - torch.maximum(x1[:, None], x1[None, :])).clamp(min=0.0)
    h = (torch.minimum(y2[:, None], y2[None, :]) - torch.maximum(y1[:, None], y1[None, :])).clamp(min=0.0)
    inter = w * h
    iou = inter / ((area[None, :] - inter) + area[:, None])
    suppress = (iou > overlap).cpu().numpy()
    alive = np.ones(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) == top_k:
            break
        alive &= ~suppress[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=order.device)]


def select(loc: torch.Tensor, scores: torch.Tensor, prior: torch.Tensor, conf_th: float) -> torch.Tensor:
    """One image: (N, 5) x1, y1, x2, y2 (relative), score of the boxes Detect keeps above conf_th.

    The visiting order is the reference's own: an ascending `sort` of every candidate
    above 0.05, its 5000 best, taken from the end.  Sorting all candidates the same way
    keeps the order of equal scores (frequent) the same as the reference's.
    """
    cand = torch.nonzero(scores > CANDIDATE_THRESHOLD).squeeze(1)
    ascending = cand[scores[cand].sort(0)[1]][-NMS_TOP_K:]
    order = ascending.flip(0)
    order = order[scores[order] > conf_th]
    boxes = decode(loc[order], prior[order])
    kept = greedy_nms(boxes, torch.arange(len(order), device=order.device))
    return torch.cat((boxes[kept], scores[order][kept].unsqueeze(1)), 1)


def nms_numpy(dets: np.ndarray, thresh: float = FINAL_NMS_THRESHOLD) -> np.ndarray:
    """The reference's final NMS across scales (pixel boxes), for identical boxes and order."""
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        w = np.maximum(0.0, xx2 - xx1)
        h = np.maximum(0.0, yy2 - yy1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return np.array(keep, dtype=np.int64)
