"""batch_process.py: a folder of videos, shared models, one bad file among good ones, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import pytest

from syncnet.jobs.batch import Serialised, process_folder
from syncnet.options import FaceOptions
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.conftest import REPO


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("chunks")
    known_offset_clip(d / "a_k0.mp4", 6.0, 0)
    known_offset_clip(d / "b_k3.mp4", 6.0, 3, fps=Fraction(30))
    known_offset_clip(d / "c_km2.mov", 6.0, -2)
    (d / "d_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    (d / "notes.txt").write_text("not a video")
    return d


def test_one_bad_file_does_not_stop_the_others(folder, tmp_path):
    detector = FixedBoxDetector()
    summary = process_folder(folder, tmp_path, FaceOptions(min_track=5, min_face_size=10), detector,
                             BrightnessLoudnessSyncNet(), max_workers=2)
    files = {f["file"]: f for f in summary["files"]}
    assert sorted(files) == ["a_k0.mp4", "b_k3.mp4", "c_km2.mov", "d_corrupt.mp4"]
    assert files["d_corrupt.mp4"]["status"] == "failed" and files["d_corrupt.mp4"]["error"]
    for name, k in (("a_k0.mp4", 0), ("b_k3.mp4", 3), ("c_km2.mov", -2)):
        assert files[name]["status"] == "success", files[name]
        assert files[name]["tracks"][0]["offset"] == k
        assert (tmp_path / "pywork" / name.rsplit(".", 1)[0] / "offsets.txt").read_text().startswith(
            f"TRACK 0: OFFSET {k}, CONF ")
    assert summary["totals"] == {"files": 4, "success": 3, "no_faces": 0, "failed": 1, "skipped": 0}
    assert summary["workers"] == 2 and summary["wall_seconds"] > 0
    on_disk = json.loads((tmp_path / "batch_processing_summary.json").read_text())
    assert on_disk["totals"] == summary["totals"]

    # Run again: finished files are skipped, the failed one is tried again.
    again = process_folder(folder, tmp_path, FaceOptions(min_track=5, min_face_size=10), FixedBoxDetector(),
                           BrightnessLoudnessSyncNet(), max_workers=2)
    assert again["totals"]["skipped"] == 3 and again["totals"]["failed"] == 1
    assert [f["tracks"][0]["offset"] for f in again["files"] if f["status"] == "success"] == [0, 3, -2]


def test_serialised_proxy_runs_one_call_at_a_time():
    import threading
    import time

    inside = []

    class Slow:
        def work(self, x):
            inside.append(1)
            assert len(inside) == 1
            time.sleep(0.01)
            inside.pop()
            return x * 2

    proxy = Serialised(Slow(), threading.Lock())
    threads = [threading.Thread(target=proxy.work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proxy.work(4) == 8


def run(*args, cwd, env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def test_manual_chunking_then_batch_workflow(media_dir, tmp_path, s3fd_face_weights, syncnet_weights):
    """The README's manual workflow, as written, with stand-in weights from the environment."""
    env = {**os.environ, "S3FD_MODEL": str(s3fd_face_weights), "SYNCNET_MODEL": str(syncnet_weights)}
    joined = tmp_path / "talk.mp4"
    listing = tmp_path / "list.txt"
    listing.write_text(f"file '{media_dir / 'talking_25fps_a.mp4'}'\nfile '{media_dir / 'talking_25fps_a.mp4'}'\n")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(joined)], check=True)
    proc = run(str(REPO / "video_utils.py"), "chunk-silence", "--input", "talk.mp4", "--output_dir", "chunks/",
               "--min_chunk", "2", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    bash = (f'for f in chunks/*.mp4; do "{sys.executable}" "{REPO / "video_utils.py"}" extract-audio '
            '--input "$f" --output "${f%.mp4}.wav"; done')
    assert subprocess.run(["bash", "-c", bash], cwd=tmp_path, env=env).returncode == 0
    assert len(list((tmp_path / "chunks").glob("*.wav"))) == len(list((tmp_path / "chunks").glob("*.mp4")))
    proc = run(str(REPO / "batch_process.py"), "--chunks_dir", "chunks/", "--output_dir", "batch_results/",
               "--max_workers", "2", "--min_track", "10", "--min_face_size", "20", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "batch_results/batch_processing_summary.json").read_text())
    assert summary["totals"]["failed"] == 0 and summary["totals"]["success"] >= 1
    for f in summary["files"]:
        assert (tmp_path / "batch_results/pywork" / f["file"].rsplit(".", 1)[0] / "offsets.txt").exists()
    # A corrupt file joins the folder: the run goes on, records it, and exits 1; the rest are kept.
    (tmp_path / "chunks/zz_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    proc = run(str(REPO / "batch_process.py"), "--chunks_dir", "chunks/", "--output_dir", "batch_results/",
               "--max_workers", "2", "--min_track", "10", "--min_face_size", "20", cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "failed zz_corrupt.mp4" in proc.stdout
    again = json.loads((tmp_path / "batch_results/batch_processing_summary.json").read_text())
    assert again["totals"]["failed"] == 1
    assert again["totals"]["skipped"] == summary["totals"]["success"] + summary["totals"]["no_faces"]


def test_bad_input(tmp_path):
    env = dict(os.environ)
    proc = run(str(REPO / "batch_process.py"), "--chunks_dir", str(tmp_path / "nope"), "--output_dir",
               str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "not a directory" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run(str(REPO / "batch_process.py"), "--chunks_dir", str(tmp_path / "empty"), "--output_dir",
               str(tmp_path / "out"), cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "no video files" in proc.stderr


def test_previous_summary_reuses_redoes_or_refuses(tmp_path, caplog):
    """Both jobs' rule for an earlier summary: same parameters and schema -> reused; another
    schema -> a warning, redone; other parameters or input -> ConflictingOutput in the
    library's terms (no flag named); forced -> a warning, redone."""
    import logging

    from syncnet.errors import ConflictingOutput
    from syncnet.jobs.previous import previous_summary

    path = tmp_path / "summary.json"
    params = {"vshift": 15, "min_track": 5}
    assert previous_summary(path, params, 2, False, "file") is None  # nothing there
    old = {"schema_version": 2, "parameters": params, "files": []}
    path.write_text(json.dumps(old))
    assert previous_summary(path, params, 2, False, "file") == old
    with caplog.at_level(logging.WARNING, logger="syncnet"):
        assert previous_summary(path, params, 3, False, "file") is None
        assert previous_summary(path, {**params, "vshift": 10}, 2, True, "file") is None
    notes = [r.getMessage() for r in caplog.records]
    assert notes == [f"{path} was written by another version of this program (schema 2, now 3); redoing every file",
                     f"forced: redoing every file in {tmp_path}"]
    with pytest.raises(ConflictingOutput) as refused:
        previous_summary(path, {**params, "vshift": 10}, 2, False, "file")
    assert str(refused.value) == f"{tmp_path} holds results made with other parameters (vshift: 15 -> 10)"
    with pytest.raises(ConflictingOutput) as refused:
        previous_summary(path, params, 2, False, "chunk", same_input=lambda o: False)
    assert str(refused.value) == f"{tmp_path} holds results made with another input"
