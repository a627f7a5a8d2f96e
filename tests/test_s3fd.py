"""S3FD: the reference's boxes on the parity case, the batched form, weight loading, and the
vectorised post-processing against a plain port of the reference's loops."""
from __future__ import annotations

import importlib.util
import json
from itertools import product

import cv2
import numpy as np
import pytest
import torch

from detectors import S3FD
from detectors.s3fd import box_utils
from detectors.s3fd.net import S3FDNet
from syncnet.errors import InputError, WeightsError

from .conftest import PARITY

# --- the reference's loops, ported as plainly as possible (test-only) ------------------------

def _ref_nms(boxes, scores, overlap=0.5, top_k=200):
    """`box_utils.nms` of the reference: greedy, one kept box per iteration."""
    keep = scores.new(scores.size(0)).zero_().long()
    if boxes.numel() == 0:
        return keep, 0
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = torch.mul(x2 - x1, y2 - y1)
    _, idx = scores.sort(0)
    idx = idx[-top_k:]
    count = 0
    while idx.numel() > 0:
        i = idx[-1]
        keep[count] = i
        count += 1
        if idx.size(0) == 1:
            break
        idx = idx[:-1]
        xx1 = torch.clamp(torch.index_select(x1, 0, idx), min=x1[i])
        yy1 = torch.clamp(torch.index_select(y1, 0, idx), min=y1[i])
        xx2 = torch.clamp(torch.index_select(x2, 0, idx), max=x2[i])
        yy2 = torch.clamp(torch.index_select(y2, 0, idx), max=y2[i])
        w = torch.clamp(xx2 - xx1, min=0.0)
        h = torch.clamp(yy2 - yy1, min=0.0)
        inter = w * h
        union = (torch.index_select(area, 0, idx) - inter) + area[i]
        idx = idx[(inter / union).le(overlap)]
    return keep, count


def _ref_decode(loc, priors):
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * 0.1 * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * 0.2)), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def _ref_detect(loc, conf, priors):
    """`Detect` of the reference for one image, face class: (750, 5) rows score, x1, y1, x2, y2."""
    boxes = _ref_decode(loc, priors)
    c_mask = conf[:, 1].gt(0.05)
    scores = conf[:, 1][c_mask]
    boxes_ = boxes[c_mask.unsqueeze(1).expand_as(boxes)].view(-1, 4)
    output = torch.zeros(750, 5)
    ids, count = _ref_nms(boxes_, scores, 0.3, 5000)
    count = count if count < 750 else 750
    output[:count] = torch.cat((scores[ids[:count]].unsqueeze(1), boxes_[ids[:count]]), 1)
    return output


def _ref_read(output, conf_th):
    """`detect_faces`' reading loop over Detect's rows -> (N, 5) x1, y1, x2, y2, score; it stops
    at the end of the 750 rows where the reference raises IndexError."""
    rows = []
    j = 0
    while j < 750 and output[j, 0] > conf_th:
        rows.append(torch.cat((output[j, 1:], output[j, :1])))
        j += 1
    return torch.stack(rows) if rows else torch.zeros((0, 5))


def _ref_final_nms(dets, thresh):
    """`nms_` of the reference (py-faster-rcnn's CPU NMS without the +1)."""
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
    return np.array(keep, dtype=np.intp)


def _ref_priors(imh, imw, feature_maps):
    mean = []
    for k, (feath, featw) in enumerate(feature_maps):
        step, min_size = (4, 8, 16, 32, 64, 128)[k], (16, 32, 64, 128, 256, 512)[k]
        for i, j in product(range(feath), range(featw)):
            mean += [(j + 0.5) / (imw / step), (i + 0.5) / (imh / step), min_size / imw, min_size / imh]
    return torch.FloatTensor(mean).view(-1, 4)


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector(s3fd_weights) -> S3FD:
    return S3FD(weights=s3fd_weights, device="cpu")


@pytest.fixture(scope="module")
def image0(parity_dir) -> np.ndarray:
    return np.load(parity_dir / "s3fd_detect" / "image0.npz")["rgb"]


def _make_weights_module():
    spec = importlib.util.spec_from_file_location("make_weights", PARITY / "make_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def firing_weights(tmp_path_factory, parity_dir):
    """Stand-in weights with a face bias of 6: every prior scores above 0.99, not all alike
    (with 20 they all round to 1.0 and the tie order bunches the 5000 candidates)."""
    path = tmp_path_factory.mktemp("w") / "s3fd_bias6.pth"
    torch.save(_make_weights_module().state_dict("s3fd", 0, face_bias=6.0), path)
    return path


# --- parity -------------------------------------------------------------------------------

def test_detect_faces_equals_reference_loops(detector, image0):
    """The whole post-processing against the reference's loops on the same network outputs,
    several thresholds and two scales: bit for bit."""
    image0 = np.ascontiguousarray(image0[150:550, 100:600])
    h, w = image0.shape[:2]
    rows_at = {}
    for s in (0.25, 0.5):
        scaled = cv2.resize(image0, dsize=(0, 0), fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        chw = np.swapaxes(np.swapaxes(scaled, 1, 2), 1, 0)[[2, 1, 0]].astype("float32")
        chw -= np.array([104.0, 117.0, 123.0], np.float32)[:, None, None]
        x = torch.from_numpy(chw[[2, 1, 0]]).unsqueeze(0)
        with torch.no_grad():
            loc, conf, sizes = detector.net(x)
        rows_at[s] = _ref_detect(loc[0], conf[0], _ref_priors(x.shape[2], x.shape[3], sizes))
    scale = torch.Tensor([w, h, w, h])
    for conf_th, scales in ((0.5, [0.25]), (0.1, [0.25, 0.5]), (0.6, [0.5])):
        stacked = []
        for s in scales:
            rows = _ref_read(rows_at[s], conf_th)
            stacked += [(*(r[:4] * scale).numpy(), float(r[4])) for r in rows]
        dets = np.array(stacked, dtype=np.float64).reshape(-1, 5)
        expected = dets[_ref_final_nms(dets, 0.1)].astype(np.float32)
        got = detector.detect_faces(image0, conf_th=conf_th, scales=scales)
        assert len(got) > 0
        np.testing.assert_array_equal(got, expected)


# --- batched form -------------------------------------------------------------------------

def test_detect_batch_equals_detect_faces(detector, image0):
    frames = np.stack([image0, image0[:, ::-1], np.roll(image0, 40, axis=0)])
    batch = detector.detect_batch(frames, conf_th=0.3, scale=0.25)
    assert len(batch) == len(frames)
    for frame, boxes in zip(frames, batch):
        np.testing.assert_array_equal(boxes, detector.detect_faces(frame, conf_th=0.3, scales=[0.25]))
    as_list = detector.detect_batch(list(frames[:2]), conf_th=0.3, scale=0.25)
    for a, b in zip(as_list, batch):
        np.testing.assert_array_equal(a, b)
    assert detector.detect_batch([], conf_th=0.3) == []


def test_bad_images(detector, image0):
    with pytest.raises(InputError, match="too small"):
        detector.detect_faces(image0[:100, :100], scales=[0.25])
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        detector.detect_faces(image0[..., 0])
    with pytest.raises(InputError, match="one size"):
        detector.detect_batch([image0, image0[:600]])
    with pytest.raises(InputError, match="positive"):
        detector.detect_faces(image0, scales=[0])
    assert detector.detect_faces(image0, scales=[]).shape == (0, 5)


# --- weights ------------------------------------------------------------------------------

def test_network_matches_published_manifest():
    manifest = json.loads((PARITY / "manifest_s3fd.json").read_text())
    state = S3FDNet().state_dict()
    assert [[k, list(v.shape)] for k, v in state.items()] == manifest["keys"]


def test_network_outputs():
    loc, conf, sizes = S3FDNet().eval()(torch.zeros(2, 3, 64, 96))
    assert sizes == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2), (1, 1)]
    n = sum(h * w for h, w in sizes)
    assert loc.shape == (2, n, 4) and conf.shape == (2, n, 2)
    torch.testing.assert_close(conf.sum(-1), torch.ones(2, n))


def test_counters_are_accepted(s3fd_weights, tmp_path, detector):
    state = torch.load(s3fd_weights, weights_only=True)
    state["vgg.0.num_batches_tracked"] = torch.tensor(0)
    path = tmp_path / "with_counters.pth"
    torch.save(state, path)
    loaded = S3FD(weights=path).net.state_dict()
    assert loaded.keys() == detector.net.state_dict().keys()
    for key, value in detector.net.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_wrong_weights_files(syncnet_weights, s3fd_weights, tmp_path):
    with pytest.raises(WeightsError, match="does not hold S3FD weights") as err:
        S3FD(weights=syncnet_weights)
    assert str(syncnet_weights) in str(err.value)

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(s3fd_weights.read_bytes()[:100_000])
    with pytest.raises(WeightsError) as err:
        S3FD(weights=truncated)
    assert str(truncated) in str(err.value)

    text = tmp_path / "text.pth"
    text.write_text("not weights\n")
    with pytest.raises(WeightsError) as err:
        S3FD(weights=text)
    assert str(text) in str(err.value)

    missing = tmp_path / "missing.pth"
    with pytest.raises(WeightsError, match="not found") as err:
        S3FD(weights=missing)
    assert str(missing) in str(err.value)


def test_devices(s3fd_weights):
    with pytest.raises(InputError, match="unknown device"):
        S3FD(weights=s3fd_weights, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            S3FD(weights=s3fd_weights, device="cuda:0")


# --- more than 750 boxes ------------------------------------------------------------------

def test_more_than_750_boxes_do_not_crash(firing_weights):
    """When Detect keeps 750 boxes above the threshold, the reference's reading loop runs off
    the end of its output (IndexError); here the 750 rows are read and merged."""
    image = np.random.default_rng(0).integers(0, 256, (416, 416, 3), dtype=np.uint8)
    det = S3FD(weights=firing_weights)
    x = torch.from_numpy(image).float().permute(2, 0, 1)[None] - torch.tensor([123.0, 117.0, 104.0])[:, None, None]
    with torch.no_grad():
        loc, conf, sizes = det.net(x)
    assert len(box_utils.detect(loc[0], conf[0], box_utils.prior_boxes(416, 416, sizes), 0.01)) == 750
    boxes = det.detect_faces(image, conf_th=0.01, scales=[1])
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 5 and 0 < len(boxes) <= 750


# --- post-processing against the reference's loops on random data ------------------------

def test_priors_equal_reference():
    sizes = [(45, 60), (23, 30), (12, 15), (6, 8), (3, 4), (2, 2)]
    torch.testing.assert_close(box_utils.prior_boxes(179, 237, sizes), _ref_priors(179, 237, sizes),
                               rtol=0, atol=0)


def _random_outputs(rng, n_priors, tie_levels):
    loc = torch.from_numpy(rng.standard_normal((n_priors, 4)).astype(np.float32))
    face = np.clip(rng.uniform(-0.2, 1.0, n_priors), 0.0, 1.0)
    if tie_levels:
        face = np.round(face * tie_levels) / tie_levels
    face = torch.from_numpy(face.astype(np.float32))
    return loc, torch.stack((1 - face, face), 1)


@pytest.mark.parametrize("tie_levels", [0, 16])
def test_detect_equals_reference_loops(tie_levels):
    """Over 5000 candidates (the top-k cut), many exact ties, thresholds equal to scores, and
    at the low threshold more than 750 kept boxes."""
    sizes = [(80, 80), (40, 40), (20, 20), (10, 10), (5, 5), (3, 3)]
    priors = box_utils.prior_boxes(320, 320, sizes)
    loc, conf = _random_outputs(np.random.default_rng(tie_levels), len(priors), tie_levels)
    output = _ref_detect(loc, conf, priors)
    for conf_th in (0.0, 0.3, 0.75):
        got = box_utils.detect(loc, conf, priors, conf_th)
        np.testing.assert_array_equal(got, _ref_read(output, conf_th).numpy())
        if conf_th == 0.0:
            assert len(got) == 750


@pytest.mark.parametrize("seed", range(4))
def test_final_nms_equals_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.uniform(0, 400, (n, 2))
    wh = rng.uniform(5, 120, (n, 2))
    scores = np.round(rng.uniform(0.5, 1.0, n) * 20) / 20  # many ties
    dets = np.concatenate([xy, xy + wh, scores[:, None]], 1).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(box_utils.final_nms(dets, 0.1), _ref_final_nms(dets, 0.1))
    np.testing.assert_array_equal(box_utils.final_nms(dets, 0.5), _ref_final_nms(dets, 0.5))
    assert box_utils.final_nms(np.zeros((0, 5))).shape == (0,)
