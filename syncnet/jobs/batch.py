"""Every video of a folder, analysed by a pool of threads that share one detector and one SyncNet.

The networks are shared, not copied: each is wrapped so that one forward pass runs
at a time (torch already spreads one pass over all cores; two at once would only
fight for them), while the other threads decode, crop and encode with FFmpeg.

One writer per output folder (`syncnet.outlock`); a failing file is one line on the
console and in the summary (its traceback only with -v).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..allocator import release_freed_memory
from ..analysis import analyse_video
from ..errors import InputError, SyncNetError
from ..files import write_json_atomic
from ..layout import Layout
from ..options import FaceOptions, speed_parameters
from ..outlock import output_lock
from ..results import error_line
from .previous import face_parameters, previous_summary
from .records import FileRecord, Status, count_statuses, no_track_line, status_of, track_records, upgrade_file_v2

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
SUMMARY = "batch_processing_summary.json"
# Of the summary (schemas/batch_processing_summary.schema.json).  2: tracks carry
# `reliable` / `unreliable_reason` (the first form had no schema_version field).  3: files
# carry `diagnosis`, tracks `offset_ms` and `at_search_edge`; a schema-2 summary is upgraded.
SCHEMA_VERSION = 3


def upgrade_v2(old: dict) -> dict:
    """A schema-2 batch summary as schema 3; a file record that cannot be upgraded is left as it
    was (it fails to load and is redone)."""
    vshift = old["parameters"]["vshift"]
    files = []
    for d in old.get("files", []):
        try:
            files.append(upgrade_file_v2(d, vshift))
        except (KeyError, TypeError, ValueError, AttributeError):
            files.append(d)
    log.info("upgraded the schema-2 summary's files to schema %d", SCHEMA_VERSION)
    return {**old, "schema_version": SCHEMA_VERSION, "files": files}


class Serialised:
    """Proxy that runs every method call of the wrapped object under one lock."""

    def __init__(self, target, lock: threading.Lock):
        self._target, self._lock = target, lock

    def __getattr__(self, name):
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                return attr(*args, **kwargs)

        return call


def find_videos(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a directory")
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    return videos


def _parameters(opts: FaceOptions, vshift: int, precision: str) -> dict:
    p = face_parameters(opts)
    p["vshift"] = vshift
    p.update(speed_parameters(opts, precision))
    return p


# Another engine's side of a batch (syncnet.cluster): given the files to do, yields each one's
# FileRecord as it is finished (`analyse_file` run elsewhere, with that worker's networks).
FileExecutor = Callable[[list[Path]], Iterable[FileRecord]]


def process_folder(chunks_dir: str | Path, output_dir: str | Path, opts: FaceOptions, detector, model,
                   max_workers: int = 2, vshift: int = 15, force: bool = False, visualise: bool = False,
                   progress: bool = False, execute: FileExecutor | None = None, precision: str | None = None) -> dict:
    """Analyse every video of `chunks_dir` into OUTPUT_DIR/pyavi|pycrop|pywork/<stem>/; return the summary.

    Holds OUTPUT_DIR's lock throughout: a second run into it stops at once (OutputInUse).
    With `execute` the files are analysed by it (detector and model may then be None, and
    `precision` names the workers' networks'); this process records them as they come.
    """
    videos = find_videos(chunks_dir)
    out = Path(output_dir)
    with output_lock(out):
        job = _BatchJob(chunks_dir, videos, out, opts, detector, model, max_workers, vshift, force, visualise,
                        precision)
        return job.run(progress, execute)


def analyse_file(video: Path, out: Path, opts: FaceOptions, detector, model, vshift: int,
                 visualise: bool) -> FileRecord:
    """One file into OUTPUT_DIR/pyavi|pycrop|pywork/<stem>/ (swapped in when complete); its record.
    A failure is a record with its one-line error, never an exception."""
    t0 = time.perf_counter()
    rec = FileRecord(file=video.name, path=str(video))
    try:
        analysis = analyse_video(video, Layout(out, video.stem), opts, detector=detector, model=model,
                                 vshift=vshift, visualise=visualise, release=release_freed_memory)
        rec.tracks = track_records(video.name, analysis, vshift)
        rec.status = status_of(rec.tracks)
        if not rec.tracks:
            rec.diagnosis = analysis.diagnosis
            log.warning("%s", no_track_line(video.name, rec.diagnosis))
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
        # One line (logged when the file is collected); the traceback only with -v.
        rec.error = error_line(exc, with_type=not isinstance(exc, SyncNetError))
        log.debug("%s failed", video.name, exc_info=True)
    rec.seconds = round(time.perf_counter() - t0, 3)
    return rec


class _BatchJob:
    """The folder's videos through a thread pool; the summary rewritten after each."""

    def __init__(self, chunks_dir, videos: list[Path], out: Path, opts: FaceOptions, detector, model,
                 max_workers: int, vshift: int, force: bool, visualise: bool, precision: str | None = None):
        self.t_start = time.perf_counter()
        self.videos, self.out, self.opts, self.vshift, self.visualise = videos, out, opts, vshift, visualise
        self.max_workers = max_workers
        self.params = _parameters(opts, vshift, precision or getattr(model, "precision", "fp32"))
        self.previous = self._previous(force)
        self.records: dict[str, FileRecord] = dict(self.previous)
        self.lock = threading.Lock()
        self.detector, self.model = Serialised(detector, threading.Lock()), Serialised(model, threading.Lock())
        self.head = {"schema_version": SCHEMA_VERSION, "software": {"name": "syncnet-batch", "version": __version__},
                     "chunks_dir": str(chunks_dir), "parameters": self.params, "workers": max_workers}

    def _previous(self, force: bool) -> dict[str, FileRecord]:
        """The earlier run's finished files whose results are still there, by file name."""
        old = previous_summary(self.out / SUMMARY, self.params, SCHEMA_VERSION, force, "file",
                               upgrades={2: upgrade_v2})
        records = {}
        for f in (old or {}).get("files", []):
            try:
                r = FileRecord.from_dict(f)
            except (KeyError, TypeError, ValueError):
                continue  # not a record of this schema: the file is redone
            if r.status.finished and (self.out / "pywork" / Path(r.file).stem / "offsets.txt").exists():
                records[r.file] = r
        return records

    def summary(self) -> dict:
        files = [self.records[v.name] for v in self.videos if v.name in self.records]
        totals = {"files": len(self.videos), **count_statuses(files, (Status.SUCCESS, Status.NO_FACES, Status.FAILED)),
                  "skipped": len(self.previous)}
        return {**self.head, "files": [f.to_dict() for f in files], "totals": totals,
                "wall_seconds": round(time.perf_counter() - self.t_start, 3)}

    def save(self) -> dict:
        with self.lock:
            summary = self.summary()
            write_json_atomic(self.out / SUMMARY, summary)
            return summary

    def one(self, video: Path) -> FileRecord:
        return analyse_file(video, self.out, self.opts, self.detector, self.model, self.vshift, self.visualise)

    def record(self, rec: FileRecord) -> None:
        """A finished file into the summary, which is written (a killed run loses nothing)."""
        with self.lock:
            self.records[rec.file] = rec
        if rec.status == Status.FAILED:
            log.error("%s failed: %s", rec.file, rec.error)
        self.save()

    def run(self, progress: bool, execute: FileExecutor | None = None) -> dict:
        todo = [v for v in self.videos if v.name not in self.previous]
        self.save()
        if execute is not None:
            for rec in execute(todo):
                self.record(rec)
            return self.save()
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            futures = {pool.submit(self.one, v): v for v in todo}
            for fut in tqdm(as_completed(futures), total=len(futures), desc="files", unit="file",
                            disable=not progress):
                self.record(fut.result())
                release_freed_memory()  # see syncnet/allocator.py
        return self.save()
