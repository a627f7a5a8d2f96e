"""The optional speed settings: --detect_every (which frames S3FD sees, what the others
hold) and --precision (checked, and close to fp32 on the reference's own inputs)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from syncnet.detection import Detections, FrameDetector
from syncnet.errors import InputError
from syncnet.options import FaceOptions
from syncnet.precision import check_precision
from tests.conftest import REPO


class FrameNumberDetector:
    """One box per frame whose x1 is the frame's number (painted into its pixels)."""

    def __init__(self):
        self.seen: list[int] = []

    def detect_batch(self, images_rgb, conf_th=0.9, scale=0.25):
        out = []
        for image in images_rgb:
            n = int(image[0, 0, 0])
            self.seen.append(n)
            out.append(np.array([[n, 0, n + 10, 10, 0.99]], np.float32))
        return out


def numbered_frames(first: int, count: int) -> np.ndarray:
    frames = np.zeros((count, 8, 8, 3), np.uint8)
    frames[:, 0, 0, :] = np.arange(first, first + count)[:, None]
    return frames


@pytest.mark.parametrize("every", [1, 2, 3, 5])
def test_detect_every_runs_s3fd_on_every_nth_frame_and_holds_its_boxes(every):
    det = FrameNumberDetector()
    find = FrameDetector(det, FaceOptions(detect_every=every))
    boxes = []
    for first in range(0, 23, 4):  # batches of 4: not a multiple of `every`
        boxes += find(numbered_frames(first, min(4, 23 - first)), first)
    assert det.seen == list(range(0, 23, every))
    assert find.frames_detected == len(det.seen)
    assert [int(b[0, 0]) for b in boxes] == [f - f % every for f in range(23)]


def test_a_resumed_run_holds_the_boxes_it_had():
    det = FrameNumberDetector()
    d = Detections()
    d.add_batch(FrameDetector(det, FaceOptions(detect_every=3))(numbered_frames(0, 8), 0))
    from syncnet.jobs.longvideo import _held_boxes

    held = _held_boxes(d, 8, 3)  # frames 6 and 7 held frame 6's box
    assert held is not None and int(held[0, 0]) == 6
    det.seen.clear()
    boxes = FrameDetector(det, FaceOptions(detect_every=3), held=held)(numbered_frames(8, 4), 8)
    assert det.seen == [9]
    assert [int(b[0, 0]) for b in boxes] == [6, 9, 9, 9]
    # Without the held boxes the first frame is detected rather than left empty.
    det.seen.clear()
    boxes = FrameDetector(det, FaceOptions(detect_every=3))(numbered_frames(8, 4), 8)
    assert sorted(det.seen) == [8, 9] and [int(b[0, 0]) for b in boxes] == [8, 9, 9, 9]


def test_precision_is_checked_against_the_device():
    assert check_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(InputError, match="CUDA"):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(InputError, match="unknown precision"):
        check_precision("int8", torch.device("cpu"))


def test_bf16_syncnet_stays_close_to_the_reference(parity_dir, syncnet_weights):
    """bf16 on the parity case: same offset, distances within a few hundredths."""
    from syncnet import evaluate_sync, load_syncnet

    case = parity_dir / "syncnet_eval"
    expected = json.loads((case / "expected.json").read_text())
    frames = np.load(case / "frames.npz")["bgr"]
    _, audio = wavfile.read(case / "audio.wav")
    model = load_syncnet(syncnet_weights, precision="bf16")
    r = evaluate_sync(model, frames, audio, vshift=expected["vshift"], batch_size=expected["batch_size"])
    dists = np.load(case / "dists.npy")
    assert r.offset == expected["offset"]
    change = np.abs(r.dists - dists).max()
    # Measured: 0.42 on distances of 89..200 and a confidence 0.005 lower; fp32 is within 1e-4.
    assert 0.01 < change < 0.01 * dists.max(), change
    assert abs(r.confidence - expected["confidence"]) < 0.1


def test_bf16_s3fd_finds_the_same_faces(parity_dir, s3fd_face_weights, media_dir):
    """On real frames with the face-biased stand-in, bf16 moves every prior's face score by
    less than 0.02 and, where fp32 scores above 0.5, its box by less than 4 px (measured on
    an AVX2 CPU: 0.0094 and 1.2 px); and each box the bf16 detector keeps is one of those.

    Which boxes NMS keeps is not compared: the stand-in's scores are dense (0.80-0.92 on a
    frame), so nearly every kept box beats a box it overlaps by less than bf16's error, and
    the other precision, or another CPU's kernels, may keep that one instead.
    """
    from detectors import S3FD
    from syncnet import media
    from tests.nms_ties import prior_maps

    frames = next(media.iter_frames(media_dir / "talking_25fps_a.mp4", batch_size=4))[..., ::-1]
    bf16 = S3FD(s3fd_face_weights, precision="bf16")
    h, w = frames.shape[1:3]
    size = np.array([w, h, w, h], np.float32)
    boxes32, scores32 = prior_maps(bf16.net, frames, 0.25, "fp32")
    boxes16, scores16 = prior_maps(bf16.net, frames, 0.25, "bf16")
    boxes32, boxes16 = boxes32 * size, boxes16 * size
    score_error = np.abs(scores16 - scores32).max()
    assert 1e-4 < score_error < 0.02  # bf16 did run (fp32 kernels differ by ~1e-6), and stayed close
    faces = scores32 > 0.5
    assert faces.sum() > 100
    assert np.abs(boxes16 - boxes32)[faces].max() < 4.0
    kept = bf16.detect_batch(frames, conf_th=0.8, scale=0.25)
    assert sum(len(k) for k in kept) > 0
    for boxes, priors, scores in zip(kept, boxes32, scores32):
        for box in boxes:
            near = np.abs(priors - box[:4]).max(axis=1) < 4.0
            assert (near & (np.abs(scores - box[4]) < 0.02)).any(), box


def test_fp16_on_the_cpu_is_one_clear_line(tmp_path, syncnet_weights):
    proc = subprocess.run([sys.executable, str(REPO / "run_syncnet.py"), "--videofile", str(tmp_path / "x.avi"),
                           "--precision", "fp16", "--device", "cpu", "--initial_model", str(syncnet_weights)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "fp16" in lines[0] and "CUDA" in lines[0]


def test_detect_every_is_a_recorded_parameter():
    from syncnet.jobs.longvideo import LongVideoOptions

    default = LongVideoOptions().result_parameters()
    assert not {"detect_every", "precision", "chunk_preset"} & set(default)
    opts = LongVideoOptions(faces=FaceOptions(min_track=5, min_face_size=10, detect_every=5), precision="bf16")
    assert opts.result_parameters()["detect_every"] == 5
    assert opts.result_parameters()["precision"] == "bf16"
