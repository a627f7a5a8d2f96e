"""Chunks keep sound and picture aligned, and start on the right source frame.

Sources carry a flash frame and a 1 kHz beep at the same instants and a barcode of
the frame number in every frame; after `chunk-time` and `chunk-silence` each chunk
must show the flash on the expected frame and the beep within 10 ms of it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from syncnet import media
from testkit.mediagen import flash_beep_source, is_flash, read_barcode
from tests.conftest import REPO

FLASH_TIMES = [1.3, 4.7, 7.9, 11.2, 14.6, 17.9]
SOURCES = {
    "25fps": (Fraction(25), False),
    "30fps": (Fraction(30), False),
    "29.97fps": (Fraction(30000, 1001), False),
    "vfr": (Fraction(30), True),
}


@pytest.fixture(scope="module", params=list(SOURCES))
def source(request, tmp_path_factory):
    fps, vfr = SOURCES[request.param]
    path = tmp_path_factory.mktemp(request.param) / "source.mp4"
    meta = flash_beep_source(path, fps, 20.0, FLASH_TIMES, vfr=vfr)
    return {"name": request.param, "path": path, "exact": request.param in ("25fps", "30fps"), **meta}


def frame_times(path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return sorted(float(x.strip(",")) for x in out.split())


def beep_onsets(audio: np.ndarray, rate: int) -> list[float]:
    loud = np.abs(audio.astype(np.float64)) > 0.1 * 32767
    starts = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1
    onsets: list[float] = []
    for s in ([0] if loud[0] else []) + list(starts):
        if not onsets or s / rate - onsets[-1] > 0.5:
            onsets.append(s / rate)
    return onsets


def run_chunker(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "video_utils.py"), *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def check_chunks(source, out_dir):
    records = json.loads((out_dir / "chunks.json").read_text())["chunks"]
    src_times = frame_times(source["path"])
    fps = float(source["fps"])
    flashes_seen = 0
    for rec in records:
        path = out_dir / rec["file"]
        frames = np.concatenate(list(media.iter_frames(path, fps=None)))
        times = frame_times(path)
        assert len(times) == len(frames)
        # The first frame is the source frame at the chunk's start.
        first = read_barcode(frames[0])
        expected_first = int(np.argmin([abs(t - rec["start"]) for t in src_times]))
        expected_number = read_barcode(next(media.iter_frames(source["path"], fps=None,
                                                                batch_size=expected_first + 1))[-1])
        assert first == expected_number, (source["name"], rec)
        if source["exact"]:
            assert first == round(rec["start"] * fps)
            assert abs(rec["start"] * fps - round(rec["start"] * fps)) < 1e-3
        audio = media.read_audio(path, sample_rate=48000)
        onsets = beep_onsets(audio, 48000)
        flash_idx = [i for i, f in enumerate(frames) if is_flash(f)]
        for i in flash_idx:
            number = read_barcode(frames[i])
            assert number in source["flash_frames"]
            frame_offset = number - first
            if source["exact"]:
                assert i == frame_offset, "the flash is on the frame expected from the chunk start"
            flash_t = times[i]
            if source["exact"]:
                assert abs(flash_t - frame_offset / fps) < 1e-3
            else:
                assert abs(flash_t - (float(number / source["fps"]) - rec["start"])) <= 1 / fps + 1e-3
            if flash_t > times[-1] - 0.1:
                continue  # beep would run past the chunk end
            near = [o for o in onsets if abs(o - flash_t) < 0.5]
            assert near, f"no beep near the flash at {flash_t:.3f}s in {rec['file']}"
            assert abs(near[0] - flash_t) < 0.010, (source["name"], rec["file"], near[0], flash_t)
            flashes_seen += 1
    assert flashes_seen >= len(FLASH_TIMES) - 1
    return records


def test_chunk_time_alignment(source, tmp_path):
    out = tmp_path / "chunks"
    run_chunker(["chunk-time", "--input", str(source["path"]), "--output_dir", str(out),
                 "--duration", "6", "--overlap", "2"])
    records = check_chunks(source, out)
    assert [r["index"] for r in records] == list(range(len(records)))
    assert records[0]["start"] == 0
    assert records[-1]["end"] == pytest.approx(media.probe(source["path"]).duration, abs=1e-3)


def test_chunk_silence_alignment(source, tmp_path):
    out = tmp_path / "chunks"
    run_chunker(["chunk-silence", "--input", str(source["path"]), "--output_dir", str(out),
                 "--threshold", "-30", "--min_silence", "1.0", "--min_chunk", "2.0"])
    records = check_chunks(source, out)
    assert len(records) >= 4
    for a, b in zip(records, records[1:]):
        assert a["end"] == pytest.approx(b["start"], abs=1e-6)
