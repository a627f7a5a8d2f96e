"""run_visualise.py's drawing: boxes on the decoder's own I420 pictures, and the raw I420 path of the media layer."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from syncnet import media
from syncnet.layout import Layout
from syncnet.visualise import draw_faces, write_visualisation
from syncnet.wav import write_wav

GREY = 120


def _bgr(frame_i420: np.ndarray, width: int, height: int) -> np.ndarray:
    """I420 -> BGR with OpenCV (even sizes only)."""
    return cv2.cvtColor(frame_i420.reshape(height * 3 // 2, width), cv2.COLOR_YUV2BGR_I420)


@pytest.mark.parametrize("size", [(200, 150), (201, 151)])
def test_i420_planes_are_views_of_the_frame(size):
    w, h = size
    frame = np.zeros(media.frame_shape(w, h, "yuv420p"), np.uint8)
    y, u, v = media.i420_planes(frame, w, h)
    assert y.shape == (h, w) and u.shape == v.shape == ((h + 1) // 2, (w + 1) // 2)
    y[:] = 1
    u[:] = 2
    v[:] = 3
    assert frame.size == y.size + u.size + v.size
    assert np.array_equal(np.bincount(frame), [0, y.size, u.size, v.size])


def test_boxes_are_green_when_confident_and_red_when_not():
    w, h = 200, 150
    frame = np.full(media.frame_shape(w, h, "yuv420p"), 128, np.uint8)
    media.i420_planes(frame, w, h)[0][:] = GREY
    draw_faces(frame, w, h, [{"track": 0, "conf": 10.0, "x": 50.0, "y": 80.0, "s": 30.0},
                             {"track": 1, "conf": -1.0, "x": 150.0, "y": 80.0, "s": 30.0}])
    bgr = _bgr(frame, w, h).astype(int)
    b, g, r = bgr[80, 21]  # the left edge of the confident box (x - s = 20, 3 pixels wide)
    assert g > 180 and r < 60 and b < 60
    b, g, r = bgr[80, 121]  # the unconfident one
    assert r > 180 and g < 60 and b < 60
    assert np.abs(bgr[80, 50] - GREY).max() <= 2  # inside the box: untouched
    assert bgr[49, 20:60].max() > 200  # the white label above the box


@pytest.mark.parametrize("size", [(160, 120), (161, 121)])
def test_visualisation_of_generated_tracks(tmp_path, size):
    """video_out.avi: as many frames as video.avi, sound kept, boxes drawn where the tracks are."""
    w, h = size
    n = 40
    layout = Layout(tmp_path, "v")
    for d in (layout.avi_dir, layout.work_dir):
        d.mkdir(parents=True)
    write_wav(layout.audio_wav, np.zeros(n * 640, np.int16))
    ramp = np.linspace(60, 180, w).astype(np.uint8)
    frames = np.broadcast_to(ramp[None, None, :, None], (n, h, w, 3)).copy()
    with media.VideoWriter(layout.video_avi, 25, (w, h), audio_wav=layout.audio_wav) as writer:
        writer.write_many(frames)
    track = {"frame": np.arange(n), "bbox": np.tile([20.0, 30.0, 80.0, 90.0], (n, 1))}
    proc = {"x": np.full(n, 50.0), "y": np.full(n, 60.0), "s": np.full(n, 30.0)}
    dists = np.full((n - 5, 31), 11.0, np.float32)
    dists[:, 15] = 1.0  # best at no shift, 10 below the median: confidence 10 -> green
    (layout.work("tracks.pckl")).write_bytes(pickle.dumps([{"track": track, "proc_track": proc}]))
    (layout.work("activesd.pckl")).write_bytes(pickle.dumps([dists]))

    out = write_visualisation(layout)
    info = media.probe(out)
    assert info.has_audio and info.display_size == (w, h) and info.video_codec == "mpeg4"
    drawn = np.concatenate(list(media.iter_frames(out, fps=25)))
    source = np.concatenate(list(media.iter_frames(layout.video_avi, fps=25)))
    assert len(drawn) == len(source) == n
    b, g, r = drawn[n // 2, 60, 21].astype(int)
    assert g > 150 and r < 100 and b < 100
    # Away from the box and its label the picture is the source's, up to re-encoding.
    assert np.abs(drawn[:, 100:, 90:].astype(int) - source[:, 100:, 90:]).mean() < 1.5


def test_yuv420p_decode_and_write_round_trip(media_dir, tmp_path):
    """The raw I420 path: the decoder's pictures, unconverted, written back unconverted."""
    src = media_dir / "talking_25fps_b.mp4"
    info = media.probe(src)
    w, h = info.display_size
    i420 = np.concatenate(list(media.iter_frames(src, fps=25, batch_size=8, pix_fmt="yuv420p")))
    bgr = np.concatenate(list(media.iter_frames(src, fps=25, batch_size=8)))
    assert i420.shape == (len(bgr), *media.frame_shape(w, h, "yuv420p"))
    assert np.abs(_bgr(i420[10], w, h).astype(int) - bgr[10]).mean() < 2.0
    with media.VideoWriter(tmp_path / "x.avi", 25, (w, h), pix_fmt="yuv420p") as writer:
        writer.write_many(i420)
        with pytest.raises(ValueError):
            writer.write_many(bgr[:1])
    again = np.concatenate(list(media.iter_frames(tmp_path / "x.avi", fps=25, pix_fmt="yuv420p")))
    assert len(again) == len(i420) and np.abs(again.astype(int) - i420).mean() < 1.5
