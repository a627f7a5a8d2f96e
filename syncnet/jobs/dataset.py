"""Many long videos in one output folder: which inputs, where each one's outputs go, and
dataset_summary.json over all of them.

Each input is one long-video job with exactly the single-input layout, in
OUTPUT_DIR/<input stem>/; this module adds only what spans inputs:

- `expand_inputs` turns the paths given (files, folders) into the list of inputs, and
  refuses two inputs whose outputs would share a folder (the same stem);
- `input_output_dir` says where an input's outputs go;
- `DatasetSummary` keeps one entry per input, built from its processing_summary.json
  (or from the one line saying why it failed), and writes dataset_summary.json
  atomically; `DatasetSummary.rebuild` reads the inputs' summaries back on a rerun;
- `finished` says whether an input's earlier summary leaves nothing to do (a rerun skips it);
- `run_inputs` runs the inputs one after another on one machine through `LongVideoJob`.

The entries and totals are plain functions of the per-input summary dicts
(`input_entry`, `dataset_dict`), so another runner (a cluster's driver) builds the same
file from the same summaries.
"""
from __future__ import annotations

import errno
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .. import __version__, media
from ..allocator import release_freed_memory
from ..errors import InputError, SyncNetError
from ..files import write_json_atomic
from ..layout import is_plain_name
from ..reports.tables import hms
from ..results import error_line
from .batch import find_videos
from .longvideo import LongVideoJob, LongVideoOptions, check_source
from .paths import SUMMARY, Paths
from .summary import SCHEMA_VERSION as LONG_SCHEMA_VERSION
from .summary import LongSummary

log = logging.getLogger(__name__)

DATASET_SUMMARY = "dataset_summary.json"
# Of dataset_summary.json (schemas/dataset_summary.schema.json).
SCHEMA_VERSION = 1
# An input's status: not started; started but not finished (interrupted, or running);
# every chunk has a result; finished with some chunks failed (a rerun retries them);
# the input could not be processed at all.
STATUSES = ("pending", "incomplete", "done", "partial", "failed")
CHUNK_COUNTS = ("chunks", "success", "no_faces", "failed", "pending", "accepted", "rejected")
# Names in OUTPUT_DIR that are not an input's folder.
RESERVED = {DATASET_SUMMARY, "dataset_report.html", ".syncnet.lock"}


# ---------------------------------------------------------------- inputs
def several_inputs(paths: Sequence[str | Path]) -> bool:
    """Whether `paths` make a dataset (outputs per input, a dataset summary): more than one
    path, or a folder (even of one video: the layout must not depend on what a folder holds today)."""
    return len(paths) > 1 or any(Path(p).is_dir() for p in paths)


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """The input files of `paths`, in the order given, a folder as its video files (sorted, as
    batch_process.py finds them).  InputError for a path that does not exist, a folder without
    videos, or two inputs with one stem (their outputs would share a folder)."""
    if not paths:
        raise InputError("no input given")
    inputs: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inputs += find_videos(p)
        elif p.exists():
            inputs.append(p)
        else:
            raise InputError(f"no such file or directory: {p}")
    if several_inputs(paths):
        seen: dict[str, Path] = {}
        for p in inputs:
            if not is_plain_name(p.stem) or p.stem in RESERVED:
                raise InputError(f"{p}: its name {p.stem!r} cannot name an output folder; rename it")
            if p.stem in seen:
                raise InputError(f"two inputs would write to the same output folder {p.stem}/: "
                                 f"{seen[p.stem]} and {p}; rename one or run them separately")
            seen[p.stem] = p
    return inputs


def input_output_dir(output_dir: str | Path, source: str | Path, several: bool) -> Path:
    """Where one input's outputs go: OUTPUT_DIR itself for a single input (today's layout),
    OUTPUT_DIR/<input stem>/ among several."""
    return Path(output_dir) / Path(source).stem if several else Path(output_dir)


# ---------------------------------------------------------------- the summary, as pure functions
def _best_confidences(summary: dict) -> list[float]:
    """The chunks' best-track confidences that count (reliable best tracks), as the job's report counts them."""
    bests = [c.get("best_track") for c in summary.get("chunks", [])]
    return [b["confidence"] for b in bests if b and b.get("reliable", True)]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 6) if values else None


def input_entry(source: str | Path, out_dir: str | Path, result: dict | str | BaseException | None) -> dict:
    """One input's entry: `result` is its processing_summary.json as a dict, the reason it
    failed (a line or the exception), or None when it has not been started."""
    entry = {"name": Path(source).stem, "path": str(source), "output_dir": str(out_dir), "status": "pending",
             "summary": None, "duration": None, "detector_frames": None, "totals": None,
             "mean_best_confidence": None, "confident_chunks": 0, "failures": []}
    if result is None:
        return entry
    if not isinstance(result, dict):
        line = error_line(result, with_type=isinstance(result, BaseException) and
                          not isinstance(result, SyncNetError)) if not isinstance(result, str) else \
            " | ".join(part.strip() for part in result.splitlines() if part.strip()) or "failed"
        return {**entry, "status": "failed", "failures": [{"chunk": None, "error": line}]}
    totals = {k: int(result.get("totals", {}).get(k, 0)) for k in CHUNK_COUNTS}
    confs = _best_confidences(result)
    if not result.get("complete"):
        status = "incomplete"
    else:
        status = "partial" if totals["failed"] or totals["pending"] else "done"
    return {**entry, "status": status, "summary": str(Path(out_dir) / SUMMARY),
            "duration": result.get("input", {}).get("duration"), "detector_frames": result.get("detector_frames"),
            "totals": totals, "mean_best_confidence": _mean(confs), "confident_chunks": len(confs),
            "failures": [{"chunk": c["name"], "error": c.get("error") or "failed"}
                         for c in result.get("chunks", []) if c.get("status") == "failed"]}


def dataset_totals(entries: list[dict]) -> dict:
    """Inputs by status, and the per-input chunk counts, durations and confidences summed."""
    with_totals = [e for e in entries if e["totals"] is not None]
    confident = sum(e["confident_chunks"] for e in entries)
    conf_sum = sum(e["mean_best_confidence"] * e["confident_chunks"] for e in entries if e["confident_chunks"])
    return {"inputs": len(entries), **{s: sum(e["status"] == s for e in entries) for s in STATUSES},
            "chunks": {k: sum(e["totals"][k] for e in with_totals) for k in CHUNK_COUNTS},
            "duration": round(sum(e["duration"] or 0.0 for e in entries), 6),
            "detector_frames": sum(e["detector_frames"] or 0 for e in entries),
            "mean_best_confidence": round(conf_sum / confident, 6) if confident else None,
            "confident_chunks": confident}


def dataset_dict(output_dir: str | Path, entries: list[dict], parameters: dict | None = None,
                 filter_parameters: dict | None = None) -> dict:
    """dataset_summary.json from the inputs' entries (in the order the inputs were given)."""
    return {"schema_version": SCHEMA_VERSION,
            "software": {"name": "syncnet-dataset", "version": __version__},
            "output_dir": str(output_dir),
            "parameters": parameters, "filter_parameters": filter_parameters,
            "complete": all(e["status"] in ("done", "partial", "failed") for e in entries),
            "inputs": entries,
            "totals": dataset_totals(entries)}


def read_summary(out_dir: str | Path) -> dict | None:
    """An input's processing_summary.json, or None when it has none (or an unreadable one)."""
    try:
        summary = json.loads((Path(out_dir) / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


class DatasetSummary:
    """dataset_summary.json of a run over several inputs: an entry per input, rewritten whole."""

    def __init__(self, output_dir: str | Path, inputs: Sequence[str | Path], parameters: dict | None = None,
                 filter_parameters: dict | None = None):
        self.output_dir = Path(output_dir)
        self.inputs = [Path(p) for p in inputs]
        self.parameters, self.filter_parameters = parameters, filter_parameters
        self.entries = {str(p): input_entry(p, self.out_dir(p), None) for p in self.inputs}

    @property
    def path(self) -> Path:
        return self.output_dir / DATASET_SUMMARY

    def out_dir(self, source: str | Path) -> Path:
        return input_output_dir(self.output_dir, source, True)

    def record(self, source: str | Path, result: dict | str | BaseException | None) -> dict:
        """Record an input's processing summary (a dict) or its failure; its entry."""
        if str(source) not in self.entries:
            raise KeyError(f"{source} is not an input of this dataset")
        entry = self.entries[str(source)] = input_entry(source, self.out_dir(source), result)
        return entry

    def refresh(self, source: str | Path) -> dict:
        """Record an input from its processing_summary.json on disk (pending when it has none)."""
        return self.record(source, read_summary(self.out_dir(source)))

    @classmethod
    def rebuild(cls, output_dir: str | Path, inputs: Sequence[str | Path], parameters: dict | None = None,
                filter_parameters: dict | None = None) -> DatasetSummary:
        """The summary of a rerun before it starts: every input as its processing_summary.json says."""
        ds = cls(output_dir, inputs, parameters, filter_parameters)
        for p in ds.inputs:
            ds.refresh(p)
        return ds

    def to_dict(self) -> dict:
        return dataset_dict(self.output_dir, [self.entries[str(p)] for p in self.inputs], self.parameters,
                            self.filter_parameters)

    def write(self, path: str | Path | None = None) -> dict:
        """Write the summary atomically (a killed run leaves the previous one whole); return it."""
        summary = self.to_dict()
        write_json_atomic(path or self.path, summary)
        return summary


# ---------------------------------------------------------------- one machine
def finished(summary: dict | None, opts: LongVideoOptions, source: Path, duration: float) -> bool:
    """Whether an input's earlier summary leaves nothing for a rerun to do: complete, no chunk
    failed, the same input, parameters and filter, and every chunk's files still there (those
    a resumed job would require: chunk, audio, offsets; video_out with the visualisation)."""
    if not summary or not summary.get("complete") or summary.get("schema_version") != LONG_SCHEMA_VERSION:
        return False
    if summary.get("parameters") != opts.result_parameters() or \
            summary.get("filter_parameters") != opts.filter_parameters():
        return False
    inp = summary.get("input") or {}
    if Path(inp.get("path", "")).name != source.name or inp.get("duration") != duration:
        return False
    for c in summary.get("chunks", []):
        if c.get("status") not in ("success", "no_faces"):
            return False
        files = c.get("files") or {}
        needed = [files.get("chunk"), files.get("audio"), files.get("offsets")]
        if opts.visualise and c["status"] == "success":
            needed.append(files.get("video_out"))
        if not all(f and Path(f).exists() for f in needed):
            return False
    return True


@dataclass
class Checked:
    """An input after the checks made before any model loads: its probe, or why it cannot be run."""

    source: Path
    info: media.MediaInfo | None = None
    error: str | None = None


def check_input(source: Path, opts: LongVideoOptions, out_dir: Path, force: bool) -> Checked:
    """The single-input command's checks of one input, as a result instead of an exit.  An
    earlier run of it with other parameters is still refused (ConflictingOutput) unless forced."""
    try:
        info = check_source(source, opts)
    except SyncNetError as exc:
        return Checked(source, error=error_line(exc))
    if not force:  # as the job would refuse it, but before any input has run
        LongSummary(Paths(out_dir), opts, source, info, []).reuse_previous(False)
    return Checked(source, info)


def _stops_all(exc: BaseException) -> bool:
    """A failure every later input would meet too (the disk is full): the run stops."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota exceeded" in text


def run_inputs(checked: Iterable[Checked], dataset: DatasetSummary, opts: LongVideoOptions, detector, model,
               force: bool = False, progress: bool = False,
               after: Callable[[Path, dict, Path], None] | None = None,
               run: Callable[[Path, Path], dict] | None = None) -> dict:
    """Each input through `LongVideoJob`, one after another, into its own folder; the dataset
    summary written before the first and after every input (and when interrupted).

    Inputs whose earlier run left nothing to do are skipped (unless forced); an input that
    fails is recorded and the others go on.  `after(source, summary, out_dir)` runs after
    each input that ran (the command line writes its report there).  `run(source, out_dir)`,
    when given, runs an input instead of `LongVideoJob` here (syncnet.cluster).  Returns the summary.
    """
    checked = list(checked)
    for c in checked:
        if c.error is not None:
            dataset.record(c.source, c.error)
    dataset.write()
    n = len(checked)
    bar = tqdm(total=n, desc="inputs", unit="input", disable=not progress)
    try:
        for i, c in enumerate(checked, 1):
            name = c.source.name
            bar.set_description_str(f"input {i}/{n}: {name}")
            if c.error is not None:
                log.error("input %d/%d: %s: %s", i, n, name, c.error)
                bar.update()
                continue
            out = dataset.out_dir(c.source)
            if not force and finished(read_summary(out), opts, c.source, c.info.duration):
                tqdm.write(f"input {i}/{n}: {name}: done before, skipped", file=sys.stderr)
                dataset.refresh(c.source)
                bar.update()
                continue
            tqdm.write(f"input {i}/{n}: {name}", file=sys.stderr)  # which input the lines below are about
            try:
                summary = run(c.source, out) if run is not None else \
                    LongVideoJob(c.source, out, opts, detector, model, force=force, progress=progress).run()
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
                if _stops_all(exc):
                    raise
                line = error_line(exc, with_type=not isinstance(exc, SyncNetError))
                log.error("input %d/%d: %s failed: %s", i, n, name, line)
                log.debug("%s failed", name, exc_info=True)
                dataset.record(c.source, line)
            else:
                dataset.record(c.source, summary)
                if after is not None:
                    after(c.source, summary, out)
            dataset.write()
            bar.update()
            release_freed_memory()  # see syncnet/allocator.py
    except BaseException:
        # Interrupted or stopped: the input that was running as its own summary says.
        for c in checked:
            if c.error is None and dataset.entries[str(c.source)]["status"] == "pending":
                dataset.refresh(c.source)
        try:
            dataset.write()
        except OSError:
            pass
        raise
    finally:
        bar.close()
    return dataset.write()


# ---------------------------------------------------------------- the end-of-run report
def report(summary: dict) -> str:
    """The console report after several inputs: a row per input, then the totals."""
    header = ["#", "input", "status", "chunks", "faces", "none", "failed", "accepted", "rejected", "confidence"]
    rows = [header]
    for i, e in enumerate(summary["inputs"], 1):
        t = e["totals"] or {}
        conf = e["mean_best_confidence"]
        rows.append([str(i), e["name"], e["status"], *(str(t.get(k, "-")) for k in
                     ("chunks", "success", "no_faces", "failed", "accepted", "rejected")),
                     f"{conf:.3f}" if conf is not None else "-"])
    widths = [max(len(r[j]) for r in rows) for j in range(len(header))]
    lines = [f"Inputs ({len(summary['inputs'])}):"]
    for r in rows:
        lines.append(("  " + "  ".join(c.ljust(widths[j]) if j in (1, 2) else c.rjust(widths[j])
                                       for j, c in enumerate(r))).rstrip())
    t = summary["totals"]
    ch = t["chunks"]
    by_status = ", ".join(f"{t[s]} {s}" for s in STATUSES if t[s])
    lines.append(f"Inputs:     {t['inputs']} ({by_status}), {hms(t['duration'])} of video")
    lines.append(f"Chunks:     {ch['chunks']} ({ch['success']} with faces, {ch['no_faces']} without, "
                 f"{ch['failed']} failed)")
    if t["mean_best_confidence"] is not None:
        lines.append(f"Confidence: mean best-track confidence {t['mean_best_confidence']:.3f} "
                     f"over {t['confident_chunks']} chunks")
    if summary.get("filter_parameters") and any(v is not None for v in summary["filter_parameters"].values()):
        lines.append(f"Filter:     {ch['accepted']} accepted, {ch['rejected']} rejected")
    failures = [(e["name"], f) for e in summary["inputs"] for f in e["failures"]]
    for name, f in failures[:5]:
        lines.append(f"  failed {name}{'/' + f['chunk'] if f['chunk'] else ''}: {f['error']}")
    if len(failures) > 5:
        lines.append(f"  ... {len(failures) - 5} more failures in the dataset summary")
    lines.append(f"Outputs:    {summary['output_dir']}/<input>/ (each as one input's run, report.html included)")
    lines.append(f"Summary:    {Path(summary['output_dir']) / DATASET_SUMMARY}")
    return "\n".join(lines)
