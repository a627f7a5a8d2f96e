"""`video_utils.py resync`: a file measured at offset k measures 0 afterwards, its picture untouched.

The measurement is the real one (windows, MFCC, distances, the shift search) with the
test double for the embeddings (testkit/doubles.py) on clips whose offset is known by
construction; the flash-and-beep clips check the same thing in milliseconds, without
SyncNet: after the shift the beep starts on the flash frame.
"""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from syncnet import evaluate_sync, media
from testkit.doubles import BrightnessLoudnessSyncNet, known_offset_clip
from testkit.mediagen import barcode_frame, encode, is_flash
from tests.conftest import REPO

FLASHES = (1.0, 2.6)  # seconds: flash frames 25 and 65


def _video_utils(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "video_utils.py"), *args], capture_output=True, text=True,
                          timeout=120)


def _measure(path) -> int:
    frames, audio = media.read_frames(path, 25), media.read_audio(path, 16000)
    return evaluate_sync(BrightnessLoudnessSyncNet(), frames, audio, vshift=15).offset


def _picture_packets(path) -> list[str]:
    """Every video packet's times, size and MD5, as FFmpeg's stream copy reads them."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy", "-f", "framemd5",
                          "-"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("k", [-7, -1, 3, 12])
def test_known_offset_measures_zero_after_resync(tmp_path, k):
    src = known_offset_clip(tmp_path / "in.mp4", 4.0, k, size=(224, 224))
    assert _measure(src) == k  # the clip is what it claims
    out = tmp_path / "out.mp4"
    proc = _video_utils("resync", "--input", str(src), "--output", str(out), "--offset", str(k))
    assert proc.returncode == 0, proc.stderr
    assert _measure(out) == 0
    # The picture is the input's, packet for packet (same bytes, same times); the length is kept.
    assert _picture_packets(out) == _picture_packets(src)
    assert len(_picture_packets(src)) == 100
    a_in, a_out = media.read_audio(src, 16000), media.read_audio(out, 16000)
    assert abs(len(a_out) - len(a_in)) <= 16  # within 1 ms
    assert abs(media.probe(out).duration - media.probe(src).duration) < 0.03


def _flash_beep(path, lead_frames: int):
    """A 25 fps barcode clip whose beeps start `lead_frames` frames before their flash
    (offset +lead_frames: the sound leads)."""
    rate, n = 48000, 100
    flash_frames = [int(round(t * 25)) for t in FLASHES]
    audio = np.zeros(4 * rate)
    t = np.arange(int(0.1 * rate)) / rate
    for f in flash_frames:
        s = int(round((f - lead_frames) / 25 * rate))
        audio[s:s + len(t)] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    encode(path, (barcode_frame(i, flash=i in flash_frames) for i in range(n)), Fraction(25),
           (audio * 32767).astype(np.int16), rate)
    return path


def _beep_lags(path) -> list[float]:
    """For each flash frame, the start of the nearest beep minus the frame's time (seconds)."""
    flashes = [i for i, f in enumerate(media.read_frames(path, 25)) if is_flash(f)]
    assert flashes == [25, 65]
    audio = np.abs(media.read_audio(path, 16000).astype(np.float64))
    lags = []
    for i in flashes:
        lo = int((i / 25 - 0.4) * 16000)
        loud = np.flatnonzero(audio[lo:lo + int(0.8 * 16000)] > 3000)
        lags.append((lo + loud[0]) / 16000 - i / 25)
    return lags


@pytest.mark.parametrize("lead", [3, -2])
def test_beep_lands_on_the_flash_frame(tmp_path, lead):
    src = _flash_beep(tmp_path / "in.mp4", lead)
    assert all(abs(lag + lead * 0.04) < 0.010 for lag in _beep_lags(src))
    out = tmp_path / "out.mp4"
    proc = _video_utils("resync", "--input", str(src), "--output", str(out), "--offset_ms", str(lead * 40))
    assert proc.returncode == 0, proc.stderr
    assert all(abs(lag) < 0.010 for lag in _beep_lags(out)), _beep_lags(out)
    assert _picture_packets(out) == _picture_packets(src)


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    src = known_offset_clip(tmp_path / "in.mp4", 2.0, 0)
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), "-an", "-c", "copy", str(silent)], check=True)
    out = tmp_path / "out.mp4"
    cases = {
        "missing file": ["--input", str(tmp_path / "nope.mp4"), "--offset", "1"],
        "no audio": ["--input", str(silent), "--offset", "1"],
        "neither flag": ["--input", str(src)],
        "both flags": ["--input", str(src), "--offset", "1", "--offset_ms", "40"],
        "nan": ["--input", str(src), "--offset", "nan"],
        "inf": ["--input", str(src), "--offset_ms", "-inf"],
        "longer than the clip": ["--input", str(src), "--offset", "-50"],
        "output is the input": ["--input", str(src), "--output", str(src), "--offset", "1"],
    }
    for what, args in cases.items():
        if "--output" not in args:
            args = [*args, "--output", str(out)]
        proc = _video_utils("resync", *args)
        assert proc.returncode == 2, (what, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, (what, proc.stderr)
        assert not out.exists(), what
