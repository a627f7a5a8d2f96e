"""The command-line contract of process_long_video.py and batch_process.py, through the real scripts.

What the README promises a user: exit code 0 when everything was analysed, 1 when some
chunks or files failed (the others kept, the failure recorded in one line), 2 for bad
input; without -v a failure is one line on stderr, with -v a traceback; a rerun with
other parameters is refused in one line unless --force; --no_visualise writes no
video_out.avi; the quality filter and filtered_chunks/ agree with the summary; silence
chunking cuts inside the silences; odd path names work as they are.

The scripts run with the stand-in weights (S3FD with face bias 1.0 fires on clip a of
../shared/media) on clips scaled down to 128x128 and a few seconds long, so that each
full run takes seconds.  Runs are module-scoped and shared by several tests; every
summary they write is checked against schemas/.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from tests.conftest import REPO
from tests.schemas import validate_summary

LONG = "process_long_video.py"
BATCH = "batch_process.py"
# Quotes, a command substitution (created file: PWNED), spaces and non-ASCII letters.
ODD = "in put 'q' \"d\" $(touch PWNED) ü"
FLAGS = ["--min_track", "10"]  # S3FD sees 32x32 frames (--facedet_scale 0.25), where it still finds clip a's face
SILENCES = [(1.6, 2.8), (4.0, 5.2)]  # of the silence source, 6 s long
SOUND_UNTIL = 2.1  # the short-sound source has 4 s of picture, sound only until here


def run(script: str, *args, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def failures(text: str) -> list[str]:
    """stderr's lines but the warnings about results (a best track at the edge of the offset search:
    the stand-in SyncNet's offsets often are)."""
    return [ln for ln in lines(text) if "edge of the search" not in ln]


def assert_one_line(proc: subprocess.CompletedProcess, code: int, script: str, *words: str) -> None:
    """Exit `code`, and stderr is one line: the script's name, 'error:' and `words`."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    err = lines(proc.stderr)
    assert len(err) == 1, proc.stderr
    assert err[0].startswith(f"{script}: error: "), err[0]
    for w in words:
        assert w in err[0], err[0]


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", *map(str, args)], check=True)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below `root`: (size, mtime_ns), to tell whether a run touched them."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def summary_of(out: Path, name: str = "processing_summary.json") -> dict:
    return validate_summary(out / name)


# ---------------------------------------------------------------- media and runs


@pytest.fixture(scope="module")
def env(s3fd_face_weights, syncnet_weights):
    """Stand-in weights from the environment, and one torch thread: the frames are tiny, and on a
    busy 2-core machine two threads a run spin against each other (S3FD measured 4x slower)."""
    return {**os.environ, "S3FD_MODEL": str(s3fd_face_weights), "SYNCNET_MODEL": str(syncnet_weights),
            "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def media(media_dir, tmp_path_factory):
    """Sources made from clip a at 128x128 (a face in every frame)."""
    d = tmp_path_factory.mktemp("media")
    face = d / "face.mp4"  # 8 s: clip a twice, with its sound
    ffmpeg("-stream_loop", "1", "-i", media_dir / "talking_25fps_a.mp4", "-t", "8", "-vf", "scale=128:128",
           "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-c:a", "aac", face)
    # Silence source: 6 s of picture; noise at -15 dB except in SILENCES.
    rate = 48000
    t = np.arange(6 * rate) / rate
    sound = np.random.default_rng(0).uniform(-0.3, 0.3, len(t))
    for a, b in SILENCES:
        sound[(t >= a) & (t < b)] = 0
    wav = d / "silences.wav"
    wavfile.write(wav, rate, (sound * 32767).astype(np.int16))
    silence = d / f"{ODD}.mp4"
    ffmpeg("-i", face, "-i", wav, "-map", "0:v", "-map", "1:a", "-t", "6", "-c:v", "libx264", "-preset", "veryfast",
           "-crf", "18", "-c:a", "aac", silence)
    short = d / "short_sound.mp4"  # 4 s of picture, sound that stops at SOUND_UNTIL
    ffmpeg("-i", face, "-map", "0:v", "-map", "0:a", "-t", "4", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
           "-af", f"atrim=end={SOUND_UNTIL}", "-c:a", "aac", short)
    mute = d / "mute.mp4"
    ffmpeg("-i", face, "-t", "1", "-an", "-c:v", "copy", mute)
    text = d / "notes.mp4"
    text.write_text("not a video\n")
    return {"face": face, "silence": silence, "short": short, "mute": mute, "text": text, "dir": d}


@pytest.fixture(scope="module")
def silence_run(media, env, tmp_path_factory):
    """The silence source (odd name) into an output folder with an odd name, visualised."""
    cwd = tmp_path_factory.mktemp("silence_cwd")
    out = cwd / f"out {ODD}"
    args = ["--input_video", media["silence"], "--output_dir", out, "--chunking", "silence",
            "--min_silence", "0.8", "--min_chunk", "1.0", *FLAGS]
    proc = run(LONG, *args, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "cwd": cwd, "args": args, "proc": proc, "summary": summary_of(out)}


# ---------------------------------------------------------------- process_long_video.py: success


def test_success_exits_0_and_reports(silence_run):
    """Every chunk analysed: exit 0, a complete summary, the report on stdout, no traceback."""
    proc, s = silence_run["proc"], silence_run["summary"]
    assert s["complete"] and s["totals"]["failed"] == 0 and s["totals"]["pending"] == 0
    assert s["totals"]["success"] == len(s["chunks"]) == 3
    assert "Traceback" not in proc.stderr
    assert "Chunks:     3 (3 with faces, 0 without, 0 failed)" in proc.stdout
    assert f"Summary:    {silence_run['out'] / 'processing_summary.json'}" in proc.stdout


def test_silence_chunking_cuts_inside_the_silences(silence_run):
    """--chunking silence: one cut in the middle of each silence, chunks tiling the source."""
    from syncnet import media as m

    s = silence_run["summary"]
    assert s["parameters"]["chunking"] == "silence"
    assert (s["parameters"]["min_silence"], s["parameters"]["min_chunk"]) == (0.8, 1.0)
    chunks = s["chunks"]
    assert chunks[0]["start"] == 0 and chunks[-1]["end"] == pytest.approx(6.0, abs=0.05)
    cuts = [c["end"] for c in chunks[:-1]]
    assert cuts == [c["start"] for c in chunks[1:]]  # no gap, no overlap
    assert len(cuts) == len(SILENCES)
    for cut, (a, b) in zip(cuts, SILENCES):
        assert a < cut < b and cut == pytest.approx((a + b) / 2, abs=0.12), (cut, a, b)
    for c in chunks:
        assert m.probe(c["files"]["chunk"]).duration == pytest.approx(c["end"] - c["start"], abs=0.05)


def test_odd_path_names_work_as_they_are(silence_run, media):
    """Spaces, quotes, $(...) and non-ASCII letters in the input and output paths: used as
    given, never through a shell (no PWNED file appears)."""
    out, s = silence_run["out"], silence_run["summary"]
    assert s["input"]["path"] == str(media["silence"])
    for c in s["chunks"]:
        for key in ("chunk", "audio", "offsets", "video_out"):
            assert Path(c["files"][key]).is_file() and Path(c["files"][key]).is_relative_to(out), c["files"][key]
    assert (out / "chunks" / "chunk_002.mp4").is_file()
    assert not list(silence_run["cwd"].rglob("PWNED")) and not list(media["dir"].rglob("PWNED"))
    assert not Path("PWNED").exists() and not (REPO / "PWNED").exists()


def test_visualise_by_default(silence_run):
    """Without --no_visualise each chunk with faces has its video_out.avi, named in the summary
    (the contrast for test_no_visualise)."""
    for c in silence_run["summary"]["chunks"]:
        expected = silence_run["out"] / "syncnet_data/pyavi" / c["name"] / "video_out.avi"
        assert c["files"]["video_out"] == str(expected)
        assert Path(c["files"]["video_out"]).stat().st_size > 0
    assert "visualise" in silence_run["summary"]["timings"]


# ---------------------------------------------------------------- --min_confidence


@pytest.fixture(scope="module")
def filter_run(silence_run, env):
    """The same command again with --min_confidence halfway between the chunks' best confidences."""
    # Between the reliable chunks' confidences (a chunk whose best track is too short to
    # measure is rejected whatever its confidence), so that the threshold splits them.
    confs = [c["best_track"]["confidence"] for c in silence_run["summary"]["chunks"] if c["best_track"]["reliable"]]
    assert len(confs) >= 2 and max(confs) - min(confs) > 0.01, confs  # else the threshold could not split them
    threshold = round((min(confs) + max(confs)) / 2, 3)
    proc = run(LONG, *silence_run["args"], "--min_confidence", threshold, env=env, cwd=silence_run["cwd"])
    assert proc.returncode == 0, proc.stderr
    return {"threshold": threshold, "proc": proc, "summary": summary_of(silence_run["out"])}


def test_min_confidence_filter_agrees_with_filtered_chunks(filter_run, silence_run):
    """Accepted = best track at least as confident as --min_confidence; filtered_chunks/ and
    filtered_audio/ hold exactly the accepted chunks (hard links), and the totals count them."""
    out, s, threshold = silence_run["out"], filter_run["summary"], filter_run["threshold"]
    assert s["filter_parameters"] == {"min_confidence": threshold, "max_abs_offset": None}
    accepted = []
    for c in s["chunks"]:
        best = c["best_track"]
        conf = best["confidence"]
        expected = [] if best["reliable"] else [f"best track unreliable ({best['unreliable_reason']})"]
        if conf < threshold:
            expected.append(f"confidence {conf:.3f} < {threshold:g}")
        assert c["filter"]["enabled"]
        assert c["filter"]["accepted"] == (not expected), (c["name"], conf, threshold, best["reliable"])
        assert c["filter"]["reasons"] == expected
        if c["filter"]["accepted"]:
            accepted.append(c["name"])
    assert 0 < len(accepted) < len(s["chunks"])
    assert sorted(p.name for p in (out / "filtered_chunks").iterdir()) == [f"{n}.mp4" for n in accepted]
    assert sorted(p.name for p in (out / "filtered_audio").iterdir()) == [f"{n}.wav" for n in accepted]
    for n in accepted:
        assert (out / "filtered_chunks" / f"{n}.mp4").stat().st_ino == (out / "chunks" / f"{n}.mp4").stat().st_ino
    t = s["totals"]
    assert (t["accepted"], t["rejected"]) == (len(accepted), len(s["chunks"]) - len(accepted))
    assert f"Filter:     {t['accepted']} accepted, {t['rejected']} rejected" in filter_run["proc"].stdout


def test_changing_only_the_filter_reuses_the_results(filter_run, silence_run):
    """The filter is not a result parameter: the rerun keeps every chunk's tracks and detects nothing."""
    before, after = silence_run["summary"], filter_run["summary"]
    assert after["parameters"] == before["parameters"]
    assert [c["tracks"] for c in after["chunks"]] == [c["tracks"] for c in before["chunks"]]
    assert after["timings"]["detector_frames_this_run"] == 0


# ---------------------------------------------------------------- changed parameters, --force, --no_visualise


@pytest.fixture(scope="module")
def refused_then_forced(silence_run, env, tmp_path_factory):
    """A copy of the silence run's folder; the time chunking asked for in it, first without
    --force (refused), then with --force and --no_visualise."""
    out = tmp_path_factory.mktemp("forced") / f"again {ODD}"
    shutil.copytree(silence_run["out"], out)
    before = tree(out)
    args = ["--input_video", silence_run["summary"]["input"]["path"], "--output_dir", out,
            "--chunking", "time", "--chunk_duration", "3", "--overlap", "0", *FLAGS]
    refused = run(LONG, *args, env=env, cwd=out.parent)
    after_refusal = tree(out)
    forced = run(LONG, *args, "--force", "--no_visualise", env=env, cwd=out.parent)
    return {"out": out, "before": before, "after_refusal": after_refusal, "refused": refused, "forced": forced}


def test_changed_parameters_are_refused_in_one_line(refused_then_forced):
    """Other parameters in the same folder: exit 2, one line naming the change and --force,
    and nothing in the folder touched."""
    r = refused_then_forced
    assert_one_line(r["refused"], 2, LONG, "chunking: silence -> time", "--force")
    assert r["after_refusal"] == r["before"]


def test_force_redoes_everything_with_the_new_parameters(refused_then_forced):
    """--force: exit 0, the new chunk plan only (the old silence chunks are gone)."""
    r = refused_then_forced
    assert r["forced"].returncode == 0, r["forced"].stderr
    s = summary_of(r["out"])
    assert s["parameters"]["chunking"] == "time" and "min_silence" not in s["parameters"]
    assert [(c["start"], c["end"]) for c in s["chunks"]] == [(0, 3), (3, pytest.approx(6.0, abs=0.05))]
    assert s["complete"] and s["totals"]["success"] == 2
    assert sorted(p.name for p in (r["out"] / "chunks").iterdir()) == ["chunk_000.mp4", "chunk_001.mp4"]
    assert sorted(p.name for p in (r["out"] / "syncnet_data/pywork").iterdir()) == ["chunk_000", "chunk_001"]


def test_no_visualise(refused_then_forced):
    """--no_visualise: no video_out.avi anywhere (the copied run had three), and the summary says null."""
    r = refused_then_forced
    assert r["forced"].returncode == 0, r["forced"].stderr
    assert sum(name.endswith("video_out.avi") for name in r["before"]) == 3
    assert not list(r["out"].rglob("video_out.avi"))
    s = summary_of(r["out"])
    assert [c["files"]["video_out"] for c in s["chunks"]] == [None, None]
    assert "visualise" not in s["timings"]


# ---------------------------------------------------------------- a failed chunk


@pytest.fixture(scope="module")
def failed_run(media, env, tmp_path_factory):
    """The short-sound source in 2 s chunks: the second chunk has 0.1 s of sound, too short for SyncNet."""
    cwd = tmp_path_factory.mktemp("failed")
    args = ["--input_video", media["short"], "--output_dir", "out", "--chunk_duration", "2", "--overlap", "0",
            *FLAGS]
    proc = run(LONG, *args, env=env, cwd=cwd)
    return {"cwd": cwd, "args": args, "proc": proc, "summary": summary_of(cwd / "out")}


def test_failed_chunk_is_recorded_and_the_others_kept(failed_run):
    """Exit 1; the failed chunk has status failed and a one-line error; the other chunk's results are there."""
    proc, s, cwd = failed_run["proc"], failed_run["summary"], failed_run["cwd"]
    assert proc.returncode == 1, proc.stderr
    good, bad = s["chunks"]
    assert bad["status"] == "failed" and bad["tracks"] == [] and bad["best_track"] is None
    assert "too short" in bad["error"] and "\n" not in bad["error"]
    assert good["status"] == "success" and good["tracks"] and good["error"] is None
    for key in ("chunk", "audio", "offsets", "video_out"):
        assert (cwd / good["files"][key]).is_file()
    assert s["complete"] and s["totals"]["failed"] == 1 and s["totals"]["success"] == 1
    assert f"failed chunk_001: {bad['error']}" in proc.stdout


def test_failed_chunk_is_one_line_on_stderr(failed_run):
    """Without -v the failure is one line on stderr, naming the chunk and why."""
    proc = failed_run["proc"]
    assert "Traceback" not in proc.stderr
    assert failures(proc.stderr) == [f"chunk_001 failed: {failed_run['summary']['chunks'][1]['error']}"]


@pytest.fixture(scope="module")
def unwritable_run(failed_run, env, tmp_path_factory):
    """A copy of the failed run's folder, rerun with a directory where chunk_001.mp4 must be written."""
    cwd = tmp_path_factory.mktemp("unwritable")
    shutil.copytree(failed_run["cwd"] / "out", cwd / "out")
    in_the_way = cwd / "out/chunks/chunk_001.mp4"
    in_the_way.unlink()  # the cut of the failed run (its sound was too short); redone by the rerun
    in_the_way.mkdir()
    (in_the_way / "keep").write_text("a directory in the way\n")
    before = tree(cwd / "out/chunks")
    proc = run(LONG, *failed_run["args"], env=env, cwd=cwd)
    return {"cwd": cwd, "proc": proc, "before": before}


def test_unwritable_chunk_is_recorded_and_the_others_kept(unwritable_run, failed_run):
    """A chunk file that cannot be written (an OSError, not one of ours): exit 1, that chunk
    failed with a one-line error, the finished chunk kept as it was."""
    proc, s = unwritable_run["proc"], summary_of(unwritable_run["cwd"] / "out")
    assert proc.returncode == 1, proc.stderr
    good, bad = s["chunks"]
    assert bad["status"] == "failed" and bad["error"].startswith("IsADirectoryError: ")
    assert good == failed_run["summary"]["chunks"][0]
    assert tree(unwritable_run["cwd"] / "out/chunks")["chunk_000.mp4"] == unwritable_run["before"]["chunk_000.mp4"]
    assert s["totals"]["failed"] == 1 and s["totals"]["success"] == 1


def test_unwritable_chunk_is_one_line_on_stderr(unwritable_run):
    """Without -v an unexpected error in a chunk is still one line on stderr (besides the resume and
    retry notices)."""
    proc = unwritable_run["proc"]
    assert "Traceback" not in proc.stderr
    err = [ln for ln in lines(proc.stderr) if not ln.startswith(("resuming", "retrying"))]
    assert len(err) == 1 and err[0].startswith("chunk_001 failed"), proc.stderr


# ---------------------------------------------------------------- process_long_video.py: bad input


def _empty_dir(parent: Path) -> Path:
    (parent / "empty").mkdir(exist_ok=True)
    return parent / "empty"


BAD_INPUTS = {  # case -> (arguments besides --output_dir, words of the one line)
    "missing": (lambda m: ["--input", m["dir"] / "nope.mp4"], ["no such file"]),
    # A folder is a valid input (its videos, see test_many_inputs.py); one without videos is not.
    "directory without videos": (lambda m: ["--input", _empty_dir(m["dir"])], ["no video files", "empty"]),
    "not a video": (lambda m: ["--input", m["text"]], ["not a media file"]),
    "no sound": (lambda m: ["--input", m["mute"]], ["no audio stream"]),
    "overlap": (lambda m: ["--input", m["face"], "--chunk_duration", "2", "--overlap", "2"], ["overlap"]),
    "chunk_crf": (lambda m: ["--input", m["face"], "--chunk_crf", "52"], ["--chunk_crf"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_exit_2_and_one_line(case, media, env, tmp_path):
    """Bad input: exit 2, one line on stderr, and no output folder made."""
    make_args, words = BAD_INPUTS[case]
    out = tmp_path / "out"
    proc = run(LONG, *make_args(media), "--output_dir", out, env=env, cwd=tmp_path)
    assert_one_line(proc, 2, LONG, *words)
    assert not out.exists()


def test_output_dir_that_is_a_file_is_bad_input(media, env, tmp_path):
    """An output folder that cannot be made: exit 2, one line, the file in its way untouched."""
    blocker = tmp_path / "out"
    blocker.write_text("precious\n")
    proc = run(LONG, "--input", media["face"], "--output_dir", blocker, env=env, cwd=tmp_path)
    assert_one_line(proc, 2, LONG, str(blocker))
    assert blocker.read_text() == "precious\n"


@pytest.mark.parametrize("script, args", [
    (LONG, ["--input", "nope.mp4", "--output_dir", "out"]),
    (BATCH, ["--chunks_dir", "nope", "--output_dir", "out"]),
])
def test_verbose_shows_the_traceback(script, args, env, tmp_path):
    """-v: the same exit code 2, the traceback first and the one-line message still last."""
    proc = run(script, *args, "-v", env=env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback (most recent call last)" in proc.stderr and "InputError" in proc.stderr
    assert lines(proc.stderr)[-1].startswith(f"{script}: error: ")


# ---------------------------------------------------------------- batch_process.py


@pytest.fixture(scope="module")
def batch_runs(media, env, tmp_path_factory):
    """A folder (odd name) with a good 2 s clip and a corrupt file, processed twice."""
    d = tmp_path_factory.mktemp("batch")
    folder = d / f"chunks {ODD}"
    folder.mkdir()
    ffmpeg("-i", media["face"], "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac",
           folder / "good.mp4")
    (folder / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    out = d / f"results {ODD}"
    first = run(BATCH, "--chunks_dir", folder, "--output_dir", out, env=env, cwd=d)
    s1 = validate_summary(out / "batch_processing_summary.json")
    offsets = out / "pywork/good/offsets.txt"
    stamp = offsets.stat().st_mtime_ns if offsets.exists() else None
    second = run(BATCH, "--chunks_dir", folder, "--output_dir", out, env=env, cwd=d)
    s2 = validate_summary(out / "batch_processing_summary.json")
    return {"dir": d, "out": out, "first": first, "s1": s1, "stamp": stamp, "second": second, "s2": s2}


def test_batch_bad_file_is_recorded_and_the_good_one_done(batch_runs):
    """Exit 1; the good file analysed, the corrupt one failed with a one-line error, and one
    line on stderr for it; nothing run through a shell."""
    b = batch_runs
    proc, s = b["first"], b["s1"]
    assert proc.returncode == 1, proc.stderr
    files = {f["file"]: f for f in s["files"]}
    assert files["good.mp4"]["status"] == "success" and files["good.mp4"]["tracks"]
    assert (b["out"] / "pywork/good/offsets.txt").read_text().startswith("TRACK 0: OFFSET ")
    bad = files["bad.mp4"]
    assert bad["status"] == "failed" and bad["tracks"] == [] and "not a media file" in bad["error"]
    assert s["totals"] == {"files": 2, "success": 1, "no_faces": 0, "failed": 1, "skipped": 0}
    assert "Traceback" not in proc.stderr
    assert failures(proc.stderr) == [f"bad.mp4 failed: {bad['error']}"]
    assert f"failed bad.mp4: {bad['error']}" in proc.stdout
    assert not list(b["dir"].rglob("PWNED"))


def test_batch_rerun_skips_done_files(batch_runs):
    """The same command again: the good file is skipped (its record and files untouched), the bad one tried again."""
    b = batch_runs
    assert b["second"].returncode == 1, b["second"].stderr
    first = {f["file"]: f for f in b["s1"]["files"]}
    again = {f["file"]: f for f in b["s2"]["files"]}
    assert again["good.mp4"] == first["good.mp4"]
    assert (b["out"] / "pywork/good/offsets.txt").stat().st_mtime_ns == b["stamp"]
    assert again["bad.mp4"]["status"] == "failed"
    assert b["s2"]["totals"] == {"files": 2, "success": 1, "no_faces": 0, "failed": 1, "skipped": 1}
    assert "(1 done before)" in b["second"].stdout


@pytest.mark.parametrize("case", ["missing", "a file", "no videos"])
def test_batch_bad_chunks_dir_is_exit_2_and_one_line(case, media, env, tmp_path):
    """--chunks_dir that is not a folder of videos: exit 2, one line, no output folder made."""
    chunks = tmp_path / "chunks"
    if case == "a file":
        shutil.copy(media["face"], chunks)
    elif case == "no videos":
        chunks.mkdir()
        (chunks / "notes.txt").write_text("not a video\n")
    out = tmp_path / "out"
    proc = run(BATCH, "--chunks_dir", chunks, "--output_dir", out, env=env, cwd=tmp_path)
    assert_one_line(proc, 2, BATCH, str(chunks))
    assert not out.exists()


# ---------------------------------------------------------------- the command line's own words and shared flags

def _refusing_main(args):
    from syncnet.errors import ConflictingOutput

    raise ConflictingOutput("OUT holds results made with other parameters (min_track: 5 -> 10)")


@pytest.mark.parametrize("tool, way_out", [
    ("process_long_video", "rerun with --force to redo them, or choose another --output_dir"),
    ("batch_process", "rerun with --force to redo them"),
])
def test_conflicting_output_gets_the_tools_way_out(tool, way_out, monkeypatch, capsys):
    """The library says what is in the way; the tool adds its flags (exit 2, one line)."""
    import importlib

    module = importlib.import_module(f"syncnet._cli.{tool}")
    monkeypatch.setenv("SYNCNET_KEEP_FREED_MEMORY", "0")
    monkeypatch.setattr(module, "main", _refusing_main)
    with pytest.raises(SystemExit) as code:
        module.entry(["--input_video", "v.mp4", "--output_dir", "o"] if tool == "process_long_video"
                     else ["--chunks_dir", "c", "--output_dir", "o"])
    assert code.value.code == 2
    prog = os.path.basename(sys.argv[0])  # run_main's default name: the program's (here pytest's)
    assert capsys.readouterr().err == (f"{prog}: error: OUT holds results made with other parameters "
                                       f"(min_track: 5 -> 10); {way_out}\n")


def test_input_errors_are_left_as_they_are():
    from syncnet._cli.common import error_line
    from syncnet.errors import ConflictingOutput, InputError

    assert error_line(InputError("X; rerun with --force to redo them"), "rerun with --force") == \
        "X; rerun with --force to redo them"
    assert error_line(ConflictingOutput("X"), None) == "X"
    assert error_line(ConflictingOutput("X"), "rerun with --force") == "X; rerun with --force"


def test_shared_flags_keep_each_tools_defaults():
    from syncnet._cli import batch_process, process_long_video, run_pipeline, run_syncnet, run_visualise
    from syncnet._cli.options import PRECISIONS, face_options
    from syncnet.options import FaceOptions
    from syncnet.precision import PRECISIONS as LIBRARY_PRECISIONS

    assert PRECISIONS == LIBRARY_PRECISIONS
    pipe = run_pipeline.build_parser().parse_args(["--videofile", "v", "--reference", "r"])
    assert face_options(pipe) == FaceOptions()  # the reference's defaults
    long = process_long_video.build_parser().parse_args(["--input_video", "v", "--output_dir", "o",
                                                          "--detect_every", "2", "--batch_size", "8"])
    assert face_options(long) == FaceOptions(min_track=5, min_face_size=10, detect_every=2, batch_size=8)
    batch = batch_process.build_parser().parse_args(["--chunks_dir", "c", "--output_dir", "o", "--min_track", "7"])
    assert face_options(batch) == FaceOptions(min_track=7, min_face_size=10)
    assert not hasattr(long, "frame_rate") and not hasattr(batch, "facedet_scale")
    sync = run_syncnet.build_parser().parse_args(["--initial_model", "w", "--precision", "bf16"])
    assert (sync.initial_model, sync.precision, sync.batch_size) == ("w", "bf16", 20)
    assert run_visualise.build_parser().parse_args(["--reference", "r"]).frame_rate == 25
