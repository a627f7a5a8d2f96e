"""process_long_video.py --export_synced (and --export_synced_video) through tests/doubled.py.

The source has a known offset per 4 s stretch: +1, +1, 0, +5 frames.  With
--max_abs_offset 2 the filter accepts the first three chunks and rejects the last; the
export must hold exactly the accepted ones, each measuring offset 0 (the originals k),
the offset-0 chunk hard-linked, and a rerun must not redo them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from syncnet import evaluate_sync, media
from syncnet.wav import read_wav
from testkit.doubles import BrightnessLoudnessSyncNet, known_offset_clip, loudness_levels
from testkit.mediagen import encode
from tests.conftest import REPO

OFFSETS = (1, 1, 0, 5)  # frames, per 4 s chunk
SIZE = (224, 224)


def _piecewise_clip(path, seconds_each: float = 4.0, rate: int = 48000):
    """Frame j shows the loudness of slot j - OFFSETS[j // 100] (100 frames a chunk at 25 fps)."""
    n = int(len(OFFSETS) * seconds_each * 25)
    levels = loudness_levels(n + 20, seed=3)
    rng = np.random.default_rng(4)
    samples = int(n / 25 * rate)
    slot = (np.arange(samples) * 25) // rate
    audio = levels[slot + 10] * rng.uniform(-1, 1, samples) * 20000

    def frames():
        for j in range(n):
            level = levels[j - OFFSETS[j // 100] + 10]
            value = int(60 + 80 * (np.log(level) - np.log(0.02)) / (0 - np.log(0.02)))
            yield np.full((SIZE[1], SIZE[0], 3), value, np.uint8)

    return encode(path, frames(), Fraction(25), audio.astype(np.int16), rate, size=SIZE)


def _run(out, src, *flags) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tests/doubled.py"), "process_long_video.py",
                           "--input_video", str(src), "--output_dir", str(out), "--chunk_duration", "4", "--overlap",
                           "0", "--no_visualise", "--no_report", *flags], capture_output=True, text=True, timeout=600)


def _measure(path) -> int:
    return evaluate_sync(BrightnessLoudnessSyncNet(), media.read_frames(path, 25), media.read_audio(path, 16000),
                         vshift=15).offset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    src = _piecewise_clip(root / "talk.mp4")
    out = root / "out"
    proc = _run(out, src, "--max_abs_offset", "2", "--export_synced")
    assert proc.returncode == 0, proc.stderr
    return root, src, out, proc


def test_only_accepted_chunks_are_exported_shifted_by_their_offsets(run):
    _, _, out, proc = run
    s = json.loads((out / "processing_summary.json").read_text())
    assert [c["best_track"]["offset"] for c in s["chunks"]] == list(OFFSETS)
    assert [c["filter"]["accepted"] for c in s["chunks"]] == [True, True, True, False]
    records = s["exports"]["synced_chunks"]
    assert [(r["name"], r["offset"], r["shift_ms"], r["linked"]) for r in records] == [
        ("chunk_000", 1, 40, False), ("chunk_001", 1, 40, False), ("chunk_002", 0, 0, True)]
    assert sorted(p.name for p in (out / "synced_chunks").iterdir()) == ["chunk_000.mp4", "chunk_001.mp4",
                                                                         "chunk_002.mp4"]
    assert sorted(p.name for p in (out / "synced_audio").iterdir()) == ["chunk_000.wav", "chunk_001.wav",
                                                                        "chunk_002.wav"]
    for r in records:
        chunk = out / "chunks" / f"{r['name']}.mp4"
        assert _measure(chunk) == r["offset"]
        assert _measure(r["chunk"]) == 0, r
        rate, sound = read_wav(r["audio"])
        assert rate == 16000 and abs(len(sound) - len(media.read_audio(chunk, 16000))) <= 16
    linked = records[2]
    assert os.stat(linked["chunk"]).st_ino == os.stat(out / "chunks" / "chunk_002.mp4").st_ino
    assert os.stat(linked["audio"]).st_ino == os.stat(out / "audio" / "chunk_002.wav").st_ino
    assert f"Re-synced:  3 accepted chunks -> {out / 'synced_chunks'}" in proc.stdout


def test_rerun_keeps_the_exports_and_a_new_filter_changes_them(run):
    root, src, out, _ = run
    before = {p.name: os.stat(p).st_mtime_ns for p in (out / "synced_chunks").iterdir()}
    proc = _run(out, src, "--max_abs_offset", "2", "--export_synced")
    assert proc.returncode == 0, proc.stderr
    assert {p.name: os.stat(p).st_mtime_ns for p in (out / "synced_chunks").iterdir()} == before  # not redone
    proc = _run(out, src, "--max_abs_offset", "0", "--export_synced")  # the filter is not a result parameter
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "processing_summary.json").read_text())
    assert [r["name"] for r in s["exports"]["synced_chunks"]] == ["chunk_002"]
    assert [p.name for p in (out / "synced_chunks").iterdir()] == ["chunk_002.mp4"]
    proc = _run(out, src, "--max_abs_offset", "0")  # without the flag: the folders go, as filtered_* do
    assert proc.returncode == 0, proc.stderr
    assert not (out / "synced_chunks").exists() and not (out / "synced_audio").exists()
    assert json.loads((out / "processing_summary.json").read_text())["exports"]["synced_chunks"] is None


def test_a_schema_3_summary_is_upgraded_not_redone(run):
    """The summary before drift and exports: its chunks are kept (no detection, no cut), the
    rerun writes schema 4 with the drift computed from them."""
    _, src, out, _ = run
    s = json.loads((out / "processing_summary.json").read_text())
    old = {k: v for k, v in s.items() if k not in ("drift", "exports")}
    (out / "processing_summary.json").write_text(json.dumps({**old, "schema_version": 3}))
    chunks = {p.name: os.stat(p).st_mtime_ns for p in (out / "chunks").iterdir()}
    proc = _run(out, src, "--max_abs_offset", "2")
    assert proc.returncode == 0 and "redoing" not in proc.stderr, proc.stderr
    again = json.loads((out / "processing_summary.json").read_text())
    assert again["schema_version"] == 4 and again["detector_frames_this_run"] == 0
    assert {p.name: os.stat(p).st_mtime_ns for p in (out / "chunks").iterdir()} == chunks
    def results(summary):  # the filter is not a result: an earlier test may have run another one
        return [{k: v for k, v in c.items() if k != "filter"} for c in summary["chunks"]]

    assert results(again) == results(s) and again["drift"]["points"] == 3


def test_export_synced_needs_a_filter(tmp_path):
    src = known_offset_clip(tmp_path / "in.mp4", 2.0, 0)
    proc = _run(tmp_path / "out", src, "--export_synced")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "--min_confidence" in proc.stderr and not (tmp_path / "out").exists()


def test_export_synced_video_of_a_constant_offset(tmp_path):
    """A 10 s clip (three chunks) at offset +2 everywhere: the verdict is constant and the whole input is
    written re-synced by +80 ms: it measures 0, its picture the input's."""
    src = known_offset_clip(tmp_path / "talk.mp4", 10.0, 2, size=SIZE)
    out = tmp_path / "out"
    proc = _run(out, src, "--min_confidence", "0.5", "--export_synced_video")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "processing_summary.json").read_text())
    assert s["drift"]["verdict"] == "constant" and s["drift"]["offset_ms"] == 80
    assert s["exports"]["synced_video"] == {"path": str(out / "synced_talk.mp4"), "shift_ms": 80, "refused": None}
    assert _measure(src) == 2 and _measure(out / "synced_talk.mp4") == 0
    assert "Re-synced:  the input, sound shifted by +80 ms" in proc.stdout
