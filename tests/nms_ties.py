"""Is a list of S3FD boxes what the reference's two NMS passes give for *some* order of
tied scores?  (Test-only.)

The stand-in weights give flat image regions dozens of priors with bit-identical scores.
The reference visits tied boxes in whatever order its sorts leave them (torch's sort in
`Detect`, numpy's argsort in `nms_`), and both sorts pick SIMD code by CPU; the last bits
of the network's other scores move with the CPU's oneDNN kernels too.  So on another CPU
the reference itself keeps other tied boxes, and through the greedy cascade even
another number of boxes.  What does not move is the computation: the candidates
(network, priors, decoding) and the two greedy passes.  This module checks exactly that,
for the reference's file and for our output alike:

  the rows are candidates of this network on this image, and some visiting order that
  sorts by score, breaking only exact ties freely, makes `Detect`'s NMS (IoU 0.3, per
  scale) followed by `nms_` (IoU 0.1, all scales) keep exactly these rows, in this order.

Greedy NMS in a given order keeps a set L exactly when no two boxes of L suppress each
other and every other box is suppressed by a box of L that may be visited before it (a
higher score, or a tie put first).  Choosing the first pass's kept set L1 is therefore a
satisfiability problem (pairwise exclusions, "kept or suppressed" clauses), solved here
with a SAT solver; the order it implies is then run through plain greedy loops, which
must reproduce the rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from pysat.solvers import Solver

from detectors.s3fd import box_utils
from syncnet.precision import autocast

DETECT_OVERLAP = 0.3  # the reference's Detect(nms_thresh)
FINAL_OVERLAP = 0.1  # detect_faces' nms_(bboxes, 0.1)
DETECT_TOP_K = 750  # rows of Detect's output
NMS_TOP_K = 5000  # candidates Detect's NMS visits
BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32)


@dataclass
class Candidates:
    """Every prior scoring above the threshold, all scales: boxes relative to the scaled
    input (float32, as the first NMS sees them), the same in pixels (float64, as the
    second sees them), score (float32) and the scale's index."""
    rel: np.ndarray
    pixel: np.ndarray
    score: np.ndarray
    scale: np.ndarray


def prior_maps(net: torch.nn.Module, images_rgb: np.ndarray, scale: float,
               precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Every prior's box (relative to the scaled input) and face score, (B, P, 4) and (B, P),
    for same-size RGB images: the reference's preprocessing (resize, BGR means subtracted
    from RGB channels), the network at `precision`, the published decoding; no NMS."""
    small = np.stack([cv2.resize(np.ascontiguousarray(im), dsize=(0, 0), fx=scale, fy=scale,
                                 interpolation=cv2.INTER_LINEAR) for im in images_rgb])
    x = torch.from_numpy(small.astype(np.float32) - BGR_MEAN[::-1]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        loc, conf, sizes = net(x)
    priors = box_utils.prior_boxes(x.shape[2], x.shape[3], sizes, "cpu")
    boxes = torch.stack([box_utils.decode(one.float(), priors) for one in loc])
    return boxes.numpy(), conf[..., 1].float().numpy()


def candidates(net: torch.nn.Module, image_rgb: np.ndarray, conf_th: float, scales) -> Candidates:
    """Every prior of every scale scoring above `conf_th`, before any NMS."""
    h, w = image_rgb.shape[:2]
    size = np.array([w, h, w, h], np.float32)
    parts = []
    for k, s in enumerate(scales):
        boxes, face = prior_maps(net, image_rgb[None], s)
        keep = face[0] > conf_th
        rel = boxes[0][keep]
        parts.append((rel, (rel * size).astype(np.float64), face[0][keep], np.full(int(keep.sum()), k)))
    return Candidates(*(np.concatenate(p) for p in zip(*parts)))


def _detect_suppresses(rel: np.ndarray) -> np.ndarray:
    """[i, j]: keeping i removes j in the reference's `nms` (float32, its operand order)."""
    x1, y1, x2, y2 = (rel[:, k].astype(np.float32) for k in range(4))
    area = (x2 - x1) * (y2 - y1)
    w = np.maximum(np.minimum(x2[None, :], x2[:, None]) - np.maximum(x1[None, :], x1[:, None]), np.float32(0))
    h = np.maximum(np.minimum(y2[None, :], y2[:, None]) - np.maximum(y1[None, :], y1[:, None]), np.float32(0))
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        return ~(inter / ((area[None, :] - inter) + area[:, None]) <= np.float32(DETECT_OVERLAP))


def _final_suppresses(pixel: np.ndarray) -> np.ndarray:
    """[i, j]: keeping i removes j in the reference's `nms_` (float64, no +1)."""
    x1, y1, x2, y2 = pixel.T
    area = (x2 - x1) * (y2 - y1)
    w = np.maximum(0.0, np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :]))
    h = np.maximum(0.0, np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :]))
    inter = w * h
    with np.errstate(divide="ignore", invalid="ignore"):
        return ~(inter / (area[:, None] + area[None, :] - inter) <= FINAL_OVERLAP)


def _greedy(order: np.ndarray, suppresses: np.ndarray) -> list[int]:
    """Plain greedy NMS: visit `order`, keep what no kept box removed."""
    alive = np.ones(len(suppresses), dtype=bool)
    kept = []
    for i in order:
        if alive[i]:
            kept.append(int(i))
            alive &= ~suppresses[i]
    return kept


def match_rows(cands: Candidates, rows: np.ndarray, rtol: float = 1e-4, atol: float = 1e-2) -> np.ndarray | str:
    """Each row's candidate (the only one with its box and score), or why not."""
    found = []
    for r in rows:
        near = np.abs(cands.pixel - r[:4]).max(1) < atol + rtol * np.abs(r[:4]).max()
        near &= np.isclose(cands.score, r[4], rtol=rtol, atol=1e-6)
        hits = np.flatnonzero(near)
        if len(hits) != 1:
            return f"row {r.tolist()} matches {len(hits)} candidates"
        found.append(int(hits[0]))
    if len(set(found)) != len(found):
        return "two rows match the same candidate"
    return np.asarray(found)


def explain(cands: Candidates, rows: np.ndarray) -> str | None:
    """None if `rows` are the reference's output for some order of exactly tied scores,
    else the reason they cannot be."""
    kept = match_rows(cands, rows)
    if isinstance(kept, str):
        return kept
    n = len(cands.score)
    for k in np.unique(cands.scale):
        if (cands.scale == k).sum() > NMS_TOP_K:  # then Detect's top-k cut would matter too
            return f"scale {k}: more than {NMS_TOP_K} candidates, beyond what this check models"
    score = cands.score.astype(np.float64)
    may_precede = score[:, None] >= score[None, :]  # [i, j]: i may be visited before j
    first = _detect_suppresses(cands.rel) & (cands.scale[:, None] == cands.scale[None, :])
    final = _final_suppresses(cands.pixel)
    np.fill_diagonal(first, False)
    np.fill_diagonal(final, False)
    if any(score[a] < score[b] for a, b in zip(kept[:-1], kept[1:])):
        return "the rows are not in descending score order"
    for a in range(len(kept)):
        if final[kept[a], kept[a + 1:]].any():
            return f"row {a} removes a later row in the final NMS"
    in_rows = np.zeros(n, dtype=bool)
    in_rows[kept] = True
    # Kept by the first pass but not a row: the final pass must remove it, by a row visited before it.
    removable = (final[kept] & may_precede[kept]).any(0)
    clauses = [[int(i) + 1] for i in kept]
    clauses += [[-(int(i) + 1)] for i in np.flatnonzero(~in_rows & ~removable)]
    a, b = np.nonzero(np.triu(first | first.T, 1))
    clauses += [[-(int(i) + 1), -(int(j) + 1)] for i, j in zip(a, b)]
    for j in range(n):  # kept by the first pass, or removed there by a kept box visited before it
        clauses.append([j + 1] + [int(i) + 1 for i in np.flatnonzero(first[:, j] & may_precede[:, j])])
    with Solver(name="cadical153", bootstrap_with=clauses) as solver:
        if not solver.solve():
            return "no order of tied scores gives these rows"
        model = np.asarray(solver.get_model()[:n]) > 0
    for k in np.unique(cands.scale):
        if (model & (cands.scale == k)).sum() > DETECT_TOP_K:
            return f"scale {k}: Detect would keep more than {DETECT_TOP_K} boxes"
    # The order the solution implies: score, then (within a tie) the chosen boxes first, the rows in their order.
    rank = np.full(n, len(kept))
    rank[kept] = np.arange(len(kept))
    order = np.lexsort((rank, ~model, -score))
    first_kept = np.zeros(n, dtype=bool)
    for k in np.unique(cands.scale):
        first_kept[_greedy(order[cands.scale[order] == k], first)] = True
    second = [int(i) for i in np.lexsort((rank, -score)) if first_kept[i]]
    if _greedy(np.asarray(second), final) != kept.tolist():
        return "the order found does not reproduce the rows"  # a flaw in this check, not in the boxes
    return None


def check_case(detector, case_dir, c: dict) -> None:
    """One case of the reference's file against our detector.

    Both must be exactly the reference's two NMS passes over this network's candidates for
    some visiting order of exactly tied scores (see above: which tied boxes the
    reference kept follows its sorts' SIMD code on the machine that made the file, and
    through the greedy cascade so may the number of boxes).  Rows of the same candidate
    hold the same numbers.
    """
    image = np.load(case_dir / c["image"])["rgb"]
    expected = np.load(case_dir / c["boxes"])
    got = detector.detect_faces(image, conf_th=c["conf_th"], scales=c["scales"])
    assert got.dtype == np.float32 and got.shape[1:] == (5,)
    assert expected.shape == (c["n"], 5), c
    cands = candidates(detector.net, image, c["conf_th"], c["scales"])
    why = explain(cands, expected)
    assert why is None, (c, f"the reference's boxes: {why}")
    why = explain(cands, got)
    assert why is None, (c, f"our boxes: {why}")
    mine, theirs = match_rows(cands, got), match_rows(cands, expected)
    both, at_mine, at_theirs = np.intersect1d(mine, theirs, return_indices=True)
    assert len(both) > 0, c
    assert np.abs(got[at_mine] - expected[at_theirs]).max() < 1e-3, c
