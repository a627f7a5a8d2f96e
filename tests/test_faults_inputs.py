"""Fault catalogue, input level: every bad input through the real scripts, in one table.

Each case runs a script as a user would and checks the exit code, that stderr is
exactly one line (no traceback, no usage block), the words of that line, and that
the outputs an earlier run left in the folder are byte-identical afterwards.  Valid
but awkward inputs (VFR, 29.97 fps, rotated, odd sizes and names) must just work.
docs/faults.md (the fault catalogue) lists the same cases.  Job-level faults (locks,
kills, resume) live in test_faults_jobs.py.

Also here: the library guards behind the scripts (planners refuse NaN/inf), silence
chunking's edges and --max_chunk, stale chunk files, and warnings above progress bars.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from syncnet.chunking import Chunk, check_silence_options, plan_silence_chunks, plan_time_chunks, split_long_piece
from syncnet.errors import InputError
from testkit.mediagen import flash_beep_source
from tests.conftest import REPO

TIMEOUT = 120


def ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def lavfi_clip(path: Path, seconds: float = 3.0, rate: str = "25", size: str = "64x48", audio: bool = True,
               extra: tuple[str, ...] = ()) -> Path:
    """A tiny test-pattern clip with a 440 Hz tone (no silences)."""
    args = ["-f", "lavfi", "-i", f"testsrc=s={size}:r={rate}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-c:a", "aac", "-shortest"]
    ff(*args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", *extra, str(path))
    return path


@pytest.fixture(scope="module")
def m(tmp_path_factory) -> dict[str, Path]:
    """The inputs of the catalogue, all tiny."""
    d = tmp_path_factory.mktemp("inputs")
    out = {"av": lavfi_clip(d / "av.mp4"),
           "noaudio": lavfi_clip(d / "noaudio.mp4", audio=False),
           "short": lavfi_clip(d / "short.mp4", seconds=0.3),
           "fps2997": lavfi_clip(d / "fps2997.mp4", seconds=2, rate="30000/1001"),
           "oddsize": lavfi_clip(d / "odd size.mp4", seconds=2, size="63x47", extra=("-pix_fmt", "yuv444p"))}
    full = lavfi_clip(d / "long.mp4", seconds=10, extra=("-movflags", "+faststart"))
    data = full.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index in front: still probes as 10 s
    out["truncated"] = d / "truncated.mp4"
    ff("-i", str(out["av"]), "-vn", str(d / "audio_only.wav"))
    out["audio_only"] = d / "audio_only.wav"
    ff("-i", str(out["av"]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(d / "rotated.mp4"))
    out["rotated"] = d / "rotated.mp4"
    flash_beep_source(d / "vfr.mp4", Fraction(25), 2.0, [1.0], vfr=True)
    out["vfr"] = d / "vfr.mp4"
    odd = d / "my talk's \"best\" $(touch pwned) é中.mp4"
    shutil.copy(out["av"], odd)
    out["oddname"] = odd
    (d / "notes.mp4").write_text("this is not a video\n")
    out["text"] = d / "notes.mp4"
    out["dir"] = d
    out["file"] = out["text"]  # a regular file to put paths under
    return out


@pytest.fixture(scope="module")
def weights(m, syncnet_weights, s3fd_weights) -> dict[str, Path]:
    d = m["dir"]
    data = syncnet_weights.read_bytes()
    (d / "cut.model").write_bytes(data[: len(data) // 3])
    rng = np.random.default_rng(0)
    (d / "junk.model").write_bytes(b"\x13\x37" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    (d / "html.model").write_text("<html>404 Not Found</html>\n")
    return {"syncnet": syncnet_weights, "s3fd": s3fd_weights, "cut": d / "cut.model", "junk": d / "junk.model",
            "html": d / "html.model"}


# ------------------------------------------------------------------ the catalogue
# (id, script, arguments, exit code, words of the one stderr line).  In arguments,
# {name} is an input of `m` (or `weights`: {w_name}), {out} an output folder,
# {wav} an output file, {data} a data_dir, {tmp} the case's own folder.  Before a
# case, {out} and {data} hold an earlier run's files; a refused case must leave them.
VU, PLV, BATCH, PIPE, SYNC, VIS = ("video_utils.py", "process_long_video.py", "batch_process.py",
                                   "run_pipeline.py", "run_syncnet.py", "run_visualise.py")
CT = ("chunk-time", "--input", "{av}", "--output_dir", "{out}")
CS = ("chunk-silence", "--input", "{av}", "--output_dir", "{out}")
EA = ("extract-audio", "--input", "{av}", "--output", "{wav}")
LONG = ("--input_video", "{av}", "--output_dir", "{out}", "--s3fd_model", "{w_s3fd}", "--syncnet_model",
        "{w_syncnet}")
PIPE_ARGS = ("--videofile", "{av}", "--reference", "r", "--data_dir", "{data}", "--s3fd_model", "{w_s3fd}")

CASES = [
    # inputs that are not what they should be
    ("missing file", VU, ("info", "--input", "{tmp}/nope.mp4"), 2, ["no such file"]),
    ("missing file, chunker", VU, ("chunk-time", "--input", "{tmp}/nope.mp4", "--output_dir", "{out}"), 2,
     ["no such file"]),
    ("directory as input", VU, ("chunk-time", "--input", "{dir}", "--output_dir", "{out}"), 2, ["directory"]),
    ("not a video", VU, ("chunk-silence", "--input", "{text}", "--output_dir", "{out}"), 2, ["not a media file"]),
    ("no audio, silence chunking", VU, ("chunk-silence", "--input", "{noaudio}", "--output_dir", "{out}"), 2,
     ["no audio stream"]),
    ("no audio, extract-audio", VU, ("extract-audio", "--input", "{noaudio}", "--output", "{wav}"), 2,
     ["no audio stream"]),
    ("no video", VU, ("chunk-time", "--input", "{audio_only}", "--output_dir", "{out}"), 2, ["no video stream"]),
    ("0.3 s clip", VU, ("chunk-time", "--input", "{short}", "--output_dir", "{out}"), 2, ["too short"]),
    ("truncated file", VU, ("chunk-time", "--input", "{truncated}", "--output_dir", "{out}", "--duration", "3",
                            "--overlap", "0"), 2, ["ends early at", "declares 10.0 s"]),
    ("truncated file, long job", PLV, ("--input_video", "{truncated}", "--output_dir", "{out}"), 2,
     ["ends early at"]),
    ("no audio, long job", PLV, ("--input_video", "{noaudio}", "--output_dir", "{out}"), 2, ["no audio stream"]),
    ("not a video, run_pipeline", PIPE, ("--videofile", "{text}", "--reference", "r", "--data_dir", "{data}"), 2,
     ["not a media file"]),
    ("missing folder, batch", BATCH, ("--chunks_dir", "{tmp}/nosuch", "--output_dir", "{out}"), 2,
     ["not a directory"]),
    # durations and other numbers
    ("duration nan", VU, (*CT, "--duration", "nan"), 2, ["--duration", "finite"]),
    ("duration inf", VU, (*CT, "--duration", "inf"), 2, ["--duration", "finite"]),
    ("duration 0", VU, (*CT, "--duration", "0"), 2, ["--duration", "positive"]),
    ("duration -3", VU, (*CT, "--duration", "-3"), 2, ["--duration", "positive"]),
    ("duration not a number", VU, (*CT, "--duration", "ten"), 2, ["--duration", "number"]),
    ("overlap nan", VU, (*CT, "--overlap", "nan"), 2, ["--overlap", "finite"]),
    ("overlap negative", VU, (*CT, "--overlap", "-1"), 2, ["--overlap", "negative"]),
    ("overlap = duration", VU, (*CT, "--duration", "2", "--overlap", "2"), 2, ["overlap", "shorter"]),
    ("overlap > duration", VU, (*CT, "--duration", "2", "--overlap", "5"), 2, ["overlap", "shorter"]),
    ("min_silence 0", VU, (*CS, "--min_silence", "0"), 2, ["--min_silence", "positive"]),
    ("min_silence nan", VU, (*CS, "--min_silence", "nan"), 2, ["--min_silence", "finite"]),
    ("min_chunk -1", VU, (*CS, "--min_chunk", "-1"), 2, ["--min_chunk", "negative"]),
    ("max_chunk inf", VU, (*CS, "--max_chunk", "inf"), 2, ["--max_chunk", "finite"]),
    ("max_chunk 0", VU, (*CS, "--max_chunk", "0"), 2, ["--max_chunk", "positive"]),
    ("max_chunk < 2 min_chunk", VU, (*CS, "--min_chunk", "5", "--max_chunk", "8"), 2, ["--max_chunk", "twice"]),
    ("threshold nan", VU, (*CS, "--threshold", "nan"), 2, ["--threshold", "finite"]),
    ("threshold above 0 dB", VU, (*CS, "--threshold", "6"), 2, ["--threshold", "between"]),
    ("sample_rate 0", VU, (*EA, "--sample_rate", "0"), 2, ["--sample_rate", "between"]),
    ("sample_rate 1e3", VU, (*EA, "--sample_rate", "1e3"), 2, ["--sample_rate", "integer"]),
    ("channels 0", VU, (*EA, "--channels", "0"), 2, ["--channels", "between"]),
    ("unknown flag", VU, (*CT, "--durations", "3"), 2, ["unrecognized arguments"]),
    ("missing flag", VU, ("chunk-time", "--input", "{av}"), 2, ["--output_dir"]),
    ("long job: chunk_duration nan", PLV, (*LONG, "--chunk_duration", "nan"), 2, ["--chunk_duration", "finite"]),
    ("long job: chunk_duration inf", PLV, (*LONG, "--chunk_duration", "inf"), 2, ["--chunk_duration", "finite"]),
    ("long job: chunk_duration 0", PLV, (*LONG, "--chunk_duration", "0"), 2, ["--chunk_duration", "positive"]),
    ("long job: overlap >= duration", PLV, (*LONG, "--chunk_duration", "2", "--overlap", "2"), 2, ["overlap"]),
    ("long job: max_chunk nan", PLV, (*LONG, "--chunking", "silence", "--max_chunk", "nan"), 2,
     ["--max_chunk", "finite"]),
    ("long job: max_chunk < 2 min_chunk", PLV, (*LONG, "--chunking", "silence", "--max_chunk", "6"), 2,
     ["--max_chunk", "twice"]),
    ("long job: chunk_crf 52", PLV, (*LONG, "--chunk_crf", "52"), 2, ["--chunk_crf", "between 0 and 51"]),
    ("long job: batch_size 0", PLV, (*LONG, "--batch_size", "0"), 2, ["--batch_size", "positive"]),
    ("long job: vshift nan", PLV, (*LONG, "--vshift", "nan"), 2, ["--vshift", "integer"]),
    ("long job: detect_every 0", PLV, (*LONG, "--detect_every", "0"), 2, ["--detect_every", "positive"]),
    ("long job: facedet_scale nan", PLV, (*LONG, "--facedet_scale", "nan"), 2, ["--facedet_scale", "finite"]),
    ("long job: min_confidence nan", PLV, (*LONG, "--min_confidence", "nan"), 2, ["--min_confidence", "finite"]),
    ("long job: max_abs_offset -1", PLV, (*LONG, "--max_abs_offset", "-1"), 2, ["--max_abs_offset", "negative"]),
    ("long job: chunk_workers -1", PLV, (*LONG, "--chunk_workers", "-1"), 2, ["--chunk_workers", "negative"]),
    ("batch: max_workers 0", BATCH, ("--chunks_dir", "{dir}", "--output_dir", "{out}", "--max_workers", "0"), 2,
     ["--max_workers", "positive"]),
    ("batch: batch_size nan", BATCH, ("--chunks_dir", "{dir}", "--output_dir", "{out}", "--batch_size", "nan"), 2,
     ["--batch_size", "integer"]),
    ("run_pipeline: facedet_scale inf", PIPE, (*PIPE_ARGS, "--facedet_scale", "inf"), 2,
     ["--facedet_scale", "finite"]),
    ("run_pipeline: frame_rate 0", PIPE, (*PIPE_ARGS, "--frame_rate", "0"), 2, ["--frame_rate", "between"]),
    ("run_pipeline: min_track -5", PIPE, (*PIPE_ARGS, "--min_track", "-5"), 2, ["--min_track", "negative"]),
    ("run_syncnet: vshift 0", SYNC, ("--reference", "r", "--data_dir", "{data}", "--vshift", "0"), 2,
     ["--vshift", "positive"]),
    ("run_visualise: frame_rate nan", VIS, ("--reference", "r", "--data_dir", "{data}", "--frame_rate", "nan"), 2,
     ["--frame_rate", "integer"]),
    # outputs that cannot be written
    ("extract-audio, folder missing (made)", VU, ("extract-audio", "--input", "{av}", "--output",
                                                  "{tmp}/new/folder/a.wav"), 0, []),
    ("extract-audio under a regular file", VU, ("extract-audio", "--input", "{av}", "--output", "{file}/a.wav"), 2,
     ["is a file, not a directory"]),
    ("extract-audio into /proc", VU, ("extract-audio", "--input", "{av}", "--output", "/proc/a.wav"), 2,
     ["not writable"]),
    ("extract-audio onto a folder", VU, ("extract-audio", "--input", "{av}", "--output", "{out}"), 2,
     ["is a directory"]),
    ("chunks under a regular file", VU, ("chunk-time", "--input", "{av}", "--output_dir", "{file}/c"), 2,
     ["is a file, not a directory"]),
    ("long job under a regular file", PLV, ("--input_video", "{av}", "--output_dir", "{file}/c"), 2,
     ["is a file, not a directory"]),
    # weights
    ("weights missing (both named)", PLV, ("--input_video", "{av}", "--output_dir", "{out}", "--s3fd_model",
                                           "{tmp}/no_s3fd.pth", "--syncnet_model", "{tmp}/no_syncnet.model"), 2,
     ["weights not found", "S3FD", "SyncNet", "no_s3fd.pth", "no_syncnet.model"]),
    ("weights junk", PLV, ("--input_video", "{av}", "--output_dir", "{out}", "--s3fd_model", "{w_s3fd}",
                           "--syncnet_model", "{w_junk}"), 2, ["junk.model", "not a torch file"]),
    ("weights truncated", PLV, ("--input_video", "{av}", "--output_dir", "{out}", "--s3fd_model", "{w_s3fd}",
                                "--syncnet_model", "{w_cut}"), 2, ["cut.model", "incomplete or damaged"]),
    ("weights a web page", SYNC, ("--videofile", "{av}", "--initial_model", "{w_html}"), 2,
     ["html.model", "text file"]),
    ("weights of the other network", SYNC, ("--videofile", "{av}", "--initial_model", "{w_s3fd}"), 2,
     ["does not hold SyncNet weights"]),
    ("weights junk, run_pipeline", PIPE, ("--videofile", "{av}", "--reference", "r", "--data_dir", "{data}",
                                          "--s3fd_model", "{w_junk}"), 2, ["not a readable S3FD weights file"]),
    ("run_syncnet, no such reference", SYNC, ("--reference", "nosuch", "--data_dir", "{data}"), 2,
     ["no track videos under", "pycrop/nosuch"]),
    # the library says these in its own words; the command line names its flags
    ("fp16 on the CPU", PLV, (*LONG, "--device", "cpu", "--precision", "fp16"), 2,
     ["--precision fp16 needs a CUDA device; on the CPU use bf16"]),
    ("fp16 on the CPU, run_syncnet", SYNC, ("--videofile", "{av}", "--initial_model", "{w_syncnet}", "--device",
                                            "cpu", "--precision", "fp16"), 2, ["--precision fp16 needs a CUDA"]),
    ("fp16 on the CPU, run_pipeline", PIPE, (*PIPE_ARGS, "--device", "cpu", "--precision", "fp16"), 2,
     ["--precision fp16 needs a CUDA"]),
    ("reference a path, run_pipeline", PIPE, ("--videofile", "{av}", "--reference", "a/b", "--data_dir", "{data}"),
     2, ["--reference must be a plain name (got 'a/b')"]),
    ("reference '..', run_syncnet", SYNC, ("--reference", "..", "--data_dir", "{data}"), 2,
     ["--reference must be a plain name"]),
    ("reference a path, run_visualise", VIS, ("--reference", "x/..", "--data_dir", "{data}"), 2,
     ["--reference must be a plain name"]),
    ("chunks_dir a file, batch", BATCH, ("--chunks_dir", "{text}", "--output_dir", "{out}"), 2,
     ["--chunks_dir", "is not a directory"]),
    # awkward but valid: they just work
    ("VFR", VU, ("chunk-time", "--input", "{vfr}", "--output_dir", "{tmp}/c", "--duration", "1", "--overlap", "0"),
     0, []),
    ("29.97 fps", VU, ("chunk-time", "--input", "{fps2997}", "--output_dir", "{tmp}/c", "--duration", "1",
                       "--overlap", "0"), 0, []),
    ("rotated", VU, ("chunk-time", "--input", "{rotated}", "--output_dir", "{tmp}/c", "--duration", "2",
                     "--overlap", "0"), 0, []),
    ("odd size", VU, ("chunk-time", "--input", "{oddsize}", "--output_dir", "{tmp}/c", "--duration", "1",
                      "--overlap", "0"), 0, []),
    ("odd path names", VU, ("chunk-silence", "--input", "{oddname}", "--output_dir", "{tmp}/out $(x) 'q' ü",
                            "--min_chunk", "1", "--max_chunk", "2"), 0, []),
]


def _earlier_outputs(out: Path, data: Path) -> None:
    """What an earlier run left: chunks, their list, a file of notes, one reference's files.

    (Not a fake processing_summary.json: conftest checks every summary the tests leave
    against its schema, and a refused run touches no file, whatever its name.)"""
    out.mkdir()
    (out / "chunk_000.mp4").write_bytes(b"an earlier chunk")
    (out / "chunks.json").write_text(json.dumps({"source": "x.mp4", "chunks": [{"index": 0,
                                                                                  "file": "chunk_000.mp4"}]}))
    (out / "notes.json").write_text('{"earlier": true}')
    for sub, name in (("pyavi", "video.avi"), ("pycrop", "00000.avi"), ("pywork", "offsets.txt")):
        (data / sub / "r").mkdir(parents=True)
        (data / sub / "r" / name).write_bytes(f"earlier {name}".encode())


def _snapshot(*roots: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for root in roots for p in sorted(root.rglob("*")) if p.is_file()}


def run_script(script: str, *args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd, env=env)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fault_catalogue(case, m, weights, tmp_path):
    name, script, template, code, words = case
    out, data = tmp_path / "out", tmp_path / "data"
    _earlier_outputs(out, data)
    values = {**{k: str(v) for k, v in m.items()}, **{f"w_{k}": str(v) for k, v in weights.items()},
              "out": str(out), "wav": str(out / "a.wav"), "data": str(data), "tmp": str(tmp_path)}
    args = [a.format(**values) for a in template]
    before = _snapshot(out, data)
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCNET_MODEL", "S3FD_MODEL")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))  # no weights found by accident
    proc = run_script(script, *args, cwd=tmp_path, env=env)
    assert proc.returncode == code, f"{name}: exit {proc.returncode}\n{proc.stderr}"
    if code == 0:
        assert "Traceback" not in proc.stderr
        return
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"{name}: stderr is not one line:\n{proc.stderr}"
    assert lines[0].startswith(f"{script}") and "Traceback" not in proc.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), f"{name}: {w!r} not in {lines[0]!r}"
    assert _snapshot(out, data) == before, f"{name}: earlier outputs changed"
    assert not (tmp_path / "pwned").exists()


def test_cut_past_the_end_of_a_truncated_input_says_where_it_ends(m, tmp_path):
    """The long job cuts chunk by chunk; a chunk past the break must say so, not fail
    later on probing an empty chunk ("cannot tell its duration")."""
    from syncnet import media

    with pytest.raises(InputError, match=r"ends early at 4\.\d s: nothing to cut from 6\.0 s on"):
        media.cut(m["truncated"], tmp_path / "c.mp4", 6.0, 9.0)
    assert not (tmp_path / "c.mp4").exists()


def test_verbose_keeps_the_traceback(m, tmp_path):
    proc = run_script(VU, "chunk-time", "--input", str(m["truncated"]), "--output_dir", str(tmp_path), "-v")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


# ------------------------------------------------------------------ the library guards
@pytest.mark.parametrize("duration,overlap", [(math.nan, 5), (30, math.nan), (math.inf, 5), (30, math.inf),
                                              (math.inf, math.inf)])
def test_time_planner_refuses_non_finite(duration, overlap):
    with pytest.raises(InputError, match="finite"):
        plan_time_chunks(100.0, duration, overlap)


@pytest.mark.parametrize("kwargs", [{"min_chunk": math.nan}, {"max_chunk": math.nan}, {"max_chunk": math.inf},
                                    {"min_chunk": math.inf, "max_chunk": None}])
def test_silence_planner_refuses_non_finite(kwargs):
    with pytest.raises(InputError, match="finite"):
        plan_silence_chunks(100.0, [(10, 12)], **kwargs)


def test_planners_refuse_a_non_finite_source():
    with pytest.raises(InputError):
        plan_time_chunks(math.nan, 30, 5)
    with pytest.raises(InputError):
        plan_silence_chunks(math.inf, [], 5)


# ------------------------------------------------------------------ silence chunking edges
def _bounds(chunks: list[Chunk]) -> list[float]:
    return [chunks[0].start] + [c.end for c in chunks]


def test_short_piece_joins_the_piece_after_it():
    # Cuts at 10, 12.5, 30: [10, 12.5) is short and joins [12.5, 30), not [0, 10).
    chunks = plan_silence_chunks(60, [(9, 11), (12, 13), (29, 31)], min_chunk=5, max_chunk=None)
    assert _bounds(chunks) == [0, 10, 30, 60]


def test_short_first_and_last_pieces():
    # The first piece [0, 2) joins the one after; the last [57.5, 60) joins the one before.
    assert _bounds(plan_silence_chunks(60, [(1.5, 2.5), (20, 22), (57, 58)], 5, None)) == [0, 21, 60]


def test_leading_and_trailing_silence_give_no_cut():
    # A silence from 0 and one to the end: cutting in their middle would make pieces of silence.
    chunks = plan_silence_chunks(40, [(0.0, 6.0), (19, 21), (34, 40)], min_chunk=1, max_chunk=None)
    assert _bounds(chunks) == [0, 20, 40]


def test_all_silent_and_too_short_for_min_chunk():
    assert _bounds(plan_silence_chunks(8, [(0.0, 8.0)], 5, None)) == [0, 8]
    assert _bounds(plan_silence_chunks(8, [(3, 4)], min_chunk=20, max_chunk=None)) == [0, 8]


def test_max_chunk_splits_at_the_quietest_point():
    def levels(start, end):  # -20 dB everywhere, -50 dB around 23 s
        t = start + (np.arange(int((end - start) / 0.04)) + 0.5) * 0.04
        return np.where(np.abs(t - 23.0) < 0.1, -50.0, -20.0)

    chunks = plan_silence_chunks(100, [], min_chunk=5, max_chunk=30, levels=levels)
    assert all(c.duration <= 30 + 1e-6 for c in chunks)
    assert len(chunks) == 4  # the fewest pieces of at most 30 s
    assert chunks[0].end == pytest.approx(23.0, abs=0.1)


def test_max_chunk_flat_or_unknown_level_splits_evenly():
    flat = plan_silence_chunks(100, [], 5, 30, levels=lambda a, b: np.full(int((b - a) / 0.04), -20.0))
    assert _bounds(flat) == pytest.approx([0, 25, 50, 75, 100], abs=0.05)
    assert _bounds(plan_silence_chunks(100, [], 5, 30)) == pytest.approx([0, 25, 50, 75, 100])


@pytest.mark.parametrize("length,min_chunk,max_chunk", [(61, 5, 60), (119.9, 30, 60), (1000, 0, 7), (10, 5, 10)])
def test_split_long_piece_bounds(length, min_chunk, max_chunk):
    rng = np.random.default_rng(int(length))
    bounds = split_long_piece(0, length, min_chunk, max_chunk,
                              lambda a, b: rng.normal(-30, 10, max(1, int((b - a) / 0.04))))
    pieces = np.diff(bounds)
    assert bounds[0] == 0 and bounds[-1] == length
    assert len(pieces) == math.ceil(length / max_chunk - 1e-9)
    assert pieces.max() <= max_chunk + 1e-6 and pieces.min() >= min_chunk - 1e-6


def test_long_job_records_max_chunk_and_guards_its_options():
    from syncnet.jobs.longvideo import LongVideoOptions

    assert LongVideoOptions(chunking="silence", max_chunk=45.0).result_parameters()["max_chunk"] == 45.0
    assert "max_chunk" not in LongVideoOptions(chunking="time").result_parameters()
    with pytest.raises(InputError, match="finite"):
        check_silence_options(5.0, 60.0, min_silence=math.nan)


def test_chunk_silence_without_silences_keeps_max_chunk(tmp_path):
    """A source without silences: the quiet dip at 2.6 s becomes the first cut."""
    rate, seconds = 16000, 10
    t = np.arange(rate * seconds) / rate
    gain = np.where(np.abs(t - 2.6) < 0.15, 0.1, 1.0)  # a dip to -26 dB: quieter, but no silence at -40 dB
    audio = (0.5 * gain * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    wav = tmp_path / "tone.wav"
    wavfile.write(wav, rate, audio)
    src = tmp_path / "tone.mp4"
    ff("-f", "lavfi", "-i", f"testsrc=s=64x48:r=25:d={seconds}", "-i", str(wav), "-c:v", "libx264", "-preset",
       "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(src))
    out = tmp_path / "c"
    proc = run_script(VU, "chunk-silence", "--input", str(src), "--output_dir", str(out), "--threshold", "-40",
                      "--min_chunk", "1", "--max_chunk", "4")
    assert proc.returncode == 0, proc.stderr
    chunks = json.loads((out / "chunks.json").read_text())["chunks"]
    assert len(chunks) == 3 and max(c["duration"] for c in chunks) <= 4 + 0.04
    assert chunks[0]["end"] == pytest.approx(2.6, abs=0.1)
    assert chunks[-1]["end"] == pytest.approx(seconds, abs=0.05)


def test_chunk_silence_all_silent_and_min_chunk_longer_than_input(tmp_path):
    src = tmp_path / "quiet.mp4"
    ff("-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=3", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
       "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(src))
    for extra in ((), ("--min_chunk", "60", "--max_chunk", "120")):
        out = tmp_path / f"c{len(extra)}"
        proc = run_script(VU, "chunk-silence", "--input", str(src), "--output_dir", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        chunks = json.loads((out / "chunks.json").read_text())["chunks"]
        assert len(chunks) == 1 and chunks[0]["start"] == 0 and chunks[0]["end"] == pytest.approx(3, abs=0.05)


# ------------------------------------------------------------------ stale chunks, folders, messages
def test_new_plan_removes_the_earlier_plans_chunks_only(m, tmp_path):
    out = tmp_path / "chunks"
    args = ("chunk-time", "--input", str(m["av"]), "--output_dir", str(out), "--overlap", "0")
    assert run_script(VU, *args, "--duration", "1").returncode == 0
    assert sorted(p.name for p in out.glob("chunk_*.mp4")) == ["chunk_000.mp4", "chunk_001.mp4", "chunk_002.mp4"]
    keep = ["chunk_002.wav", "chunk_7.mp4", "mine.mp4", "notes.txt"]
    for name in keep:
        (out / name).write_text("the user's")
    proc = run_script(VU, *args, "--duration", "2")
    assert proc.returncode == 0, proc.stderr
    listed = [c["file"] for c in json.loads((out / "chunks.json").read_text())["chunks"]]
    assert listed == ["chunk_000.mp4", "chunk_001.mp4"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed, "chunks.json", *keep])


def test_extract_audio_makes_its_folder(m, tmp_path):
    out = tmp_path / "a" / "b" / "sound.wav"
    proc = run_script(VU, "extract-audio", "--input", str(m["av"]), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert wavfile.read(out)[0] == 16000


def test_help_and_readme_agree_on_video_utils_exit_codes():
    proc = run_script(VU, "--help")
    assert "0 ok, 1 FFmpeg failed on a valid input, 2 bad input" in proc.stdout
    readme = (REPO / "README.md").read_text()
    assert "| `video_utils.py` | inspect a file, extract audio, cut chunks by time or at silences, rebuild a " \
           "run's report, re-sync a file's sound | 0 ok, 1 FFmpeg failed on a valid input, 2 bad input |" in readme


def test_warnings_go_above_progress_bars(tmp_path):
    """A warning during a bar starts its own line instead of continuing the bar's."""
    code = ("import logging, sys; from tqdm import tqdm; from syncnet._cli.common import run_main\n"
            "def main(args):\n"
            "    bar = tqdm(total=3, file=sys.stderr, desc='detecting')\n"
            "    bar.update(1); logging.getLogger('syncnet.analysis').warning('no face tracks found in x.mp4')\n"
            "    bar.update(2); bar.close()\n"
            "run_main(main, None, prog='t')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    line = next(s for s in proc.stderr.split("\n") if "no face tracks" in s)
    assert line.split("\r")[-1] == "no face tracks found in x.mp4", repr(line)
