"""crop_track: the reference's parity case, and the window crop against the padded frame."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from syncnet import CropResult, TrackCropper, crop_track
from syncnet.cropping import crop_face, crop_window


def padded_window(image: np.ndarray, x: float, y: float, s: float, cs: float) -> np.ndarray:
    """The reference's crop_video slice, verbatim: pad the whole frame, then slice."""
    bsi = int(s * (1 + 2 * cs))
    frame = np.pad(image, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
    my = y + bsi
    mx = x + bsi
    return frame[int(my - s):int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)):int(mx + s * (1 + cs))]


def reference_crops(frames: np.ndarray, track: dict, cs: float) -> np.ndarray:
    """The reference's crop_video loop (smoothing included), with the padded frame."""
    from scipy import signal

    dets = {"x": [], "y": [], "s": []}
    for det in track["bbox"]:
        dets["s"].append(max((det[3] - det[1]), (det[2] - det[0])) / 2)
        dets["y"].append((det[1] + det[3]) / 2)
        dets["x"].append((det[0] + det[2]) / 2)
    for key in dets:
        dets[key] = signal.medfilt(dets[key], kernel_size=13)
    out = []
    for fidx, frame in enumerate(track["frame"]):
        face = padded_window(frames[frame], dets["x"][fidx], dets["y"][fidx], dets["s"][fidx], cs)
        out.append(cv2.resize(face, (224, 224)))
    return np.stack(out)


@pytest.fixture(scope="module")
def crop_case(parity_dir):
    case = parity_dir / "crop"
    expected = json.loads((case / "expected.json").read_text())
    frames = np.load(case / "frames.npz")["bgr"]
    crops = np.load(case / "crops.npz")["bgr"]
    return expected, frames, crops


def test_parity_case(crop_case):
    expected, frames, crops = crop_case
    result = crop_track(frames, expected["track"], crop_scale=expected["crop_scale"])
    assert isinstance(result, CropResult)
    for key in ("x", "y", "s"):
        np.testing.assert_allclose(getattr(result, key), expected["smoothed"][key], rtol=1e-4, atol=1e-3)
    assert result.crops.shape == crops.shape == (expected["n_crops"], 224, 224, 3)
    assert result.crops.dtype == np.uint8
    assert np.array_equal(result.crops, crops)  # bit-identical, no tolerance


def test_padded_reference_gives_the_parity_case_too(crop_case):
    """The test's own copy of the reference agrees with the stored crops, so it can judge others."""
    expected, frames, crops = crop_case
    assert np.array_equal(reference_crops(frames, expected["track"], expected["crop_scale"]), crops)


@pytest.mark.parametrize("dx, dy", [(-200.0, 0.0), (0.0, 110.0), (230.0, -120.0)])
def test_track_across_the_border_matches_padded_reference(crop_case, dx, dy):
    """The parity case stays inside the frame; moved to the borders it must still match the padding."""
    expected, frames, _ = crop_case
    bbox = np.array(expected["track"]["bbox"]) + [dx, dy, dx, dy]
    track = {"frame": expected["track"]["frame"], "bbox": bbox}
    result = crop_track(frames, track, crop_scale=expected["crop_scale"])
    assert np.array_equal(result.crops, reference_crops(frames, track, expected["crop_scale"]))
    assert (result.crops == 110).all(axis=-1).any()  # the padding shows


@pytest.mark.parametrize("cs", [0.4, 0.1, 0.0, 1.0])
def test_window_equals_padded_frame_everywhere(cs):
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    empty = 0
    for _ in range(400):
        s = float(rng.uniform(1, 120))
        x = float(rng.uniform(-2.5 * s - 20, 130 + 2.5 * s + 20))
        y = float(rng.uniform(-2.5 * s - 20, 90 + 2.5 * s + 20))
        want = padded_window(image, x, y, s, cs)
        got = crop_window(image, x, y, s, cs)
        assert got.shape == want.shape, (x, y, s)
        assert np.array_equal(got, want), (x, y, s)
        if want.size:
            assert np.array_equal(crop_face(image, x, y, s, cs), cv2.resize(want, (224, 224)))
        else:
            empty += 1
            with pytest.raises(ValueError, match="empty crop window"):
                crop_face(image, x, y, s, cs)
    assert empty < 400


@pytest.mark.parametrize("x, y, s", [(65.0, 45.0, 10.3), (0.0, 0.0, 40.7), (129.9, 89.9, 25.5),
                                     (-10.2, 50.0, 30.0), (65.0, -20.6, 25.0), (300.0, 200.0, 200.0)])
def test_window_inside_and_across_borders(x, y, s):
    image = np.random.default_rng(3).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    want = padded_window(image, x, y, s, 0.4)
    assert np.array_equal(crop_window(image, x, y, s, 0.4), want)
    assert np.array_equal(crop_face(image, x, y, s, 0.4), cv2.resize(want, (224, 224)))


def test_centre_far_outside_gives_the_reference_empty_window():
    """A negative slice start wraps around in numpy; the reference's window is then empty."""
    image = np.zeros((90, 130, 3), np.uint8)
    assert padded_window(image, -30.2, 50.0, 30.0, 0.4).size == 0
    assert crop_window(image, -30.2, 50.0, 30.0, 0.4).size == 0
    with pytest.raises(ValueError, match="empty crop window"):
        crop_face(image, -30.2, 50.0, 30.0, 0.4)


def test_streaming_cropper_matches_crop_track(crop_case):
    expected, frames, crops = crop_case
    cropper = TrackCropper(expected["track"], expected["crop_scale"])
    got = {}
    for frame_no, image in enumerate(frames):  # one pass over the video
        crop = cropper.crop(frame_no, image)
        assert (crop is None) == (not cropper.covers(frame_no))
        if crop is not None:
            got[frame_no] = crop
    assert sorted(got) == [int(f) for f in expected["track"]["frame"]]
    assert np.array_equal(np.stack([got[f] for f in sorted(got)]), crops)
    assert cropper.first == expected["track"]["frame"][0] and cropper.last == expected["track"]["frame"][-1]


def test_frames_can_be_a_lazy_source(crop_case):
    expected, frames, crops = crop_case

    class Lazy:
        def __init__(self):
            self.asked: list[int] = []

        def __getitem__(self, i: int) -> np.ndarray:
            self.asked.append(i)
            return frames[i]

    lazy = Lazy()
    result = crop_track(lazy, expected["track"], crop_scale=expected["crop_scale"])
    assert lazy.asked == [int(f) for f in expected["track"]["frame"]]
    assert np.array_equal(result.crops, crops)
    as_list = crop_track(list(frames), expected["track"], crop_scale=expected["crop_scale"])
    assert np.array_equal(as_list.crops, crops)


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
def test_short_track_and_arrays_as_input():
    """Tracks shorter than the median kernel (zero-padded by medfilt) and numpy inputs, as in the reference."""
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (10, 120, 160, 3), dtype=np.uint8)
    track = {"frame": np.arange(1, 9), "bbox": np.array([[40.0 + i, 30.0, 100.0 + i, 95.0] for i in range(8)])}
    result = crop_track(frames, track, crop_scale=0.4)
    assert result.crops.shape == (8, 224, 224, 3)
    assert np.array_equal(result.crops, reference_crops(frames, track, 0.4))


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_tracks_of_six_frames_or_fewer_are_cropped(n):
    """At 6 boxes or fewer the reference's zero-padded 13-frame median makes every s 0 and
    its crop crashes (a long run with --min_track 5 met one and lost a chunk); here the
    window shrinks to fit, the boxes stay where the face is, and 7+ frames are unchanged."""
    from scipy import signal

    from syncnet.cropping import smooth_track

    rng = np.random.default_rng(n)
    frames = rng.integers(0, 256, (n + 2, 120, 160, 3), dtype=np.uint8)
    bbox = np.array([[40.0 + i, 30.0, 100.0 + i, 95.0] for i in range(n)])
    result = crop_track(frames, {"frame": np.arange(1, n + 1), "bbox": bbox}, crop_scale=0.4)
    assert result.crops.shape == (n, 224, 224, 3)
    assert (result.s > 30).all() and (np.abs(result.x - (70 + np.arange(n))) <= 2).all()
    assert signal.medfilt(bbox[:, 2] - bbox[:, 0], 13).max() == 0  # what the reference would have had
    seven = np.array([[40.0 + i, 30.0, 100.0 + i, 95.0] for i in range(7)])
    x7, _, s7 = smooth_track(seven)
    assert np.array_equal(x7, signal.medfilt((seven[:, 0] + seven[:, 2]) / 2, 13))


def test_window_from_a_part_of_the_frame_equals_the_whole_frame():
    """The crop pass may decode only the part of the picture the tracks read
    (`TrackCropper.extent`); crops from that part equal crops from the whole frame."""
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    track = {"frame": np.arange(40),
             "bbox": np.array([[20 + 2 * i, -15 + i, 70 + 2 * i, 35 + i] for i in range(40)], float)}
    cropper = TrackCropper(track, 0.4)
    top, bottom, left, right = cropper.extent(90, 130)
    assert 0 <= top < bottom <= 90 and 0 <= left < right <= 130 and (bottom - top) * (right - left) < 90 * 130
    part = image[top:bottom, left:right].copy()
    for i in range(40):
        want = cropper.crop(i, image)
        got = cropper.crop(i, part, origin=(top, left), frame_size=(90, 130))
        assert np.array_equal(got, want), i
    # One row fewer than the extent is not enough: refused, not silently wrong.
    with pytest.raises(ValueError, match="outside the part"):
        for i in range(40):
            cropper.crop(i, image[top + 1:bottom, left:right], origin=(top + 1, left), frame_size=(90, 130))


def test_extent_of_a_track_wholly_in_the_padding_is_none():
    track = {"frame": np.arange(10), "bbox": np.array([[-400.0, -400.0, -380.0, -380.0]] * 10)}
    assert TrackCropper(track, 0.4).extent(90, 130) is None
