"""The long-video job: known offsets end to end, shared detection, summary, resume, filter."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from syncnet.jobs.longvideo import LongVideoOptions, process_long_video
from syncnet.options import FaceOptions
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.conftest import REPO


def options(**kw) -> LongVideoOptions:
    base = dict(chunk_duration=20.0, overlap=5.0, faces=FaceOptions(min_track=5, min_face_size=10, batch_size=32),
                visualise=False)
    base.update(kw)
    return LongVideoOptions(**base)


@pytest.mark.parametrize("k", [-5, 0, 7])
def test_known_offsets_every_chunk(tmp_path, k):
    """70 s at 30 fps, 20 s chunks with 5 s overlap: every chunk reports offset k."""
    src = known_offset_clip(tmp_path / f"src_{k}.mp4", 70.0, k, fps=Fraction(30))
    detector = FixedBoxDetector()
    summary = process_long_video(src, tmp_path / "out", options(visualise=(k == 7)), detector,
                                 BrightnessLoudnessSyncNet())
    chunks = summary["chunks"]
    assert [(c["start"], c["end"]) for c in chunks] == [(0, 20), (15, 35), (30, 50), (45, 65), (60, 70)]
    for c in chunks:
        assert c["status"] == "success", c
        assert len(c["tracks"]) == 1
        assert c["best_track"]["offset"] == k, (c["name"], c["best_track"])
        assert c["best_track"]["confidence"] > 0.5
    # S3FD ran once per source frame at 25 fps, not once per chunk frame.
    assert detector.frames == summary["detector_frames"] == 1750
    assert summary["totals"] == {"chunks": 5, "success": 5, "no_faces": 0, "failed": 0, "pending": 0,
                                 "accepted": 0, "rejected": 0}
    out = tmp_path / "out"
    line = (out / "syncnet_data/pywork/chunk_002/offsets.txt").read_text()
    assert line.startswith(f"TRACK 0: OFFSET {k}, CONF ")
    if k == 7:
        assert (out / "syncnet_data/pyavi/chunk_000/video_out.avi").stat().st_size > 0


def test_known_offset_with_detect_every(tmp_path):
    """--detect_every 5 (and ultrafast chunk files): S3FD on a fifth of the frames, the held
    boxes still give offset k."""
    src = known_offset_clip(tmp_path / "src.mp4", 40.0, 7, fps=Fraction(30))
    detector = FixedBoxDetector()
    faces = FaceOptions(min_track=5, min_face_size=10, batch_size=32, detect_every=5)
    summary = process_long_video(src, tmp_path / "out", options(faces=faces, chunk_preset="ultrafast"), detector,
                                 BrightnessLoudnessSyncNet())
    assert summary["parameters"]["detect_every"] == 5
    assert summary["parameters"]["chunk_preset"] == "ultrafast"
    assert detector.frames == 1000 // 5
    for c in summary["chunks"]:
        assert c["status"] == "success" and c["best_track"]["offset"] == 7, c


def test_chunk_workers_give_the_same_results(tmp_path):
    """Chunks analysed by two workers beside detection (as on a GPU) = analysed in line."""
    src = known_offset_clip(tmp_path / "src.mp4", 50.0, -5, fps=Fraction(25))
    runs = {}
    for workers in (1, 2):
        detector = FixedBoxDetector()
        summary = process_long_video(src, tmp_path / f"out{workers}", options(chunk_workers=workers), detector,
                                     BrightnessLoudnessSyncNet())
        assert detector.frames == 1250
        runs[workers] = summary
    strip = ("files",)
    one, two = ([{k: v for k, v in c.items() if k not in strip} for c in runs[w]["chunks"]] for w in (1, 2))
    assert one == two
    assert runs[2]["totals"] == runs[1]["totals"] and runs[2]["complete"]
    assert all(c["best_track"]["offset"] == -5 for c in runs[2]["chunks"])


def test_layout_summary_and_filter(tmp_path):
    src = known_offset_clip(tmp_path / "src.mp4", 24.0, 2, fps=Fraction(25))
    opts = options(chunk_duration=10.0, overlap=2.0, max_abs_offset=1)
    summary = process_long_video(src, tmp_path / "out", opts, FixedBoxDetector(), BrightnessLoudnessSyncNet())
    out = tmp_path / "out"
    names = [c["name"] for c in summary["chunks"]]
    assert names == ["chunk_000", "chunk_001", "chunk_002"]
    for n in names:
        assert (out / "chunks" / f"{n}.mp4").exists()
        assert (out / "audio" / f"{n}.wav").exists()
        for kind, files in (("pyavi", ["video.avi", "audio.wav"]), ("pycrop", ["00000.avi"]),
                            ("pywork", ["faces.pckl", "scene.pckl", "tracks.pckl", "tracks.json",
                                        "offsets.txt", "offsets.json", "activesd.pckl"])):
            for f in files:
                assert (out / "syncnet_data" / kind / n / f).exists(), (kind, n, f)
    on_disk = json.loads((out / "processing_summary.json").read_text())
    assert on_disk["complete"] and on_disk["totals"]["rejected"] == 3
    for c in on_disk["chunks"]:
        assert c["filter"] == {"enabled": True, "accepted": False, "reasons": ["|offset| 2 > 1"]}
    assert sorted(os.listdir(out / "filtered_chunks")) == []
    opts2 = options(chunk_duration=10.0, overlap=2.0, max_abs_offset=2)
    summary2 = process_long_video(src, tmp_path / "out", opts2, FixedBoxDetector(), BrightnessLoudnessSyncNet())
    assert summary2["totals"]["accepted"] == 3
    assert sorted(os.listdir(out / "filtered_chunks")) == [f"{n}.mp4" for n in names]
    assert sorted(os.listdir(out / "filtered_audio")) == [f"{n}.wav" for n in names]
    assert os.stat(out / "filtered_chunks/chunk_000.mp4").st_ino == os.stat(out / "chunks/chunk_000.mp4").st_ino


def test_changed_parameters_are_refused_without_force(tmp_path):
    """Refused in the library's terms (ConflictingOutput, no flag named: the command line adds
    how to proceed); with force, redone with the new parameters."""
    from syncnet.errors import ConflictingOutput

    src = known_offset_clip(tmp_path / "src.mp4", 12.0, 0)
    out = tmp_path / "out"
    process_long_video(src, out, options(chunk_duration=6.0, overlap=1.0), FixedBoxDetector(),
                       BrightnessLoudnessSyncNet())
    with pytest.raises(ConflictingOutput,
                       match=r" holds results made with other parameters \(chunk_duration: 6\.0 -> 5\.0\)$"):
        process_long_video(src, out, options(chunk_duration=5.0, overlap=1.0), FixedBoxDetector(),
                           BrightnessLoudnessSyncNet())
    before = json.loads((out / "processing_summary.json").read_text())
    assert before["parameters"]["chunk_duration"] == 6.0
    s = process_long_video(src, out, options(chunk_duration=5.0, overlap=1.0), FixedBoxDetector(),
                           BrightnessLoudnessSyncNet(), force=True)
    assert s["parameters"]["chunk_duration"] == 5.0 and s["totals"]["success"] == len(s["chunks"])


def test_failed_chunk_record_keeps_nothing_of_its_attempt(tmp_path, monkeypatch):
    """A chunk that fails after its cut is recorded as planned, with its error and nothing
    else: not the snapped cut times (29.97 fps: 3.0 s snaps to 3.003 s), no tracks."""
    import syncnet.jobs.longvideo as lv

    src = known_offset_clip(tmp_path / "src.mp4", 9.0, 0, fps=Fraction(30000, 1001))
    real = lv.analyse_video

    def failing(videofile, *args, **kwargs):
        if Path(videofile).stem == "chunk_001":
            raise RuntimeError("planted after the cut")
        return real(videofile, *args, **kwargs)

    monkeypatch.setattr(lv, "analyse_video", failing)
    out = tmp_path / "out"
    s = process_long_video(src, out, options(chunk_duration=4.0, overlap=1.0), FixedBoxDetector(),
                           BrightnessLoudnessSyncNet())
    c0, c1, c2 = s["chunks"]
    assert (out / "chunks/chunk_001.mp4").exists()  # the cut was made before the failure
    assert (c2["start"], c0["status"], c2["status"]) == (6.006, "success", "success")  # cuts do snap here
    assert {k: c1[k] for k in ("start", "end", "status", "error", "tracks", "best_track")} == {
        "start": 3.0, "end": 7.0, "status": "failed", "error": "RuntimeError: planted after the cut",
        "tracks": [], "best_track": None}
    assert json.loads((out / "processing_summary.json").read_text())["chunks"][1] == c1


def test_resume_after_sigkill(tmp_path):
    """Kill the job mid-run, run it again: finished chunks are kept, the summary ends as an uninterrupted run's."""
    src = known_offset_clip(tmp_path / "src.mp4", 40.0, 3)
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests.test_longvideo import options\n"
        "from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector\n"
        "from syncnet.jobs.longvideo import process_long_video\n"
        "import time\n"
        "class Slow(FixedBoxDetector):\n"
        "    def detect_batch(self, images, conf_th=0.9, scale=0.25):\n"
        "        time.sleep(0.05)\n"
        "        return super().detect_batch(images, conf_th, scale)\n"
        "process_long_video(sys.argv[1], sys.argv[2], options(chunk_duration=8.0, overlap=2.0), Slow(),\n"
        "                   BrightnessLoudnessSyncNet())\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(src), str(out)])
    summary_path = out / "processing_summary.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if summary_path.exists():
            s = json.loads(summary_path.read_text())
            if s["totals"].get("success", 0) >= 2:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads(summary_path.read_text())  # valid JSON after a kill
    assert 2 <= partial["totals"]["success"] < len(partial["chunks"])
    resumed = process_long_video(src, out, options(chunk_duration=8.0, overlap=2.0), FixedBoxDetector(),
                                 BrightnessLoudnessSyncNet())
    clean = process_long_video(src, tmp_path / "clean", options(chunk_duration=8.0, overlap=2.0),
                               FixedBoxDetector(), BrightnessLoudnessSyncNet())

    def strip(s):
        return [{k: v for k, v in c.items() if k != "files"} for c in s["chunks"]]

    assert strip(resumed) == strip(clean)
    assert resumed["totals"] == clean["totals"]
    assert resumed["detector_frames"] == clean["detector_frames"] == 1000
    assert resumed["timings"]["detector_frames_this_run"] < 1000


@pytest.mark.parametrize("job", ["long", "batch"])
def test_kept_memory_is_released_between_a_chunks_phases(tmp_path, monkeypatch, job):
    """The long job and the batch runner hand kept memory back after detection and after
    SyncNet: S3FD's activations are not still held while the crop pass and SyncNet build
    theirs, nor SyncNet's while the visualisation decodes and encodes (the job's peak)."""
    import syncnet.analysis
    from syncnet.jobs import batch, longvideo

    events: list[str] = []

    def note(name):
        if not events or events[-1] != name:
            events.append(name)

    class Detector(FixedBoxDetector):
        def detect_batch(self, images_rgb, conf_th=0.9, scale=0.25):
            note("detect")
            return super().detect_batch(images_rgb, conf_th, scale)

    class Model(BrightnessLoudnessSyncNet):
        def forward_lip_clip(self, clip):
            note("syncnet")
            return super().forward_lip_clip(clip)

    def watched(name, fn):
        def call(*a, **kw):
            note(name)
            return fn(*a, **kw)
        return call

    monkeypatch.setattr(syncnet.analysis, "crop_tracks", watched("crop", syncnet.analysis.crop_tracks))
    monkeypatch.setattr(syncnet.analysis, "draw_visualisation",
                        watched("visualise", syncnet.analysis.draw_visualisation))
    monkeypatch.setattr(longvideo if job == "long" else batch, "release_freed_memory", lambda: note("release"))
    src = known_offset_clip(tmp_path / "src.mp4", 25.0, 3)
    if job == "long":
        summary = process_long_video(src, tmp_path / "out", options(visualise=True), Detector(), Model())
        assert [c["best_track"]["offset"] for c in summary["chunks"]] == [3, 3]
        chunks = 2
    else:
        rec = batch.analyse_file(src, tmp_path / "out", FaceOptions(min_track=5, min_face_size=10), Detector(),
                                 Model(), vshift=15, visualise=True)
        assert rec.tracks[0].offset == 3, rec
        chunks = 1
    # Every chunk: detection (the long job's shared pass, before), a release, its crop
    # pass, a release-free run of SyncNet calls, a release, its visualisation.
    phases = ["release", "crop", "syncnet", "release", "visualise"]
    starts = [i for i, e in enumerate(events) if e == "crop"]
    assert len(starts) == chunks, events
    for i in starts:
        assert events[i - 2] == "detect" and events[i - 1:i + 4] == phases, events
