"""Face tracks within one shot, built exactly as the reference's `track_shot` builds them.

The reference's greedy loop has quirks that change which detections end up in which
track, and parity needs every one of them:

* it removes a face from a frame's list while iterating over that same list, so the
  face right after a taken one is not looked at in that sweep;
* because of that, several faces of one frame can still join the same track (the
  one after the skipped face is compared with the face just taken);
* its `break` (a detection too far after the track's last one) leaves only the loop
  over that frame's faces; the sweep goes on through the later frames.

The loop below is therefore a deliberate port, not a cleaner tracker.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import interp1d


def bbox_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """Intersection over union without the +1 pixel convention, as the reference computes it."""
    xa = max(box_a[0], box_b[0])
    ya = max(box_a[1], box_b[1])
    xb = min(box_a[2], box_b[2])
    yb = min(box_a[3], box_b[3])
    inter = max(0, xb - xa) * max(0, yb - ya)
    area_a = (box_a[2] - box_a[0]) * (box_a[3] - box_a[1])
    area_b = (box_b[2] - box_b[0]) * (box_b[3] - box_b[1])
    return inter / float(area_a + area_b - inter)


def take_track(frames: list[list[dict]], num_failed_det: int, iou_thres: float) -> list[dict]:
    """One greedy sweep over the shot: the faces it takes are removed from `frames`."""
    track: list[dict] = []
    for framefaces in frames:
        # Removing from the list being iterated is the reference's behaviour (see module doc).
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
    return track


def interpolate_track(track: list[dict]) -> dict:
    """Every frame from the first detection to the last, boxes filled in by interp1d.

    scipy's interp1d itself is used (not np.interp) so that a track holding several
    faces of one frame (repeated frame numbers) is resolved exactly as in the reference.
    """
    framenum = np.array([face["frame"] for face in track])
    bboxes = np.array([np.array(face["bbox"]) for face in track])
    frame_i = np.arange(framenum[0], framenum[-1] + 1)
    bboxes_i = np.stack([interp1d(framenum, bboxes[:, j])(frame_i) for j in range(4)], axis=1)
    return {"frame": frame_i, "bbox": bboxes_i}


def track_shot(scenefaces: Sequence[Sequence[dict]], num_failed_det: int = 25, min_track: int = 100,
               min_face_size: float = 100, iou_thres: float = 0.5) -> list[dict]:
    """The face tracks of one shot.

    `scenefaces` holds one list per frame of the shot, of faces `{"frame", "bbox", "conf"}`
    (bbox x1, y1, x2, y2).  Returns `[{"frame": int array, "bbox": float array (n, 4)}]`
    in the reference's order.  A track is kept when it has more than `min_track`
    detections and its mean width or height exceeds `min_face_size` (both strict, as
    in the reference).  The caller's lists and dicts are left untouched.
    """
    remaining = [list(framefaces) for framefaces in copy.deepcopy(scenefaces)]
    tracks: list[dict] = []
    while True:
        track = take_track(remaining, num_failed_det, iou_thres)
        if not track:
            break
        if len(track) > min_track:
            interpolated = interpolate_track(track)
            bbox = interpolated["bbox"]
            # Builtin max on purpose: its NaN handling is the reference's.
            size = max(np.mean(bbox[:, 2] - bbox[:, 0]), np.mean(bbox[:, 3] - bbox[:, 1]))
            if size > min_face_size:
                tracks.append(interpolated)
    return tracks
