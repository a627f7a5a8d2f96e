"""report.html: one self-contained page per long-video run.

Jinja2 renders templates/report.html.j2 (shipped as package data) with autoescaping on;
the timeline is embedded as a data: URI, the styles are inline, there is no script, no
web font and no link off the machine: the page works offline, mailed as one file.
Links to a chunk's own files are relative to OUTPUT_DIR and made only for files that
exist.  Nothing in the page depends on when or where it was made, so rebuilding it from
the same summary gives the same bytes.
"""
from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..drift import describe
from .tables import (
    chunk_rows,
    filter_on,
    headline,
    hms,
    ms_per_frame,
    vshift,
)

TEMPLATE = "report.html.j2"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("syncnet.reports", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["hms"] = hms
    env.filters["signed"] = lambda n: "" if n is None else f"{n:+d}"
    return env


def report_html(summary: dict, out_dir: Path, timeline_png: bytes) -> str:
    """The page for `summary`, whose output folder is `out_dir` (for the links)."""
    rows = chunk_rows(summary, Path(out_dir))
    timings = summary.get("timings") or {}
    inp = summary["input"]
    frame_ms = ms_per_frame(summary)
    return _environment().get_template(TEMPLATE).render(
        summary=summary,
        input=inp,
        name=inp["path"].replace("\\", "/").rsplit("/", 1)[-1],
        rows=rows,
        filtering=filter_on(summary),
        headline=headline(summary, rows),
        parameters=sorted(summary.get("parameters", {}).items()),
        filter_parameters=summary.get("filter_parameters") or {},
        totals=summary.get("totals", {}),
        total_seconds=timings.get("total"),
        vshift=vshift(summary),
        drift=describe(summary["drift"]) if summary.get("drift") else None,
        frame_ms=frame_ms,
        timeline_uri="data:image/png;base64," + base64.b64encode(timeline_png).decode("ascii"),
    )
