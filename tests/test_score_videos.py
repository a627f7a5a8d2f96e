"""score_videos.py: LSE-C / LSE-D as the published protocol computes them.

- The cropped form on the parity SyncNet case (stand-in weights, seed 0) gives the
  reference's numbers: from its stored frames and sound (a lossless copy: our decode
  returns them bit for bit), and from clip.mp4 with the protocol's own decode.
- all_scores.txt is the protocol's `<min_dist> <confidence>` lines, in its order;
  the means are the means of the rows; a failing file is recorded among good ones.
- The detect form and the resize of non-224 crops, with the test doubles on clips whose
  offset is known.
"""
from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from syncnet._cli import score_videos as cli
from syncnet.jobs.scoring import ScoreSettings, score_videos
from syncnet.options import FaceOptions
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "scores.schema.json"
LINE = re.compile(r"^-?\d+(\.\d+)?(e[-+]\d+)? -?\d+(\.\d+)?(e[-+]\d+)?$")


def validate(summary: dict) -> dict:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    errors = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in Draft202012Validator(schema).iter_errors(summary)]
    assert errors == [], errors
    return summary


def run_cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as code:
        cli.entry(argv)
    return code.value.code


def close(ours: dict, expected: dict) -> None:
    assert ours["offset"] == expected["offset"]
    for key in ("confidence", "min_dist"):
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-4, atol=1e-3, err_msg=key)


@pytest.fixture(scope="module")
def case(parity_dir) -> Path:
    return parity_dir / "syncnet_eval"


@pytest.fixture(scope="module")
def expected(case) -> dict:
    return json.loads((case / "expected.json").read_text())


@pytest.fixture(scope="module")
def cropped_run(case, syncnet_weights, tmp_path_factory):
    """One CLI run, our decode, over a folder: the stored frames and sound losslessly (a_)
    and a file that is not a video (c_)."""
    videos = tmp_path_factory.mktemp("videos")
    frames = np.load(case / "frames.npz")["bgr"]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "224x224",
                    "-r", "25", "-i", "-", "-i", str(case / "audio.wav"), "-c:v", "ffv1", "-pix_fmt", "bgr0",
                    "-c:a", "pcm_s16le", str(videos / "a_stored.mkv")], input=frames.tobytes(), check=True)
    (videos / "c_broken.mp4").write_text("not a video\n")
    out = tmp_path_factory.mktemp("scores")
    code = run_cli(["--videos", str(videos), "--output", str(out), "--initial_model", str(syncnet_weights),
                    "--device", "cpu"])
    return code, out, json.loads((out / "scores.json").read_text())


def test_cropped_form_gives_the_reference_numbers(cropped_run, expected):
    code, _, summary = cropped_run
    validate(summary)
    assert code == 1  # the broken file
    first = summary["files"][0]
    assert (first["file"], first["status"], len(first["tracks"])) == ("a_stored.mkv", "success", 1)
    close(first["tracks"][0], expected)
    assert first["tracks"][0]["n_frames"] == expected["n_frames"]


def test_a_failing_file_is_recorded_and_the_others_scored(cropped_run):
    code, out, summary = cropped_run
    assert code == 1 and summary["complete"]
    assert [f["status"] for f in summary["files"]] == ["success", "failed"]
    bad = summary["files"][1]
    assert bad["file"] == "c_broken.mp4" and bad["tracks"] == [] and "\n" not in bad["error"]
    assert summary["totals"] == {"files": 2, "tracks": 1, "success": 1, "no_faces": 0, "failed": 1, "pending": 0}
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert [(r["file"], r["status"]) for r in rows] == [("a_stored.mkv", "success"), ("c_broken.mp4", "failed")]
    assert rows[1]["error"] == bad["error"] and rows[1]["confidence"] == ""
    assert (out / "all_scores.txt").read_text().count("\n") == 1  # the failed file adds no line, as in the protocol


def test_reference_protocol_decodes_as_the_protocol(case, expected, syncnet_weights, tmp_path, capsys):
    """From clip.mp4, the protocol's JPEG dump and `-async 1` sound: its numbers (here within 3e-6)."""
    out = tmp_path / "ref"
    code = run_cli(["--videos", str(case / "clip.mp4"), "--output", str(out), "--protocol", "reference",
                    "--initial_model", str(syncnet_weights), "--device", "cpu"])
    assert code == 0
    summary = validate(json.loads((out / "scores.json").read_text()))
    assert summary["protocol"] == "reference"
    track = summary["files"][0]["tracks"][0]
    close(track, expected)
    printed = capsys.readouterr().out.splitlines()
    assert f"Average Confidence: {summary['means']['lse_c']}" in printed
    assert f"Average Minimum Distance: {summary['means']['lse_d']}" in printed


@pytest.fixture(scope="module")
def known_clips(tmp_path_factory) -> dict[str, int]:
    folder = tmp_path_factory.mktemp("known")
    offsets = {"plus3.mp4": 3, "minus2.mp4": -2}
    for name, k in offsets.items():
        known_offset_clip(folder / name, 3.0, k)
    return {str(folder / n): k for n, k in offsets.items()}


@pytest.fixture(scope="module", params=["ours", "reference"])
def doubled_run(known_clips, tmp_path_factory, request):
    out = tmp_path_factory.mktemp(f"doubled-{request.param}")
    summary = score_videos([Path(p) for p in known_clips], out, ScoreSettings(protocol=request.param),
                           BrightnessLoudnessSyncNet())
    return out, validate(summary)


def test_cropped_form_resizes_and_finds_known_offsets(doubled_run, known_clips):
    """160x120 clips, resized to 224x224; the doubles find the known offsets with either decode."""
    _, summary = doubled_run
    assert [f["tracks"][0]["offset"] for f in summary["files"]] == list(known_clips.values())


def test_all_scores_txt_is_the_protocols_format(doubled_run):
    out, summary = doubled_run
    lines = (out / "all_scores.txt").read_text().splitlines()
    tracks = [t for f in summary["files"] for t in f["tracks"]]
    assert len(lines) == len(tracks) == 2
    for line, t in zip(lines, tracks):  # in the files' order
        assert LINE.match(line), line
        dist, conf = line.split(" ")
        # distance first; str() of the float32 SyncNet returned, which reads back to it exactly
        assert np.float32(dist) == np.float32(t["min_dist"]) and np.float32(conf) == np.float32(t["confidence"])
        assert dist == str(np.float32(t["min_dist"]))


def test_means_are_the_means_of_the_rows(doubled_run):
    out, summary = doubled_run
    rows = [r for r in csv.DictReader((out / "scores.csv").open()) if r["status"] == "success"]
    m = summary["means"]
    assert m["n_tracks"] == len(rows) == 2
    assert rows[0]["confidence"] != rows[1]["confidence"]
    assert m["lse_c"] == pytest.approx(np.mean([float(r["confidence"]) for r in rows]), rel=1e-12)
    assert m["lse_d"] == pytest.approx(np.mean([float(r["min_dist"]) for r in rows]), rel=1e-12)


def test_detect_form_scores_every_track(known_clips, tmp_path):
    opts = FaceOptions(min_track=5, min_face_size=10)
    summary = score_videos([Path(p) for p in known_clips], tmp_path, ScoreSettings(faces="detect", face_options=opts),
                           BrightnessLoudnessSyncNet(), FixedBoxDetector())
    validate(summary)
    assert summary["faces"] == "detect" and summary["parameters"]["min_track"] == 5
    assert [[t["offset"] for t in f["tracks"]] for f in summary["files"]] == [[k] for k in known_clips.values()]
    for f in summary["files"]:
        assert (tmp_path / "work" / "pycrop" / f["file"] / "00000.avi").is_file()
    lines = (tmp_path / "all_scores.txt").read_text().splitlines()
    assert len(lines) == summary["means"]["n_tracks"] == 2


@pytest.mark.parametrize("videos, message", [(["missing.mp4"], "missing.mp4 does not exist"),
                                             (["empty"], "no video files")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, videos, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert run_cli(["--videos", *videos, "--output", "out"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_reference_protocol_takes_the_reference_pipeline_decode():
    assert ScoreSettings(faces="detect", protocol="reference").face_options.reference_decode
    assert not ScoreSettings(faces="detect", face_options=FaceOptions(reference_decode=True)).face_options \
        .reference_decode
