"""The media layer on generated and real clips, and the chunk plans."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from syncnet import media
from syncnet.chunking import plan_silence_chunks, plan_time_chunks
from syncnet.errors import InputError, MediaError
from syncnet.wav import read_wav, write_wav
from testkit.mediagen import barcode_frame, encode, read_barcode


@pytest.fixture(scope="module")
def clip30(tmp_path_factory):
    """4 s at 30 fps, barcode = source frame number, a 440 Hz tone."""
    path = tmp_path_factory.mktemp("m") / "clip30.mp4"
    rate = 48000
    t = np.arange(4 * rate) / rate
    encode(path, [barcode_frame(k) for k in range(120)], Fraction(30),
           (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate)
    return path


def test_probe_real_clip(media_dir):
    info = media.probe(media_dir / "talking_25fps_a.mp4")
    assert (info.width, info.height, info.fps) == (844, 844, 25.0)
    assert info.video_codec == "h264" and not info.variable_frame_rate
    assert info.audio[0].sample_rate == 44100 and info.audio[0].codec == "aac"
    assert info.duration == pytest.approx(5.04, abs=0.05)


def test_frames_are_streamed_in_batches(media_dir):
    batches = list(media.iter_frames(media_dir / "talking_25fps_b.mp4", fps=25, batch_size=16))
    assert all(b.shape[0] <= 16 and b.shape[1:] == (524, 524, 3) and b.dtype == np.uint8 for b in batches)
    assert sum(len(b) for b in batches) == 122


def test_frames_match_opencv_decode(media_dir):
    import cv2

    cap = cv2.VideoCapture(str(media_dir / "talking_25fps_a.mp4"))
    ok, first = cap.read()
    cap.release()
    ours = next(media.iter_frames(media_dir / "talking_25fps_a.mp4", fps=25, batch_size=1))[0]
    assert ok and np.abs(ours.astype(int) - first.astype(int)).mean() < 2.0


def test_resample_30_to_25_keeps_time(clip30):
    frames = np.concatenate(list(media.iter_frames(clip30, fps=25)))
    assert len(frames) == 100
    for k in range(0, 100, 7):
        # output frame k shows t = k/25; the nearest source frame is round(k*30/25)
        assert abs(read_barcode(frames[k]) - k * 30 / 25) <= 0.5 + 1e-9


def test_frame_range_equals_slice_of_full_decode(clip30):
    full = np.concatenate(list(media.iter_frames(clip30, fps=25)))
    part = np.concatenate(list(media.iter_frames(clip30, fps=25, start=2.4, end=3.6)))
    assert [read_barcode(f) for f in part] == [read_barcode(f) for f in full[60:90]]


def test_avi_copy_holds_the_frames_it_yields(clip30, tmp_path):
    """One decode, two outputs: the BGR batches are those of a plain decode, and the AVI
    (the reference's video.avi: MPEG-4/XVID, 25 fps, PCM sound) holds the same frames."""
    wav = write_wav(tmp_path / "a.wav", np.zeros(16000 * 4, np.int16))
    copy = media.AviCopy(tmp_path / "video.avi", wav)
    plain = np.concatenate(list(media.iter_frames(clip30, fps=25, batch_size=7)))
    both = np.concatenate(list(media.iter_frames(clip30, fps=25, batch_size=7, copy_to=copy)))
    assert np.array_equal(both, plain)
    assert not copy.tmp.exists()
    info = media.probe(copy.path)
    assert info.video_codec == "mpeg4" and info.fps == 25.0 and info.has_audio
    assert info.audio[0].codec == "pcm_s16le"
    again = np.concatenate(list(media.iter_frames(copy.path, fps=25)))
    assert len(again) == len(plain) == 100
    assert [read_barcode(f) for f in again[::9]] == [read_barcode(f) for f in plain[::9]]
    # A range starts the copy at its own frame 0.
    part = media.AviCopy(tmp_path / "part.avi")
    frames = np.concatenate(list(media.iter_frames(clip30, fps=25, start=2.4, copy_to=part)))
    assert len(frames) == 40 and media.probe(part.path).duration == pytest.approx(1.6, abs=0.05)


def test_avi_copy_is_removed_when_decoding_stops_early(clip30, tmp_path):
    copy = media.AviCopy(tmp_path / "video.avi")
    frames = media.iter_frames(clip30, fps=25, batch_size=4, copy_to=copy)
    next(frames)
    frames.close()
    assert not copy.path.exists() and not copy.tmp.exists()
    with pytest.raises(ValueError):
        next(media.iter_frames(clip30, fps=None, copy_to=copy))


def test_read_frames_equals_streamed_decode(clip30, monkeypatch):
    streamed = np.concatenate(list(media.iter_frames(clip30, fps=25)))
    assert np.array_equal(media.read_frames(clip30, fps=25), streamed)
    # A duration that undercounts the frames: the array grows to hold them all.
    info = media.probe(clip30)
    info.duration = 0.5
    assert np.array_equal(media.read_frames(clip30, fps=25, info=info), streamed)


def test_read_audio_and_wav(clip30, tmp_path):
    audio = media.read_audio(clip30, 16000)
    assert audio.dtype == np.int16 and len(audio) == pytest.approx(64000, abs=400)
    wav = media.extract_audio(clip30, tmp_path / "x.wav", 16000, 1)
    rate, data = read_wav(wav)
    assert rate == 16000 and np.array_equal(data[:1000], audio[:1000])
    part = media.read_audio(clip30, 16000, start=1.0, end=2.0)
    assert len(part) == pytest.approx(16000, abs=20)
    assert np.abs(part[:4000].astype(int) - audio[16000:20000].astype(int)).max() < 200


def test_silences(tmp_path):
    rate = 48000
    audio = np.zeros(10 * rate)
    t = np.arange(2 * rate) / rate
    audio[1 * rate:3 * rate] = 0.5 * np.sin(2 * np.pi * 500 * t)
    audio[6 * rate:8 * rate] = 0.5 * np.sin(2 * np.pi * 500 * t)
    path = encode(tmp_path / "s.mp4", [barcode_frame(k) for k in range(250)], Fraction(25),
                  (audio * 32767).astype(np.int16), rate)
    sil = media.detect_silences(path, -30, 1.0)
    assert len(sil) == 3
    for (a, b), (ea, eb) in zip(sil, [(0, 1), (3, 6), (8, 10)]):
        assert a == pytest.approx(ea, abs=0.05) and b == pytest.approx(eb, abs=0.1)


def test_cut_rejects_empty_range_and_reports_ffmpeg_errors(clip30, tmp_path):
    with pytest.raises(InputError):
        media.cut(clip30, tmp_path / "x.mp4", 2.0, 2.001)
    with pytest.raises(MediaError) as err:
        media.run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), "-f", "null", "-"], "decode it")
    assert "missing.mp4" in str(err.value)


@pytest.mark.parametrize("total,duration,overlap,expected", [
    (100, 30, 5, [(0, 30), (25, 55), (50, 80), (75, 100)]),
    (80, 30, 5, [(0, 30), (25, 55), (50, 80)]),
    (81, 30, 5, [(0, 30), (25, 55), (50, 80), (75, 81)]),
    (12, 30, 5, [(0, 12)]),
    (30, 30, 5, [(0, 30)]),
    (10, 4, 0, [(0, 4), (4, 8), (8, 10)]),
    (7, 3, 2.5, [(0, 3), (0.5, 3.5), (1, 4), (1.5, 4.5), (2, 5), (2.5, 5.5), (3, 6), (3.5, 6.5), (4, 7)]),
])
def test_time_plans(total, duration, overlap, expected):
    chunks = plan_time_chunks(total, duration, overlap)
    assert [c.start for c in chunks] == pytest.approx([a for a, _ in expected])
    assert [c.end for c in chunks] == pytest.approx([b for _, b in expected])
    assert [c.name for c in chunks][:2] == ["chunk_000", "chunk_001"][: len(chunks)]
    for a, b in zip(chunks, chunks[1:]):
        assert b.start > a.start and b.end > a.end  # none inside another
        assert b.start <= a.end  # no gap


def test_silence_plans():
    chunks = plan_silence_chunks(60, [(9, 11), (12, 13), (29, 31), (57, 58)], min_chunk=5)
    assert [(c.start, c.end) for c in chunks] == [(0, 10), (10, 30), (30, 60)]
    assert plan_silence_chunks(20, [], 5)[0].end == 20
    with pytest.raises(InputError):
        plan_time_chunks(0.3, 30, 5)


@pytest.mark.parametrize("clip", ["talking_25fps_a.mp4", "talking_25fps_b.mp4"])
def test_region_decode_equals_slice_of_full_decode(media_dir, clip):
    """A region is cut before the conversion to BGR; for 8-bit YUV at even offsets and
    sizes that is exactly the slice of the converted frame (what the crop pass relies on)."""
    path = media_dir / clip
    info = media.probe(path)
    assert info.pix_fmt == "yuv420p" and media.region_exact(info)
    w, h = info.display_size
    full = np.concatenate(list(media.iter_frames(path, batch_size=16, info=info)))[:40]
    rng = np.random.default_rng(5)
    for _ in range(4):
        top, left = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
        region = media.even_region(top, top + int(rng.integers(1, h - top)), left,
                                   left + int(rng.integers(1, w - left)), w, h)
        assert region.top <= top and region.left <= left and region.bottom <= h and region.right <= w
        part = np.concatenate(list(media.iter_frames(path, batch_size=16, info=info, region=region)))[:40]
        assert part.shape == (40, region.height, region.width, 3)
        assert np.array_equal(part, full[:, region.top:region.bottom, region.left:region.right]), region


def test_region_with_avi_copy_keeps_the_whole_picture(clip30, tmp_path):
    info = media.probe(clip30)
    region = media.Region(left=20, top=10, width=60, height=40)
    copy = media.AviCopy(tmp_path / "video.avi")
    part = np.concatenate(list(media.iter_frames(clip30, batch_size=8, info=info, region=region, copy_to=copy)))
    assert part.shape == (100, 40, 60, 3)
    assert media.probe(copy.path).display_size == info.display_size


def test_region_is_checked_and_not_used_where_it_would_not_be_exact(clip30):
    with pytest.raises(ValueError, match="even-aligned"):
        next(media.iter_frames(clip30, region=media.Region(left=1, top=0, width=10, height=10)))
    with pytest.raises(ValueError, match="even-aligned"):
        next(media.iter_frames(clip30, region=media.Region(left=0, top=0, width=400, height=10)))
    info = media.probe(clip30)
    assert media.region_exact(info)
    info.pix_fmt = "yuv420p10le"  # dithered to 8 bits by position: a region would differ
    assert not media.region_exact(info)
    info.pix_fmt, info.width = "yuv420p", 161  # odd sizes: not measured exact
    assert not media.region_exact(info)


def test_region_of_a_rotated_video_is_in_displayed_coordinates(clip30, tmp_path):
    """A phone video stored landscape and shown portrait: the region is cut after FFmpeg
    turns the picture, so it is a part of the frames the pipeline sees."""
    import subprocess

    rotated = tmp_path / "rotated.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip30), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(rotated)], check=True)
    info = media.probe(rotated)
    assert info.display_size == (120, 160) and media.region_exact(info)
    full = np.concatenate(list(media.iter_frames(rotated, batch_size=16, info=info)))
    region = media.Region(left=40, top=100, width=70, height=56)  # reaches past the stored 120 rows
    part = np.concatenate(list(media.iter_frames(rotated, batch_size=16, info=info, region=region)))
    assert np.array_equal(part, full[:, 100:156, 40:110])


def test_failed_writes_leave_no_temporary_and_the_old_file_intact(clip30, tmp_path):
    """cut, extract_audio and VideoWriter write under a temporary name: when FFmpeg fails
    the file already there stays as it was and no temporary is left behind."""
    import time

    for name in ("cut.mp4", "audio.wav", "video.avi"):
        (tmp_path / name).write_bytes(b"old")
    with pytest.raises(MediaError):
        media.cut(clip30, tmp_path / "cut.mp4", 0.5, 1.5, preset="no-such-preset")
    with pytest.raises(MediaError):
        media.extract_audio(clip30, tmp_path / "audio.wav", channels=100)
    # An encoder that dies after it has started writing its temporary file.
    writer = media.VideoWriter(tmp_path / "video.avi", 25, (64, 48))
    writer.write_many(np.zeros((50, 48, 64, 3), np.uint8))
    deadline = time.monotonic() + 20
    while not writer.tmp.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.tmp.exists()
    writer.proc.kill()
    with pytest.raises(MediaError):
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audio.wav", "cut.mp4", "video.avi"]
    assert all((tmp_path / name).read_bytes() == b"old" for name in ("cut.mp4", "audio.wav", "video.avi"))
