"""Every video of a folder, analysed by a pool of threads that share one detector and one SyncNet.

The networks are shared, not copied: each is wrapped so that one forward pass runs
at a time (torch already spreads one pass over all cores; two at once would only
fight for them), while the other threads decode, crop and encode with FFmpeg.

One writer per output folder (`syncnet.outlock`); a failing file is one line on the
console and in the summary (its traceback only with -v).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .. import __version__
from ..allocator import release_freed_memory
from ..analysis import analyse_video
from ..errors import InputError, SyncNetError
from ..files import write_json_atomic
from ..layout import Layout
from ..options import FaceOptions, speed_parameters
from ..outlock import output_lock
from ..results import error_line, min_windows, track_record

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
SUMMARY = "batch_processing_summary.json"
# Of the summary (schemas/batch_processing_summary.schema.json).  2: tracks carry
# `reliable` / `unreliable_reason` (the first form had no schema_version field).
SCHEMA_VERSION = 2


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
        raise InputError(f"--chunks_dir {folder} is not a directory")
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    return videos


def _parameters(opts: FaceOptions, vshift: int, precision: str) -> dict:
    p = {"facedet_scale": opts.facedet_scale, "crop_scale": opts.crop_scale, "min_track": opts.min_track,
         "frame_rate": opts.frame_rate, "num_failed_det": opts.num_failed_det,
         "min_face_size": opts.min_face_size, "conf_th": opts.conf_th, "vshift": vshift}
    p.update(speed_parameters(opts, precision))
    return p


def process_folder(chunks_dir: str | Path, output_dir: str | Path, opts: FaceOptions, detector, model,
                   max_workers: int = 2, vshift: int = 15, force: bool = False, visualise: bool = False,
                   progress: bool = False) -> dict:
    """Analyse every video of `chunks_dir` into OUTPUT_DIR/pyavi|pycrop|pywork/<stem>/; return the summary.

    Holds OUTPUT_DIR's lock throughout: a second run into it stops at once (OutputInUse).
    """
    videos = find_videos(chunks_dir)
    out = Path(output_dir)
    with output_lock(out):
        return _process_folder(chunks_dir, videos, out, opts, detector, model, max_workers, vshift, force,
                               visualise, progress)


def _process_folder(chunks_dir, videos: list[Path], out: Path, opts: FaceOptions, detector, model,
                    max_workers: int, vshift: int, force: bool, visualise: bool, progress: bool) -> dict:
    from tqdm import tqdm

    t_start = time.perf_counter()
    summary_path = out / SUMMARY
    params = _parameters(opts, vshift, getattr(model, "precision", "fp32"))
    previous: dict = {}
    if summary_path.exists() and not force:
        try:
            old = json.loads(summary_path.read_text())
        except ValueError:
            old = {}
        if old.get("parameters") == params and old.get("schema_version") != SCHEMA_VERSION:
            log.warning("%s was written by another version of this program; redoing every file", summary_path)
        elif old.get("parameters") == params:
            previous = {f["file"]: f for f in old.get("files", [])
                        if f.get("status") in ("success", "no_faces")
                        and (out / "pywork" / Path(f["file"]).stem / "offsets.txt").exists()}
        elif old.get("parameters"):
            raise InputError(f"{out} holds results made with other parameters; rerun with --force to redo them")
    lock = threading.Lock()
    shared_detector, shared_model = Serialised(detector, threading.Lock()), Serialised(model, threading.Lock())
    records: dict[str, dict] = {name: rec for name, rec in previous.items()}
    summary = {"schema_version": SCHEMA_VERSION, "software": {"name": "syncnet-batch", "version": __version__},
               "chunks_dir": str(chunks_dir),
               "parameters": params, "workers": max_workers, "files": [], "totals": {}, "wall_seconds": None}

    def save() -> None:
        with lock:
            summary["files"] = [records[v.name] for v in videos if v.name in records]
            status = [r["status"] for r in summary["files"]]
            summary["totals"] = {"files": len(videos), "success": status.count("success"),
                                 "no_faces": status.count("no_faces"), "failed": status.count("failed"),
                                 "skipped": len(previous)}
            summary["wall_seconds"] = round(time.perf_counter() - t_start, 3)
            write_json_atomic(summary_path, summary)

    def one(video: Path) -> dict:
        t0 = time.perf_counter()
        rec = {"file": video.name, "path": str(video), "status": "failed", "error": None, "tracks": []}
        try:
            analysis = analyse_video(video, Layout(out, video.stem), opts, detector=shared_detector,
                                     model=shared_model, vshift=vshift, visualise=visualise)
            tracks = []
            for i, t in enumerate(analysis.tracks):
                r = track_record(i, t.sync)
                r.pop("framewise_conf")
                tracks.append(r)
            rec.update(status="success" if tracks else "no_faces", tracks=tracks)
            short = sum(not r["reliable"] for r in tracks)
            if short:  # once per file, not once per track
                log.warning("%s: %d of %d face tracks too short to measure (fewer than %d SyncNet windows); "
                            "marked unreliable", video.name, short, len(tracks), min_windows(vshift))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            # One line (logged when the file is collected); the traceback only with -v.
            rec["error"] = error_line(exc, with_type=not isinstance(exc, SyncNetError))
            log.debug("%s failed", video.name, exc_info=True)
        rec["seconds"] = round(time.perf_counter() - t0, 3)
        return rec

    todo = [v for v in videos if v.name not in previous]
    save()
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = {pool.submit(one, v): v for v in todo}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="files", unit="file", disable=not progress):
            rec = fut.result()
            with lock:
                records[rec["file"]] = rec
            if rec["status"] == "failed":
                log.error("%s failed: %s", rec["file"], rec["error"])
            save()
            release_freed_memory()  # see syncnet/allocator.py
    save()
    return summary
