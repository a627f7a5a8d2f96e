"""video_utils.py as a user runs it: good paths, odd names, and every bad input.

Bad input: one line on stderr, exit code 2, no traceback, nothing earlier deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from testkit.mediagen import barcode_frame, encode
from tests.conftest import REPO

SCRIPT = str(REPO / "video_utils.py")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=300)


def assert_bad_input(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rate = 48000
    t = np.arange(int(3 * rate)) / rate
    audio = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    frames = [barcode_frame(k) for k in range(75)]
    out = {"av": encode(d / "av.mp4", frames, Fraction(25), audio, rate),
           "silent_video": encode(d / "noaudio.mp4", frames, Fraction(25), None, rate),
           "short": encode(d / "short.mp4", frames[:8], Fraction(25), audio[: int(0.3 * rate)], rate)}
    wav = d / "audio_only.wav"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(out["av"]), "-vn", str(wav)], check=True)
    out["audio_only"] = wav
    text = d / "notes.mp4"
    text.write_text("this is not a video\n")
    out["text"] = text
    return out


def test_info_human_and_json(clips):
    proc = run("info", "--input", str(clips["av"]))
    assert proc.returncode == 0, proc.stderr
    assert "160x120" in proc.stdout and "25.000 fps" in proc.stdout
    proc = run("info", "--input", str(clips["av"]), "--json")
    info = json.loads(proc.stdout)
    assert info["has_audio"] and info["has_video"]
    assert info["fps"] == 25.0 and info["width"] == 160 and info["height"] == 120
    assert info["audio"][0]["sample_rate"] == 48000
    assert info["duration"] == pytest.approx(3.0, abs=0.05)


def test_extract_audio(clips, tmp_path):
    out = tmp_path / "a.wav"
    proc = run("extract-audio", "--input", str(clips["av"]), "--output", str(out),
               "--sample_rate", "16000", "--channels", "1")
    assert proc.returncode == 0, proc.stderr
    from scipy.io import wavfile

    rate, data = wavfile.read(out)
    assert rate == 16000 and data.ndim == 1 and data.dtype == np.int16
    assert len(data) == pytest.approx(3 * 16000, abs=400)


@pytest.mark.parametrize("case", ["missing", "directory", "text"])
def test_unreadable_inputs(clips, tmp_path, case):
    target = {"missing": str(tmp_path / "nope.mp4"), "directory": str(tmp_path),
              "text": str(clips["text"])}[case]
    word = {"missing": "no such file", "directory": "directory", "text": "not a media file"}[case]
    for args in (["info", "--input", target],
                 ["extract-audio", "--input", target, "--output", str(tmp_path / "x.wav")],
                 ["chunk-time", "--input", target, "--output_dir", str(tmp_path / "c")],
                 ["chunk-silence", "--input", target, "--output_dir", str(tmp_path / "s")]):
        assert_bad_input(run(*args), word)


def test_no_video_stream(clips, tmp_path):
    proc = run("info", "--input", str(clips["audio_only"]))
    assert proc.returncode == 0 and "Video:      none" in proc.stdout
    assert_bad_input(run("chunk-time", "--input", str(clips["audio_only"]), "--output_dir", str(tmp_path)),
                     "no video stream")
    assert_bad_input(run("chunk-silence", "--input", str(clips["audio_only"]), "--output_dir",
                         str(tmp_path)), "no video stream")


def test_no_audio_stream(clips, tmp_path):
    proc = run("info", "--input", str(clips["silent_video"]))
    assert proc.returncode == 0 and "Audio:      none" in proc.stdout
    proc = run("chunk-time", "--input", str(clips["silent_video"]), "--output_dir", str(tmp_path / "c"),
               "--duration", "2", "--overlap", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((tmp_path / "c" / "chunks.json").read_text())["chunks"]) == 2
    assert_bad_input(run("extract-audio", "--input", str(clips["silent_video"]), "--output",
                         str(tmp_path / "x.wav")), "no audio stream")
    assert_bad_input(run("chunk-silence", "--input", str(clips["silent_video"]), "--output_dir",
                         str(tmp_path / "s")), "no audio stream")
    assert not (tmp_path / "x.wav").exists()


def test_very_short_video(clips, tmp_path):
    assert run("info", "--input", str(clips["short"])).returncode == 0
    assert_bad_input(run("chunk-time", "--input", str(clips["short"]), "--output_dir", str(tmp_path)),
                     "too short")


@pytest.mark.parametrize("duration,overlap,word", [("5", "5", "overlap"), ("5", "7", "overlap"),
                                                   ("0", "0", "positive"), ("-3", "1", "positive"),
                                                   ("5", "-1", "negative")])
def test_bad_durations(clips, tmp_path, duration, overlap, word):
    assert_bad_input(run("chunk-time", "--input", str(clips["av"]), "--output_dir", str(tmp_path / "c"),
                         "--duration", duration, "--overlap", overlap), word)
    assert not (tmp_path / "c").exists()


def test_output_dir_not_writable(clips, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert_bad_input(run("chunk-time", "--input", str(clips["av"]), "--output_dir", str(blocker / "sub")),
                     "output directory")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        assert_bad_input(run("chunk-time", "--input", str(clips["av"]), "--output_dir", str(locked)),
                         "not writable")


def test_bad_input_keeps_earlier_output(clips, tmp_path):
    out = tmp_path / "chunks"
    assert run("chunk-time", "--input", str(clips["av"]), "--output_dir", str(out),
               "--duration", "2", "--overlap", "0.5").returncode == 0
    before = sorted(p.name for p in out.iterdir())
    assert_bad_input(run("chunk-time", "--input", str(clips["text"]), "--output_dir", str(out)))
    assert_bad_input(run("chunk-time", "--input", str(clips["av"]), "--output_dir", str(out),
                         "--duration", "2", "--overlap", "3"))
    assert sorted(p.name for p in out.iterdir()) == before


def test_strange_paths_just_work(clips, tmp_path):
    odd = tmp_path / "my talk's \"best\" $(touch pwned) é中.mp4"
    shutil.copy(clips["av"], odd)
    out_dir = tmp_path / "out dir $(echo x) 'q' ü"
    proc = run("chunk-time", "--input", str(odd), "--output_dir", str(out_dir), "--duration", "2",
               "--overlap", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert (out_dir / "chunk_000.mp4").exists() and (out_dir / "chunks.json").exists()
    wav = out_dir / "sound $(x) ü.wav"
    assert run("extract-audio", "--input", str(odd), "--output", str(wav)).returncode == 0
    assert wav.stat().st_size > 1000
    assert run("info", "--input", str(odd)).returncode == 0
    assert not (tmp_path / "pwned").exists() and not os.path.exists("pwned")


def test_verbose_shows_traceback(clips, tmp_path):
    proc = run("chunk-time", "--input", str(tmp_path / "nope.mp4"), "--output_dir", str(tmp_path), "-v")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
