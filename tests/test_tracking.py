"""track_shot: the reference's parity case, its quirks, and its filters."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from syncnet import track_shot
from syncnet.tracking import bbox_iou

BOX = [100.0, 100.0, 260.0, 260.0]  # 160 px face
FAR = [500.0, 100.0, 660.0, 260.0]  # another face, no overlap with BOX


def face(frame: int, bbox, conf: float = 0.99) -> dict:
    return {"frame": frame, "bbox": list(bbox), "conf": conf}


def shifted(bbox, dx: float = 0.0, dy: float = 0.0) -> list[float]:
    return [bbox[0] + dx, bbox[1] + dy, bbox[2] + dx, bbox[3] + dy]


def test_parity_case(parity_dir):
    case = parity_dir / "tracking"
    scenefaces = json.loads((case / "input.json").read_text())["scenefaces"]
    expected = json.loads((case / "expected.json").read_text())
    tracks = track_shot(scenefaces, **expected["params"])
    assert len(tracks) == len(expected["tracks"])
    for got, want in zip(tracks, expected["tracks"]):
        assert got["frame"].dtype.kind == "i"
        np.testing.assert_array_equal(got["frame"], want["frame"])
        assert got["bbox"].shape == (len(want["frame"]), 4)
        np.testing.assert_allclose(got["bbox"], want["bbox"], rtol=1e-4, atol=1e-3)
        assert np.array_equal(got["bbox"], np.array(want["bbox"]))  # same arithmetic: exact


def test_input_is_not_mutated(parity_dir):
    scenefaces = json.loads((parity_dir / "tracking" / "input.json").read_text())["scenefaces"]
    before = copy.deepcopy(scenefaces)
    track_shot(scenefaces, num_failed_det=25, min_track=20, min_face_size=50)
    assert scenefaces == before


def test_iou_has_no_plus_one():
    assert bbox_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert bbox_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert bbox_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching edges do not overlap


def test_interpolates_over_missed_frames():
    shot = [[face(i, shifted(BOX, dx=i))] if i % 3 else [] for i in range(31)]
    (track,) = track_shot(shot, num_failed_det=25, min_track=5, min_face_size=100)
    np.testing.assert_array_equal(track["frame"], np.arange(1, 30))  # first to last detection
    np.testing.assert_allclose(track["bbox"][:, 0], 100 + np.arange(1, 30))  # linear over the gaps


def test_gap_longer_than_num_failed_det_splits_the_track():
    frames = list(range(10)) + list(range(36, 46))  # 26-frame jump from 9 to 36
    shot = [[face(i, BOX)] if i in frames else [] for i in range(46)]
    tracks = track_shot(shot, num_failed_det=25, min_track=5, min_face_size=100)
    assert [(t["frame"][0], t["frame"][-1]) for t in tracks] == [(0, 9), (36, 45)]
    # a jump of exactly num_failed_det frames keeps one track
    frames = list(range(10)) + list(range(34, 44))
    shot = [[face(i, BOX)] if i in frames else [] for i in range(44)]
    tracks = track_shot(shot, num_failed_det=25, min_track=5, min_face_size=100)
    assert [(t["frame"][0], t["frame"][-1]) for t in tracks] == [(0, 43)]


def test_low_iou_starts_a_new_track():
    shot = [[face(i, BOX if i < 10 else FAR)] for i in range(20)]
    tracks = track_shot(shot, num_failed_det=25, min_track=5, min_face_size=100)
    assert [(t["frame"][0], t["frame"][-1]) for t in tracks] == [(0, 9), (10, 19)]


def test_min_track_is_strict():
    shot = [[face(i, BOX)] for i in range(10)]
    assert track_shot(shot, min_track=10, min_face_size=100) == []
    assert len(track_shot(shot, min_track=9, min_face_size=100)) == 1


def test_min_face_size_is_strict():
    shot = [[face(i, [0.0, 0.0, 100.0, 60.0])] for i in range(10)]  # width 100, height 60
    assert track_shot(shot, min_track=5, min_face_size=100) == []
    assert len(track_shot(shot, min_track=5, min_face_size=99.5)) == 1


def test_face_after_a_taken_one_is_skipped_in_that_sweep():
    """[A, A'] per frame: A' is never looked at in the first sweep, so it makes a second track.

    A tracker without the reference's remove-while-iterating would put A' into A's track.
    """
    shot = [[face(i, BOX), face(i, shifted(BOX, dx=2))] for i in range(10)]
    tracks = track_shot(shot, min_track=5, min_face_size=100)
    assert len(tracks) == 2
    np.testing.assert_allclose(tracks[0]["bbox"][:, 0], 100.0)
    np.testing.assert_allclose(tracks[1]["bbox"][:, 0], 102.0)


def test_several_faces_of_one_frame_join_one_track():
    """[A, X, A'] per frame: X is skipped after A is taken, A' is compared and joins A's track."""
    shot = [[face(i, BOX), face(i, FAR), face(i, shifted(BOX, dx=2))] for i in range(10)]
    tracks = track_shot(shot, min_track=15, min_face_size=100)
    # 20 detections (A and A' of every frame) in the first track, X alone (10) is too short
    assert len(tracks) == 1
    np.testing.assert_array_equal(tracks[0]["frame"], np.arange(10))
    tracks = track_shot(shot, min_track=5, min_face_size=100)
    assert len(tracks) == 2
    np.testing.assert_allclose(tracks[1]["bbox"], np.tile(FAR, (10, 1)))


def test_no_faces():
    assert track_shot([[], [], []]) == []
    assert track_shot([]) == []
