"""Shot detection: scenedetect 0.5.1's ContentDetector behaviour on generated and real frames."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from syncnet import SceneDetector, detect_scenes
from syncnet.scenes import downscale_factor, scene_list_for_pickle

H, W = 72, 96


def pattern(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth colourful picture; two seeds give frames far apart in HSV."""
    small = np.random.default_rng(seed).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def shot(seed: int, n: int, h: int = H, w: int = W) -> np.ndarray:
    """n frames of one picture with a slight flicker, so frames differ but stay one shot."""
    base = pattern(seed, h, w).astype(np.int16)
    return np.stack([np.clip(base + (k % 3), 0, 255).astype(np.uint8) for k in range(n)])


def video(*shots: tuple[int, int]) -> np.ndarray:
    return np.concatenate([shot(seed, n) for seed, n in shots])


def test_one_cut_at_the_change():
    assert detect_scenes(video((1, 60), (2, 60))) == [(0, 60), (60, 120)]


def test_no_cut_is_one_scene():
    assert detect_scenes(shot(1, 50)) == [(0, 50)]


def test_cut_within_min_scene_len_of_the_previous_is_suppressed():
    assert detect_scenes(video((1, 30), (2, 10), (3, 30))) == [(0, 30), (30, 70)]
    # exactly min_scene_len frames apart is enough
    assert detect_scenes(video((1, 30), (2, 15), (3, 30))) == [(0, 30), (30, 45), (45, 75)]
    # suppression counts from the last kept cut, not the last frame above threshold
    assert detect_scenes(video((1, 30), (2, 10), (3, 10), (4, 30))) == [(0, 30), (30, 50), (50, 80)]


def test_first_cut_may_come_early():
    """scenedetect 0.5.1 has no previous cut at the start: a cut at frame 5 stands.

    (0.6's FlashFilter would count min_scene_len from frame 0 and drop it.)
    """
    assert detect_scenes(video((1, 5), (2, 40))) == [(0, 5), (5, 45)]


def test_batches_of_any_size_give_the_same_result():
    frames = video((1, 20), (2, 3), (3, 40), (4, 17), (5, 2), (6, 30))
    expected = detect_scenes(frames)
    assert len(expected) > 3
    for size in (1, 2, 7, 16, 33, len(frames)):
        detector = SceneDetector()
        for start in range(0, len(frames), size):
            detector.push(frames[start:start + size], start)
        assert detector.scenes(len(frames)) == expected
        assert detector.scenes() == expected


def test_frames_must_come_in_order():
    detector = SceneDetector()
    detector.push(shot(1, 10), 0)
    with pytest.raises(ValueError, match="in order"):
        detector.push(shot(1, 10), 11)


def test_restore_continues_a_stopped_run():
    frames = video((1, 20), (2, 30), (3, 25), (4, 25))
    expected = detect_scenes(frames)
    first = SceneDetector()
    first.push(frames[:60], 0)
    again = SceneDetector()
    again.restore(first.cuts, 60)
    again.push(frames[59:], 59)  # the frame before the resume point, as restore asks
    assert again.scenes(len(frames)) == expected


@pytest.mark.parametrize("width, factor", [(100, 1), (399, 1), (400, 2), (599, 2), (600, 3), (844, 3),
                                           (899, 3), (900, 4), (1280, 5), (1920, 6), (2560, 8), (3840, 12)])
def test_downscale_factor_is_scenedetect_051s(width, factor):
    assert downscale_factor(width) == factor


def test_frames_are_subsampled_not_resized():
    """0.5.1 keeps every d-th row and column: a change only in the other rows goes unseen."""
    def frames(width: int) -> np.ndarray:
        a = np.full((60, width, 3), 100, np.uint8)
        b = a.copy()
        b[np.arange(60) % 3 != 0] = (20, 220, 40)
        return np.stack([a] * 20 + [b] * 20)

    assert SceneDetector(640).factor == 3
    assert detect_scenes(frames(640)) == [(0, 40)]  # rows 0, 3, 6, ... never change
    assert detect_scenes(frames(320)) == [(0, 20), (20, 40)]  # no downscale below 400 px


def test_scene_list_pickle_reads_like_the_reference():
    content = pickle.loads(pickle.dumps(scene_list_for_pickle([(0, 60), (60, 125)], 25.0)))
    assert [(a.frame_num, b.frame_num) for a, b in content] == [(0, 60), (60, 125)]
    assert content[1][0].get_seconds() == pytest.approx(2.4)
    assert content[0][0].framerate == 25.0


def _frames(path, size: tuple[int, int] | None = None):
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame if size is None else cv2.resize(frame, size)
    finally:
        cap.release()


def _push_all(detector: SceneDetector, frames, start: int = 0, batch: int = 16) -> int:
    buf: list[np.ndarray] = []
    for frame in frames:
        buf.append(frame)
        if len(buf) == batch:
            detector.push(np.stack(buf), start)
            start += len(buf)
            buf = []
    if buf:
        detector.push(np.stack(buf), start)
        start += len(buf)
    return start


def test_real_clip_is_one_scene(media_dir):
    detector = SceneDetector()
    n = _push_all(detector, _frames(media_dir / "talking_25fps_a.mp4"))
    assert n > 100
    assert detector.factor == downscale_factor(844)
    assert detector.scenes(n) == [(0, n)]


def test_two_real_clips_back_to_back_cut_at_the_junction(media_dir):
    detector = SceneDetector()
    size = (640, 640)
    n_a = _push_all(detector, _frames(media_dir / "talking_25fps_a.mp4", size))
    n = _push_all(detector, _frames(media_dir / "talking_25fps_b.mp4", size), start=n_a)
    assert detector.scenes(n) == [(0, n_a), (n_a, n)]
