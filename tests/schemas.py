"""The JSON Schemas of the summaries (schemas/ at the top of the repository), for tests.

`validate_summary(x)` checks a summary (a path or an already loaded dict) against
its schema and raises `SummaryError` naming the file, the place in it and what is
wrong.  `check_tree(root)` does that for every summary below a folder; conftest.py
runs it over pytest's temporary folder at the end of each session, so every summary
any test writes is checked, not only those a test thinks of checking.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_OF = {  # summary file name -> its schema
    "processing_summary.json": "processing_summary.schema.json",
    "batch_processing_summary.json": "batch_processing_summary.schema.json",
    "dataset_summary.json": "dataset_summary.schema.json",
}


class SummaryError(Exception):
    """A summary that does not match its schema (not an AssertionError, so that a strict xfail
    of an assertion in a test cannot swallow it when it comes from a fixture)."""


@cache
def validator(summary_name: str):
    """The Draft 2020-12 validator of one summary file name (a key of SCHEMA_OF)."""
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMA_DIR / SCHEMA_OF[summary_name]).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _kind(summary: dict) -> str:
    if "inputs" in summary:
        return "dataset_summary.json"
    return "batch_processing_summary.json" if "files" in summary else "processing_summary.json"


def summary_errors(summary: dict, kind: str | None = None) -> list[str]:
    """Every way `summary` breaks its schema, one line each ('at /chunks/0/status: ...')."""
    errors = sorted(validator(kind or _kind(summary)).iter_errors(summary), key=lambda e: list(e.absolute_path))
    return [f"at /{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def validate_summary(summary: str | Path | dict, kind: str | None = None) -> dict:
    """Check a summary against its schema (by file name, else by content); return it as a dict."""
    where = "summary"
    if not isinstance(summary, dict):
        path = Path(summary)
        where = str(path)
        kind = kind or (path.name if path.name in SCHEMA_OF else None)
        summary = json.loads(path.read_text())
    errors = summary_errors(summary, kind)
    if errors:
        raise SummaryError(f"{where} does not match schemas/{SCHEMA_OF[kind or _kind(summary)]}:\n  "
                           + "\n  ".join(errors[:10]))
    return summary


def check_tree(root: str | Path) -> tuple[dict[str, int], list[str]]:
    """Validate every summary below `root`: (count per file name, one problem per bad file, naming it)."""
    counts = dict.fromkeys(SCHEMA_OF, 0)
    problems = []
    for name in SCHEMA_OF:
        for path in sorted(Path(root).rglob(name)):
            counts[name] += 1
            try:
                validate_summary(path)
            except SummaryError as exc:  # its message starts with the path
                problems.append(str(exc))
            except ValueError as exc:
                problems.append(f"{path} is not JSON: {exc}")
    return counts, problems
