"""Face tracks within one shot, exactly as the reference's `track_shot` builds them.

The reference's greedy loop has quirks that change its output, and parity needs
them: it removes a face from the frame's list while iterating that list (so the
face after a taken one is skipped in that sweep), several faces of one frame can
join the same track, and its `break` leaves only the inner loop.
"""
from __future__ import annotations

import copy

import numpy as np
from scipy.interpolate import interp1d


def bbox_iou(box_a, box_b) -> float:
    """IoU without the +1 pixel convention, as the reference computes it."""
    xa, ya = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    xb, yb = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    inter = max(0, xb - xa) * max(0, yb - ya)
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / float(area_a + area_b - inter)


def track_shot(scenefaces: list[list[dict]], num_failed_det: int = 25, min_track: int = 100,
               min_face_size: float = 100, iou_thres: float = 0.5) -> list[dict]:
    """Tracks of one shot: `scenefaces` holds, per frame, faces `{frame, bbox, conf}`.

    Returns `[{"frame": int array, "bbox": float array (n, 4)}]`, every frame from
    the first to the last detection, boxes linearly interpolated over gaps.  The
    caller's lists are not modified.
    """
    remaining = copy.deepcopy([list(f) for f in scenefaces])
    tracks = []
    while True:
        track: list[dict] = []
        for framefaces in remaining:
            # Iterating a list while removing from it, as the reference does: after a
            # removal the next face of this frame is skipped in this sweep.
            for face in framefaces:
                if not track:
                    track.append(face)
                    framefaces.remove(face)
                elif face["frame"] - track[-1]["frame"] <= num_failed_det:
                    if bbox_iou(face["bbox"], track[-1]["bbox"]) > iou_thres:
                        track.append(face)
                        framefaces.remove(face)
                        continue
                else:
                    break
        if not track:
            break
        if len(track) > min_track:
            framenum = np.array([f["frame"] for f in track])
            bboxes = np.array([np.array(f["bbox"]) for f in track])
            frame_i = np.arange(framenum[0], framenum[-1] + 1)
            bboxes_i = np.stack([interp1d(framenum, bboxes[:, j])(frame_i) for j in range(4)], axis=1)
            if max(np.mean(bboxes_i[:, 2] - bboxes_i[:, 0]), np.mean(bboxes_i[:, 3] - bboxes_i[:, 1])) > min_face_size:
                tracks.append({"frame": frame_i, "bbox": bboxes_i})
    return tracks
