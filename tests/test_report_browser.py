"""The HTML reports in a real browser: headless Chromium opens each page from disk (file:),
and it must render its content, log no console error (no uncaught exception, no
console.error, no failed load), ask for nothing outside its own file, and give a
screenshot of the expected size that is not blank.

`check_page` holds what every page must do; each page adds what it alone must show.  The
pages: batch_report.html of a real batch run with the test doubles.  (The per-video
report.html is the second case of test_page_in_chromium: a `<name>_page` fixture
returning the page's path and its own check.)

Without Chromium these tests skip, except under CI (CI=true), where they fail
(tests/browser.py: require_chromium).  test_planted_breaks_are_caught shows that each
check can fail.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from syncnet.reports.batch import REPORT
from testkit.doubles import known_offset_clip
from tests import browser
from tests.browser import open_page, png_size, require_chromium
from tests.test_batch_report import shared_batch_run

WIDTH, HEIGHT = 1280, 900
# Evaluated in every page after its load.
FACTS = {
    "images": "JSON.stringify(Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]))",
    "scripts": "document.scripts.length",
    "tables": "document.querySelectorAll('table').length",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


def check_page(path: Path, tmp_path: Path, expressions: dict[str, str] | None = None) -> browser.PageResult:
    """Open `path` in headless Chromium and check what every report page must do; return
    what the browser saw for the page's own checks."""
    page = open_page(path, tmp_path / "browser", width=WIDTH, height=HEIGHT,
                     expressions={**FACTS, **(expressions or {})})
    assert not page.errors, "console errors:\n" + "\n".join(map(str, page.errors))
    assert not page.external_requests, f"the page asks for outside resources: {page.external_requests}"
    assert page.values["scripts"] == 0
    assert page.values["tables"] >= 1 and "<table" in page.dom
    images = json.loads(page.values["images"])
    assert all(done and w > 0 and h > 0 for done, w, h in images), f"pictures that did not load: {images}"
    assert page.screenshot.parent == tmp_path / "browser"
    assert png_size(page.screenshot) == (WIDTH, HEIGHT)
    pixels = cv2.imread(str(page.screenshot), cv2.IMREAD_COLOR)
    assert pixels is not None and pixels.shape == (HEIGHT, WIDTH, 3)
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    ink = float((pixels.min(axis=2) < 200).mean())  # share of pixels that are not white-ish
    assert colours >= 16 and ink >= 0.01, f"the screenshot looks blank: {colours} colours, {ink:.2%} ink"
    return page


# ---------------------------------------------------------------------------------------------
# The pages, each with its own check


@pytest.fixture(scope="module")
def batch_report_page(tmp_path_factory):
    summary, out = shared_batch_run(tmp_path_factory)
    names = [f["file"] for f in summary["files"]]

    def own_check(page: browser.PageResult) -> None:
        assert json.loads(page.values["rows"]) == names
        assert page.values["pictures"] == 2
        assert json.loads(page.values["links"]) == [
            f"pyavi/{Path(name).stem}/video_out.avi" for name in names
            if (out / "pyavi" / Path(name).stem / "video_out.avi").is_file()]
        assert "SyncNet batch report" in page.text and "Files passing common thresholds" in page.text
        for name in names:  # shown, not only present
            assert re.search(rf"^{re.escape(name)}\b", page.text, re.M), name

    expressions = {
        "rows": "JSON.stringify(Array.from(document.querySelectorAll('#files tbody tr.file'), r => r.dataset.file))",
        "pictures": "document.querySelectorAll('figure img').length",
        "links": "JSON.stringify(Array.from(document.querySelectorAll('#files a'), a => a.getAttribute('href')))",
    }
    return out / REPORT, expressions, own_check


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    """report.html of a real long run with the doubles: a filter, a failed chunk, faceless chunks."""
    from tests.test_report import CHUNKS, run_main

    clip = known_offset_clip(tmp_path_factory.mktemp("src") / "talk.mp4", 13.0, 2)
    out = tmp_path_factory.mktemp("long") / "out"
    run_main(["--input_video", str(clip), "--output_dir", str(out), *CHUNKS, "--max_abs_offset", "3"],
             fail="chunk_001", faces_until=225)
    names = [c["name"] for c in json.loads((out / "processing_summary.json").read_text())["chunks"]]

    def own_check(page: browser.PageResult) -> None:
        assert json.loads(page.values["rows"]) == names
        assert page.values["pictures"] == 1
        assert page.values["timeline_width"] > 0  # the embedded timeline decoded and laid out
        for name in names:
            assert name in page.text

    expressions = {
        "rows": "JSON.stringify(Array.from(document.querySelectorAll('tr[id^=chunk_]'), r => r.id))",
        "pictures": "document.querySelectorAll('img').length",
        "timeline_width": "document.querySelector('img.timeline').naturalWidth",
    }
    return out / "report.html", expressions, own_check


@pytest.mark.parametrize("name", ["batch_report", "report"])
def test_page_in_chromium(name, chromium, request, tmp_path):
    path, expressions, own_check = request.getfixturevalue(f"{name}_page")
    page = check_page(path, tmp_path, expressions)
    own_check(page)


# ---------------------------------------------------------------------------------------------
# The checks can fail


def _plant(html: str, what: str) -> str:
    if what == "script error":
        return html.replace("</body>", "<script>undefined_function()</script>\n</body>")
    if what == "console.error":
        return html.replace("</body>", "<script>console.error('planted')</script>\n</body>")
    if what == "missing picture":
        return html.replace("<h2>Files</h2>", '<img src="missing.png" alt="x"><h2>Files</h2>')
    if what == "external font":
        return html.replace("</head>", '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
                            "\n</head>")
    if what == "missing row":
        return re.sub(r'<tr class="file [^"]*" data-file="c_km2.mov">.*?</tr>\n', "", html, count=1, flags=re.S)
    if what == "blank":
        return re.sub(r"<body>.*</body>", "<body><table></table></body>", html, flags=re.S)
    raise ValueError(what)


PLANTS = {
    "script error": "ReferenceError: undefined_function is not defined",
    "console.error": "planted",
    "missing picture": "ERR_FILE_NOT_FOUND",
    "external font": "fonts.googleapis.com",
    "missing row": "c_km2.mov",
    "blank": "looks blank",
}


@pytest.mark.parametrize("what", list(PLANTS))
def test_planted_breaks_are_caught(what, chromium, batch_report_page, tmp_path):
    path, expressions, own_check = batch_report_page
    broken = tmp_path / f"planted-{what.replace(' ', '_').replace('.', '_')}.html"
    planted = _plant(path.read_text(encoding="utf-8"), what)
    assert planted != path.read_text(encoding="utf-8")
    broken.write_text(planted, encoding="utf-8")
    with pytest.raises(AssertionError, match=re.escape(PLANTS[what])):
        own_check(check_page(broken, tmp_path, expressions))


def test_console_errors_are_seen_with_their_level(chromium, tmp_path):
    """The helper itself: an uncaught error, console.error, a missing picture come back as
    errors with what they say; console.log and console.warn as what they are; a font from
    elsewhere as a request that leaves the page (whether or not the network answers)."""
    page_file = tmp_path / "p.html"
    font = "https://fonts.googleapis.com/css?family=Roboto"
    page_file.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>p</title>'
                         f'<link rel="stylesheet" href="{font}"></head><body>'
                         '<p>hello</p><img src="missing.png">'
                         "<script>console.log('a log'); console.warn('a warning'); console.error('an error');"
                         "undefined_function();</script></body></html>", encoding="utf-8")
    page = open_page(page_file, tmp_path / "out", width=320, height=200)
    seen = {(m.level, m.source, m.text.splitlines()[0]) for m in page.console}
    assert {("log", "console-api", "a log"), ("warning", "console-api", "a warning"),
            ("error", "console-api", "an error"),
            ("error", "exception", "ReferenceError: undefined_function is not defined")} <= seen
    assert any("ERR_FILE_NOT_FOUND" in m.text and m.url.endswith("/missing.png") for m in page.errors)
    assert {m.text for m in page.errors if m.source == "console-api"} == {"an error"}
    assert page.text.strip() == "hello" and png_size(page.screenshot) == (320, 200)
    assert page.requests[0] == page_file.as_uri() and page.external_requests == [font]


def test_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI: headless Chromium is not installed"):
        require_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium()
