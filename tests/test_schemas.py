"""schemas/: the JSON Schemas of processing_summary.json and batch_processing_summary.json.

The schemas must accept what the code writes (summaries made here by the library with
the test doubles) and reject what it must not write: an unknown status, a missing or
an extra key, a multi-line error, another schema_version.  conftest.py checks every
summary the other tests write against them at the end of the session.
"""
from __future__ import annotations

import copy
import json
import os
import shutil

import pytest

from syncnet.jobs.batch import process_folder
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video
from syncnet.options import FaceOptions
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.schemas import SummaryError, check_tree, summary_errors, validate_summary


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One summary of each kind as the library writes it: a long job with the filter on
    (offset 2 > 1: every chunk rejected), and a batch with a good and a corrupt file."""
    d = tmp_path_factory.mktemp("written")
    src = known_offset_clip(d / "src.mp4", 6.0, 2)
    opts = LongVideoOptions(chunk_duration=3.0, overlap=1.0, max_abs_offset=1, visualise=False,
                            faces=FaceOptions(min_track=5, min_face_size=10, batch_size=32))
    process_long_video(src, d / "long", opts, FixedBoxDetector(), BrightnessLoudnessSyncNet())
    folder = d / "folder"
    folder.mkdir()
    shutil.copy(src, folder / "good.mp4")
    (folder / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    process_folder(folder, d / "batch", FaceOptions(min_track=5, min_face_size=10), FixedBoxDetector(),
                   BrightnessLoudnessSyncNet(), max_workers=1)
    return {"long": json.loads((d / "long/processing_summary.json").read_text()),
            "batch": json.loads((d / "batch/batch_processing_summary.json").read_text()),
            "long_path": d / "long/processing_summary.json"}


def test_what_the_code_writes_matches(written):
    """The schemas describe today's summaries: filter on, rejected chunks, a failed file."""
    long, batch = written["long"], written["batch"]
    assert long["totals"]["rejected"] == len(long["chunks"]) == 3
    assert {f["status"] for f in batch["files"]} == {"success", "failed"}
    validate_summary(written["long_path"])
    validate_summary(long)
    validate_summary(batch)


def _failed(c: dict, error) -> None:
    c.update(status="failed", error=error, tracks=[], best_track=None)


DIAGNOSIS = {"cause": "no_face_detected", "message": "no face detected in any of 75 frames", "frames": 75,
             "frames_with_faces": 0, "largest_face_px": None, "longest_run": 0, "shot_cuts_in_runs": 0,
             "audio_seconds": 3.0}


def _no_faces(c: dict, diagnosis) -> None:
    c.update(status="no_faces", tracks=[], best_track=None, diagnosis=diagnosis)


def test_records_without_tracks_carry_a_diagnosis_or_null(written):
    """A chunk or a file without tracks: a diagnosis of any cause, or null (upgraded from schema 2)."""
    for cause, extra in (("no_face_detected", {}),
                         ("faces_too_small", {"frames_with_faces": 40, "largest_face_px": 31.5, "longest_run": 40}),
                         ("face_runs_too_short", {"frames_with_faces": 9, "largest_face_px": 80.0, "longest_run": 3,
                                                  "shot_cuts_in_runs": 2}),
                         ("audio_too_short", {"audio_seconds": 0.1}), (None, None)):
        diagnosis = None if cause is None else {**DIAGNOSIS, "cause": cause, **extra}
        long, batch = copy.deepcopy(written["long"]), copy.deepcopy(written["batch"])
        _no_faces(long["chunks"][0], diagnosis)
        batch["files"][0].update(status="no_faces", error=None, tracks=[], diagnosis=diagnosis)
        assert summary_errors(long) == [] and summary_errors(batch) == [], cause


LONG_BREAKS = {  # what is wrong -> how to make it wrong
    "status ok": lambda s: s["chunks"][0].update(status="ok"),
    "chunk without error key": lambda s: s["chunks"][0].pop("error"),
    "no totals": lambda s: s.pop("totals"),
    "unknown chunk key": lambda s: s["chunks"][0].update(note="x"),
    "unknown totals key": lambda s: s["totals"].update(skipped=0),
    "framewise_conf left in a track": lambda s: s["chunks"][0]["tracks"][0].update(framewise_conf=[1.0]),
    "schema_version 2": lambda s: s.update(schema_version=2),
    "two-line error": lambda s: _failed(s["chunks"][1], "MediaError: ffmpeg failed\nsecond line"),
    "failed without error": lambda s: _failed(s["chunks"][1], None),
    "success without tracks": lambda s: s["chunks"][0].update(tracks=[], best_track=None),
    "time and silence parameters": lambda s: s["parameters"].update(min_silence=1.0),
    "visualise missing its key": lambda s: s["chunks"][0]["files"].pop("video_out"),
    "filter off but accepted": lambda s: s["chunks"][0]["filter"].update(enabled=False, accepted=True, reasons=[]),
    "offset not an integer": lambda s: s["chunks"][0]["best_track"].update(offset=2.5),
    "track without reliable": lambda s: s["chunks"][0]["tracks"][0].pop("reliable"),
    "reliable track with a reason": lambda s: s["chunks"][0]["tracks"][0].update(unreliable_reason="short"),
    "unreliable track without a reason": lambda s: s["chunks"][0]["tracks"][0].update(reliable=False),
    "no detector_frames_this_run": lambda s: s.pop("detector_frames_this_run"),
    "chunk without diagnosis key": lambda s: s["chunks"][0].pop("diagnosis"),
    "success with a diagnosis": lambda s: s["chunks"][0].update(diagnosis=DIAGNOSIS),
    "failed with a diagnosis": lambda s: (_failed(s["chunks"][1], "RuntimeError: x"),
                                          s["chunks"][1].update(diagnosis=DIAGNOSIS)),
    "diagnosis with an unknown cause": lambda s: _no_faces(s["chunks"][0], {**DIAGNOSIS, "cause": "bad_luck"}),
    "diagnosis with a two-line message": lambda s: _no_faces(s["chunks"][0], {**DIAGNOSIS, "message": "a\nb"}),
    "diagnosis without its numbers": lambda s: _no_faces(s["chunks"][0], {"cause": "no_face_detected",
                                                                          "message": "none"}),
    "no face detected yet faces in frames": lambda s: _no_faces(s["chunks"][0], {**DIAGNOSIS,
                                                                                 "frames_with_faces": 3}),
    "track without offset_ms": lambda s: s["chunks"][0]["tracks"][0].pop("offset_ms"),
    "offset_ms not an integer": lambda s: s["chunks"][0]["tracks"][0].update(offset_ms=80.5),
    "track without at_search_edge": lambda s: s["chunks"][0]["best_track"].pop("at_search_edge"),
    "track without start_time": lambda s: s["chunks"][0]["tracks"][0].pop("start_time"),
    "track without end_time": lambda s: s["chunks"][0]["best_track"].pop("end_time"),
    "no drift": lambda s: s.pop("drift"),
    "drift with an unknown verdict": lambda s: s["drift"].update(verdict="wobbly"),
    "exports without synced_video": lambda s: s["exports"].pop("synced_video"),
    "synced chunk with a float shift": lambda s: s["exports"].update(synced_chunks=[
        {"index": 0, "name": "chunk_000", "offset": 2, "shift_ms": 80.5, "linked": False, "chunk": "a", "audio": "b"}]),
    "a refusal of two lines": lambda s: s["exports"].update(synced_video={"path": None, "shift_ms": None,
                                                                          "refused": "a\nb"}),
}
BATCH_BREAKS = {
    "status ok": lambda s: s["files"][0].update(status="ok"),
    "status pending (the long job's)": lambda s: s["files"][0].update(status="pending", error=None, tracks=[]),
    "file without seconds": lambda s: s["files"][0].pop("seconds"),
    "unknown totals key": lambda s: s["totals"].update(pending=0),
    "no schema_version": lambda s: s.pop("schema_version"),
    "unreliable track without a reason": lambda s: next(
        f for f in s["files"] if f["tracks"])["tracks"][0].update(reliable=False),
    "other software": lambda s: s["software"].update(name="syncnet-longvideo"),
    "track with start_frame (the long job's)": lambda s: next(
        f for f in s["files"] if f["tracks"])["tracks"][0].update(start_frame=0),
    "track with start_time (the long job's)": lambda s: next(
        f for f in s["files"] if f["tracks"])["tracks"][0].update(start_time=0.0),
    "schema_version 2": lambda s: s.update(schema_version=2),
    "file without diagnosis key": lambda s: s["files"][0].pop("diagnosis"),
    "success with a diagnosis": lambda s: next(f for f in s["files"] if f["tracks"]).update(diagnosis=DIAGNOSIS),
    "failed with a diagnosis": lambda s: next(f for f in s["files"] if f["error"]).update(diagnosis=DIAGNOSIS),
    "track without offset_ms": lambda s: next(f for f in s["files"] if f["tracks"])["tracks"][0].pop("offset_ms"),
    "track without at_search_edge": lambda s: next(
        f for f in s["files"] if f["tracks"])["tracks"][0].pop("at_search_edge"),
}


@pytest.mark.parametrize("kind, what", [("long", w) for w in LONG_BREAKS] + [("batch", w) for w in BATCH_BREAKS])
def test_a_wrong_summary_is_rejected(written, kind, what):
    """Each break of the written summary is caught, and the message says where."""
    assert summary_errors(written[kind]) == []  # so that only the break can be what is caught
    wrong = copy.deepcopy(written[kind])
    (LONG_BREAKS if kind == "long" else BATCH_BREAKS)[what](wrong)
    errors = summary_errors(wrong)
    assert errors, what
    with pytest.raises(SummaryError, match="does not match schemas/"):
        validate_summary(wrong)


def test_check_tree_names_each_bad_file(written, tmp_path):
    """The session-end check (conftest.py) finds summaries at any depth and names the bad ones."""
    good = tmp_path / "a/deep/er/processing_summary.json"
    bad = tmp_path / "b/batch_processing_summary.json"
    broken = tmp_path / "c/processing_summary.json"
    for p in (good, bad, broken):
        p.parent.mkdir(parents=True)
    wrong = copy.deepcopy(written["batch"])
    wrong["files"][0]["status"] = "ok"
    try:
        good.write_text(json.dumps(written["long"]))
        bad.write_text(json.dumps(wrong))
        broken.write_text('{"schema_version": 1, ')  # not JSON at all
        counts, problems = check_tree(tmp_path)
        assert counts == {"processing_summary.json": 2, "batch_processing_summary.json": 1, "dataset_summary.json": 0}
        assert len(problems) == 2
        about = {str(p): [x for x in problems if x.startswith(f"{p} ")] for p in (bad, broken)}
        assert [len(x) for x in about.values()] == [1, 1], problems
        assert "at /files/0/status: 'ok' is not one of" in about[str(bad)][0]
        assert "is not JSON" in about[str(broken)][0]
    finally:  # not left for the session-end check of every summary under pytest's temp folder
        bad.unlink()
        broken.unlink()


def test_schemas_name_every_cause_the_code_gives():
    from syncnet.diagnosis import CAUSES
    from tests.schemas import SCHEMA_DIR

    for name in ("processing_summary.schema.json", "batch_processing_summary.schema.json"):
        schema = json.loads((SCHEMA_DIR / name).read_text())
        assert tuple(schema["$defs"]["diagnosis"]["properties"]["cause"]["enum"]) == CAUSES, name
        assert schema["properties"]["schema_version"]["const"] == (4 if name.startswith("processing") else 3)
