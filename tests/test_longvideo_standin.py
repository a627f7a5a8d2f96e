"""process_long_video.py with the real networks (stand-in weights) on a video joined from the shared clips.

Frames are scaled down so that S3FD and SyncNet stay quick on a CPU; the stand-in
S3FD (face bias 1.0) fires on a few boxes a frame, enough to form tracks.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

OFFSET_LINE = re.compile(r"^TRACK \d+: OFFSET -?\d+, CONF -?\d+\.\d{3}$")
FLAGS = ["--min_track", "50", "--min_face_size", "40", "--facedet_scale", "0.5"]


@pytest.fixture(scope="module")
def joined(media_dir, tmp_path_factory):
    """About 25 s: clips a and b, scaled to 320x320, joined over and over (shot cuts between them)."""
    d = tmp_path_factory.mktemp("joined")
    parts = []
    for name in ("talking_25fps_a.mp4", "talking_25fps_b.mp4"):
        out = d / f"small_{name}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(media_dir / name), "-vf", "scale=320:320",
                        "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac",
                        "-ar", "44100", str(out)], check=True)
        parts.append(out)
    listing = d / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for _ in range(3) for p in parts))
    joined = d / "joined.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-t", "24", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(joined)],
                   check=True)
    return joined


@pytest.fixture(scope="module")
def env(s3fd_face_weights, syncnet_weights):
    return {**os.environ, "S3FD_MODEL": str(s3fd_face_weights), "SYNCNET_MODEL": str(syncnet_weights)}


@pytest.fixture(scope="module")
def long_run(joined, env, tmp_path_factory):
    out = tmp_path_factory.mktemp("long") / "results"
    proc = subprocess.run([sys.executable, str(REPO / "process_long_video.py"), "--input", str(joined),
                           "--output_dir", str(out), "--chunk_duration", "10", "--overlap", "3",
                           "--max_abs_offset", "14", "--chunk_crf", "0", *FLAGS],
                          capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_layout_summary_and_filter(long_run, joined):
    out, proc = long_run
    summary = json.loads((out / "processing_summary.json").read_text())
    assert summary["complete"] and summary["schema_version"] == 1
    assert {"path", "duration", "fps", "width", "height"} <= set(summary["input"])
    assert summary["parameters"]["chunk_duration"] == 10 and summary["parameters"]["overlap"] == 3
    chunks = summary["chunks"]
    assert [c["name"] for c in chunks] == [f"chunk_{i:03d}" for i in range(len(chunks))]
    assert len(chunks) == 4  # starts 0, 7, 14, 21 of 24 s
    assert summary["detector_frames"] == summary["source_frames"]  # once per source frame, not per chunk
    per_chunk = sum(c["frame_end"] - c["frame_start"] for c in chunks)
    assert per_chunk > 1.2 * summary["detector_frames"]
    with_faces = [c for c in chunks if c["status"] == "success"]
    assert with_faces, "the stand-in detector finds faces"
    for c in chunks:
        assert c["status"] in ("success", "no_faces")
        name = c["name"]
        assert (out / "chunks" / f"{name}.mp4").exists() and (out / "audio" / f"{name}.wav").exists()
        work = out / "syncnet_data/pywork" / name
        lines = (work / "offsets.txt").read_text().splitlines()
        assert len(lines) == len(c["tracks"]) and all(OFFSET_LINE.match(x) for x in lines)
        if c["tracks"]:
            assert c["best_track"] == max(c["tracks"], key=lambda t: t["confidence"])
            assert (out / "syncnet_data/pyavi" / name / "video_out.avi").exists()
            assert len(list((out / "syncnet_data/pycrop" / name).glob("*.avi"))) == len(c["tracks"])
        assert c["filter"]["enabled"]
    accepted = sorted(p.name for p in (out / "filtered_chunks").iterdir())
    assert accepted == [f"{c['name']}.mp4" for c in chunks if c["filter"]["accepted"]]
    assert sorted(p.name for p in (out / "filtered_audio").iterdir()) == [a[:-4] + ".wav" for a in accepted]
    t = summary["totals"]
    assert t["chunks"] == 4 and t["accepted"] + t["rejected"] == 4
    assert "Chunks:" in proc.stdout and "Summary:" in proc.stdout


@pytest.mark.parametrize("index", [1, 2])
def test_chunk_agrees_with_run_pipeline_on_its_file(long_run, env, tmp_path, index):
    """A chunk analysed from the shared detection pass gives what the scripts give on its file.

    The chunks are cut losslessly (--chunk_crf 0), so the chunk file decodes to the very
    frames the shared pass saw; with lossy chunks the stand-in detector's borderline
    boxes (scores near the 0.9 threshold) can flip between the two decodes.
    """
    out, _ = long_run
    summary = json.loads((out / "processing_summary.json").read_text())
    chunk = summary["chunks"][index]
    assert chunk["status"] == "success"
    data = tmp_path / "work"
    ref = chunk["name"]
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--videofile", chunk["files"]["chunk"],
                           "--reference", ref, "--data_dir", str(data), *FLAGS], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, str(REPO / "run_syncnet.py"), "--reference", ref, "--data_dir",
                           str(data)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    alone = pickle.loads((data / "pywork" / ref / "tracks.pckl").read_bytes())
    shared = pickle.loads((out / "syncnet_data/pywork" / ref / "tracks.pckl").read_bytes())
    assert len(alone) == len(shared) == len(chunk["tracks"])
    for a, s in zip(alone, shared):
        assert abs(int(a["track"]["frame"][0]) - int(s["track"]["frame"][0])) <= 2
        assert abs(int(a["track"]["frame"][-1]) - int(s["track"]["frame"][-1])) <= 2
    lines = (data / "pywork" / ref / "offsets.txt").read_text().splitlines()
    alone_offsets = [int(x.split()[3].rstrip(",")) for x in lines]
    assert alone_offsets == [t["offset"] for t in chunk["tracks"]]
