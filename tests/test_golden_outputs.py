"""Golden outputs: the summaries and per-chunk files the scripts write, against copies
made before the package was restructured (tests/golden/).

The scripts run for real through tests/doubled.py (the two networks replaced by the
test doubles), on a generated clip with a known offset: the long job with a filter
and the visualisation, and the batch job over two of its chunks.  What may differ
between runs is taken out first: timings, the temporary folder's path; floats are
compared to 6 significant digits (another CPU may round the last bits of a
reduction differently).  Everything else, key order included, must be equal.

To remake the goldens after a deliberate change of an output format:
    SYNCNET_REMAKE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_outputs.py
and say why in the commit.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testkit.doubles import known_offset_clip
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"
TIMING_KEYS = {"timings", "wall_seconds", "seconds"}


def _normal(value, roots: dict[str, str]):
    """`value` with timings dropped, paths made relative to placeholders, floats rounded."""
    if isinstance(value, dict):
        return {k: _normal(v, roots) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, (list, tuple)):
        return [_normal(v, roots) for v in value]
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, np.generic):
        return _normal(value.item(), roots)
    if isinstance(value, np.ndarray):
        return _normal(value.tolist(), roots)
    if type(value).__name__ == "FrameTimecode":  # scene.pckl: the reference's scene list
        return ["FrameTimecode", value.get_frames(), _normal(float(value.get_framerate()), roots)]
    if isinstance(value, str):
        for root, name in roots.items():
            value = value.replace(root, name)
    return value


def _check(name: str, value) -> None:
    text = json.dumps(value, indent=1) + "\n"
    path = GOLDEN / name
    if os.environ.get("SYNCNET_REMAKE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing (remake: SYNCNET_REMAKE_GOLDEN=1)"
    assert text == path.read_text(), f"{name} differs from {path}"


def _doubled(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(REPO / "tests/doubled.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The long job (4 s chunks, 1 s overlap, a filter) and the batch job over two of its chunks."""
    root = tmp_path_factory.mktemp("golden")
    src = known_offset_clip(root / "talk.mp4", 10.0, 2)
    long_out, batch_in, batch_out = root / "long", root / "batch_in", root / "batch"
    _doubled("process_long_video.py", "--input_video", str(src), "--output_dir", str(long_out),
             "--chunk_duration", "4", "--overlap", "1", "--min_confidence", "0.5", "--max_abs_offset", "3",
             cwd=root)
    batch_in.mkdir()
    for name in ("chunk_000", "chunk_002"):
        shutil.copy(long_out / "chunks" / f"{name}.mp4", batch_in / f"{name}.mp4")
    _doubled("batch_process.py", "--chunks_dir", str(batch_in), "--output_dir", str(batch_out), "--visualise",
             cwd=root)
    return {"root": root, "long": long_out, "batch": batch_out}


def test_long_job_summary(runs):
    summary = json.loads((runs["long"] / "processing_summary.json").read_text())
    assert summary["complete"] and summary["totals"]["accepted"] > 0
    _check("processing_summary.json", _normal(summary, {str(runs["root"]): "<ROOT>"}))


def test_batch_summary(runs):
    summary = json.loads((runs["batch"] / "batch_processing_summary.json").read_text())
    assert summary["totals"]["success"] == 2
    _check("batch_processing_summary.json", _normal(summary, {str(runs["root"]): "<ROOT>"}))


@pytest.mark.parametrize("job", ["long", "batch"])
def test_per_video_files(runs, job):
    """Every chunk's / file's pickles, tracks.json and offsets, and the list of files written."""
    data = runs[job] / ("syncnet_data" if job == "long" else "")
    files = sorted(p for p in runs[job].rglob("*") if p.is_file() and p.name != ".syncnet.lock")
    # Media files by content: chunk files, WAVs, crop and visualisation AVIs are byte-for-byte
    # those of the earlier code.  x264 and FFmpeg's MPEG-4 encoder are deterministic for a
    # given number of threads (FFmpeg's default follows the cores: 2 on every CI machine
    # here); the labels on video_out.avi are OpenCV's drawing, whose version the tests pin
    # (requirements-dev.txt): 5.1.0 drew them differently from 5.0.0.
    out = {"files": {str(p.relative_to(runs[job])): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
                     if p.suffix in (".mp4", ".wav", ".avi") else None for p in files}}
    for work in sorted((data / "pywork").iterdir()):
        entry = {"offsets.txt": (work / "offsets.txt").read_text(),
                 "offsets.json": json.loads((work / "offsets.json").read_text()),
                 "tracks.json": json.loads((work / "tracks.json").read_text())}
        for name in ("faces.pckl", "scene.pckl", "tracks.pckl", "activesd.pckl"):
            with open(work / name, "rb") as fh:
                entry[name] = pickle.load(fh)
        out[work.name] = entry
    _check(f"{job}_files.json", _normal(out, {str(runs["root"]): "<ROOT>"}))
