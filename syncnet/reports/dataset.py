"""OUTPUT_DIR/dataset_report.html: a run over several inputs (dataset_summary.json) as one page,
a row per input linking that input's own report.html.

Made from the dataset summary alone plus which inputs' report.html exist (links only to files
that are there, relative to OUTPUT_DIR), so rebuilding it gives the same bytes; the styles are
the batch report's (templates/_style.html.j2), and the page works offline.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import jinja2

from ..files import write_bytes_atomic
from . import plain
from .tables import hms

REPORT = "dataset_report.html"
TEMPLATE = "dataset_report.html.j2"
STATUSES = ("done", "partial", "failed", "incomplete", "pending")
INPUT_REPORT = "report.html"


def write_dataset_report(summary: dict, out_dir: str | Path) -> Path:
    """Write OUTPUT_DIR/dataset_report.html (atomically) from a dataset summary; its path."""
    out = Path(out_dir)
    html = render_dataset_report(plain(summary), out)
    return write_bytes_atomic(out / REPORT, html.encode("utf-8"))


def _row(entry: dict, out: Path) -> dict:
    failures = entry.get("failures") or []
    note = "; ".join(f"{f['chunk']}: {f['error']}" if f.get("chunk") else f["error"] for f in failures[:3])
    if len(failures) > 3:
        note += f"; {len(failures) - 3} more"
    name = entry["name"]
    link = f"{quote(name)}/{INPUT_REPORT}" if (out / name / INPUT_REPORT).is_file() else None
    return {"name": name, "path": entry.get("path", ""), "status": entry["status"], "duration": entry.get("duration"),
            "totals": entry.get("totals"), "confidence": entry.get("mean_best_confidence"), "failures": failures,
            "note": note, "link": link}


def render_dataset_report(summary: dict, out_dir: str | Path) -> str:
    """The page's HTML; `out_dir`: the folder holding the inputs' folders (for the links)."""
    out = Path(out_dir)
    env = jinja2.Environment(loader=jinja2.PackageLoader("syncnet.reports", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["hms"] = hms
    filters = summary.get("filter_parameters") or {}
    return env.get_template(TEMPLATE).render(
        output_dir=summary.get("output_dir", str(out)),
        software=summary.get("software") or {},
        complete=bool(summary.get("complete")),
        totals=summary["totals"],
        statuses=STATUSES,
        filtering=any(v is not None for v in filters.values()),
        rows=[_row(e, out) for e in summary.get("inputs") or []],
        parameters=sorted({**(summary.get("parameters") or {}), **filters}.items()),
    )
