"""The offset over time: the robust line, its verdicts, and a source whose sound drifts by a
known rate through the whole long job (test doubles for the networks)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from syncnet import media
from syncnet.drift import DRIFT_MS, SPREAD_MS, fit_drift
from syncnet.jobs.export import DRIFT_MIN_CONFIDENCE, drift_dict
from testkit.doubles import known_offset_clip
from tests.conftest import REPO


def _chunks(offsets_frames, times_s, confidences=None, accepted=None, reliable=None, edge=None) -> list[dict]:
    """Chunk records as a summary holds them, with only what the drift fit reads."""
    n = len(offsets_frames)
    confidences = confidences if confidences is not None else [6.0] * n
    chunks = []
    for i in range(n):
        best = {"offset": int(offsets_frames[i]), "confidence": float(confidences[i]),
                "reliable": True if reliable is None else reliable[i],
                "at_search_edge": False if edge is None else edge[i],
                "start_time": times_s[i] - 10.0, "end_time": times_s[i] + 10.0}
        verdict = None if accepted is None else accepted[i]
        chunks.append({"index": i, "best_track": best,
                       "filter": {"enabled": accepted is not None, "accepted": verdict, "reasons": []}})
    return chunks


def test_constant_offset_with_a_few_wrong_chunks_is_constant():
    rng = np.random.default_rng(1)
    times = np.arange(30) * 120.0 + 60  # an hour, a chunk every 2 minutes
    offsets = np.full(30, 3)
    offsets[[4, 17, 25]] = [-9, 11, 14]  # wrong chunks (another face, dubbing): the robust loss ignores them
    d = drift_dict(_chunks(offsets, times, rng.uniform(3.5, 9, 30)), filtering=False)
    assert d["verdict"] == "constant", d
    assert d["points"] == 30 and abs(d["offset_ms"] - 120) < 5 and abs(d["intercept_ms"] - 120) < 10
    assert abs(d["slope_ms_per_hour"]) * d["span_s"] / 3600 < DRIFT_MS


def test_linear_drift_is_drifting_with_its_slope():
    """0 ms at the start, +100 ms per hour, measured in whole frames over two hours."""
    times = np.arange(60) * 120.0 + 30
    true_ms = 100.0 * times / 3600
    d = drift_dict(_chunks(np.round(true_ms / 40), times), filtering=False)
    assert d["verdict"] == "drifting", d
    assert d["slope_ms_per_hour"] == pytest.approx(100, rel=0.10)
    assert abs(d["intercept_ms"]) < 20 and d["spread_ms"] <= SPREAD_MS


def test_random_offsets_are_inconsistent():
    rng = np.random.default_rng(7)
    times = np.arange(40) * 90.0
    d = drift_dict(_chunks(rng.integers(-10, 11, 40), times), filtering=False)
    assert d["verdict"] == "inconsistent" and d["spread_ms"] > SPREAD_MS, d


def test_too_few_points_is_unknown():
    d = drift_dict(_chunks([2, 2], [10.0, 50.0]), filtering=False)
    assert d["verdict"] == "unknown" and d["points"] == 2
    assert d["slope_ms_per_hour"] is None and d["intercept_ms"] is None and d["spread_ms"] is None
    assert fit_drift([], [], []).verdict == "unknown"


def test_only_confident_chunks_count():
    """Unreliable, at-the-edge and unconfident chunks are not points; with a filter, only the
    accepted ones are.  The wild chunks would make the fit inconsistent if they counted."""
    times = np.arange(12) * 60.0
    offsets = [2] * 8 + [15, -15, 9, -7]
    conf = [6.0] * 8 + [2.0, 6.0, 6.0, 6.0]
    reliable = [True] * 8 + [True, True, False, True]
    edge = [False] * 8 + [False, True, False, False]
    accepted = [True] * 8 + [True, True, True, False]
    d = drift_dict(_chunks(offsets, times, conf, reliable=reliable, edge=edge), filtering=False)
    # chunk 8 (confidence 2 < 3), 9 (edge), 10 (unreliable) left out; 11 counts and is an outlier.
    assert DRIFT_MIN_CONFIDENCE == 3.0 and d["points"] == 9 and d["verdict"] == "constant"
    d = drift_dict(_chunks(offsets, times, conf, accepted=accepted, reliable=reliable, edge=edge), filtering=True)
    assert d["points"] == 9 and d["uses_filter"] and d["min_confidence"] is None  # 8 good + chunk 8


def test_confidence_weights_the_fit():
    """Two camps of chunks (offset 0 and +3 frames): the line follows the confident camp."""
    times = np.arange(20) * 30.0
    offsets = [0, 3] * 10
    heavy = fit_drift(times, np.array(offsets) * 40.0, [9.0 if o == 3 else 1.0 for o in offsets])
    light = fit_drift(times, np.array(offsets) * 40.0, [1.0 if o == 3 else 9.0 for o in offsets])
    assert heavy.offset_ms > 90 and light.offset_ms < 30, (heavy, light)


RATE_E = 0.008  # the sound runs 0.8% slow: it lags the picture by 8 ms more every second


@pytest.fixture(scope="module")
def drifting_run(tmp_path_factory):
    """A 24 s clip in sync at its start, its sound resampled (asetrate) to play 0.8% slower:
    by its end the sound lags by 192 ms (-4.8 frames), -28,800 ms per hour.  The long job runs
    through tests/doubled.py with --export_synced_video, which must refuse."""
    root = tmp_path_factory.mktemp("drift")
    clip = known_offset_clip(root / "in_sync.mp4", 24.0, 0)
    src = root / "drifting.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-c:v", "copy", "-af",
                    f"asetrate={48000 / (1 + RATE_E):.4f},aresample=48000", "-c:a", "aac", "-b:a", "192k", "-t", "24",
                    str(src)], check=True)
    out = root / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tests/doubled.py"), "process_long_video.py",
                           "--input_video", str(src), "--output_dir", str(out), "--chunk_duration", "3",
                           "--overlap", "0", "--min_confidence", "0.5", "--no_visualise", "--no_report",
                           "--export_synced_video"], capture_output=True, text=True, timeout=600)
    return proc, out, src


def test_a_drifting_source_gives_its_slope(drifting_run):
    proc, out, _ = drifting_run
    s = json.loads((out / "processing_summary.json").read_text())
    d = s["drift"]
    expected = -RATE_E * 3600 * 1000  # ms per hour
    assert d["verdict"] == "drifting", d
    assert d["points"] >= 6
    assert d["slope_ms_per_hour"] == pytest.approx(expected, rel=0.15), d
    assert abs(d["intercept_ms"]) <= 40, d  # in sync at the start, within a frame
    assert "Drift:      drifting" in proc.stdout


def test_export_synced_video_refuses_a_drifting_offset_and_keeps_the_chunks(drifting_run):
    proc, out, src = drifting_run
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "constant offset" in lines[0] and "--export_synced" in lines[0], proc.stderr
    s = json.loads((out / "processing_summary.json").read_text())
    assert s["complete"] and s["totals"]["success"] == s["totals"]["chunks"] == 8
    assert s["exports"]["synced_video"]["path"] is None and s["exports"]["synced_video"]["refused"] == \
        lines[0].split("error: ", 1)[1]
    assert not (out / f"synced_{src.name}").exists()
    assert all((out / "chunks" / f"chunk_{i:03d}.mp4").exists() for i in range(8))
    assert media.probe(out / "chunks" / "chunk_000.mp4").has_audio


def test_several_inputs_exit_1_naming_the_one_whose_export_was_refused(drifting_run, tmp_path):
    """With several inputs, a refused --export_synced_video still exits 1 with its one line,
    naming the input; the input in sync beside it is exported."""
    _, _, src = drifting_run
    in_sync = src.parent / "in_sync.mp4"
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "tests/doubled.py"), "process_long_video.py",
                           "--input_video", str(in_sync), str(src), "--output_dir", str(out), "--chunk_duration", "3",
                           "--overlap", "0", "--min_confidence", "0.5", "--no_visualise", "--no_report",
                           "--export_synced_video"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("process_long_video.py: error: drifting.mp4: "), proc.stderr
    assert "constant offset" in errors[0]
    dataset = json.loads((out / "dataset_summary.json").read_text())
    assert [i["status"] for i in dataset["inputs"]] == ["done", "done"]
    assert (out / "in_sync" / "synced_in_sync.mp4").exists()
    assert not (out / "drifting" / "synced_drifting.mp4").exists()
