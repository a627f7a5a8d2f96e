"""Fault catalogue, job level: what the user sees when a run is interrupted, raced,
pointed at a used folder, fed a corrupt file, or runs out of disk.

The scripts run for real (argument parsing, output lock, exit codes, stderr) through
tests/doubled.py, which swaps only the two networks for the test doubles; cases about
the job's data (retries, filter folders, short tracks, modes) use the library.  Each
case checks the exit code, the one stderr line (no traceback without -v) and that
earlier outputs are intact.  Media: a 10 s 160x120 clip, 4 s chunks with 1 s overlap.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from syncnet.files import part_path
from syncnet.jobs.batch import process_folder
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video
from syncnet.layout import Layout, staged
from syncnet.options import FaceOptions
from syncnet.outlock import LOCK_NAME, OutputInUse, output_lock
from syncnet.results import best_track, min_windows
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.conftest import REPO, held, hold

CHUNKS = ["--chunk_duration", "4", "--overlap", "1", "--no_visualise"]


def options(**kw) -> LongVideoOptions:
    """The library settings process_long_video.py gets from CHUNKS and its defaults."""
    base = dict(chunk_duration=4.0, overlap=1.0, faces=FaceOptions(min_track=5, min_face_size=10, batch_size=16),
                visualise=False)
    base.update(kw)
    return LongVideoOptions(**base)


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    return known_offset_clip(tmp_path_factory.mktemp("src") / "talk.mp4", 10.0, 2)


@pytest.fixture(scope="module")
def clean(src, tmp_path_factory) -> dict:
    """An uninterrupted run: what every interrupted and resumed run must end with."""
    return process_long_video(src, tmp_path_factory.mktemp("clean") / "out", options(), FixedBoxDetector(),
                              BrightnessLoudnessSyncNet())


def doubled(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "tests/doubled.py"), *args]


def run_doubled(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(doubled(*args), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def spawn_doubled(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(doubled(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})


def one_line(stderr: str) -> str:
    """The single line a failure shows without -v."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def results(summary: dict) -> list[dict]:
    """A summary's chunks without the paths (which name the output folder)."""
    return [{k: v for k, v in c.items() if k != "files"} for c in summary["chunks"]]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def chunks_done(summary_path: Path, n: int):
    def check() -> bool:
        try:
            return json.loads(summary_path.read_text())["totals"].get("success", 0) >= n
        except (OSError, ValueError, KeyError):
            return False
    return check


def assert_no_leftovers(out: Path) -> None:
    left = [p for p in out.rglob("*") if ".part" in p.name or p.name.startswith((".staging-", ".old-"))
            or p.name == LOCK_NAME or p.name == ".detection_state.pckl"]
    assert not left, left


# ------------------------------------------------------------------ interrupts


def test_ctrl_c_then_kill_9_then_resume(src, clean, tmp_path):
    """Ctrl-C: exit 130, one line, a valid summary.  kill -9 of the rerun: a valid summary and
    no lock left behind.  The third run completes with an uninterrupted run's results."""
    out = tmp_path / "out"
    summary_path = out / "processing_summary.json"
    args = ("process_long_video.py", "--input_video", str(src), "--output_dir", str(out), *CHUNKS)
    # Each run holds once its first chunk is recorded and checkpointed (tests/doubled.py), until stopped.
    gate = tmp_path / "hold"
    proc = spawn_doubled(*args, **hold(gate, "saved"))
    wait_for(held(gate).exists)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert one_line(err) == "process_long_video.py: interrupted"
    partial = json.loads(summary_path.read_text())
    assert not partial["complete"] and partial["totals"]["success"] == 1

    held(gate).unlink()
    proc = spawn_doubled(*args, **hold(gate, "saved"))
    wait_for(held(gate).exists)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed = json.loads(summary_path.read_text())  # whole JSON after a kill
    assert not killed["complete"] and killed["totals"]["success"] == 2 < len(killed["chunks"])

    done = run_doubled(*args)
    assert done.returncode == 0, done.stderr
    resumed = json.loads(summary_path.read_text())
    assert resumed["complete"] and results(resumed) == results(clean)
    assert resumed["totals"] == clean["totals"] and resumed["detector_frames"] == clean["detector_frames"] == 250
    assert resumed["detector_frames_this_run"] < 250  # detection went on where it stopped
    assert_no_leftovers(out)


def test_two_runs_into_one_folder(src, clean, tmp_path):
    """The second run stops at once (exit 2) naming the first's pid; the first finishes correctly."""
    out = tmp_path / "out"
    args = ("process_long_video.py", "--input_video", str(src), "--output_dir", str(out), *CHUNKS)
    gate = tmp_path / "hold"
    first = spawn_doubled(*args, **hold(gate, "detect"))
    wait_for(held(gate).exists)  # detecting, under the lock
    try:
        second = run_doubled(*args)
    finally:
        gate.unlink()
    assert second.returncode == 2
    line = one_line(second.stderr)
    assert f"pid {first.pid} " in line and "in use by another run" in line, line
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    summary = json.loads((out / "processing_summary.json").read_text())
    assert summary["complete"] and results(summary) == results(clean)
    assert_no_leftovers(out)


@pytest.mark.parametrize("script", ["video_utils.py", "run_pipeline.py", "batch_process.py"])
def test_other_scripts_refuse_a_locked_output(script, src, tmp_path):
    """Every script that writes a folder takes its lock before any work (models included)."""
    out = tmp_path / "out"
    chunks = tmp_path / "in"
    chunks.mkdir()
    os.link(src, chunks / "a.mp4")
    cmd = {"video_utils.py": ["chunk-time", "--input", str(src), "--output_dir", str(out), "--duration", "4",
                           "--overlap", "1"],
           "run_pipeline.py": ["--videofile", str(src), "--reference", "talk", "--data_dir", str(out)],
           "batch_process.py": ["--chunks_dir", str(chunks), "--output_dir", str(out)]}[script]
    held = (output_lock(out) if script != "run_pipeline.py"
            else output_lock(out, ".syncnet-talk.lock", what=f"reference talk in {out}"))
    with held:
        proc = subprocess.run([sys.executable, str(REPO / script), *cmd], capture_output=True, text=True,
                              timeout=300)
    assert proc.returncode == 2
    assert f"pid {os.getpid()} " in one_line(proc.stderr)
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, lock file gone


# ------------------------------------------------------------------ used folders, bad files


def test_other_input_or_parameters_in_the_same_folder(src, tmp_path):
    out = tmp_path / "out"
    process_long_video(src, out, options(), FixedBoxDetector(), BrightnessLoudnessSyncNet())
    before = snapshot(out)
    other = known_offset_clip(tmp_path / "other.mp4", 6.0, 0)
    for args, what in ((["--input_video", str(src), *CHUNKS, "--chunk_duration", "5"], "other parameters"),
                       (["--input_video", str(other), *CHUNKS], "another input")):
        proc = run_doubled("process_long_video.py", "--output_dir", str(out), *args)
        assert proc.returncode == 2
        line = one_line(proc.stderr)
        assert what in line and "--force" in line, line
    assert snapshot(out) == before  # byte for byte


def test_corrupt_file_in_a_batch(tmp_path):
    """Recorded as failed with one line, exit 1; the others are done and earlier outputs kept."""
    chunks = tmp_path / "chunks"
    chunks.mkdir()
    for k, name in ((0, "a.mp4"), (3, "b.mp4")):
        known_offset_clip(chunks / name, 3.0, k)
    out = tmp_path / "out"
    process_folder(chunks, out, FaceOptions(min_track=5, min_face_size=10), FixedBoxDetector(),
                   BrightnessLoudnessSyncNet())
    before = snapshot(out / "pywork")
    (chunks / "c_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    proc = run_doubled("batch_process.py", "--chunks_dir", str(chunks), "--output_dir", str(out))
    assert proc.returncode == 1, proc.stderr
    assert one_line(proc.stderr).startswith("c_corrupt.mp4 failed: ")
    assert "failed c_corrupt.mp4" in proc.stdout
    summary = json.loads((out / "batch_processing_summary.json").read_text())
    files = {f["file"]: f for f in summary["files"]}
    assert files["c_corrupt.mp4"]["status"] == "failed" and "\n" not in files["c_corrupt.mp4"]["error"]
    assert [files[n]["status"] for n in ("a.mp4", "b.mp4")] == ["success", "success"]
    assert summary["totals"]["skipped"] == 2 and summary["schema_version"] == 3
    assert snapshot(out / "pywork") == before
    assert not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------ failed chunks


def test_failed_chunk_is_one_line_and_its_retry_needs_no_detection(src, clean, tmp_path):
    out = tmp_path / "out"
    args = ("process_long_video.py", "--input_video", str(src), "--output_dir", str(out), *CHUNKS)
    proc = run_doubled(*args, SYNCNET_TEST_FAIL_CHUNK="chunk_001")
    assert proc.returncode == 1
    assert one_line(proc.stderr) == "chunk_001 failed: RuntimeError: planted failure of chunk_001"
    assert "failed chunk_001: RuntimeError: planted failure of chunk_001" in proc.stdout
    first = json.loads((out / "processing_summary.json").read_text())
    assert [c["status"] for c in first["chunks"]] == ["success", "failed", "success"]
    assert (out / "syncnet_data/.detection_state.pckl").exists()  # holds the failed chunk's detections
    kept = {n: (out / "chunks" / f"{n}.mp4").stat().st_mtime_ns for n in ("chunk_000", "chunk_002")}

    proc = run_doubled(*args)
    assert proc.returncode == 0, proc.stderr
    again = json.loads((out / "processing_summary.json").read_text())
    assert again["detector_frames_this_run"] == again["timings"]["detector_frames_this_run"] == 0
    assert again["detector_frames"] == 250
    assert results(again) == results(clean)
    assert {n: (out / "chunks" / f"{n}.mp4").stat().st_mtime_ns for n in kept} == kept  # only chunk_001 redone
    assert_no_leftovers(out)  # the checkpoint goes once every chunk has a result


def test_failed_chunk_detections_survive_a_kill_before_the_retry(src, clean, tmp_path, monkeypatch):
    """The failed chunk's detections stay in the checkpoint while detection goes on past it:
    a rerun redoes it (and whatever was pending) without detecting its frames again."""
    import syncnet.jobs.longvideo as lv

    out = tmp_path / "out"
    real = lv.LongVideoJob._analyse_chunk

    class Stop(KeyboardInterrupt):
        pass

    def flaky(self, chunk, window):
        if chunk.name == "chunk_000":
            raise ValueError("planted")
        if chunk.name == "chunk_002":
            raise Stop  # the run dies before the last chunk
        return real(self, chunk, window)

    monkeypatch.setattr(lv.LongVideoJob, "_analyse_chunk", flaky)
    with pytest.raises(Stop):
        process_long_video(src, out, options(), FixedBoxDetector(), BrightnessLoudnessSyncNet())
    monkeypatch.setattr(lv.LongVideoJob, "_analyse_chunk", real)
    detector = FixedBoxDetector()
    summary = process_long_video(src, out, options(), detector, BrightnessLoudnessSyncNet())
    assert results(summary) == results(clean)
    # Only chunk_002's frames after the last checkpoint needed detection; chunk_000's were kept.
    assert detector.frames == summary["detector_frames_this_run"] < 250 - 75
    assert not (out / "syncnet_data/.detection_state.pckl").exists()


# ------------------------------------------------------------------ outputs match the summary


def test_stale_filter_folders(tmp_path):
    short = known_offset_clip(tmp_path / "short.mp4", 4.0, 2)
    out = tmp_path / "out"
    process_long_video(short, out, options(max_abs_offset=5), FixedBoxDetector(), BrightnessLoudnessSyncNet())
    assert os.listdir(out / "filtered_chunks") == ["chunk_000.mp4"]
    s = process_long_video(short, out, options(), FixedBoxDetector(), BrightnessLoudnessSyncNet())
    assert s["chunks"][0]["filter"]["enabled"] is False
    assert not (out / "filtered_chunks").exists() and not (out / "filtered_audio").exists()
    s = process_long_video(short, out, options(max_abs_offset=1), FixedBoxDetector(), BrightnessLoudnessSyncNet())
    assert s["chunks"][0]["filter"] == {"enabled": True, "accepted": False, "reasons": ["|offset| 2 > 1"]}
    assert os.listdir(out / "filtered_chunks") == [] and os.listdir(out / "filtered_audio") == []


class TwoFaces(FixedBoxDetector):
    """Face A on frames [0, 71); face B, elsewhere in the picture, on the given frames only."""

    def __init__(self, b_frames):
        super().__init__()
        self.b_frames = set(b_frames)

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        out = []
        for k in range(len(images_rgb)):
            n = self.frames + k
            boxes = [[10, 10, 70, 70, 0.99]] if n < 71 else []
            if n in self.b_frames:
                boxes.append([90, 40, 150, 100, 0.99])
            out.append(np.array(boxes, np.float32).reshape(-1, 5))
        self.frames += len(images_rgb)
        return out


def test_too_short_tracks_are_marked_unreliable(tmp_path, caplog):
    """12-frame tracks (7 SyncNet windows, fewer than 31) keep their numbers but are marked
    unreliable; the best track is a reliable one when there is one; a chunk whose tracks
    are all too short is rejected by the filter; one console line per chunk."""
    clip = known_offset_clip(tmp_path / "two.mp4", 7.0, 2)
    detector = TwoFaces(list(range(20, 32)) + list(range(120, 132)))
    with caplog.at_level(logging.WARNING, logger="syncnet"):
        s = process_long_video(clip, tmp_path / "out", options(max_abs_offset=15), detector,
                               BrightnessLoudnessSyncNet())
    c0, c1 = s["chunks"]
    assert s["schema_version"] == 4 and min_windows(15) == 31
    by_len = sorted(c0["tracks"], key=lambda t: t["n_frames"])
    assert [t["n_frames"] for t in by_len] == [12, 71]
    assert by_len[0]["reliable"] is False and "7 SyncNet windows" in by_len[0]["unreliable_reason"]
    assert by_len[1]["reliable"] is True and by_len[1]["unreliable_reason"] is None
    assert c0["best_track"] == by_len[1] and c0["filter"]["accepted"] is True
    short, long_ = {"confidence": 9.0, "reliable": False}, {"confidence": 1.0, "reliable": True}
    assert best_track([short, long_]) is long_ and best_track([short]) is short  # reliable ones first
    assert [t["n_frames"] for t in c1["tracks"]] == [12] and c1["best_track"]["reliable"] is False
    assert c1["filter"]["accepted"] is False
    assert c1["filter"]["reasons"][0].startswith("best track unreliable (too short to measure")
    offsets = json.loads((tmp_path / "out/syncnet_data/pywork/chunk_001/offsets.json").read_text())
    assert offsets["tracks"][0]["reliable"] is False and offsets["tracks"][0]["unreliable_reason"]
    notes = [r.getMessage() for r in caplog.records if "too short to measure" in r.getMessage()]
    assert sorted(notes) == ["chunk_000: 1 of 2 face tracks too short to measure (fewer than 31 SyncNet "
                             "windows); marked unreliable",
                             "chunk_001: 1 of 1 face tracks too short to measure (fewer than 31 SyncNet "
                             "windows); marked unreliable"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_follow_the_umask(tmp_path, umask):
    clip = known_offset_clip(tmp_path / "clip.mp4", 4.0, 2)
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        process_long_video(clip, out, options(max_abs_offset=5), FixedBoxDetector(), BrightnessLoudnessSyncNet())
        process_folder(tmp_path, tmp_path / "batch", FaceOptions(min_track=5, min_face_size=10),
                       FixedBoxDetector(), BrightnessLoudnessSyncNet())
    finally:
        os.umask(old)
    paths = [p for root in (out, tmp_path / "batch") for p in [root, *root.rglob("*")]]
    files = {str(p): oct(p.stat().st_mode & 0o777) for p in paths if p.is_file()}
    dirs = {str(p): oct(p.stat().st_mode & 0o777) for p in paths if p.is_dir()}
    assert set(files.values()) == {oct(0o666 & ~umask)}, files
    assert set(dirs.values()) == {oct(0o777 & ~umask)}, dirs
    assert any(p.endswith("pywork/chunk_000/offsets.json") for p in files)


# ------------------------------------------------------------------ disk full


def test_disk_full_stops_with_one_line_and_resumes(src, clean, tmp_path):
    """A 400 KB tmpfs: the run stops with one line (exit 1), the summary stays whole JSON, and
    once there is room the same command finishes the job."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        out = disk / "out"
        args = ("process_long_video.py", "--input_video", str(src), "--output_dir", str(out), *CHUNKS)
        proc = run_doubled(*args)
        assert proc.returncode == 1
        assert one_line(proc.stderr) == (f"process_long_video.py: error: no space left on the device of {out}; "
                                         "free some space and run the same command again to resume")
        partial = json.loads((out / "processing_summary.json").read_text())
        assert not partial["complete"]
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        proc = run_doubled(*args)
        assert proc.returncode == 0, proc.stderr
        assert results(json.loads((out / "processing_summary.json").read_text())) == results(clean)
        assert_no_leftovers(out)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


# ------------------------------------------------------------------ the pieces


def test_lock_pieces(tmp_path):
    """A lock file left by a dead run does not block; nesting in one thread is free, another
    thread is refused; temporary names are unique per process and call."""
    (tmp_path / LOCK_NAME).write_text('{"pid": 999999999}')  # as a kill -9 leaves it
    with output_lock(tmp_path):
        with output_lock(tmp_path):
            pass
        refused = []

        def other():
            try:
                with output_lock(tmp_path):
                    pass
            except OutputInUse as exc:
                refused.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert refused and "in use by another run of this process" in refused[0]
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()
    a, b = part_path(tmp_path / "x.mp4"), part_path(tmp_path / "x.mp4")
    assert a != b and a.suffix == ".mp4" and f".{os.getpid()}-" in a.name and a.name.startswith(".x.")


def test_staging_of_a_live_run_is_left_alone(tmp_path):
    live = tmp_path / f".staging-talk-{os.getppid()}-abcd1234"
    dead = tmp_path / ".staging-talk-999999999-abcd1234"
    old = tmp_path / ".staging-talk-abcd1234"  # the earlier naming, without a pid
    for d in (live, dead, old):
        d.mkdir()
    with staged(Layout(tmp_path, "talk")) as stage:
        assert str(os.getpid()) in stage.data_dir.name
    assert live.exists() and not dead.exists() and not old.exists()
