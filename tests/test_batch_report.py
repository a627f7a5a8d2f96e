"""batch_report.html (syncnet.reports.batch): on a real batch run with the test doubles (three
measured clips, a corrupt file, a clip without faces) and on hand-made summaries with and
without the fields added later (offset_ms, at_search_edge, diagnosis).

The page is read back with html.parser; the threshold table's counts are recomputed here
from the summary, independently of the code under test.  tests/test_report_browser.py
opens the same page in headless Chromium.
"""
from __future__ import annotations

import base64
import copy
import os
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from syncnet.jobs.batch import process_folder
from syncnet.options import FaceOptions
from syncnet.reports.batch import REPORT, failure_cause, render_batch_report, write_batch_report
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip

CONFIDENCES, OFFSETS = (3, 5, 8), (1, 3, 6)


# ---------------------------------------------------------------------------------------------
# The page as a tree (html.parser), and what the tests ask of it


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>"

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **attrs) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def find(self, tag: str, **attrs) -> Node:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}> in the page"
        return found[0]

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {}, None)
        self.unclosed: list[str] = []

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.node)
        self.node.children.append(node)
        if tag not in VOID:
            self.node = node

    def handle_startendtag(self, tag, attrs):
        self.node.children.append(Node(tag, dict(attrs), self.node))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.node.tag == tag, f"</{tag}> closes <{self.node.tag}>"
        self.node = self.node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.node is builder.root, f"<{builder.node.tag}> left open"
    return builder.root


def file_rows(doc: Node) -> list[Node]:
    return [tr for tr in doc.find("table", id="files").find("tbody").find_all("tr")]


def threshold_counts(doc: Node) -> dict[tuple[int, int], int]:
    rows = doc.find("table", id="thresholds").find("tbody").find_all("tr")
    assert len(rows) == len(CONFIDENCES)
    got = {}
    for conf, tr in zip(CONFIDENCES, rows):
        assert tr.find("th").text().strip() == f"\u2265 {conf}"
        cells = tr.find_all("td")
        assert len(cells) == len(OFFSETS)
        for off, td in zip(OFFSETS, cells):
            got[conf, off] = int(td.attrs["data-count"])
            assert td.text().startswith(f"{got[conf, off]} (")
    return got


def signed(n: int) -> str:
    return "0" if n == 0 else f"{n:+d}"


def expected_counts(summary: dict) -> tuple[dict[tuple[int, int], int], int]:
    """The threshold table, from the summary: per file, its most confident reliable track."""
    best = []
    for f in summary["files"]:
        reliable = [t for t in f["tracks"] if t["reliable"]]
        if reliable:
            best.append(max(reliable, key=lambda t: t["confidence"]))
    return ({(c, o): sum(t["confidence"] >= c and abs(t["offset"]) <= o for t in best)
             for c in CONFIDENCES for o in OFFSETS}, len(best))


def check_self_contained(doc: Node, out: Path) -> None:
    """No script, no style sheet or font from elsewhere, pictures inline, links to files that exist."""
    assert not doc.find_all("script")
    assert not doc.find_all("link"), "a <link> loads something from outside the page"
    for style in doc.find_all("style"):
        css = style.text()
        assert "@import" not in css and "url(" not in css and "@font-face" not in css
    for node in doc.iter():
        for name in ("src", "href", "srcset", "data", "poster", "background"):
            value = node.attrs.get(name)
            if value is None:
                continue
            assert not value.lower().startswith(("http:", "https:", "//", "ftp:")), f"<{node.tag} {name}={value}>"
            if name == "href":
                assert not value.startswith(("/", "file:")), value
                assert (out / value).is_file(), f"the link {value} leads nowhere"
            else:
                assert value.startswith("data:image/png;base64,"), f"<{node.tag} {name}> not inline: {value[:60]}"
        assert "style" not in node.attrs or "url(" not in node.attrs["style"]


def pictures(doc: Node) -> list[bytes]:
    pngs = []
    for img in doc.find_all("img"):
        png = base64.b64decode(img.attrs["src"].split(",", 1)[1], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (int(img.attrs["width"]), int(img.attrs["height"])) == (640, 300)
        assert img.attrs.get("alt")
        pngs.append(png)
    return pngs


# ---------------------------------------------------------------------------------------------
# A real batch run


class FacesIn160Wide(FixedBoxDetector):
    """The fixed face in frames 160 pixels wide (known_offset_clip's default); none in others."""

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        boxes = super().detect_batch(images_rgb, conf_th, scale)
        return [b if img.shape[1] == 160 else np.zeros((0, 5), np.float32) for b, img in zip(boxes, images_rgb)]


def make_batch_run(root: Path) -> tuple[dict, Path]:
    """A batch run with the test doubles: three measured clips (offsets 0, 3, -2), a corrupt
    file, a clip without faces; visualised, so pyavi/<stem>/video_out.avi exist.  Returns the
    summary and the output folder, where batch_report.html is written."""
    chunks, out = root / "chunks", root / "out"
    chunks.mkdir(parents=True)
    known_offset_clip(chunks / "a_k0.mp4", 4.0, 0)
    known_offset_clip(chunks / "b_k3.mp4", 4.0, 3, fps=Fraction(30))
    known_offset_clip(chunks / "c_km2.mov", 4.0, -2)
    (chunks / "d_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    known_offset_clip(chunks / "e_noface.mp4", 3.0, 1, size=(192, 144))
    summary = process_folder(chunks, out, FaceOptions(min_track=5, min_face_size=10), FacesIn160Wide(),
                             BrightnessLoudnessSyncNet(), max_workers=2, visualise=True)
    write_batch_report(summary, out)
    return summary, out


_RUNS: dict[str, tuple[dict, Path]] = {}


def shared_batch_run(tmp_path_factory) -> tuple[dict, Path]:
    """`make_batch_run` once per test session, for this module and tests/test_report_browser.py
    (neither changes what it made)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _RUNS:
        _RUNS[key] = make_batch_run(tmp_path_factory.mktemp("batch_report"))
    return _RUNS[key]


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    return shared_batch_run(tmp_path_factory)


def test_report_of_a_real_batch_run(batch_run):
    summary, out = batch_run
    statuses = {f["file"]: f["status"] for f in summary["files"]}
    assert statuses == {"a_k0.mp4": "success", "b_k3.mp4": "success", "c_km2.mov": "success",
                        "d_corrupt.mp4": "failed", "e_noface.mp4": "no_faces"}
    html = (out / REPORT).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    doc = parse(html)
    check_self_contained(doc, out)
    assert len(pictures(doc)) == 2

    rows = file_rows(doc)
    assert [tr.attrs["data-file"] for tr in rows] == [f["file"] for f in summary["files"]]
    for tr, f in zip(rows, summary["files"]):
        cells = [td.text().strip() for td in tr.find_all("td")]
        assert cells[0] == f["file"] and cells[1] == f["status"].replace("_", " ")
        assert f"status-{f['status']}" in tr.classes()
        video = f"pyavi/{Path(f['file']).stem}/video_out.avi"
        # --visualise: a video for every file it could read, faces or not
        assert (out / video).is_file() == (f["status"] != "failed")
        assert [a.attrs["href"] for a in tr.find_all("a")] == ([video] if (out / video).is_file() else [])
        if f["status"] == "success":
            best = max((t for t in f["tracks"] if t["reliable"]), key=lambda t: t["confidence"])
            assert cells[3:6] == [signed(best["offset"]), signed(best["offset"] * 40), f"{best['confidence']:.3f}"]
    by_file = {tr.attrs["data-file"]: tr for tr in rows}
    assert summary["files"][3]["error"] in by_file["d_corrupt.mp4"].text()
    # schema 3: the file's diagnosis says why it has no track
    assert summary["files"][4]["diagnosis"]["message"] in by_file["e_noface.mp4"].text()
    assert {f["file"]: f["tracks"][0]["offset"] for f in summary["files"] if f["tracks"]} == {
        "a_k0.mp4": 0, "b_k3.mp4": 3, "c_km2.mov": -2}

    want, n = expected_counts(summary)
    assert threshold_counts(doc) == want
    assert doc.find("b", id="n-measured").text() == str(n) == "3"

    groups = [[td.text() for td in tr.find_all("td")] for tr in doc.find("table", id="problems").find_all("tr")[1:]]
    assert sorted(groups) == [["failed", "<file> is not a media file FFmpeg can read", "1", "d_corrupt.mp4"],
                              ["no faces", "no_face_detected", "1", "e_noface.mp4"]]
    totals = doc.find("p", id="totals").text().split()
    assert totals == ["5", "files", "3", "success", "1", "no", "faces", "1", "failed", "0", "skipped"]


def test_same_summary_same_bytes(batch_run, tmp_path):
    summary, out = batch_run
    first = (out / REPORT).read_bytes()
    again = write_batch_report(copy.deepcopy(summary), out)
    assert again == out / REPORT and again.read_bytes() == first
    assert not [p.name for p in out.iterdir() if ".part" in p.name]  # written via a temporary name
    # Elsewhere (no pyavi/ there) only the links go: the rest is the same page.
    elsewhere = write_batch_report(summary, tmp_path).read_text(encoding="utf-8")
    assert "<a href" not in elsewhere
    assert parse(elsewhere).find("table", id="thresholds").text() == parse(first.decode()).find(
        "table", id="thresholds").text()


# ---------------------------------------------------------------------------------------------
# Hand-made summaries: known answers, the later fields present or not


def track(i, offset, conf, reliable=True, **extra):
    t = {"track": i, "offset": offset, "confidence": conf, "min_dist": 5.0, "n_frames": 100, "reliable": reliable,
         "unreliable_reason": None if reliable else "too short to measure: 10 SyncNet windows"}
    t.update(extra)
    return t


def record(name, status, tracks=(), error=None, **extra):
    return {"file": name, "path": f"/in/{name}", "status": status, "error": error, "tracks": list(tracks),
            "seconds": 1.0, **extra}


def hand_summary(new_fields: bool) -> dict:
    new = (lambda **kw: kw) if new_fields else (lambda **kw: {})
    files = [
        record("p1.mp4", "success", [track(0, 0, 9.0, **new(offset_ms=0, at_search_edge=False)),
                                     track(1, 7, 12.0, reliable=False)]),  # the unreliable one is not the best
        record("p2.mp4", "success", [track(0, -3, 5.5, **new(offset_ms=-120, at_search_edge=False))]),
        record("p3.mp4", "success", [track(0, 6, 3.0, **new(offset_ms=240, at_search_edge=False))]),
        record("p4.mp4", "success", [track(0, 15, 4.0, **new(offset_ms=600, at_search_edge=True))]),
        record("p5.mp4", "success", [track(0, 1, 2.9, **new(offset_ms=40, at_search_edge=False))]),
        record("short.mp4", "success", [track(0, 15, 0.0, reliable=False)],
               **new(diagnosis={"cause": "tracks_too_short", "message": "every face track is too short"})),
        record("x<b>&amp.mp4", "failed", error="RuntimeError: boom at /in/x<b>&amp.mp4"),
        record("y.mp4", "failed", error="/in/y.mp4 is not a media file FFmpeg can read (/in/y.mp4: Invalid data)"),
        record("z.mp4", "failed", error="/in/z.mp4 is not a media file FFmpeg can read (/in/z.mp4: moov atom)"),
        record("n1.mp4", "no_faces", **new(diagnosis={"cause": "faces_too_small", "message": "faces of 12 px"})),
        record("n2.mp4", "no_faces", **new(diagnosis={"cause": "faces_too_small", "message": "faces of 9 px"})),
    ]
    return {"schema_version": 2, "software": {"name": "syncnet-batch", "version": "0.1.0"}, "chunks_dir": "/in",
            "parameters": {"frame_rate": 25, "vshift": 15, "min_track": 5}, "workers": 2, "files": files,
            "totals": {"files": len(files), "success": 6, "no_faces": 2, "failed": 3, "skipped": 0},
            "wall_seconds": 12.5}


@pytest.mark.parametrize("new_fields", [False, True], ids=["old-summary", "new-fields"])
def test_known_answers(new_fields, tmp_path):
    summary = hand_summary(new_fields)
    html = write_batch_report(summary, tmp_path).read_text(encoding="utf-8")
    doc = parse(html)
    check_self_contained(doc, tmp_path)
    assert len(pictures(doc)) == 2
    # best tracks (conf, |offset|): p1 (9, 0), p2 (5.5, 3), p3 (3, 6), p4 (4, 15), p5 (2.9, 1)
    assert threshold_counts(doc) == {(3, 1): 1, (3, 3): 2, (3, 6): 3, (5, 1): 1, (5, 3): 2, (5, 6): 2,
                                     (8, 1): 1, (8, 3): 1, (8, 6): 1}
    assert threshold_counts(doc) == expected_counts(summary)[0]
    assert doc.find("b", id="n-measured").text() == "5"
    assert "reliable best track (1 more have only tracks too short to measure" in " ".join(html.split())
    assert doc.find("table", id="thresholds").find_all("td")[2].text() == "3 (60.0%)"

    rows = {tr.attrs["data-file"]: [td.text().strip() for td in tr.find_all("td")] for tr in file_rows(doc)}
    assert len(rows) == len(summary["files"])
    assert rows["p2.mp4"][3:9] == ["-3", "-120", "5.500", "5.000", "yes", ""]
    assert rows["p4.mp4"][3:5] == ["+15", "+600"] and "edge" in rows["p4.mp4"][8]  # computed or given
    assert rows["p1.mp4"][3:6] == ["0", "0", "9.000"]  # the reliable track, not the more confident one
    assert rows["short.mp4"][7] == "no" and "unreliable" in file_rows(doc)[5].classes()
    assert rows["short.mp4"][9] == ("every face track is too short" if new_fields
                                    else "too short to measure: 10 SyncNet windows")
    assert rows["n1.mp4"][4] == ("faces of 12 px" if new_fields else "no face track found")

    groups = {(tr.find_all("td")[0].text(), tr.find_all("td")[1].text()): tr.find_all("td")[3].text()
              for tr in doc.find("table", id="problems").find_all("tr")[1:]}
    nofaces = {("no faces", "faces_too_small"): "n1.mp4, n2.mp4"} if new_fields else {
        ("no faces", "no face track found"): "n1.mp4, n2.mp4"}
    short = {("success", "tracks_too_short"): "short.mp4"} if new_fields else {}
    assert groups == {("failed", "<file> is not a media file FFmpeg can read"): "y.mp4, z.mp4",
                      ("failed", "RuntimeError"): "x<b>&amp.mp4", **nofaces, **short}
    # Autoescaped: the odd file name is text, not markup.
    assert "x&lt;b&gt;&amp;amp.mp4" in html and "<b>&amp.mp4" not in html


def test_offset_ms_follows_the_summary_when_given(tmp_path):
    summary = hand_summary(True)
    summary["files"][1]["tracks"][0]["offset_ms"] = -118.0  # whatever the summary says
    summary["files"][0]["tracks"][0]["at_search_edge"] = True
    rows = {tr.attrs["data-file"]: [td.text().strip() for td in tr.find_all("td")]
            for tr in file_rows(parse(render_batch_report(summary, tmp_path)))}
    assert rows["p2.mp4"][4] == "-118" and rows["p2.mp4"][8] == ""
    assert "edge" in rows["p1.mp4"][8]


def test_empty_and_failed_only_runs(tmp_path):
    summary = hand_summary(False)
    summary["files"] = [record("y.mp4", "failed", error="ValueError: nope")]
    doc = parse(render_batch_report(summary, tmp_path))
    assert len(file_rows(doc)) == 1 and len(pictures(doc)) == 2
    assert set(threshold_counts(doc).values()) == {0}
    assert doc.find("table", id="thresholds").find_all("td")[0].text() == "0 (-)"
    summary["files"] = []
    doc = parse(render_batch_report(summary, tmp_path))
    assert file_rows(doc) == [] and doc.find("p", id="problems-none")


def test_failure_cause():
    assert failure_cause(record("a.mp4", "failed", error="OSError: [Errno 28] No space left")) == "OSError"
    assert failure_cause(record("a.mp4", "failed", error="/in/a.mp4: moov atom not found")) == "<file>"
    assert failure_cause(record("a.mp4", "failed", error="cannot decode a.mp4 (bad)")) == "cannot decode <file>"
    assert failure_cause(record("a.mp4", "no_faces")) == "no face track found"
    assert failure_cause(record("a.mp4", "no_faces", diagnosis={"cause": "dark", "message": "m"})) == "dark"
    assert failure_cause(record("a.mp4", "no_faces", diagnosis=None)) == "no face track found"


# ---------------------------------------------------------------------------------------------
# batch_process.py writes the page (and video_utils.py report rebuilds it, byte for byte)


def test_batch_process_writes_the_report_and_the_rebuild_equals_it(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    known_offset_clip(folder / "a.mp4", 3.0, 1)
    run = [sys.executable, str(REPO / "tests/doubled.py"), "batch_process.py", "--chunks_dir", str(folder),
           "--output_dir", str(out)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"report in {out / REPORT}" in proc.stdout
    written = (out / REPORT).read_bytes()
    assert b"a.mp4" in written
    (out / REPORT).unlink()
    rebuild = subprocess.run([sys.executable, str(REPO / "video_utils.py"), "report", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert rebuild.returncode == 0, rebuild.stderr
    assert (out / REPORT).read_bytes() == written
    # --no_report: none written, the earlier one removed (it would not match the summary).
    proc = subprocess.run([*run, "--no_report"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (out / REPORT).exists() and "report skipped (--no_report)" in proc.stdout
