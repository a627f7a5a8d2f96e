"""process_long_video.py with the real networks (stand-in weights) on a video joined from the shared clips.

Frames are scaled down so that S3FD and SyncNet stay quick on a CPU; the stand-in
S3FD (face bias 1.0) fires on a few boxes a frame, enough to form tracks.

With lossless chunks (--chunk_crf 0) every chunk's tracks (frame by frame), boxes,
crop windows and crop videos (pictures and sound) must equal those of run_pipeline.py
on its chunk file, and its SyncNet numbers those of run_syncnet.py.  The stand-in
SyncNet's offsets sit at the search edge (+-15) for every seed tried (0-7, on these
clips): its two towers' embeddings are unrelated random vectors, farther from each
other than from the zero vectors that pad the shifted audio features, so the shifts
reaching into the padding win.  The offsets alone would therefore match whatever the
code did; the confidences, min_dist and the distance surface (activesd.pckl) do not,
so they are compared too (both paths score the crop videos as written).  Offsets
inside the search are compared through the same scripts with the test doubles in
tests/test_cli_doubles_agreement.py.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

OFFSET_LINE = re.compile(r"^TRACK \d+: OFFSET -?\d+, CONF -?\d+\.\d{3}$")
FLAGS = ["--min_track", "25", "--min_face_size", "40", "--facedet_scale", "0.5"]
RTOL = 1e-5


@pytest.fixture(scope="module")
def joined(media_dir, tmp_path_factory):
    """9.9 s: clips a and b, scaled to 320x320, joined (a shot cut at 5.04 s)."""
    d = tmp_path_factory.mktemp("joined")
    parts = []
    for name in ("talking_25fps_a.mp4", "talking_25fps_b.mp4"):
        out = d / f"small_{name}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(media_dir / name), "-vf", "scale=320:320",
                        "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac",
                        "-ar", "44100", str(out)], check=True)
        parts.append(out)
    listing = d / "list.txt"
    listing.write_text("".join(f"file '{p}'\n" for _ in range(2) for p in parts))
    joined = d / "joined.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-t", "9.9", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", str(joined)],
                   check=True)
    return joined


@pytest.fixture(scope="module")
def env(s3fd_face_weights, syncnet_weights):
    return {**os.environ, "S3FD_MODEL": str(s3fd_face_weights), "SYNCNET_MODEL": str(syncnet_weights)}


def _long_job(joined, out, env, *extra):
    proc = subprocess.run([sys.executable, str(REPO / "process_long_video.py"), "--input", str(joined),
                           "--output_dir", str(out), "--chunk_duration", "4", "--overlap", "1",
                           "--chunk_crf", "0", *FLAGS, *extra], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "processing_summary.json").read_text()), proc


@pytest.fixture(scope="module")
def long_run(joined, env, tmp_path_factory):
    """The job without a filter, then again in the same folder with a filter derived from
    its results: the lowest best confidence is rejected, the next one lies exactly on
    --min_confidence (accepted: the rule is >=), and --max_abs_offset is the largest |offset|
    (accepted: <=)."""
    out = tmp_path_factory.mktemp("long") / "results"
    first, _ = _long_job(joined, out, env)
    # Chunks whose best track is too short to measure are rejected whatever the thresholds.
    best = [c["best_track"] for c in first["chunks"] if c["best_track"] and c["best_track"]["reliable"]]
    assert len(best) >= 2, first["chunks"]
    confs = sorted(b["confidence"] for b in best)
    assert confs[0] < confs[1]
    thresholds = {"min_confidence": confs[1], "max_abs_offset": max(abs(b["offset"]) for b in best)}
    summary, proc = _long_job(joined, out, env, "--min_confidence", repr(thresholds["min_confidence"]),
                              "--max_abs_offset", str(thresholds["max_abs_offset"]))
    return out, summary, proc, first, thresholds


@pytest.fixture(scope="module")
def alone(long_run, env, tmp_path_factory):
    """run_pipeline.py + run_syncnet.py on each chunk file: {chunk name: its pywork folder}."""
    out, summary, *_ = long_run
    data = tmp_path_factory.mktemp("alone")
    works = {}
    for chunk in summary["chunks"]:
        ref = chunk["name"]
        proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--videofile", chunk["files"]["chunk"],
                               "--reference", ref, "--data_dir", str(data), *FLAGS], capture_output=True, text=True,
                              env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr
        proc = subprocess.run([sys.executable, str(REPO / "run_syncnet.py"), "--reference", ref, "--data_dir",
                               str(data)], capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr
        works[ref] = data / "pywork" / ref
    return works


def test_layout_summary_and_filter(long_run):
    out, summary, proc, first, thresholds = long_run
    assert summary["complete"] and summary["schema_version"] == 4
    assert {"path", "duration", "fps", "width", "height"} <= set(summary["input"])
    assert summary["parameters"]["chunk_duration"] == 4 and summary["parameters"]["overlap"] == 1
    assert summary["filter_parameters"] == thresholds
    chunks = summary["chunks"]
    assert [c["name"] for c in chunks] == [f"chunk_{i:03d}" for i in range(len(chunks))]
    assert [c["start"] for c in chunks] == [0, 3, 6]
    assert summary["detector_frames"] == summary["source_frames"]  # once per source frame, not per chunk
    per_chunk = sum(c["frame_end"] - c["frame_start"] for c in chunks)
    assert per_chunk > 1.15 * summary["detector_frames"]
    # The filtered run reused every chunk of the first: nothing detected or analysed again.
    assert summary["timings"]["detector_frames_this_run"] == 0
    strip = ("filter",)
    assert [{k: v for k, v in c.items() if k not in strip} for c in chunks] == \
        [{k: v for k, v in c.items() if k not in strip} for c in first["chunks"]]
    for c in chunks:
        assert c["status"] in ("success", "no_faces")
        name = c["name"]
        assert (out / "chunks" / f"{name}.mp4").exists() and (out / "audio" / f"{name}.wav").exists()
        work = out / "syncnet_data/pywork" / name
        lines = (work / "offsets.txt").read_text().splitlines()
        assert len(lines) == len(c["tracks"]) and all(OFFSET_LINE.match(x) for x in lines)
        if c["tracks"]:
            # The most confident track that is long enough to measure (any, when none is).
            pool = [t for t in c["tracks"] if t["reliable"]] or c["tracks"]
            assert c["best_track"] == max(pool, key=lambda t: t["confidence"])
            assert (out / "syncnet_data/pyavi" / name / "video_out.avi").exists()
            assert len(list((out / "syncnet_data/pycrop" / name).glob("*.avi"))) == len(c["tracks"])
        assert c["filter"]["enabled"]
        # The README's rule: accepted when the best track is long enough to measure, has
        # confidence >= --min_confidence and |offset| <= --max_abs_offset.
        b = c["best_track"]
        expected = b is not None and b["reliable"] and b["confidence"] >= thresholds["min_confidence"] and \
            abs(b["offset"]) <= thresholds["max_abs_offset"]
        assert c["filter"]["accepted"] is expected, c
        assert bool(c["filter"]["reasons"]) is not expected
    accepted = [c["name"] for c in chunks if c["filter"]["accepted"]]
    rejected = [c["name"] for c in chunks if not c["filter"]["accepted"]]
    assert accepted and rejected
    assert sorted(p.name for p in (out / "filtered_chunks").iterdir()) == [f"{n}.mp4" for n in accepted]
    assert sorted(p.name for p in (out / "filtered_audio").iterdir()) == [f"{n}.wav" for n in accepted]
    t = summary["totals"]
    assert (t["chunks"], t["accepted"], t["rejected"]) == (3, len(accepted), len(rejected))
    assert "Chunks:" in proc.stdout and "Summary:" in proc.stdout and "Filter:" in proc.stdout


def _decoded(path):
    from syncnet import media

    return np.concatenate(list(media.iter_frames(path, fps=None))), media.read_audio(path, 16000)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_chunk_equals_the_scripts_on_its_file(long_run, alone, index):
    """A chunk analysed from the shared detection pass gives what the scripts give on its file:
    the same tracks, frame by frame, the same crops and sound, the same offsets.

    The chunks are cut losslessly (--chunk_crf 0), so the chunk file decodes to the very
    frames the shared pass saw; with lossy chunks the stand-in detector's borderline
    boxes (scores near the 0.9 threshold) can flip between the two decodes.
    """
    out, summary, *_ = long_run
    chunk = summary["chunks"][index]
    assert chunk["status"] == "success"
    ref = chunk["name"]
    mine, theirs = out / "syncnet_data/pywork" / ref, alone[ref]
    shared = pickle.loads((mine / "tracks.pckl").read_bytes())
    single = pickle.loads((theirs / "tracks.pckl").read_bytes())
    assert len(shared) == len(single) == len(chunk["tracks"])
    for s, a in zip(shared, single):
        np.testing.assert_array_equal(s["track"]["frame"], a["track"]["frame"])
        np.testing.assert_allclose(s["track"]["bbox"], a["track"]["bbox"], rtol=RTOL)
        for key in ("x", "y", "s"):
            np.testing.assert_allclose(s["proc_track"][key], a["proc_track"][key], rtol=RTOL)
    for i in range(len(shared)):
        (pic1, snd1), (pic2, snd2) = (_decoded(d.parent.parent / "pycrop" / ref / f"{i:05d}.avi")
                                      for d in (mine, theirs))
        np.testing.assert_array_equal(pic1, pic2)
        np.testing.assert_array_equal(snd1, snd2)
    ours = json.loads((mine / "offsets.json").read_text())["tracks"]
    scripts = json.loads((theirs / "offsets.json").read_text())["tracks"]
    assert len(ours) == len(scripts) == len(shared)
    for o, a, rec, t in zip(ours, scripts, chunk["tracks"], shared):
        assert (o["offset"], o["n_frames"]) == (a["offset"], a["n_frames"])
        # The summary's record is the long job's own result.
        assert (rec["offset"], rec["confidence"], rec["min_dist"], rec["n_frames"]) == \
            (o["offset"], o["confidence"], o["min_dist"], o["n_frames"])
        assert (rec["start_frame"], rec["end_frame"]) == (int(t["track"]["frame"][0]), int(t["track"]["frame"][-1]))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_chunk_syncnet_numbers_equal_the_scripts(long_run, alone, index):
    """Confidences, min_dist and the whole distance surface of a chunk's tracks equal run_syncnet.py's."""
    out, summary, *_ = long_run
    ref = summary["chunks"][index]["name"]
    mine, theirs = out / "syncnet_data/pywork" / ref, alone[ref]
    ours = json.loads((mine / "offsets.json").read_text())["tracks"]
    scripts = json.loads((theirs / "offsets.json").read_text())["tracks"]
    for o, a in zip(ours, scripts):
        np.testing.assert_allclose([o["confidence"], o["min_dist"]], [a["confidence"], a["min_dist"]], rtol=RTOL)
        np.testing.assert_allclose(o["framewise_conf"], a["framewise_conf"], rtol=RTOL, atol=1e-4)
    for d1, d2 in zip(*(pickle.loads((d / "activesd.pckl").read_bytes()) for d in (mine, theirs))):
        np.testing.assert_allclose(d1, d2, rtol=RTOL)
