"""Many inputs, one command: process_long_video.py given several files or a folder.

The script runs for real through tests/doubled.py (only the two networks are the test
doubles): each input must end exactly as if run alone, in OUTPUT_DIR/<its name>/;
dataset_summary.json must match its schema and add up; a corrupt file is a recorded
failure while the others go on; two inputs with one name are refused; a killed run
resumes and skips what was finished.  Media: clips of 5 and 6 s, 3 s chunks with 1 s overlap.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syncnet.errors import InputError
from syncnet.jobs import dataset as ds
from syncnet.jobs.longvideo import LongVideoOptions
from syncnet.options import FaceOptions
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.conftest import REPO, held, hold
from tests.schemas import summary_errors, validate_summary

CHUNKS = ["--chunk_duration", "3", "--overlap", "1", "--no_visualise"]
PLV = "process_long_video.py"


def doubled(*args) -> list[str]:
    return [sys.executable, str(REPO / "tests/doubled.py"), PLV, *map(str, args)]


def run(*args, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(doubled(*args), capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def tree(folder: Path) -> dict[str, str]:
    """Every file below `folder` (relative name -> sha256)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# Files that name their own output folder or the run's timings; compared as summaries instead.
NAMES_THEIR_FOLDER = {"processing_summary.json", "report.html"}


def comparable(summary: dict, out: Path) -> dict:
    """A processing summary without timings, with its output folder's path taken out."""
    text = json.dumps({k: v for k, v in summary.items() if k not in ("timings", "detector_frames_this_run")})
    return json.loads(text.replace(str(out), "OUT"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("many_media")
    a = known_offset_clip(d / "a.mp4", 5.0, 2)
    b = known_offset_clip(d / "b.mp4", 6.0, -3, seed=5)
    folder = d / "folder"
    folder.mkdir()
    for p in (a, b):
        shutil.copy(p, folder / p.name)
    bad = folder / "a_corrupt.mp4"  # sorted between a.mp4 and b.mp4
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))  # a corrupt file that looks like an MP4
    (folder / "notes.txt").write_text("not a video: not an input\n")
    return {"dir": d, "a": a, "b": b, "bad": bad, "folder": folder}


@pytest.fixture(scope="module")
def runs(media, tmp_path_factory) -> dict:
    """Each clip alone (today's single-input layout), and the folder: both, the corrupt file between them."""
    root = tmp_path_factory.mktemp("many_runs")
    procs = {}
    for name in ("a", "b"):
        procs[name] = run("--input_video", media["folder"] / f"{name}.mp4", "--output_dir", root / f"alone_{name}",
                          *CHUNKS)
        assert procs[name].returncode == 0, procs[name].stderr
    procs["many"] = run("--input_video", media["folder"], "--output_dir", root / "many", *CHUNKS)
    return {"root": root, "procs": procs, "many": root / "many"}


def test_each_input_ends_as_if_run_alone(runs):
    """OUTPUT_DIR/<name>/ holds exactly the files of that input's own run, the same bytes
    (the summary and page, which name their folder, equal once the folder is taken out)."""
    root, many = runs["root"], runs["many"]
    assert sorted(p.name for p in many.iterdir()) == ["a", "b", "dataset_report.html",
                                                      "dataset_summary.json"]  # none for the corrupt one
    for name in ("a", "b"):
        alone, mine = root / f"alone_{name}", many / name
        assert not (alone / "dataset_summary.json").exists()  # one input: today's layout, nothing added
        t_alone, t_mine = tree(alone), tree(mine)
        assert sorted(t_mine) == sorted(t_alone)
        assert {f for f in t_mine if t_mine[f] != t_alone[f]} <= NAMES_THEIR_FOLDER
        assert comparable(load(mine / "processing_summary.json"), mine) == \
            comparable(load(alone / "processing_summary.json"), alone)


def test_a_corrupt_file_is_recorded_and_the_others_done(runs, media):
    proc = runs["procs"]["many"]
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    about_bad = [line for line in proc.stderr.splitlines() if "a_corrupt.mp4" in line]
    assert len(about_bad) == 1 and about_bad[0].startswith("input 2/3: a_corrupt.mp4: "), proc.stderr
    summary = load(runs["many"] / "dataset_summary.json")
    assert [(e["name"], e["status"]) for e in summary["inputs"]] == [("a", "done"), ("a_corrupt", "failed"),
                                                                       ("b", "done")]
    bad = summary["inputs"][1]
    assert bad["path"] == str(media["bad"]) and bad["summary"] is None and bad["totals"] is None
    assert len(bad["failures"]) == 1 and bad["failures"][0]["chunk"] is None
    assert "a_corrupt.mp4" in bad["failures"][0]["error"] and bad["failures"][0]["error"] in about_bad[0]
    assert summary["complete"] and summary["totals"]["failed"] == 1 and summary["totals"]["done"] == 2
    # The end-of-run report: a row per input, the totals, the failure.
    out = proc.stdout
    assert "Inputs (3):" in out and "Inputs:     3 (2 done, 1 failed)" in out
    assert [line.split()[1:3] for line in out.splitlines() if line.strip()[:2] in ("1 ", "2 ", "3 ")] == \
        [["a", "done"], ["a_corrupt", "failed"], ["b", "done"]]
    assert f"failed a_corrupt: {bad['failures'][0]['error']}" in out


def test_dataset_summary_matches_its_schema_and_adds_up(runs):
    many = runs["many"]
    summary = validate_summary(many / "dataset_summary.json")
    per_input = {n: load(many / n / "processing_summary.json") for n in ("a", "b")}
    totals = summary["totals"]
    for key in ds.CHUNK_COUNTS:
        assert totals["chunks"][key] == sum(s["totals"][key] for s in per_input.values()), key
    assert totals["chunks"]["chunks"] == 2 + 3  # 0-3 and 2-5 s; 0-3, 2-5 and 4-6 s
    assert totals["duration"] == pytest.approx(sum(s["input"]["duration"] for s in per_input.values()))
    assert totals["detector_frames"] == sum(s["detector_frames"] for s in per_input.values()) == 125 + 150
    confs = {n: [c["best_track"]["confidence"] for c in s["chunks"] if c["best_track"]["reliable"]]
             for n, s in per_input.items()}
    entries = {e["name"]: e for e in summary["inputs"]}
    for n, values in confs.items():
        assert entries[n]["totals"] == per_input[n]["totals"]
        assert entries[n]["mean_best_confidence"] == pytest.approx(sum(values) / len(values), abs=1e-6)
        assert entries[n]["confident_chunks"] == len(values) > 0
        assert entries[n]["output_dir"] == str(many / n) and entries[n]["status"] == "done"
    pooled = [v for values in confs.values() for v in values]
    assert totals["mean_best_confidence"] == pytest.approx(sum(pooled) / len(pooled), abs=1e-6)
    assert totals["confident_chunks"] == len(pooled)


def test_the_schema_refuses_what_must_not_be_written(runs):
    import copy

    good = load(runs["many"] / "dataset_summary.json")
    assert summary_errors(good) == []
    for what, change in (
            ("unknown status", lambda s: s["inputs"][0].update(status="ok")),
            ("done without totals", lambda s: s["inputs"][0].update(totals=None)),
            ("failed without a reason", lambda s: s["inputs"][1].update(failures=[])),
            ("multi-line error", lambda s: s["inputs"][1]["failures"][0].update(error="a\nb")),
            ("missing key", lambda s: s["totals"].pop("partial")),
            ("extra key", lambda s: s["inputs"][0].update(extra=1)),
            ("another schema_version", lambda s: s.update(schema_version=2))):
        wrong = copy.deepcopy(good)
        change(wrong)
        assert summary_errors(wrong), what


def test_the_overview_page_links_each_inputs_report(runs, tmp_path, capsys, monkeypatch):
    """dataset_report.html: a row per input, a link to each report.html there is, the failure's
    line; `video_utils.py report` on the folder makes the same bytes again."""
    from syncnet._cli import video_utils

    out = tmp_path / "many"
    shutil.copytree(runs["many"], out)
    page = (out / "dataset_report.html").read_text()
    assert page.count('<tr class="input ') == 3
    assert '<a href="a/report.html">' in page and '<a href="b/report.html">' in page
    assert 'href="a_corrupt/' not in page
    error = load(out / "dataset_summary.json")["inputs"][1]["failures"][0]["error"]
    assert f'<td class="note error">{error}</td>' in page
    (out / "dataset_report.html").unlink()
    monkeypatch.setenv("SYNCNET_KEEP_FREED_MEMORY", "0")
    with pytest.raises(SystemExit) as code:
        video_utils.entry(["report", str(out)])
    assert code.value.code == 0, capsys.readouterr().err
    assert (out / "dataset_report.html").read_text() == page


def test_a_folder_is_its_videos(runs, media):
    """A folder: its videos sorted by name (not notes.txt), each input's path the file's."""
    summary = load(runs["many"] / "dataset_summary.json")
    assert [e["path"] for e in summary["inputs"]] == [str(media["folder"] / f) for f in
                                                      ("a.mp4", "a_corrupt.mp4", "b.mp4")]
    for n in ("a", "b"):
        assert load(runs["many"] / n / "processing_summary.json")["input"]["path"] == str(media["folder"] /
                                                                                           f"{n}.mp4")


def entry(*args, capsys, monkeypatch) -> tuple[int, str]:
    """The command in this process (no models load before these refusals): exit code, stderr."""
    from syncnet._cli import process_long_video

    monkeypatch.setenv("SYNCNET_KEEP_FREED_MEMORY", "0")
    with pytest.raises(SystemExit) as code:
        process_long_video.entry([*map(str, args), "--no_visualise"])
    return code.value.code, capsys.readouterr().err


def test_two_inputs_with_one_name_are_refused(media, tmp_path, capsys, monkeypatch):
    """Their outputs would share a folder: exit 2, one line naming both, nothing written."""
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = shutil.copy(media["b"], other / "a.mkv")
    out = tmp_path / "out"
    code, err = entry("--input_video", media["a"], twin, "--output_dir", out, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    line = one_line(err)
    assert "error: two inputs would write to the same output folder a/" in line
    assert str(media["a"]) in line and str(twin) in line
    assert not out.exists()


def test_other_parameters_are_refused_before_any_input_runs(runs, media, tmp_path, capsys, monkeypatch):
    """A rerun with another chunk length: exit 2, one line, no input touched."""
    out = tmp_path / "out"
    shutil.copytree(runs["many"], out)
    before = tree(out)
    code, err = entry("--input_video", media["folder"], "--output_dir", out, "--chunk_duration", "2",
                      "--overlap", "1", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 2
    line = one_line(err)
    assert "holds results made with other parameters (chunk_duration: 3.0 -> 2.0)" in line and "--force" in line
    assert tree(out) == before


def test_a_killed_run_resumes_and_skips_finished_inputs(runs, media, tmp_path):
    """kill -9 while b runs: the dataset summary says a is done and b is not; the rerun skips a
    (its files untouched), resumes b where it stopped, and ends as the uninterrupted run."""
    out = tmp_path / "out"
    args = ("--input_video", media["folder"] / "a.mp4", media["folder"] / "b.mp4", "--output_dir", out, *CHUNKS)
    # The job holds once it has recorded and checkpointed all of a's chunks and b's first (tests/doubled.py).
    a_chunks = len(load(runs["root"] / "alone_a/processing_summary.json")["chunks"])
    gate = tmp_path / "hold"
    proc = subprocess.Popen(doubled(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **hold(gate, "saved", after=a_chunks + 1)})
    deadline = time.time() + 120
    while not held(gate).exists():
        assert time.time() < deadline and proc.poll() is None, "b never got a chunk done"
        time.sleep(0.05)
    assert load(out / "b/processing_summary.json")["totals"]["success"] == 1
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed = validate_summary(out / "dataset_summary.json")  # whole, valid JSON after a kill
    assert [e["status"] for e in killed["inputs"]] == ["done", "pending"] and not killed["complete"]
    a_files = tree(out / "a")
    a_stat = (out / "a/processing_summary.json").stat().st_mtime_ns

    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "input 1/2: a.mp4: done before, skipped" in proc.stderr
    assert "resuming: " in proc.stderr  # b went on from its finished chunks
    assert tree(out / "a") == a_files and (out / "a/processing_summary.json").stat().st_mtime_ns == a_stat
    b = load(out / "b/processing_summary.json")
    assert b["detector_frames_this_run"] < b["detector_frames"]  # detection went on where it stopped
    for n in ("a", "b"):
        assert comparable(load(out / n / "processing_summary.json"), out / n) == \
            comparable(load(runs["many"] / n / "processing_summary.json"), runs["many"] / n)
    resumed = validate_summary(out / "dataset_summary.json")
    assert [e["status"] for e in resumed["inputs"]] == ["done", "done"] and resumed["complete"]


# ---------------------------------------------------------------- the library


def test_a_job_that_fails_is_recorded_and_the_next_runs(media, tmp_path, monkeypatch):
    """An input whose job raises (not a bad probe): recorded with its one line, the next input
    still runs, the summary is written after each; rebuilding from disk gives the same entries."""
    opts = LongVideoOptions(chunk_duration=3.0, overlap=1.0, visualise=False,
                            faces=FaceOptions(min_track=5, min_face_size=10))
    run_job = ds.LongVideoJob.run

    def failing(job):
        if job.source.name == "a.mp4":
            raise RuntimeError("planted\nfailure")
        return run_job(job)

    monkeypatch.setattr(ds.LongVideoJob, "run", failing)
    inputs = ds.expand_inputs([media["a"], media["b"]])
    dataset = ds.DatasetSummary(tmp_path, inputs, opts.result_parameters(), opts.filter_parameters())
    checked = [ds.check_input(p, opts, dataset.out_dir(p), False) for p in inputs]
    written = []
    summary = ds.run_inputs(checked, dataset, opts, FixedBoxDetector(), BrightnessLoudnessSyncNet(),
                            after=lambda src, s, out: written.append(load(tmp_path / ds.DATASET_SUMMARY)))
    assert [e["status"] for e in summary["inputs"]] == ["failed", "done"]
    assert summary["inputs"][0]["failures"] == [{"chunk": None, "error": "RuntimeError: planted | failure"}]
    assert [[e["status"] for e in w["inputs"]] for w in written] == [["failed", "pending"]]  # written after a
    rebuilt = ds.DatasetSummary.rebuild(tmp_path, inputs, opts.result_parameters(), opts.filter_parameters())
    assert rebuilt.to_dict()["inputs"][1] == summary["inputs"][1]
    assert rebuilt.to_dict()["inputs"][0]["status"] == "pending"  # its failure is not on disk: it is redone
    assert summary_errors(summary) == []


def test_a_full_disk_stops_the_run(media, tmp_path, monkeypatch):
    """Every later input would fail the same way: the run stops (resumable), the summary whole."""
    opts = LongVideoOptions(chunk_duration=3.0, overlap=1.0, visualise=False)

    def full(job):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ds.LongVideoJob, "run", full)
    inputs = [media["a"], media["b"]]
    dataset = ds.DatasetSummary(tmp_path, inputs)
    with pytest.raises(OSError):
        ds.run_inputs([ds.check_input(p, opts, dataset.out_dir(p), False) for p in inputs], dataset, opts, None,
                      None)
    on_disk = validate_summary(tmp_path / ds.DATASET_SUMMARY)
    assert [e["status"] for e in on_disk["inputs"]] == ["pending", "pending"]


def test_which_paths_make_a_dataset(media, tmp_path):
    assert not ds.several_inputs([media["a"]])
    assert ds.several_inputs([media["a"], media["b"]]) and ds.several_inputs([media["folder"]])
    assert ds.input_output_dir("out", media["a"], False) == Path("out")
    assert ds.input_output_dir("out", media["a"], True) == Path("out/a")
    assert ds.expand_inputs([media["folder"]]) == [media["folder"] / f for f in ("a.mp4", "a_corrupt.mp4", "b.mp4")]
    with pytest.raises(InputError, match="same output folder b/"):
        ds.expand_inputs([media["b"], media["folder"]])
    with pytest.raises(InputError, match="no such file or directory"):
        ds.expand_inputs([media["a"], media["dir"] / "nope.mp4"])
    opts = LongVideoOptions(chunk_duration=3.0, overlap=1.0)
    bad = ds.check_input(media["bad"], opts, tmp_path / "bad", False)  # a result, not an exit
    assert bad.info is None and "a_corrupt.mp4 is not a media file" in bad.error
    assert ds.check_input(media["a"], opts, tmp_path / "a", False).info.duration == 5.0
