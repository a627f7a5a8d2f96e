"""The reference implementation's own outputs (../shared/parity) through the public API."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.io import wavfile

RTOL, ATOL = 1e-4, 1e-3


def test_syncnet_eval(parity_dir, syncnet_weights):
    from syncnet import evaluate_sync, load_syncnet

    case = parity_dir / "syncnet_eval"
    expected = json.loads((case / "expected.json").read_text())
    frames = np.load(case / "frames.npz")["bgr"]
    rate, audio = wavfile.read(case / "audio.wav")
    assert rate == 16000
    model = load_syncnet(syncnet_weights, device="cpu")
    result = evaluate_sync(model, frames, audio, vshift=expected["vshift"], batch_size=expected["batch_size"])
    assert result.offset == expected["offset"]
    np.testing.assert_allclose(result.confidence, expected["confidence"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(result.min_dist, expected["min_dist"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(result.median_dist, expected["median_dist"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(result.dists, np.load(case / "dists.npy"), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(result.framewise_conf, np.load(case / "framewise_conf.npy"), rtol=RTOL, atol=ATOL)
    assert result.n_frames == expected["n_frames"]


def test_syncnet_batch_size_does_not_change_results(parity_dir, syncnet_weights):
    from syncnet import evaluate_sync, load_syncnet

    case = parity_dir / "syncnet_eval"
    frames = np.load(case / "frames.npz")["bgr"][:40]
    _, audio = wavfile.read(case / "audio.wav")
    model = load_syncnet(syncnet_weights)
    a = evaluate_sync(model, frames, audio, batch_size=20)
    b = evaluate_sync(model, frames, audio, batch_size=7)
    assert a.offset == b.offset
    np.testing.assert_allclose(a.dists, b.dists, rtol=RTOL, atol=ATOL)


def test_s3fd_detect(parity_dir, s3fd_weights):
    """Same boxes, or (where flat image regions tie scores exactly) the boxes of another
    order of the ties (tests/nms_ties.py)."""
    from detectors import S3FD

    from .nms_ties import check_case

    case = parity_dir / "s3fd_detect"
    detector = S3FD(weights=s3fd_weights, device="cpu")
    for c in json.loads((case / "expected.json").read_text())["cases"]:
        check_case(detector, case, c)


def test_s3fd_batch_equals_single(parity_dir, s3fd_weights):
    from detectors import S3FD

    image = np.load(parity_dir / "s3fd_detect" / "image0.npz")["rgb"]
    frames = np.stack([image, image[:, ::-1].copy(), np.roll(image, 40, axis=0)])
    detector = S3FD(weights=s3fd_weights)
    batch = detector.detect_batch(frames, conf_th=0.5, scale=0.25)
    for frame, boxes in zip(frames, batch):
        single = detector.detect_faces(frame, conf_th=0.5, scales=[0.25])
        assert boxes.shape == single.shape
        np.testing.assert_allclose(boxes, single, rtol=RTOL, atol=1e-2)


def test_tracking(parity_dir):
    from syncnet import track_shot

    case = parity_dir / "tracking"
    scenefaces = json.loads((case / "input.json").read_text())["scenefaces"]
    expected = json.loads((case / "expected.json").read_text())
    before = json.dumps(scenefaces)
    tracks = track_shot(scenefaces, **expected["params"])
    assert json.dumps(scenefaces) == before, "track_shot must not modify its input"
    assert len(tracks) == len(expected["tracks"])
    for got, exp in zip(tracks, expected["tracks"]):
        assert np.array_equal(got["frame"], exp["frame"])
        np.testing.assert_allclose(got["bbox"], exp["bbox"], rtol=RTOL, atol=ATOL)


def test_crop(parity_dir):
    from syncnet import crop_track

    case = parity_dir / "crop"
    expected = json.loads((case / "expected.json").read_text())
    frames = np.load(case / "frames.npz")["bgr"]
    result = crop_track(frames, expected["track"], crop_scale=expected["crop_scale"])
    for key in ("x", "y", "s"):
        np.testing.assert_allclose(getattr(result, key), expected["smoothed"][key], rtol=RTOL, atol=ATOL)
    crops = np.load(case / "crops.npz")["bgr"]
    assert result.crops.shape == crops.shape and result.crops.dtype == np.uint8
    assert np.array_equal(result.crops, crops)


@pytest.mark.parametrize("shift", [(0, 0), (-300, -200), (250, 120)])
def test_crop_window_equals_padded_frame(shift):
    """The crop without padding the whole frame equals the reference's pad-and-slice."""
    import cv2

    from syncnet.cropping import crop_face

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    for x, y, s, cs in [(80 + shift[0], 60 + shift[1], 30.4, 0.4), (5, 3, 50.7, 0.4), (150, 110, 12.2, 0.1)]:
        bsi = int(s * (1 + 2 * cs))
        padded = np.pad(image, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(110, 110))
        my, mx = y + bsi, x + bsi
        face = padded[int(my - s):int(my + s * (1 + 2 * cs)), int(mx - s * (1 + cs)):int(mx + s * (1 + cs))]
        if face.size == 0:
            continue
        assert np.array_equal(crop_face(image, x, y, s, cs), cv2.resize(face, (224, 224)))
