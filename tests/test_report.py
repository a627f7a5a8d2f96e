"""The per-video report: report.html, timeline.png, chunks.csv, tracks.csv and the table on
the console, from real runs of process_long_video.py with the test doubles.

The main run (13 s clip, 4 s chunks with 1 s overlap: chunk_000 .. chunk_003) has a
filter (--max_abs_offset 3), a failed chunk (chunk_001, its analysis raises) and a chunk
without faces (chunk_003: the detector finds none after 9 s).  It runs the command
line's `main` in this process with the networks swapped for the doubles, so what is
checked is what the command writes and prints; the rebuild and --no_report run the
scripts as a user does (video_utils.py, tests/doubled.py).
"""
from __future__ import annotations

import base64
import contextlib
import copy
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import syncnet._cli.models
import syncnet.jobs.longvideo as lv
from syncnet._cli import process_long_video as cli
from syncnet.reports import REPORT_FILES, SIZE_PX, console_table, write_report
from syncnet.reports.tables import CHUNK_COLUMNS, TRACK_COLUMNS, hms
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip
from tests.conftest import REPO

CHUNKS = ["--chunk_duration", "4", "--overlap", "1", "--no_visualise"]
GOLDEN = REPO / "tests/golden/processing_summary.json"


class FacesUntil(FixedBoxDetector):
    """The fixed face on source frames before `last`, none from there on."""

    def __init__(self, last: int):
        super().__init__()
        self.last = last

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        first = self.frames
        boxes = super().detect_batch(images_rgb, conf_th, scale)
        return [b if first + k < self.last else np.zeros((0, 5), np.float32) for k, b in enumerate(boxes)]


def run_main(argv: list[str], fail: str | None = None, faces_until: int = 10**9) -> str:
    """process_long_video.py's main with the doubles; its stdout."""
    real = lv.LongVideoJob._analyse_chunk

    def analyse(self, chunk, window):
        if chunk.name == fail:
            raise RuntimeError(f"planted failure of {chunk.name}")
        return real(self, chunk, window)

    def load_models(*args, **kwargs):
        return FacesUntil(faces_until), BrightnessLoudnessSyncNet()

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(lv.LongVideoJob, "_analyse_chunk", analyse)
        mp.setattr(syncnet._cli.models, "load_models", load_models)
        cli.main(cli.build_parser().parse_args(argv))
    return out.getvalue()


def hashes(out: Path) -> dict[str, str]:
    return {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in REPORT_FILES if (out / n).exists()}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return known_offset_clip(tmp_path_factory.mktemp("src") / "talk.mp4", 13.0, 2)


@pytest.fixture(scope="module")
def run(clip, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("run") / "out"
    stdout = run_main(["--input_video", str(clip), "--output_dir", str(out), *CHUNKS, "--max_abs_offset", "3"],
                      fail="chunk_001", faces_until=225)
    summary = json.loads((out / "processing_summary.json").read_text())
    return {"out": out, "stdout": stdout, "summary": summary, "hashes": hashes(out)}


class Page(HTMLParser):
    """What the checks need of a page: tags with their attributes, the chunk table's rows, text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[dict] = []  # rows of the chunk table's body: id, cell texts
        self.text: list[str] = []
        self.style = ""
        self._in = []  # open tags we care about

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._in.append(("table", a.get("class")))
        elif tag == "tbody" and self._in and self._in[-1] == ("table", "chunks"):
            self._in.append(("tbody", None))
        elif tag == "tr" and self._in and self._in[-1][0] == "tbody":
            self.rows.append({"id": a.get("id"), "class": a.get("class"), "cells": []})
        elif tag == "td" and self.rows and self._in and self._in[-1][0] == "tbody":
            self.rows[-1]["cells"].append("")
        elif tag == "style":
            self._in.append(("style", None))

    def handle_endtag(self, tag):
        if self._in and self._in[-1][0] == tag:
            self._in.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self._in and self._in[-1][0] == "style":
            self.style += data
        elif self._in and self._in[-1][0] == "tbody" and self.rows and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


def offline_problems(page: Page, out: Path) -> list[str]:
    """Everything that would make the page reach beyond itself and its folder."""
    problems = []
    for tag, a in page.tags:
        if tag in ("script", "link", "iframe", "object", "embed", "base"):
            problems.append(f"<{tag}>")
        for attr in ("src", "href", "srcset", "poster", "data"):
            v = a.get(attr)
            if v is None:
                continue
            if v.startswith(("http:", "https:", "//", "ftp:", "file:")) or "://" in v:
                problems.append(f"{tag} {attr}={v}")
            elif attr == "src" and not v.startswith("data:"):
                problems.append(f"{tag} src not embedded: {v[:60]}")
            elif attr == "href" and not v.startswith("#") and not (out / v).is_file():
                problems.append(f"{tag} href to a missing file: {v}")
        if any(k.startswith("on") for k in a):
            problems.append(f"{tag} event handler")
    if "url(" in page.style or "@import" in page.style or "@font-face" in page.style:
        problems.append("style loads something")
    return problems


# ------------------------------------------------------------------ the run writes the report


def test_run_writes_the_report_files_and_prints_the_table(run):
    out, stdout, s = run["out"], run["stdout"], run["summary"]
    assert [c["status"] for c in s["chunks"]] == ["success", "failed", "success", "no_faces"]
    assert [c["filter"]["accepted"] for c in s["chunks"]] == [True, False, True, False]
    assert sorted(run["hashes"]) == sorted(REPORT_FILES)
    # The table: every chunk, its time range, status, offset in frames and ms, confidence, verdict.
    lines = stdout.splitlines()
    assert lines[0] == "Chunks (4):"
    assert lines[1].split() == ["chunk", "time", "status", "offset", "ms", "confidence", "verdict", "note"]
    row = {ln.split()[0]: ln for ln in lines[2:6]}
    assert list(row) == ["chunk_000", "chunk_001", "chunk_002", "chunk_003"]
    conf0 = s["chunks"][0]["best_track"]["confidence"]
    assert row["chunk_000"].split()[:6] == ["chunk_000", "00:00:00-00:00:04", "success", "+2", "+80",
                                            f"{conf0:.3f}"]
    assert row["chunk_000"].split()[6] == "accepted"
    assert row["chunk_001"].split()[:6] == ["chunk_001", "00:00:03-00:00:07", "failed", "-", "-", "-"]
    assert "rejected (status failed)" in row["chunk_001"]
    assert "rejected (no face track)" in row["chunk_003"]
    assert "Median best-track offset of 2 accepted chunks: +2 frames (+80 ms), the sound leads the picture." \
        in stdout
    # Today's report lines stay, with the report and the elapsed time after them.
    assert "Chunks:     4 (2 with faces, 1 without, 1 failed)" in stdout
    assert "failed chunk_001: RuntimeError: planted failure of chunk_001" in stdout
    assert f"Report:     {out / 'report.html'} (timeline.png, chunks.csv, tracks.csv beside it)" in stdout
    total = s["timings"]["total"]
    assert f"Elapsed:    {hms(total)} ({total:.1f} s, this run)" in stdout


def test_html_is_one_offline_page_with_a_row_per_chunk(run):
    out, s = run["out"], run["summary"]
    html = (out / "report.html").read_text(encoding="utf-8")
    page = parse(html)
    assert offline_problems(page, out) == []
    assert [r["id"] for r in page.rows] == [c["name"] for c in s["chunks"]]
    # The picture is embedded, and it is timeline.png.
    imgs = [a["src"] for tag, a in page.tags if tag == "img"]
    assert len(imgs) == 1 and imgs[0].startswith("data:image/png;base64,")
    assert base64.b64decode(imgs[0].split(",", 1)[1]) == (out / "timeline.png").read_bytes()
    # Rows: time range, status, offset in frames and ms, confidence, min dist, verdict, notes.
    cells = {r["id"]: [c.strip() for c in r["cells"]] for r in page.rows}
    b0 = s["chunks"][0]["best_track"]
    assert cells["chunk_000"][:9] == ["chunk_000", "00:00:00-00:00:04", "success", "1", "+2", "+80",
                                      f"{b0['confidence']:.3f}", f"{b0['min_dist']:.3f}", "accepted"]
    assert cells["chunk_001"][2] == "failed" and cells["chunk_001"][8] == "rejected: status failed"
    assert "RuntimeError: planted failure of chunk_001" in cells["chunk_001"][9]
    assert cells["chunk_003"][2] == "no faces" and cells["chunk_003"][4] == "-"
    # Links: the chunk files, relative, that exist.
    hrefs = [a["href"] for tag, a in page.tags if tag == "a"]
    assert "chunks/chunk_000.mp4" in hrefs and "syncnet_data/pywork/chunk_000/offsets.txt" in hrefs
    assert not any(h.startswith("/") for h in hrefs)
    # Input, parameters, totals and the legend's sign wording (README "The offset sign").
    text = " ".join(" ".join(page.text).split())
    assert s["input"]["path"] in text and "max |offset| 3" in text and "vshift 15" in text
    assert "the sound of a frame sits that many frames earlier in the file than the frame: " \
           "the sound leads the picture" in text
    assert "Rebuild this page with python video_utils.py report OUTPUT_DIR" in text


def test_timeline_png_has_its_size_and_marks(run):
    import matplotlib.image

    png = (run["out"] / "timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == SIZE_PX == (1200, 750)
    rgb = (matplotlib.image.imread(io.BytesIO(png))[..., :3] * 255).round().astype(np.uint8)
    colours = {tuple(c) for c in rgb.reshape(-1, 3)[::7]}
    assert len(colours) > 20  # not blank

    def share(hex_colour: str) -> float:
        c = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return float(np.all(np.abs(rgb.astype(int) - c) <= 2, axis=-1).mean())

    assert share("#2ca02c") > 0.002  # accepted chunks
    assert share("#d62728") > 0.001  # the failed chunk
    assert share("#c7c7c7") > 0.001  # the chunk without faces
    assert b"Software" not in png and b"tIME" not in png  # nothing that changes from run to run


def test_csv_tables(run):
    s, out = run["summary"], run["out"]
    with open(out / "chunks.csv", newline="") as fh:
        chunks = list(csv.DictReader(fh))
    with open(out / "tracks.csv", newline="") as fh:
        tracks = list(csv.DictReader(fh))
    assert list(chunks[0]) == CHUNK_COLUMNS and list(tracks[0]) == TRACK_COLUMNS
    assert [r["name"] for r in chunks] == [c["name"] for c in s["chunks"]]
    assert [r["status"] for r in chunks] == ["success", "failed", "success", "no_faces"]
    assert chunks[0]["offset"] == "2" and chunks[0]["offset_ms"] == "80" and chunks[0]["accepted"] == "true"
    assert chunks[1]["offset"] == "" and chunks[1]["reasons"] == "status failed"
    assert len(tracks) == sum(len(c["tracks"]) for c in s["chunks"])
    c2 = s["chunks"][2]
    t2 = next(t for t in tracks if t["chunk"] == "chunk_002")
    assert float(t2["start_time"]) == pytest.approx(c2["start"] + c2["tracks"][0]["start_frame"] / 25)
    assert float(t2["end_time"]) == pytest.approx(9.0)  # the face ends at 9 s
    assert all(int(t["offset_ms"]) == 40 * int(t["offset"]) for t in tracks)


def test_rebuild_command_gives_the_same_bytes(run, tmp_path):
    out = run["out"]
    for name in REPORT_FILES:
        (out / name).unlink()
    proc = subprocess.run([sys.executable, str(REPO / "video_utils.py"), "report", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == f"wrote {', '.join(REPORT_FILES)} in {out}"
    assert hashes(out) == run["hashes"]


def test_rebuild_of_a_folder_without_a_summary_is_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "video_utils.py"), "report", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "processing_summary.json not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not any((tmp_path / n).exists() for n in REPORT_FILES)


# ------------------------------------------------------------------ resume, --no_report


def test_resume_rewrites_the_report(clip, tmp_path):
    """The rerun that redoes a failed chunk leaves a report of the new summary, equal to a rebuild."""
    out = tmp_path / "out"
    args = ["--input_video", str(clip), "--output_dir", str(out), *CHUNKS]
    run_main(args, fail="chunk_002")
    assert [r["class"] for r in parse((out / "report.html").read_text()).rows] == ["success", "success", "failed",
                                                                                   "success"]
    first = hashes(out)
    run_main(args)
    assert json.loads((out / "processing_summary.json").read_text())["totals"]["failed"] == 0
    page = parse((out / "report.html").read_text())
    assert [r["class"] for r in page.rows] == ["success"] * 4
    again = hashes(out)
    assert all(first[n] != again[n] for n in ("report.html", "timeline.png", "chunks.csv"))
    write_report(json.loads((out / "processing_summary.json").read_text()), out)
    assert hashes(out) == again


def test_no_report_writes_none_and_removes_an_earlier_one(clip, tmp_path):
    """The script as a user runs it (tests/doubled.py): --no_report writes no report file, and
    one an earlier run wrote goes, since it no longer matches the summary."""
    out = tmp_path / "out"
    args = [sys.executable, str(REPO / "tests/doubled.py"), "process_long_video.py", "--input_video", str(clip),
            "--output_dir", str(out), *CHUNKS, "--no_report"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert hashes(out) == {}
    assert "Report:     skipped (--no_report); make it: python video_utils.py report" in proc.stdout
    (out / "report.html").write_text("an earlier run's")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert hashes(out) == {} and "the earlier run's report.html removed" in proc.stdout


# ------------------------------------------------------------------ summaries, old and new


def golden() -> dict:
    s = json.loads(GOLDEN.read_text())
    s["timings"] = {"total": 3723.4, "detector_frames_this_run": 250}
    return s


def test_new_record_fields_are_used_when_present(tmp_path):
    """offset_ms, at_search_edge, start_time / end_time and diagnosis, as the summary will carry
    them: the report shows theirs, not its own estimates."""
    s = golden()
    c = s["chunks"][1]
    for t in (*c["tracks"], c["best_track"]):
        t.update(offset=15, offset_ms=601, at_search_edge=True, start_time=3.5, end_time=6.25)
    c["diagnosis"] = {"cause": "at_search_edge", "message": "offset at the edge of the search <range>"}
    write_report(s, tmp_path)
    html = (tmp_path / "report.html").read_text()
    page = parse(html)
    cells = [cell.strip() for cell in page.rows[1]["cells"]]
    assert cells[4].startswith("+15") and "edge" in cells[4] and cells[5] == "+601"
    assert "offset at the edge of the search <range>" in cells[9]
    assert "search &lt;range&gt;" in html  # escaped
    with open(tmp_path / "tracks.csv", newline="") as fh:
        t = list(csv.DictReader(fh))[1]
    assert (t["start_time"], t["end_time"], t["offset_ms"], t["at_search_edge"]) == ("3.5", "6.25", "601", "true")
    with open(tmp_path / "chunks.csv", newline="") as fh:
        row = list(csv.DictReader(fh))[1]
    assert (row["diagnosis_cause"], row["diagnosis_message"]) == ("at_search_edge", c["diagnosis"]["message"])
    assert "at search edge; offset at the edge of the search <range>" in console_table(s)


def test_input_names_are_escaped(tmp_path):
    s = golden()
    s["input"]["path"] = '/data/<script>alert(1)</script> "talk".mp4'
    write_report(s, tmp_path)
    page = parse((tmp_path / "report.html").read_text())
    assert not any(tag == "script" for tag, _ in page.tags)
    assert s["input"]["path"] in " ".join(page.text)


def test_long_runs_list_the_50_worst(tmp_path):
    s = golden()
    proto = s["chunks"][0]
    s["chunks"] = []
    for i in range(120):
        c = copy.deepcopy(proto)
        c.update(index=i, name=f"chunk_{i:03d}", start=3.0 * i, end=3.0 * i + 4)
        c["best_track"]["confidence"] = c["tracks"][0]["confidence"] = 5.0 + (i * 37 % 120) / 10
        s["chunks"].append(c)
    s["input"]["duration"] = 3.0 * 119 + 4
    failed = s["chunks"][77]
    failed.update(status="failed", error="RuntimeError: x", tracks=[], best_track=None)
    failed["filter"] = {"enabled": True, "accepted": False, "reasons": ["status failed"]}
    text = console_table(s)
    lines = text.splitlines()
    assert lines[0].startswith("The 50 worst of 120 chunks (failed first, then rejected by the filter, then "
                               "without a usable face, then the lowest confidence)")
    names = [ln.split()[0] for ln in lines[2:52]]
    assert len(names) == 50 and names == sorted(names) and "chunk_077" in names
    lowest = sorted((c for c in s["chunks"] if c["best_track"]), key=lambda c: c["best_track"]["confidence"])
    assert {c["name"] for c in lowest[:49]} | {"chunk_077"} == set(names)
    # The timeline of a long run still has one x tick a few minutes apart, in hh:mm:ss.
    write_report(s, tmp_path)
    assert len(parse((tmp_path / "report.html").read_text()).rows) == 120


def test_same_summary_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_report(golden(), a)
    write_report(golden(), b)
    assert hashes(a) == hashes(b) and len(hashes(a)) == 4
