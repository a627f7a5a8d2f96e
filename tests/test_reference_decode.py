"""--reference_decode: the reference's own decode path, exactly.

syncnet.media.reference is checked against the reference's commands written out
here a second time from its sources (run_pipeline.py, SyncNetInstance.evaluate),
and against the parity case that stores the reference's own decode of clip.mp4.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from syncnet.media import reference
from syncnet.wav import read_wav
from testkit.doubles import FixedBoxDetector
from tests.conftest import REPO


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _reference_ffmpeg(*args) -> None:
    """One of the reference's commands as it runs it (its own argument order)."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *map(str, args)], check=True, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def bias_tool():
    spec = importlib.util.spec_from_file_location("reference_bias", REPO / "tools" / "reference_bias.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def flash30(tmp_path_factory, bias_tool) -> Path:
    """The reference_bias tool's flash-and-beep clip at 30 fps (flash and beep at 2.000 s)."""
    src = tmp_path_factory.mktemp("flash30") / "source.mp4"
    bias_tool.make_clip(src, Fraction(30))
    return src


def test_functions_write_what_the_reference_commands_write(flash30, tmp_path):
    """run_pipeline.py's three commands, byte for byte: the AVI, every JPEG, the WAV."""
    ref, ours = tmp_path / "ref", tmp_path / "ours"
    (ref / "frames").mkdir(parents=True)
    ours.mkdir()
    _reference_ffmpeg("-i", flash30, "-qscale:v", "2", "-async", "1", "-r", "25", ref / "video.avi")
    _reference_ffmpeg("-i", ref / "video.avi", "-qscale:v", "2", "-threads", "1", "-f", "image2",
                      ref / "frames" / "%06d.jpg")
    _reference_ffmpeg("-i", ref / "video.avi", "-ac", "1", "-vn", "-acodec", "pcm_s16le", "-ar", "16000",
                      ref / "audio.wav")

    avi = reference.convert_like_reference(flash30, ours / "video.avi")
    assert _sha(avi) == _sha(ref / "video.avi")
    jpegs = reference.dump_jpegs(avi, ours / "frames", qscale=reference.PIPELINE_JPEG_QSCALE)
    ref_jpegs = sorted((ref / "frames").glob("*.jpg"))
    assert [p.name for p in jpegs] == [p.name for p in ref_jpegs] and len(jpegs) >= 100
    assert [_sha(p) for p in jpegs] == [_sha(p) for p in ref_jpegs]
    wav = reference.extract_sound_like_reference(avi, ours / "audio.wav", async_=False)
    assert _sha(wav) == _sha(ref / "audio.wav")


def test_streamed_jpeg_frames_batch_and_leave_nothing(flash30, tmp_path, bias_tool):
    avi = reference.convert_like_reference(flash30, tmp_path / "video.avi")
    work = tmp_path / "work"
    batches = list(reference.iter_jpeg_frames(avi, work, qscale=2, batch_size=32))
    assert [len(b) for b in batches[:-1]] == [32] * (len(batches) - 1) and 0 < len(batches[-1]) <= 32
    assert sum(map(len, batches)) == len(reference.dump_jpegs(avi, tmp_path / "all", qscale=2))
    assert batches[0].dtype == np.uint8 and batches[0].shape[1:] == (120, 160, 3)
    assert list(work.iterdir()) == []  # every JPEG and the dump folder are gone
    frames = np.concatenate(batches)
    # The reference's flash frame on this FFmpeg, as tools/reference_bias.py measures it.
    (tmp_path / "tool").mkdir()
    assert bias_tool.flash_index(frames) == bias_tool.reference_path(flash30, tmp_path / "tool")[0]
    # Each JPEG is deleted once read; closing the iterator early removes the rest.
    it = reference.iter_jpeg_frames(avi, work, batch_size=8)
    next(it)
    assert len(list(work.glob("*/*.jpg"))) == len(frames) - 8
    it.close()
    assert list(work.iterdir()) == []


def test_evaluate_decode_is_the_parity_cases_own(parity_dir, tmp_path):
    """syncnet_eval stores the frames and sound the reference took from clip.mp4: equal, bit for bit."""
    case = parity_dir / "syncnet_eval"
    stored = np.load(case / "frames.npz")["bgr"]
    frames = reference.read_jpeg_frames(case / "clip.mp4", tmp_path, qscale=reference.EVALUATE_JPEG_QSCALE)
    assert frames.shape == stored.shape and np.array_equal(frames, stored)
    # The quality setting matters: the pipeline's -qscale:v 2 gives other pixels.
    assert not np.array_equal(reference.read_jpeg_frames(case / "clip.mp4", tmp_path, qscale=2), stored)
    wav = reference.extract_sound_like_reference(case / "clip.mp4", tmp_path / "audio.wav", async_=True)
    assert np.array_equal(read_wav(wav)[1], read_wav(case / "audio.wav")[1])


# ---------------------------------------------------------------- --reference_decode through the scripts

class RecordingDetector(FixedBoxDetector):
    """The fixed-box double, remembering every frame it was shown (hash and mean brightness)."""

    def __init__(self):
        super().__init__()
        self.means, self.hashes = [], []

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        for image in images_rgb:
            self.means.append(float(image.mean()))
            self.hashes.append(hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest())
        return super().detect_batch(images_rgb, conf_th, scale)


def _run_pipeline(monkeypatch, src: Path, data_dir: Path, *flags: str) -> RecordingDetector:
    """run_pipeline.py's own parser and main, with the recording double for S3FD."""
    from syncnet._cli import models, run_pipeline

    detector = RecordingDetector()
    monkeypatch.setattr(models, "load_models", lambda *a, **k: (detector, None))
    args = run_pipeline.build_parser().parse_args(
        ["--videofile", str(src), "--reference", "r", "--data_dir", str(data_dir), "--min_track", "5",
         "--min_face_size", "10", *flags])
    assert run_pipeline.main(args) == 0
    return detector


@pytest.fixture(scope="module", params=["25", "30000/1001", "30"])
def flash_case(request, tmp_path_factory, bias_tool):
    """A flash-and-beep clip at each frame rate, and tools/reference_bias.py's measurement of it."""
    fps = Fraction(request.param)
    work = tmp_path_factory.mktemp("flash")
    row = bias_tool.measure(fps, work / "m")
    return work / "m" / "source.mp4", row


@pytest.mark.parametrize("reference_decode", [False, True], ids=["ours", "reference"])
def test_flash_and_beep_through_run_pipeline(flash_case, reference_decode, monkeypatch, tmp_path, bias_tool):
    """The detector's frames and the analysis's sound put the flash and the beep where our
    decode has them (the true frame), or with --reference_decode where the reference's does."""
    src, row = flash_case
    flags = ["--reference_decode"] if reference_decode else []
    detector = _run_pipeline(monkeypatch, src, tmp_path, *flags)
    want = row["reference"] if reference_decode else row["ours"]
    flash = next(i for i, m in enumerate(detector.means) if m > 200)
    assert flash == want["flash_frame"]
    if not reference_decode:
        assert flash == row["true_frame"] == 50
    else:
        assert flash > row["true_frame"]  # the reference's picture is late on this FFmpeg
    _, sound = read_wav(tmp_path / "pyavi" / "r" / "audio.wav")
    assert bias_tool.beep_onset_ms(sound, 16000) == pytest.approx(want["beep_ms"], abs=0.07)
    # A shot starts at the flash where the shot detector saw it: our frames; with the flag,
    # video.avi as OpenCV reads it, as the reference's PySceneDetect does (one frame before
    # its JPEG frames on this FFmpeg: the JPEG dump fills a gap the AVI leaves after frame 0).
    scenes = json.loads((tmp_path / "pywork" / "r" / "tracks.json").read_text())["scenes"]
    cut = want["shot_detection_flash_frame"] if reference_decode else flash
    assert [s for s, _ in scenes] == [0, cut]
    # video.avi is the reference's conversion (MP3 sound) only with the flag.
    codecs = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
                             str(tmp_path / "pyavi" / "r" / "video.avi")], capture_output=True, text=True).stdout
    assert ("mp3" in codecs) == reference_decode
