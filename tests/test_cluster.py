"""The cluster runner (--ray): spans of one long video, a folder, faults, resume, Ray missing.

Spans are first checked without Ray (the same `run_span` a worker runs, called in line),
then the command line runs against one local Ray cluster for the module (2 CPUs) with the
test doubles (tests/doubled.py; their loader reaches the workers pickled, as the real one).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from syncnet.jobs.longvideo import LongVideoJob, LongVideoOptions, process_long_video
from syncnet.jobs.spans import process_in_spans, run_span, split_spans
from syncnet.options import FaceOptions
from syncnet.scenes import MIN_SCENE_LEN
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, loudness_levels
from testkit.mediagen import encode
from tests.conftest import REPO, held, hold

FPS = 25
# 12 s in 4 s chunks with 1 s overlap: chunks at 0, 3, 6, 9 s (frames 0, 75, 150, 225)
CHUNKS = ["--chunk_duration", "4", "--overlap", "1", "--no_visualise", "--no_report"]
OVERLAP_FRAMES = 25


def cut_clip(path: Path, seconds: float, cuts: list[int], offset: int = 3) -> Path:
    """Brightness follows loudness (offset `offset`) as in known_offset_clip; the tint jumps
    between red and blue at each frame of `cuts` (a shot cut the detector finds)."""
    n = int(seconds * FPS)
    levels = loudness_levels(n + 2 * abs(offset) + 4, seed=5)
    rate = 16000
    rng = np.random.default_rng(6)
    slot = (np.arange(int(seconds * rate)) * FPS) // rate
    audio = (levels[slot] * rng.uniform(-1, 1, slot.size) * 20000).astype(np.int16)

    def frames():
        shot = 0
        for i in range(n):
            shot += i in cuts
            v = 90 + 40 * (np.log(levels[max(0, i - offset)]) - np.log(0.02)) / -np.log(0.02)
            tint = (v * 0.35, v * 0.35, v) if shot % 2 else (v, v * 0.35, v * 0.35)  # BGR: blue or red
            yield np.tile(np.array(tint, np.uint8), (120, 160, 1))

    return encode(path, frames(), Fraction(FPS), audio, rate)


class ContentBoxDetector(FixedBoxDetector):
    """A face whose box moves with the frame's brightness: boxes pin which frame was detected."""

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        self.frames += len(images_rgb)
        out = []
        for img in images_rgb:
            box = self.box.copy()
            box[[0, 2]] += int(img.mean()) % 8
            out.append(box[None, :])
        return out


def options(**kw) -> LongVideoOptions:
    return LongVideoOptions(chunk_duration=4.0, overlap=1.0, visualise=False,
                            faces=FaceOptions(min_track=5, min_face_size=10, batch_size=16), **kw)


def comparable(summary: dict, out: Path) -> dict:
    """A summary without timings, detector counts and its folder's name."""
    s = {k: v for k, v in summary.items() if k not in ("timings", "detector_frames", "detector_frames_this_run")}
    return json.loads(json.dumps(s).replace(str(out), "OUT"))


def tracks_files(out: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sorted((out / "syncnet_data/pywork").glob("*/tracks.json"))}


def files_of(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))


def in_spans(src: Path, out: Path, spans: int, detector) -> dict:
    """process_in_spans with the spans run here, one after another, by the workers' own `run_span`."""
    job = LongVideoJob(src, out, options(), None, None)

    def execute(planned):
        for span in planned:
            yield span, run_span(job.source, job.paths.out, job.opts, detector, BrightnessLoudnessSyncNet(), job.info,
                                 job.chunks, span, job.summary.source_frames)

    return process_in_spans(job, spans, execute)


@pytest.fixture(scope="module")
def cuts_clip(tmp_path_factory) -> Path:
    return cut_clip(tmp_path_factory.mktemp("clip") / "talk.mp4", 12.0, cuts=[40, 110, 200, 262])


@pytest.fixture(scope="module")
def one_machine(cuts_clip, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("one") / "out"
    summary = process_long_video(cuts_clip, out, options(), ContentBoxDetector(), BrightnessLoudnessSyncNet())
    assert summary["totals"]["success"] == 4 and summary["detector_frames"] == 300
    return summary, out


def test_split_spans_keeps_chunks_consecutive():
    from syncnet.chunking import plan_time_chunks

    chunks = plan_time_chunks(40.0, 4.0, 1.0)  # 13 chunks
    spans = split_spans(chunks, 3)
    assert [len(s) for s in spans] == [6, 3, 4]  # the longest span halved until there are 3
    assert [c for s in spans for c in s] == chunks
    assert all(s[k + 1].index == s[k].index + 1 for s in spans for k in range(len(s) - 1))
    gaps = split_spans([c for c in chunks if c.index not in (4, 5)], 1)  # done before: a gap ends a span
    assert [[c.index for c in s] for s in gaps] == [[0, 1, 2, 3], list(range(6, 13))]


def test_spans_give_the_one_pass_results(cuts_clip, one_machine, tmp_path):
    """Three spans (chunks 0 | 1 | 2-3), each with its own detection pass from its first frame:
    the same summary and tracks (boxes included) as one pass; the overlap detected twice."""
    summary1, out1 = one_machine
    detector = ContentBoxDetector()
    summary = in_spans(cuts_clip, tmp_path / "out", 3, detector)
    assert comparable(summary, tmp_path / "out") == comparable(summary1, out1)
    assert tracks_files(tmp_path / "out") == tracks_files(out1)
    assert [len(c["tracks"]) for c in summary["chunks"]] == [2, 2, 2, 2]  # the cuts split the tracks
    excess = summary["detector_frames"] - summary1["detector_frames"]
    assert excess == detector.frames - 300 == OVERLAP_FRAMES * (3 - 1)


def test_a_cut_right_after_a_span_start_is_the_documented_bound(tmp_path):
    """8 s (chunks at 0, 3, 6 s), cuts at frames 70 and 80, the second span starting at 75: one
    pass drops the cut at 80 (fewer than MIN_SCENE_LEN frames after 70); the span never saw 70
    and keeps it.  Only that span's first chunk differs, and only by a shot boundary fewer than
    MIN_SCENE_LEN frames into it (here the 5 frames before it are too short for a track)."""
    src = cut_clip(tmp_path / "talk.mp4", 8.0, cuts=[70, 80])
    one = process_long_video(src, tmp_path / "one", options(), ContentBoxDetector(), BrightnessLoudnessSyncNet())
    two = in_spans(src, tmp_path / "two", 2, ContentBoxDetector())
    a, b = comparable(one, tmp_path / "one"), comparable(two, tmp_path / "two")
    assert [c for k, c in enumerate(a["chunks"]) if k != 1] == [c for k, c in enumerate(b["chunks"]) if k != 1]
    first = 75  # chunk_001: the second span's first chunk
    one_tracks = [(t["start_frame"], t["end_frame"]) for t in a["chunks"][1]["tracks"]]
    span_tracks = [(t["start_frame"], t["end_frame"]) for t in b["chunks"][1]["tracks"]]
    assert one_tracks[0][0] == 0 and len(one_tracks) == 1  # one shot: the cut at 80 dropped
    assert span_tracks == [(80 - first, one_tracks[0][1])]  # the span's cut at 80 ends its first shot
    assert 80 - first < MIN_SCENE_LEN


# ------------------------------------------------------------------ on a local Ray cluster
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module, started here (its processes are this test run's); the
    command lines join it by address."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def doubled(*args: str, env: dict | None = None, wait: bool = True):
    cmd = [sys.executable, str(REPO / "tests/doubled.py"), *args]
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300)


def test_long_video_on_the_cluster_equals_one_machine(cluster, cuts_clip, one_machine, tmp_path):
    summary1, out1 = one_machine
    out = tmp_path / "out"
    proc = doubled("process_long_video.py", "--input_video", str(cuts_clip), "--output_dir", str(out), *CHUNKS,
                   "--min_track", "5", "--min_face_size", "10", "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "processing_summary.json").read_text())
    # (the one-machine run's detector moves its boxes, the command line's does not: boxes are not in the summary)
    assert comparable(summary, out) == comparable(summary1, out1)
    assert files_of(out) == files_of(out1)
    assert summary["detector_frames"] - summary1["detector_frames"] <= OVERLAP_FRAMES * (2 - 1)
    assert "Cluster:    2 workers" in proc.stdout
    assert proc.stdout.count("  worker ") == 2, proc.stdout  # per-worker throughput


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two good clips and a corrupt one."""
    from testkit.doubles import known_offset_clip

    d = tmp_path_factory.mktemp("folder")
    for k, offset in enumerate((2, -3)):
        known_offset_clip(d / f"clip{k}.mp4", 3.0, offset, fps=Fraction(25))
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    return d


def records(summary: dict) -> dict:
    return {f["file"]: {k: v for k, v in f.items() if k not in ("seconds", "path")} for f in summary["files"]}


def test_batch_on_the_cluster_equals_one_machine_and_a_bad_file_is_a_failure(cluster, folder, tmp_path):
    from syncnet.jobs.batch import process_folder

    one = process_folder(folder, tmp_path / "one", FaceOptions(min_track=5, min_face_size=10), FixedBoxDetector(),
                         BrightnessLoudnessSyncNet())
    out = tmp_path / "ray"
    proc = doubled("batch_process.py", "--chunks_dir", str(folder), "--output_dir", str(out), "--no_report",
                   "--ray", cluster)
    assert proc.returncode == 1, proc.stderr[-2000:]  # one file failed, once: not a retry loop
    summary = json.loads((out / "batch_processing_summary.json").read_text())
    assert records(summary) == records(one)
    assert summary["totals"] == one["totals"] == {"files": 3, "success": 2, "no_faces": 0, "failed": 1,
                                                  "skipped": 0}
    assert records(summary)["broken.mp4"]["status"] == "failed"
    assert [f["tracks"][0]["offset"] for f in summary["files"] if f["status"] == "success"] == [2, -3]
    assert files_of(out) == files_of(tmp_path / "one")
    assert "failed broken.mp4: " in proc.stdout
    tasks = [int(line.split(": ")[1].split()[0]) for line in proc.stdout.splitlines() if line.startswith("  worker ")]
    assert sum(tasks) == 3, proc.stdout


def busy_workers(method: str) -> list[int]:
    """Pids of the Ray workers running `method` now (Ray names the process after its task)."""
    pids = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and (p / "cmdline").read_bytes().startswith(f"ray::_Actor.{method}".encode()):
                pids.append(int(p.name))
        except OSError:
            continue
    return pids


def wait_for(predicate, seconds: float = 300):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_worker_killed_mid_task_is_retried_and_counted_once(cluster, cuts_clip, one_machine, tmp_path):
    summary1, out1 = one_machine
    out = tmp_path / "out"
    gate = tmp_path / "hold"
    proc = doubled("process_long_video.py", "--input_video", str(cuts_clip), "--output_dir", str(out), *CHUNKS,
                   "--ray", cluster, env=hold(gate, "detect"), wait=False)
    try:
        wait_for(held(gate).exists)  # mid-task: a batch detected, the next held
        victim = wait_for(lambda: busy_workers("span"))[0]
        os.kill(victim, signal.SIGKILL)
        gate.unlink()
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads((out / "processing_summary.json").read_text())
    assert comparable(summary, out) == comparable(summary1, out1)
    # the killed attempt's frames are not counted: the excess is the overlap's only
    assert summary["detector_frames"] == summary1["detector_frames"] + OVERLAP_FRAMES
    tasks = [int(line.split(": ")[1].split()[0]) for line in stdout.splitlines() if line.startswith("  worker ")]
    assert sum(tasks) == 2, stdout  # two spans, each counted once


def long_job_args(clip: Path, out: Path, cluster: str) -> list[str]:
    return ["process_long_video.py", "--input_video", str(clip), "--output_dir", str(out), *CHUNKS, "--ray", cluster]


def held_long_job(args: list[str], where: str, gate: Path) -> subprocess.Popen:
    """The long job, made to hold at `where` (until `gate` goes), so that it can be stopped
    at a known point however loaded the machine is; returns once it holds."""
    proc = doubled(*args, env=hold(gate, where), wait=False)
    try:
        wait_for(lambda: held(gate).exists() or proc.poll() is not None)
    except BaseException:
        proc.kill()
        raise
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    return proc


def test_resume_after_the_driver_is_killed_and_mixed_parameters_are_refused(cluster, cuts_clip, one_machine,
                                                                             tmp_path):
    summary1, out1 = one_machine
    out = tmp_path / "out"
    args = long_job_args(cuts_clip, out, cluster)
    # two spans, chunks 0-1 and 2-3: the driver is killed once it has recorded a chunk
    proc = held_long_job(args, "record", tmp_path / "hold")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    before = json.loads((out / "processing_summary.json").read_text())
    assert not before["complete"] and before["totals"]["success"] == 1 and before["totals"]["pending"] > 0
    again = doubled(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming:" in again.stderr
    summary = json.loads((out / "processing_summary.json").read_text())
    assert comparable(summary, out) == comparable(summary1, out1)
    assert summary["detector_frames_this_run"] < 300  # finished chunks were not redone
    refused = doubled(*args, "--min_track", "7")
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1 and "--force" in refused.stderr, refused.stderr


def test_ctrl_c_on_the_driver_stops_the_workers_and_leaves_a_valid_summary(cluster, cuts_clip, one_machine,
                                                                            tmp_path):
    from tests.schemas import validate_summary

    summary1, out1 = one_machine
    out = tmp_path / "out"
    args = long_job_args(cuts_clip, out, cluster)
    proc = held_long_job(args, "detect", tmp_path / "hold")  # mid-span: a worker holds after a batch
    try:
        assert busy_workers("span")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].endswith("interrupted"), stderr[-2000:]
    # the workers' spans end with the driver: none is still detecting a few seconds on
    wait_for(lambda: not busy_workers("span"), seconds=30)
    validate_summary(out / "processing_summary.json")
    before = json.loads((out / "processing_summary.json").read_text())
    assert not before["complete"]
    again = doubled(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert comparable(json.loads((out / "processing_summary.json").read_text()), out) == comparable(summary1, out1)


@pytest.mark.parametrize("script", ["batch_process.py", "process_long_video.py"])
def test_ray_missing_is_one_line_and_exit_2(folder, cuts_clip, tmp_path, script):
    inputs = ["--chunks_dir", str(folder)] if script == "batch_process.py" else ["--input_video", str(cuts_clip)]
    code = ("import runpy, sys; sys.modules['ray'] = None; "  # import ray now raises ImportError
            f"sys.argv = ['doubled.py', {script!r}, *sys.argv[1:]]; "
            f"runpy.run_path({str(REPO / 'tests/doubled.py')!r}, run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", code, *inputs, "--output_dir", str(tmp_path / "out"), "--ray"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    from syncnet.cluster import RAY_MISSING

    assert proc.stderr.strip() == f"{script}: error: {RAY_MISSING}"  # one line, no traceback
    assert not (tmp_path / "out").exists()


def test_without_ray_flag_ray_is_never_imported(folder, tmp_path):
    code = ("import runpy, sys\n"
            "sys.argv = ['doubled.py', 'batch_process.py', *sys.argv[1:]]\n"
            "try:\n"
            f"    runpy.run_path({str(REPO / 'tests/doubled.py')!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    print('exit', e.code, 'ray' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code, "--chunks_dir", str(folder), "--output_dir",
                           str(tmp_path / "out"), "--no_report"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.strip().splitlines()[-1] == "exit 1 False", proc.stdout + proc.stderr
    assert json.loads((tmp_path / "out/batch_processing_summary.json").read_text())["totals"]["success"] == 2


def test_several_inputs_on_the_cluster_equal_one_machine(cluster, cuts_clip, one_machine, tmp_path):
    """Two inputs (the clip and a copy under another name): each into OUTPUT_DIR/<stem>/ as alone,
    with the one-machine results, and dataset_summary.json over both."""
    summary1, out1 = one_machine
    second = tmp_path / "second.mp4"
    second.write_bytes(cuts_clip.read_bytes())
    out = tmp_path / "out"
    proc = doubled("process_long_video.py", "--input_video", str(cuts_clip), str(second), "--output_dir", str(out),
                   *CHUNKS, "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for src in (cuts_clip, second):
        summary = json.loads((out / src.stem / "processing_summary.json").read_text())
        mine, one = comparable(summary, out / src.stem), comparable(summary1, out1)
        mine["input"].pop("path"), one["input"].pop("path")
        assert mine == one, src
    dataset = json.loads((out / "dataset_summary.json").read_text())
    assert dataset["totals"]["inputs"] == dataset["totals"]["done"] == 2, dataset["totals"]
