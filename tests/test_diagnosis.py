"""Why a chunk or a file has no face track (syncnet.diagnosis), and the other verdicts of
schema 3: offsets in milliseconds, results at the edge of the search, track times in
source seconds; and the upgrade of a schema-2 summary on resume.

The pure function is tested on synthetic detections, one case per cause, and against the
tracker itself (`find_tracks`) on random detections: it says "nothing stops a track"
exactly when the tracker keeps one, and the change it names (a smaller min_face_size or
min_track) does give a track.  End to end: the jobs on generated media with detector
doubles that find nothing, only small faces, or faces only in short runs, and a clip
whose sound is too short; run_pipeline.py's printed line.
"""
from __future__ import annotations

import copy
import json
import logging
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from syncnet.detection import Detections, find_tracks
from syncnet.diagnosis import MIN_AUDIO_SAMPLES, diagnose
from syncnet.jobs.batch import process_folder
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video, report
from syncnet.options import FaceOptions
from syncnet.results import TrackRecord, at_search_edge
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from testkit.mediagen import encode

AUDIO = 16000 * 4  # plenty of sound: 4 s


def box(x: float, y: float, size: float) -> list[float]:
    return [x, y, x + size, y + size]


def frames_of(n: int, face) -> list[list[dict]]:
    """`face(i)` -> None or a list of boxes for frame i; as Detections.faces."""
    out = []
    for i in range(n):
        boxes = face(i) or []
        out.append([{"frame": i, "bbox": b, "conf": 0.99} for b in boxes])
    return out


OPTS = FaceOptions(min_track=5, min_face_size=50, num_failed_det=2)


# ---------------------------------------------------------------- the pure function, one cause each

def test_no_face_detected():
    d = diagnose(frames_of(50, lambda i: None), [(0, 50)], OPTS, AUDIO)
    assert d.cause == "no_face_detected"
    assert d.message == "no face detected in any of 50 frames"
    assert (d.frames, d.frames_with_faces, d.largest_face_px, d.longest_run, d.shot_cuts_in_runs) == (50, 0, None,
                                                                                                       0, 0)
    assert d.audio_seconds == 4.0


def test_faces_too_small():
    """Faces in every other frame, all 30 px: too small whatever their runs' length."""
    faces = frames_of(100, lambda i: [box(10, 10, 30)] if i % 2 == 0 else None)
    d = diagnose(faces, [(0, 100)], OPTS, AUDIO)
    assert d.cause == "faces_too_small"
    assert d.message == "faces detected in 50% of 100 frames, but none larger than min_face_size 50 " \
                        "(largest seen: 30 px)"
    assert (d.frames_with_faces, d.largest_face_px, d.longest_run) == (50, 30.0, 50)


def test_faces_too_small_and_in_short_runs_says_both():
    faces = frames_of(40, lambda i: [box(10, 10, 30)] if i % 10 < 3 else None)
    d = diagnose(faces, [(0, 40)], OPTS, AUDIO)
    assert d.cause == "faces_too_small"
    assert d.message.endswith("; their runs are too short for min_track 5 too (longest: 3 frames)")


def test_size_is_the_trackers_measure():
    """The tracker keeps a run by its mean box side: one big box does not make a run big,
    and largest_face_px is that mean, not the largest box."""
    faces = frames_of(20, lambda i: [box(10, 10, 55 if i == 0 else 40)])  # IoU 0.53: one run
    d = diagnose(faces, [(0, 20)], OPTS, AUDIO)
    assert d.cause == "faces_too_small" and d.largest_face_px == 40.8  # (55 + 19 * 40) / 20
    assert find_tracks(Detections(faces=faces, scenes=[(0, 20)]), OPTS) == []


def test_face_runs_too_short():
    """Big faces in runs of 4 frames, 6 frames apart (more than num_failed_det 2)."""
    faces = frames_of(100, lambda i: [box(10, 10, 80)] if i % 10 < 4 else None)
    d = diagnose(faces, [(0, 100)], OPTS, AUDIO)
    assert d.cause == "face_runs_too_short"
    assert d.message == "faces detected in 40% of 100 frames, but in runs too short to track: the longest was 4 " \
                        "frames, min_track 5 needs more than 5; 0 shot cuts split face runs"
    assert (d.longest_run, d.shot_cuts_in_runs, d.largest_face_px) == (4, 0, 80.0)


def test_shot_cuts_that_split_runs_are_counted():
    """One face on every frame, cut into shots of 4 frames: the cuts made the runs short."""
    faces = frames_of(20, lambda i: [box(10, 10, 80)])
    shots = [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20)]
    d = diagnose(faces, shots, OPTS, AUDIO)
    assert (d.cause, d.longest_run, d.shot_cuts_in_runs) == ("face_runs_too_short", 4, 4)
    assert d.message.endswith("; 4 shot cuts split face runs")
    # A cut where the face jumps elsewhere does not split a run: the tracker would not have joined them.
    moved = frames_of(8, lambda i: [box(10, 10, 80)] if i < 4 else [box(200, 10, 80)])
    assert diagnose(moved, [(0, 4), (4, 8)], OPTS, AUDIO).shot_cuts_in_runs == 0


def test_a_shot_shorter_than_min_track_counts_its_frames():
    """Three overlapping faces a frame in a 4-frame shot: by the tracker's quirk the first run
    takes two of them a frame, 8 detections (> 5), but find_tracks skips shots shorter than
    min_track, so it counts as 4 frames."""
    faces = frames_of(4, lambda i: [box(10, 10, 80), box(12, 10, 80), box(14, 10, 80)])
    assert find_tracks(Detections(faces=faces, scenes=[(0, 4)]), OPTS) == []
    d = diagnose(faces, [(0, 4)], OPTS, AUDIO)
    assert (d.cause, d.longest_run) == ("face_runs_too_short", 4)


def test_runs_too_short_names_the_big_faces_not_the_small_ones():
    """A small face tracked all along (removed for its size) and a big one in short runs
    (removed for their length): the speaker's runs are what a user can fix."""
    faces = frames_of(60, lambda i: [box(200, 10, 20)] + ([box(10, 10, 80)] if i % 10 < 3 else []))
    d = diagnose(faces, [(0, 60)], OPTS, AUDIO)
    assert (d.cause, d.longest_run, d.largest_face_px) == ("face_runs_too_short", 3, 80.0)


def test_audio_too_short_comes_first():
    """No face setting can give a result when the sound is shorter than one SyncNet window."""
    good = frames_of(50, lambda i: [box(10, 10, 80)])
    assert diagnose(good, [(0, 50)], OPTS, MIN_AUDIO_SAMPLES) is None
    d = diagnose(good, [(0, 50)], OPTS, MIN_AUDIO_SAMPLES - 1)
    assert d.cause == "audio_too_short"
    assert d.message == "audio too short for a SyncNet window: 0.239 s of sound, at least 0.240 s needed"
    none = diagnose(frames_of(5, lambda i: None), [(0, 5)], OPTS, 3200)
    assert (none.cause, none.audio_seconds, none.frames_with_faces) == ("audio_too_short", 0.2, 0)


def test_percentages_never_round_to_none_or_all():
    faces = frames_of(1000, lambda i: [box(10, 10, 20)] if i == 0 else None)
    assert "in <1% of 1000 frames" in diagnose(faces, [(0, 1000)], OPTS, AUDIO).message
    faces = frames_of(1000, lambda i: [box(10, 10, 20)] if i else None)
    assert "in >99% of 1000 frames" in diagnose(faces, [(0, 1000)], OPTS, AUDIO).message


def _random_case(rng):
    n = int(rng.integers(10, 60))
    people = [(float(rng.uniform(0, 200)), float(rng.uniform(0, 100)), float(rng.uniform(20, 140)))
              for _ in range(int(rng.integers(1, 3)))]
    rate = 0.0 if rng.random() < 0.1 else rng.uniform(0.2, 1.0)  # some videos without any face
    present = [rng.random(n) < rate for _ in people]
    faces = frames_of(n, lambda i: [box(x + rng.normal(0, 3), y + rng.normal(0, 3), s * rng.uniform(0.8, 1.2))
                                    for (x, y, s), p in zip(people, present) if p[i]])
    cuts = sorted({int(c) for c in rng.integers(1, n, size=int(rng.integers(0, 4)))})
    edges = [0, *cuts, n]
    scenes = [(a, b) for a, b in zip(edges, edges[1:])]
    opts = FaceOptions(min_track=int(rng.choice([2, 5, 10])), min_face_size=int(rng.choice([30, 60, 100])),
                       num_failed_det=int(rng.choice([0, 2, 25])))
    return faces, scenes, opts


def test_agrees_with_the_tracker_on_random_detections():
    """None exactly when find_tracks keeps a track; otherwise the named fix gives one:
    faces_too_small -> nothing passes min_face_size even at any length, and a size just
    under largest_face_px passes; face_runs_too_short -> min_track one under longest_run
    gives a track."""
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(300):
        faces, scenes, opts = _random_case(rng)
        det = Detections(faces=faces, scenes=scenes)
        kept = find_tracks(det, opts)
        d = diagnose(faces, scenes, opts, AUDIO)
        assert (d is None) == bool(kept), (d, len(kept))
        seen.add(d.cause if d is not None else None)
        if d is None:
            continue
        if d.cause == "faces_too_small":
            assert find_tracks(det, replace(opts, min_track=0)) == []
            assert find_tracks(det, replace(opts, min_track=0, min_face_size=d.largest_face_px - 0.1))
        elif d.cause == "face_runs_too_short":
            assert d.longest_run <= opts.min_track
            assert find_tracks(det, replace(opts, min_track=d.longest_run - 1))
        else:
            assert d.cause == "no_face_detected" and not any(faces)
    assert seen == {None, "no_face_detected", "faces_too_small", "face_runs_too_short"}


# ---------------------------------------------------------------- track records

def test_track_record_offset_ms_search_edge_and_times():
    class Result:  # what TrackRecord.of reads of a SyncResult
        offset, confidence, min_dist, n_frames, vshift = -3, 4.0, 6.0, 50, 3
        dists = np.zeros((45, 7), np.float32)

    rec = TrackRecord.of(0, Result(), (10, 59), start=3.003)
    d = rec.to_dict()
    assert (d["offset"], d["offset_ms"], d["at_search_edge"]) == (-3, -120, True)
    assert (d["start_time"], d["end_time"]) == (3.403, 5.403)
    assert round(d["end_time"] - d["start_time"], 6) == d["n_frames"] / 25
    assert "start_time" not in TrackRecord.of(0, Result()).to_dict()
    assert at_search_edge(15, 15) and at_search_edge(-15, 15) and not at_search_edge(14, 15)


# ---------------------------------------------------------------- end to end with detector doubles

class ScriptedDetector(FixedBoxDetector):
    """Boxes by source frame number (frames come in order): `boxes(n)` -> list of [x1, y1, x2, y2]."""

    def __init__(self, boxes):
        super().__init__()
        self.boxes = boxes

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        out = [np.array([[*b, 0.99] for b in self.boxes(self.frames + k)], np.float32).reshape(-1, 5)
               for k in range(len(images_rgb))]
        self.frames += len(images_rgb)
        return out


def four_causes(n: int) -> list:
    """Chunk 0 (frames 0-74): a big face; chunk 1: only 20 px faces; chunk 2: big faces in
    3-frame runs; chunk 3: nothing."""
    if n < 75:
        return [[40, 20, 120, 100]]
    if n < 150:
        return [[60, 40, 80, 60]]
    if n < 225:
        return [[40, 20, 120, 100]] if (n - 150) % 10 < 3 else []
    return []


def long_options(**kw) -> LongVideoOptions:
    base = dict(chunk_duration=3.0, overlap=0.0, vshift=3, visualise=False,
                faces=FaceOptions(min_track=5, min_face_size=40, num_failed_det=2, batch_size=32))
    base.update(kw)
    return LongVideoOptions(**base)


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("diag_long")
    src = known_offset_clip(d / "src.mp4", 12.0, 3)
    out = d / "out"
    logger = logging.getLogger("syncnet")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        summary = process_long_video(src, out, long_options(), ScriptedDetector(four_causes),
                                     BrightnessLoudnessSyncNet())
    finally:
        logger.removeHandler(handler)
    return {"src": src, "out": out, "summary": summary, "lines": [r.getMessage() for r in records]}


def test_long_job_says_why_each_chunk_has_no_track(long_run):
    s = long_run["summary"]
    assert s["schema_version"] == 4
    assert [c["status"] for c in s["chunks"]] == ["success", "no_faces", "no_faces", "no_faces"]
    c0, c1, c2, c3 = s["chunks"]
    assert c0["diagnosis"] is None
    assert c1["diagnosis"]["cause"] == "faces_too_small" and c1["diagnosis"]["largest_face_px"] == 20.0
    assert c2["diagnosis"]["cause"] == "face_runs_too_short" and c2["diagnosis"]["longest_run"] == 3
    no_face = dict(c3["diagnosis"])
    assert abs(no_face.pop("audio_seconds") - 3.0) < 0.05
    assert no_face == {"cause": "no_face_detected", "message": "no face detected in any of 75 frames",
                               "frames": 75, "frames_with_faces": 0, "largest_face_px": None, "longest_run": 0,
                               "shot_cuts_in_runs": 0}
    # One console line per chunk without a track, saying the same.
    for c in (c1, c2, c3):
        said = [line for line in long_run["lines"] if line.startswith(f"{c['name']}: no face track")]
        assert said == [f"{c['name']}: no face track: {c['diagnosis']['message']}"]
    assert json.loads((long_run["out"] / "processing_summary.json").read_text())["chunks"] == s["chunks"]
    text = report(s, long_run["out"]).splitlines()
    assert "No track:   1 faces too small, 1 face runs too short, 1 no face detected" in text
    assert "Edge:       1 chunks' best track at the edge of the offset search (+-3 frames); a larger vshift " \
           "widens it" in text


def test_long_job_tracks_in_ms_source_seconds_and_at_the_search_edge(long_run):
    """offset 3 = vshift 3: at the edge of the search, and the console warns once."""
    c0 = long_run["summary"]["chunks"][0]
    t = c0["best_track"]
    assert (t["offset"], t["offset_ms"], t["at_search_edge"], t["reliable"]) == (3, 120, True, True)
    assert (t["start_frame"], t["end_frame"], t["start_time"], t["end_time"]) == (0, 74, 0.0, 3.0)
    offsets = json.loads((long_run["out"] / "syncnet_data/pywork/chunk_000/offsets.json").read_text())
    assert {k: offsets["tracks"][0][k] for k in ("offset", "offset_ms", "at_search_edge")} == {
        "offset": 3, "offset_ms": 120, "at_search_edge": True}
    edge = [line for line in long_run["lines"] if "edge of the search" in line]
    assert edge == ["chunk_000: the best track's offset (+3 frames) is at the edge of the search (+-3 frames); "
                    "the true offset may lie beyond it, a larger vshift widens the search"]


def test_track_times_of_a_later_chunk_in_source_seconds(tmp_path):
    """29.97 fps: the second chunk's cut snaps to 3.003 s, and its track times start there."""
    src = known_offset_clip(tmp_path / "src.mp4", 6.0, 0, fps=Fraction(30000, 1001))
    s = process_long_video(src, tmp_path / "out", long_options(vshift=15), FixedBoxDetector(),
                           BrightnessLoudnessSyncNet())
    c1 = s["chunks"][1]
    t = c1["tracks"][0]
    assert c1["start"] == 3.003 and t["start_frame"] == 0
    assert t["start_time"] == c1["start"] and t["end_time"] == round(c1["start"] + (t["end_frame"] + 1) / 25, 6)
    assert t["at_search_edge"] is False and t["offset_ms"] == 40 * t["offset"]


def _strip_to_v2(summary: dict, record_key: str) -> dict:
    """A schema-3 summary as schema 2 wrote it: without what 3 added."""
    old = copy.deepcopy(summary)
    old["schema_version"] = 2
    for r in old[record_key]:
        r.pop("diagnosis")
        for t in r["tracks"] + ([r["best_track"]] if r.get("best_track") else []):
            for k in ("offset_ms", "at_search_edge", "start_time", "end_time"):
                t.pop(k, None)
    return old


def test_a_schema_2_summary_is_upgraded_not_redone(tmp_path, caplog):
    src = known_offset_clip(tmp_path / "src.mp4", 6.0, 3)
    out = tmp_path / "out"
    first = process_long_video(src, out, long_options(), ScriptedDetector(lambda n: four_causes(n) if n < 75 else []),
                               BrightnessLoudnessSyncNet())
    assert [c["status"] for c in first["chunks"]] == ["success", "no_faces"]
    (out / "processing_summary.json").write_text(json.dumps(_strip_to_v2(first, "chunks")))
    chunk_files = {p: p.stat().st_mtime_ns for p in (out / "chunks").iterdir()}
    detector = ScriptedDetector(four_causes)
    with caplog.at_level(logging.WARNING, logger="syncnet"):
        again = process_long_video(src, out, long_options(), detector, BrightnessLoudnessSyncNet())
    assert detector.frames == 0 and again["detector_frames_this_run"] == 0  # nothing redone
    assert {p: p.stat().st_mtime_ns for p in (out / "chunks").iterdir()} == chunk_files
    assert "resuming: 2 of 2 chunks already done" in caplog.text and "redoing" not in caplog.text
    assert again["schema_version"] == 4
    assert again["chunks"][0] == first["chunks"][0]  # offset_ms, at_search_edge, times derived again
    assert again["chunks"][1] == {**first["chunks"][1], "diagnosis": None}  # no claim about an old chunk
    # A schema this version cannot upgrade is still redone, with a warning.
    (out / "processing_summary.json").write_text(json.dumps({**again, "schema_version": 1}))
    detector = ScriptedDetector(four_causes)
    with caplog.at_level(logging.WARNING, logger="syncnet"):
        redone = process_long_video(src, out, long_options(), detector, BrightnessLoudnessSyncNet())
    assert "schema 1, now 4); redoing every chunk" in caplog.text
    assert detector.frames == 150 and redone["chunks"][1]["diagnosis"]["cause"] == "faces_too_small"


def test_batch_says_why_each_file_has_no_track_and_upgrades(tmp_path, caplog):
    """A detector that finds nothing: a 2 s clip has no face; a 0.12 s one is too short to score
    whatever its faces.  Then a schema-2 form of the summary is upgraded, nothing redone."""
    folder = tmp_path / "in"
    folder.mkdir()
    known_offset_clip(folder / "grey.mp4", 2.0, 0)
    rate = 16000
    encode(folder / "tiny.mp4", (np.full((120, 160, 3), 90, np.uint8) for _ in range(3)), Fraction(25),
           (np.random.default_rng(0).uniform(-1, 1, rate * 3 // 25) * 3000).astype(np.int16), rate)
    opts = FaceOptions(min_track=5, min_face_size=10)
    with caplog.at_level(logging.WARNING, logger="syncnet"):
        s = process_folder(folder, tmp_path / "out", opts, ScriptedDetector(lambda n: []),
                           BrightnessLoudnessSyncNet(), max_workers=1)
    files = {f["file"]: f for f in s["files"]}
    assert s["schema_version"] == 3 and [f["status"] for f in files.values()] == ["no_faces", "no_faces"]
    assert files["grey.mp4"]["diagnosis"]["message"] == "no face detected in any of 50 frames"
    tiny = files["tiny.mp4"]["diagnosis"]
    assert tiny["cause"] == "audio_too_short" and tiny["audio_seconds"] < 0.24
    for name, f in files.items():
        assert caplog.text.count(f"{name}: no face track: {f['diagnosis']['message']}") == 1

    # With a face in grey.mp4 the record has tracks and diagnosis null; then the upgrade.
    (folder / "tiny.mp4").unlink()
    out2 = tmp_path / "out2"
    first = process_folder(folder, out2, opts, FixedBoxDetector(), BrightnessLoudnessSyncNet(), max_workers=1)
    f = first["files"][0]
    assert f["status"] == "success" and f["diagnosis"] is None
    assert f["tracks"][0]["offset_ms"] == 40 * f["tracks"][0]["offset"]
    assert "start_time" not in f["tracks"][0] and f["tracks"][0]["at_search_edge"] is False
    (out2 / "batch_processing_summary.json").write_text(json.dumps(_strip_to_v2(first, "files")))
    detector = FixedBoxDetector()
    again = process_folder(folder, out2, opts, detector, BrightnessLoudnessSyncNet(), max_workers=1)
    assert detector.frames == 0 and again["totals"]["skipped"] == 1
    assert again["files"] == first["files"] and again["schema_version"] == 3


def test_run_pipeline_prints_the_diagnosis(tmp_path, monkeypatch, capsys):
    """run_pipeline.py, pycrop/R left empty: the printed line says why."""
    import syncnet._cli.models as models
    from syncnet._cli import run_pipeline

    src = known_offset_clip(tmp_path / "grey.mp4", 2.0, 0)
    monkeypatch.setattr(models, "load_models", lambda *a, **k: (ScriptedDetector(lambda n: []), None))
    args = run_pipeline.build_parser().parse_args(["--videofile", str(src), "--reference", "r",
                                                   "--data_dir", str(tmp_path / "w")])
    assert run_pipeline.main(args) == 0
    out = capsys.readouterr().out
    assert out.strip() == (f"no face tracks found: no face detected in any of 50 frames; "
                           f"{tmp_path / 'w/pycrop/r'} is empty")
