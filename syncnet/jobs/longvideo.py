"""A long source, chunk by chunk, with one detection pass over the source.

Plan chunks -> one streamed decode of the source at 25 fps feeds S3FD and the shot
detector -> as soon as detection has passed the end of a chunk, that chunk is cut,
analysed as if on its own (its tracks from the shared detections, its crops from its
own file, SyncNet on them) and recorded in the summary.  Overlapping chunks share
the detections of their overlap, so S3FD runs once per source frame.

Resume: the summary is rewritten atomically after every chunk, and the detection
state (faces still needed, shot cuts, how far it got) is checkpointed with it; a
rerun with the same parameters skips finished chunks and picks detection up where
it stopped.  A rerun with other parameters is refused unless --force.  Detections of
chunks that failed stay in the checkpoint until the chunk succeeds, so retrying them
needs no detection; the checkpoint is removed once every chunk has a result.

One writer per output folder (`syncnet.outlock`): a second run into it stops at once.
"""
from __future__ import annotations

import errno
import logging
import os
import pickle
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import __version__, media
from ..allocator import release_freed_memory
from ..analysis import analyse_video
from ..chunking import (
    Chunk,
    audio_levels,
    check_silence_options,
    plan_silence_chunks,
    plan_time_chunks,
)
from ..detection import DetectionPass, Detections, FaceDetector
from ..errors import InputError, SyncNetError
from ..files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from ..layout import Layout
from ..options import FaceOptions, speed_parameters
from ..outlock import output_lock
from ..results import best_track, error_line, min_windows, track_record
from ..scenes import SceneDetector
from ..timing import StageTimes
from ..wav import read_wav

log = logging.getLogger(__name__)

SUMMARY = "processing_summary.json"
# 2: tracks carry `reliable` / `unreliable_reason`; `detector_frames_this_run` at the top level.
SCHEMA_VERSION = 2
# Detection state is checkpointed at least this often (frames), besides after every chunk.
CHECKPOINT_EVERY = 1500
# Failed chunks whose detections are kept for their retry (a 30 s chunk's are ~100 KB):
# a run where every chunk fails keeps memory and checkpoint bounded; beyond it a retry detects.
MAX_KEPT_WINDOWS = 64


@dataclass
class LongVideoOptions:
    """process_long_video.py's settings; `result_parameters()` are the ones results depend on."""

    chunking: str = "time"
    chunk_duration: float = 30.0
    overlap: float = 5.0
    threshold: float = -30.0
    min_silence: float = 1.0
    min_chunk: float = 5.0
    max_chunk: float | None = 60.0  # silence chunking: longer pieces are split at their quietest points
    chunk_crf: int = 18
    chunk_preset: str = "veryfast"  # x264 preset of the chunk files
    faces: FaceOptions = field(default_factory=lambda: FaceOptions(min_track=5, min_face_size=10))
    vshift: int = 15
    sync_batch: int = 20
    min_confidence: float | None = None
    max_abs_offset: int | None = None
    visualise: bool = True
    precision: str = "fp32"  # what the models were loaded with (recorded; see syncnet.precision)
    chunk_workers: int = 0  # chunks analysed at once beside detection; 0: 1 on the CPU, 3 on a GPU

    def workers_for(self, detector) -> int:
        """Chunk workers for this run.  On a GPU the CPU work of a chunk (cut, decode,
        crop, encode) overlaps detection; on the CPU both compete for the same cores,
        so chunks are analysed in line, between detection batches."""
        if self.chunk_workers > 0:
            return self.chunk_workers
        device = getattr(detector, "device", None)
        return 3 if getattr(device, "type", "cpu") == "cuda" else 1

    def result_parameters(self) -> dict:
        p = {"chunking": self.chunking, "vshift": self.vshift, "chunk_crf": self.chunk_crf}
        p.update(speed_parameters(self.faces, self.precision, self.chunk_preset))  # a change is refused too
        if self.chunking == "time":
            p.update(chunk_duration=self.chunk_duration, overlap=self.overlap)
        else:
            p.update(threshold=self.threshold, min_silence=self.min_silence, min_chunk=self.min_chunk,
                     max_chunk=self.max_chunk)
        f = self.faces
        p.update(facedet_scale=f.facedet_scale, crop_scale=f.crop_scale, min_track=f.min_track,
                 frame_rate=f.frame_rate, num_failed_det=f.num_failed_det, min_face_size=f.min_face_size,
                 conf_th=f.conf_th)
        return p

    def filter_parameters(self) -> dict:
        return {"min_confidence": self.min_confidence, "max_abs_offset": self.max_abs_offset}

    @property
    def filtering(self) -> bool:
        return self.min_confidence is not None or self.max_abs_offset is not None


@dataclass
class Paths:
    out: Path

    @property
    def chunks(self) -> Path:
        return self.out / "chunks"

    @property
    def audio(self) -> Path:
        return self.out / "audio"

    @property
    def data(self) -> Path:
        return self.out / "syncnet_data"

    @property
    def summary(self) -> Path:
        return self.out / SUMMARY

    @property
    def checkpoint(self) -> Path:
        return self.data / ".detection_state.pckl"

    @property
    def filtered_chunks(self) -> Path:
        return self.out / "filtered_chunks"

    @property
    def filtered_audio(self) -> Path:
        return self.out / "filtered_audio"

    def chunk_file(self, c: Chunk) -> Path:
        return self.chunks / f"{c.name}.mp4"

    def chunk_wav(self, c: Chunk) -> Path:
        return self.audio / f"{c.name}.wav"

    def layout(self, c: Chunk) -> Layout:
        return Layout(self.data, c.name)


def _held_boxes(det: Detections, resume_at: int, every: int) -> np.ndarray | None:
    """With detect_every > 1, the boxes a resumed run holds until its next detected frame."""
    last = resume_at - 1 - (resume_at - 1) % every if resume_at else -1
    if every <= 1 or resume_at % every == 0 or last < det.first_frame or last >= det.n_frames:
        return None
    return np.array([[*f["bbox"], f["conf"]] for f in det.faces_of(last)], np.float64).reshape(-1, 5)


def frame_range(chunk: Chunk, frame_rate: int) -> tuple[int, int]:
    """The chunk's frames on the source's 25 fps grid: [a, b)."""
    return int(round(chunk.start * frame_rate)), int(round(chunk.end * frame_rate))


def filter_decision(record: dict, opts: LongVideoOptions) -> dict:
    """Accept a chunk when its best track passes --min_confidence and --max_abs_offset."""
    if not opts.filtering:
        return {"enabled": False, "accepted": None, "reasons": []}
    reasons = []
    best = record.get("best_track")
    if record["status"] != "success" or best is None:
        reasons.append("no face track" if record["status"] == "no_faces" else f"status {record['status']}")
    else:
        if not best.get("reliable", True):
            reasons.append(f"best track unreliable ({best.get('unreliable_reason')})")
        if opts.min_confidence is not None and best["confidence"] < opts.min_confidence:
            reasons.append(f"confidence {best['confidence']:.3f} < {opts.min_confidence:g}")
        if opts.max_abs_offset is not None and abs(best["offset"]) > opts.max_abs_offset:
            reasons.append(f"|offset| {abs(best['offset'])} > {opts.max_abs_offset}")
    return {"enabled": True, "accepted": not reasons, "reasons": reasons}


def _totals(chunks: list[dict]) -> dict:
    status = [c["status"] for c in chunks]
    accepted = [c["filter"]["accepted"] for c in chunks]
    return {"chunks": len(chunks), "success": status.count("success"), "no_faces": status.count("no_faces"),
            "failed": status.count("failed"), "pending": status.count("pending"),
            "accepted": accepted.count(True), "rejected": accepted.count(False)}


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class _Checkpoint:
    """Detection state written beside the summary, so a rerun need not detect again."""

    def __init__(self, path: Path, key: dict):
        self.path, self.key = path, key

    def load(self) -> dict | None:
        try:
            with open(self.path, "rb") as fh:
                state = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None
        return state if state.get("key") == self.key else None

    def save(self, det: Detections, cuts: list[int], keep_from: int, windows: dict[int, dict]) -> None:
        """`windows`: the detections of failed chunks (their `Detections.window`), by chunk index."""
        faces = det.faces[max(0, keep_from - det.first_frame):]
        state = {"key": self.key, "first_frame": det.n_frames - len(faces), "faces": faces,
                 "n_frames": det.n_frames, "cuts": list(cuts), "width": det.width, "height": det.height,
                 "windows": windows}
        write_bytes_atomic(self.path, pickle.dumps(state))


def _window_state(window: Detections) -> dict:
    return {"faces": window.faces, "scenes": list(window.scenes), "width": window.width, "height": window.height}


def _window_from_state(state: dict) -> Detections:
    return Detections(faces=state["faces"], scenes=[tuple(s) for s in state["scenes"]], width=state["width"],
                      height=state["height"])


class LongVideoJob:
    """One source into OUTPUT_DIR: chunks, their audio, per-chunk SyncNet data, one summary."""

    def __init__(self, source: str | Path, output_dir: str | Path, opts: LongVideoOptions,
                 detector: FaceDetector, model, force: bool = False, progress: bool = False):
        self.source = Path(source)
        self.paths = Paths(Path(output_dir))
        self.opts = opts
        self.detector = detector
        self.model = model
        self.force = force
        self.progress = progress
        self.times = StageTimes()
        self.detector_frames_this_run = 0
        self._lock = threading.RLock()
        # Detections of chunks that failed (window state by chunk index), checkpointed until
        # they succeed: a retry of a failed chunk needs no detection.  Only failed chunks'.
        self._windows: dict[int, dict] = {}

    # ---------------------------------------------------------------- planning
    def _plan(self, info: media.MediaInfo) -> list[Chunk]:
        o = self.opts
        if o.chunking == "time":
            return plan_time_chunks(info.duration, o.chunk_duration, o.overlap)
        if o.chunking == "silence":
            check_silence_options(o.min_chunk, o.max_chunk, o.min_silence)  # before FFmpeg reads the source
            silences = media.detect_silences(self.source, o.threshold, o.min_silence, info=info)
            return plan_silence_chunks(info.duration, silences, o.min_chunk, o.max_chunk,
                                       levels=audio_levels(self.source, info))
        raise InputError(f"--chunking must be 'time' or 'silence' (got {o.chunking!r})")

    # ---------------------------------------------------------------- summary
    def _new_summary(self, info: media.MediaInfo, chunks: list[Chunk]) -> dict:
        fr = self.opts.faces.frame_rate
        recs = []
        for c in chunks:
            a, b = frame_range(c, fr)
            lay = self.paths.layout(c)
            recs.append({
                "index": c.index, "name": c.name, "start": c.start, "end": c.end,
                "frame_start": a, "frame_end": b,
                "files": {"chunk": str(self.paths.chunk_file(c)), "audio": str(self.paths.chunk_wav(c)),
                          "pyavi": str(lay.avi_dir), "pycrop": str(lay.crop_dir), "pywork": str(lay.work_dir),
                          "offsets": str(lay.work("offsets.txt")),
                          "video_out": str(lay.video_out) if self.opts.visualise else None},
                "status": "pending", "error": None, "tracks": [], "best_track": None,
                "filter": {"enabled": self.opts.filtering, "accepted": None, "reasons": []},
            })
        w, h = info.display_size
        return {
            "schema_version": SCHEMA_VERSION,
            "software": {"name": "syncnet-longvideo", "version": __version__},
            "input": {"path": str(self.source), "duration": info.duration, "fps": info.fps, "width": w,
                      "height": h, "variable_frame_rate": info.variable_frame_rate},
            "parameters": self.opts.result_parameters(),
            "filter_parameters": self.opts.filter_parameters(),
            "complete": False,
            "source_frames": int(round(info.duration * fr)),
            "detector_frames": 0,
            "detector_frames_this_run": 0,
            "chunks": recs,
            "totals": {},
            "timings": {},
        }

    def _write_summary(self, summary: dict) -> None:
        with self._lock:  # chunk workers and the detection loop both write it
            summary["totals"] = _totals(summary["chunks"])
            summary["detector_frames_this_run"] = self.detector_frames_this_run
            summary["timings"] = {**self.times.rounded(), "detector_frames_this_run": self.detector_frames_this_run}
            write_json_atomic(self.paths.summary, summary)

    def _load_previous(self, fresh: dict) -> dict | None:
        """The previous summary when its results can be reused; refuse a mix of parameters."""
        path = self.paths.summary
        if not path.exists():
            return None
        import json

        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("%s is unreadable; starting over", path)
            return None
        same_input = old.get("input", {}).get("duration") == fresh["input"]["duration"] and \
            Path(old.get("input", {}).get("path", "")).name == self.source.name
        same_params = old.get("parameters") == fresh["parameters"]
        if same_input and same_params and not self.force:
            if old.get("schema_version") != SCHEMA_VERSION:
                log.warning("%s was written by another version of this program (schema %s, now %s); "
                            "redoing every chunk", path, old.get("schema_version"), SCHEMA_VERSION)
                return None
            return old
        if not self.force:
            what = "another input" if not same_input else "other parameters (" + ", ".join(
                f"{k}: {old.get('parameters', {}).get(k)} -> {v}" for k, v in fresh["parameters"].items()
                if old.get("parameters", {}).get(k) != v) + ")"
            raise InputError(f"{self.paths.out} holds results made with {what}; rerun with --force to redo "
                             "them, or choose another --output_dir")
        log.warning("--force: redoing every chunk in %s", self.paths.out)
        return None

    def _clear_outputs(self) -> None:
        for p in (self.paths.chunks, self.paths.audio, self.paths.data, self.paths.filtered_chunks,
                  self.paths.filtered_audio):
            shutil.rmtree(p, ignore_errors=True)

    def _reusable(self, rec: dict) -> bool:
        if rec.get("status") not in ("success", "no_faces"):
            return False
        files = rec.get("files", {})
        needed = [files.get("chunk"), files.get("audio"), files.get("offsets")]
        if self.opts.visualise and rec.get("status") == "success":
            needed.append(files.get("video_out"))
        return all(f and Path(f).exists() for f in needed)

    # ---------------------------------------------------------------- the run
    def run(self) -> dict:
        """The job, holding the output folder's lock (a second run there stops at once)."""
        info = media.probe(self.source)
        media.require_video(info)
        media.require_audio(info)
        ensure_writable_dir(self.paths.out)
        with output_lock(self.paths.out):
            try:
                return self._run(info)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise _disk_full(self.paths.out, exc) from exc
                raise

    def _run(self, info: media.MediaInfo) -> dict:
        t_start = time.perf_counter()
        with self.times.stage("plan"):
            chunks = self._plan(info)
        summary = self._new_summary(info, chunks)
        previous = self._load_previous(summary)
        if previous is None:
            self._clear_outputs()
        done = {r["index"]: r for r in (previous or {}).get("chunks", []) if self._reusable(r)}
        for i, old in done.items():
            if i < len(summary["chunks"]):
                summary["chunks"][i] = {**old, "filter": filter_decision(old, self.opts)}
        summary["detector_frames"] = (previous or {}).get("detector_frames", 0)
        for d in (self.paths.chunks, self.paths.audio, self.paths.data):
            d.mkdir(parents=True, exist_ok=True)
            for stale in d.glob(".*.part*"):  # a killed run's; under the lock no other writer is here
                stale.unlink(missing_ok=True)
        for stale in self.paths.out.glob(f".{Path(SUMMARY).stem}.*.part.json"):
            stale.unlink(missing_ok=True)
        self._apply_filter(summary)  # filter folders match this run's filter from the start
        self._write_summary(summary)
        todo = [c for c in chunks if c.index not in done]
        if done:
            log.warning("resuming: %d of %d chunks already done", len(done), len(chunks))
        if todo:
            self._analyse(info, chunks, todo, summary)
        self._apply_filter(summary)
        summary["complete"] = all(r["status"] != "pending" for r in summary["chunks"])
        self.times["total"] = time.perf_counter() - t_start
        self._write_summary(summary)
        if summary["complete"] and not self._windows:
            self.paths.checkpoint.unlink(missing_ok=True)  # nothing left to retry: no state to keep
        return summary

    def _analyse(self, info: media.MediaInfo, chunks: list[Chunk], todo: list[Chunk], summary: dict) -> None:
        fr = self.opts.faces.frame_rate
        bs = self.opts.faces.batch_size
        key = {"source": str(self.source.resolve()), "duration": info.duration,
               "parameters": self.opts.result_parameters()}
        checkpoint = _Checkpoint(self.paths.checkpoint, key)
        state = checkpoint.load()
        ranges = {c.index: frame_range(c, fr) for c in chunks}
        # Chunks that failed before kept their detections: they are redone without detection.
        saved = (state or {}).get("windows", {})
        self._windows = {c.index: saved[c.index] for c in todo if c.index in saved}
        retry = [c for c in todo if c.index in self._windows]
        todo = [c for c in todo if c.index not in self._windows]
        need_from = ranges[todo[0].index][0] if todo else summary["source_frames"]
        det = Detections()
        scenes = SceneDetector()
        resume_at = 0
        if state and state["first_frame"] <= need_from:
            # Continue detection where the last run stopped; keep what it found.
            det = Detections(faces=state["faces"], width=state["width"], height=state["height"],
                             first_frame=state["first_frame"])
            resume_at = state["n_frames"]
            scenes.restore(state["cuts"], resume_at)
            if todo:
                log.warning("resuming detection at frame %d", resume_at)
        detection = DetectionPass(self.detector, self.opts.faces, detections=det, scenes=scenes,
                                  held=_held_boxes(det, resume_at, self.opts.faces.detect_every), times=self.times)
        total = summary["source_frames"]
        queue = list(todo)
        bar = tqdm(total=total, initial=resume_at, desc="detecting", unit="frame", disable=not self.progress,
                   leave=False)
        chunk_bar = tqdm(total=len(chunks), initial=len(chunks) - len(todo) - len(retry), desc="chunks",
                         unit="chunk", disable=not self.progress)
        workers = self.opts.workers_for(self.detector)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chunk") if workers > 1 else None
        pending: list[tuple[Chunk, Future]] = []  # chunks being analysed by the pool, oldest first

        def keep_from() -> int:
            """Detections are kept from the first chunk not finished (a resume needs them)."""
            firsts = [ranges[c.index][0] for c, _ in pending] + [ranges[c.index][0] for c in queue]
            return min(firsts) if firsts else det.n_frames

        def settle(in_flight: int) -> None:
            """Collect finished chunks, waiting until at most `in_flight` remain; then checkpoint."""
            finished = 0
            while pending and (len(pending) > in_flight or pending[0][1].done()):
                pending.pop(0)[1].result()
                finished += 1
            if finished:
                chunk_bar.update(finished)
                self._checkpoint(det, scenes, checkpoint, keep_from(), summary)

        def finish(chunk: Chunk) -> None:
            a, b = ranges[chunk.index]
            b = min(b, det.n_frames)
            window = det.window(a, b, detection.shots())  # a copy: detection may go on
            if pool is None:
                self._run_chunk(chunk, window, a, summary)
                chunk_bar.update(1)
                self._checkpoint(det, scenes, checkpoint, keep_from(), summary)
            else:
                settle(workers - 1)
                pending.append((chunk, pool.submit(self._run_chunk, chunk, window, a, summary)))

        last_checkpoint = resume_at
        frames = None
        try:
            if retry:
                log.warning("retrying %d failed chunk%s with their saved detections", len(retry),
                            "" if len(retry) == 1 else "s")
            for chunk in retry:
                self._run_chunk(chunk, _window_from_state(self._windows[chunk.index]), ranges[chunk.index][0],
                                summary)
                chunk_bar.update(1)
                self._checkpoint(det, scenes, checkpoint, keep_from(), summary)
            if not queue:
                return
            # The frame before the resume point lets the shot detector compare as if it never stopped.
            start = max(0, resume_at - 1)
            frames = media.iter_frames(self.source, fps=fr, batch_size=bs, start=start / fr, info=info)
            first = start
            while True:
                with self.times.stage("decode"):
                    batch = next(frames, None)
                if batch is None:
                    break
                if first < resume_at:  # the one frame shown to the shot detector only
                    detection.prime(batch[: resume_at - first], first)
                    batch, first = batch[resume_at - first:], resume_at
                    if not len(batch):
                        continue
                detection.push(batch, first)
                self.detector_frames_this_run += len(batch)
                first += len(batch)
                bar.update(len(batch))
                summary["detector_frames"] = max(summary["detector_frames"], det.n_frames)
                while queue and ranges[queue[0].index][1] <= det.n_frames:
                    finish(queue.pop(0))
                    last_checkpoint = det.n_frames
                settle(workers)
                if not queue:
                    break  # every chunk of this run has its frames: the rest need no detection
                if det.n_frames - last_checkpoint >= CHECKPOINT_EVERY:
                    self._checkpoint(det, scenes, checkpoint, keep_from(), summary)
                    last_checkpoint = det.n_frames
            # The source ended: the last chunks end at the last decoded frame.
            while queue:
                finish(queue.pop(0))
            settle(0)
        finally:
            if frames is not None:
                frames.close()  # stops the decoder now when detection ends early
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
            chunk_bar.close()

    def _checkpoint(self, det: Detections, scenes: SceneDetector, checkpoint: _Checkpoint, keep_from: int,
                    summary: dict) -> None:
        det.forget_before(keep_from)
        with self._lock:
            windows = dict(self._windows)
        checkpoint.save(det, scenes.cuts, keep_from, windows)
        self._write_summary(summary)
        release_freed_memory()  # a chunk's buffers go back to the OS (see syncnet/allocator.py)

    def _run_chunk(self, chunk: Chunk, window: Detections, a: int, summary: dict) -> None:
        """Analyse one chunk and record it in the summary (which is then written)."""
        out: dict = {}
        disk_full = None
        try:
            self._analyse_chunk(chunk, window, a, out)
        except Exception as exc:  # noqa: BLE001 - one bad chunk must not stop the others
            # One line on the console and in the summary; the traceback only with -v (DEBUG).
            error = error_line(exc, with_type=not isinstance(exc, SyncNetError))
            if _is_disk_full(exc):
                disk_full = exc  # the job stops with one line saying so
            else:
                log.error("%s failed: %s", chunk.name, error)
            log.debug("%s failed", chunk.name, exc_info=True)
            out.update(status="failed", error=error, tracks=[], best_track=None)
        with self._lock:
            rec = summary["chunks"][chunk.index]
            rec.update(out)
            rec["filter"] = filter_decision(rec, self.opts)
            if rec["status"] == "failed" and (chunk.index in self._windows
                                              or len(self._windows) < MAX_KEPT_WINDOWS):
                self._windows[chunk.index] = _window_state(window)  # a retry needs no detection
            else:
                self._windows.pop(chunk.index, None)
        if disk_full is not None:  # every later chunk would fail the same way: stop, resumable
            try:
                self._write_summary(summary)
            except OSError:
                pass
            raise _disk_full(self.paths.out, disk_full)
        self._write_summary(summary)

    def _analyse_chunk(self, chunk: Chunk, window: Detections, a: int, out: dict) -> None:
        """Cut the chunk, then run the reference's pipeline on its file with the shared
        detections; the chunk's summary fields go into `out`."""
        chunk_file = self.paths.chunk_file(chunk)
        with self.times.stage("cut"):
            start, end = media.cut(self.source, chunk_file, chunk.start, chunk.end, crf=self.opts.chunk_crf,
                                   preset=self.opts.chunk_preset)
            out.update(start=round(start, 6), end=round(end, 6))
            wav = media.extract_audio(chunk_file, self.paths.chunk_wav(chunk), 16000, 1)
        # The picture is decoded on a 25 fps grid from the chunk's own first frame (the
        # snapped cut `start`), and its sound starts at that same instant: both are used
        # as cut.  (`window` numbers its frames from source frame a; on 29.97 fps or VFR
        # sources a/25 s is up to a frame away from `start`, which moves boxes, not sound.)
        _, sound = read_wav(wav)
        with self.times.stage("chunk"):
            analysis = analyse_video(chunk_file, self.paths.layout(chunk), self.opts.faces, model=self.model,
                                     vshift=self.opts.vshift, sync_batch=self.opts.sync_batch, detections=window,
                                     audio=sound, visualise=self.opts.visualise, times=self.times)
        tracks = []
        for i, t in enumerate(analysis.tracks):
            r = track_record(i, t.sync)
            r.pop("framewise_conf")
            r.update(start_frame=int(t.track["frame"][0]), end_frame=int(t.track["frame"][-1]))
            tracks.append(r)
        short = sum(not r["reliable"] for r in tracks)
        if short:  # once per chunk, not once per track
            log.warning("%s: %d of %d face tracks too short to measure (fewer than %d SyncNet windows); "
                        "marked unreliable", chunk.name, short, len(tracks), min_windows(self.opts.vshift))
        out.update(status="success" if tracks else "no_faces", error=None, tracks=tracks,
                   best_track=best_track(tracks))

    def _apply_filter(self, summary: dict) -> None:
        """Rebuild filtered_chunks/ and filtered_audio/ from the summary's decisions; without
        a filter, remove them (an earlier run's would no longer match the summary)."""
        if not self.opts.filtering:
            for d in (self.paths.filtered_chunks, self.paths.filtered_audio):
                shutil.rmtree(d, ignore_errors=True)
            return
        for d in (self.paths.filtered_chunks, self.paths.filtered_audio):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for rec in summary["chunks"]:
            rec["filter"] = filter_decision(rec, self.opts)
            if rec["filter"]["accepted"]:
                _link_or_copy(Path(rec["files"]["chunk"]), self.paths.filtered_chunks / f"{rec['name']}.mp4")
                _link_or_copy(Path(rec["files"]["audio"]), self.paths.filtered_audio / f"{rec['name']}.wav")


def _is_disk_full(exc: BaseException) -> bool:
    """No space (or quota) left, raised by Python or reported by FFmpeg."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def _disk_full(out: Path, exc: BaseException) -> SyncNetError:
    return SyncNetError(f"no space left on the device of {out}; free some space and run the same command "
                        "again to resume")


def report(summary: dict, out_dir: Path) -> str:
    """The one-screen report printed at the end of a run."""
    t = summary["totals"]
    bests = [c["best_track"] for c in summary["chunks"] if c.get("best_track")]
    confs = [b["confidence"] for b in bests if b.get("reliable", True)]
    lines = [
        f"Input:      {summary['input']['path']} ({summary['input']['duration']:.1f} s)",
        f"Chunks:     {t['chunks']} ({t['success']} with faces, {t['no_faces']} without, {t['failed']} failed)",
        f"Detection:  {summary['detector_frames']} frames for {summary['source_frames']} source frames "
        f"({summary.get('detector_frames_this_run', 0)} in this run)",
    ]
    if confs:
        lines.append(f"Confidence: mean best-track confidence {np.mean(confs):.3f}")
    if len(confs) < len(bests):
        lines.append(f"Unreliable: {len(bests) - len(confs)} chunks have only face tracks too short to measure")
    if summary["chunks"] and summary["chunks"][0]["filter"]["enabled"]:
        lines.append(f"Filter:     {t['accepted']} accepted, {t['rejected']} rejected "
                     f"-> {out_dir / 'filtered_chunks'}")
    failed = [c for c in summary["chunks"] if c["status"] == "failed"]
    for c in failed[:5]:
        lines.append(f"  failed {c['name']}: {c['error']}")
    lines += [f"Outputs:    {out_dir / 'chunks'}, {out_dir / 'audio'}, {out_dir / 'syncnet_data'}",
              f"Summary:    {out_dir / SUMMARY}"]
    return "\n".join(lines)


def process_long_video(source: str | Path, output_dir: str | Path, opts: LongVideoOptions,
                       detector: FaceDetector, model, force: bool = False, progress: bool = False,
                       on_summary: Callable[[dict], None] | None = None) -> dict:
    """Run the long-video job and return its summary (also in OUTPUT_DIR/processing_summary.json)."""
    summary = LongVideoJob(source, output_dir, opts, detector, model, force=force, progress=progress).run()
    if on_summary:
        on_summary(summary)
    return summary

