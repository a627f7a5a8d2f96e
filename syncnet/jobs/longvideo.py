"""A long source, chunk by chunk, with one detection pass over the source.

Plan chunks -> one streamed decode of the source at 25 fps feeds S3FD and the shot
detector -> as soon as detection has passed the end of a chunk, that chunk is cut,
analysed as if on its own (its tracks from the shared detections, its crops from its
own file, SyncNet on them) and recorded in the summary.  Overlapping chunks share
the detections of their overlap, so S3FD runs once per source frame.

Resume: the summary is rewritten atomically after every chunk, and the detection
state (faces still needed, shot cuts, how far it got) is checkpointed with it; a
rerun with the same parameters skips finished chunks and picks detection up where
it stopped.  A rerun with other parameters is refused (ConflictingOutput) unless
forced.  Detections of chunks that failed stay in the checkpoint until the chunk
succeeds, so retrying them needs no detection; the checkpoint is removed once every
chunk has a result.

One writer per output folder (`syncnet.outlock`): a second run into it stops at once.

The parts: `summary.LongSummary` (records, totals, filter, resume), `checkpoint.Checkpoint`,
`scheduler.ChunkScheduler` (the detection loop and the chunk workers); `LongVideoJob`
orchestrates them and analyses one chunk (`_analyse_chunk`).
"""
from __future__ import annotations

import errno
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .. import media
from ..allocator import release_freed_memory
from ..analysis import analyse_video
from ..chunking import Chunk, audio_levels, check_silence_options, plan_silence_chunks, plan_time_chunks
from ..detection import Detections, FaceDetector
from ..errors import InputError, SyncNetError
from ..files import ensure_writable_dir
from ..options import FaceOptions, speed_parameters
from ..outlock import output_lock
from ..results import error_line
from ..timing import StageTimes
from ..wav import read_wav
from .checkpoint import Checkpoint
from .checkpoint import held_boxes as _held_boxes
from .cutahead import CutAhead
from .paths import SUMMARY, Paths
from .previous import face_parameters
from .records import ChunkResult, Status, no_track_line, status_of, track_records
from .scheduler import ChunkScheduler
from .summary import SCHEMA_VERSION, LongSummary, report

__all__ = ["SCHEMA_VERSION", "SUMMARY", "LongVideoJob", "LongVideoOptions", "_held_boxes", "process_long_video",
           "report"]

log = logging.getLogger(__name__)


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
    export_synced: bool = False  # accepted chunks re-synced into synced_chunks/, synced_audio/ (jobs/export.py)
    export_synced_video: bool = False  # the input re-synced by the fitted offset, when it is constant

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
        p.update(face_parameters(self.faces))
        return p

    def filter_parameters(self) -> dict:
        return {"min_confidence": self.min_confidence, "max_abs_offset": self.max_abs_offset}

    @property
    def filtering(self) -> bool:
        return self.min_confidence is not None or self.max_abs_offset is not None


class LongVideoJob:
    """One source into OUTPUT_DIR: chunks, their audio, per-chunk SyncNet data, one summary.

    An orchestrator: the chunk plan, a `LongSummary` (records, totals, filter, resume), a
    `Checkpoint` (detection state, failed chunks' detections) and a `ChunkScheduler`
    (detection over the source, chunks handed on as their frames are detected), which
    calls `_run_chunk` for each chunk of this run."""

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
        self.info: media.MediaInfo | None = None
        self.summary: LongSummary | None = None
        self.checkpoint: Checkpoint | None = None
        self.chunks: list[Chunk] = []
        self.cuts: CutAhead | None = None  # the chunk files cut ahead (one machine, in line chunks)

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

    def _plan(self, info: media.MediaInfo) -> list[Chunk]:
        o = self.opts
        if o.chunking == "time":
            return plan_time_chunks(info.duration, o.chunk_duration, o.overlap)
        if o.chunking == "silence":
            check_silence_options(o.min_chunk, o.max_chunk, o.min_silence)  # before FFmpeg reads the source
            silences = media.detect_silences(self.source, o.threshold, o.min_silence, info=info)
            return plan_silence_chunks(info.duration, silences, o.min_chunk, o.max_chunk,
                                       levels=audio_levels(self.source, info))
        raise InputError(f"chunking must be 'time' or 'silence' (got {o.chunking!r})")

    def _run(self, info: media.MediaInfo) -> dict:
        t_start = time.perf_counter()
        chunks, todo = self.prepare(info)
        if todo:
            self.run_chunks(chunks, todo)
        return self.finish(t_start)

    # The three steps of a run, separable so that a cluster runner (syncnet.cluster) plans and
    # records in the driver while workers run spans of chunks (`run_span`); on one machine the
    # whole plan is one span, run here.
    def prepare(self, info: media.MediaInfo) -> tuple[list[Chunk], list[Chunk]]:
        """Plan, resume an earlier run or clear its outputs, write the first summary; (chunks, todo)."""
        self.info = info
        with self.times.stage("plan"):
            chunks = self.chunks = self._plan(info)
        self.summary = summary = LongSummary(self.paths, self.opts, self.source, info, chunks)
        done = summary.reuse_previous(self.force)
        if done is None:
            self._clear_outputs()
        self._prepare_folders()
        summary.apply_filter()  # filter folders match this run's filter from the start
        self._write()
        todo = [c for c in chunks if c.index not in (done or ())]
        if done:
            log.warning("resuming: %d of %d chunks already done", len(done), len(chunks))
        key = {"source": str(self.source.resolve()), "duration": info.duration,
               "parameters": self.opts.result_parameters()}
        self.checkpoint = Checkpoint(self.paths.checkpoint, key)
        return chunks, todo

    def run_chunks(self, chunks: list[Chunk], todo: list[Chunk]) -> None:
        """Detection over the source and every chunk of `todo` analysed and recorded (one machine)."""
        if self.opts.faces.reference_decode:
            self._run_each(todo, len(chunks))
            return
        scheduler = ChunkScheduler(self.source, self.info, self.opts, self.detector, self.times, self.checkpoint,
                                   analyse=self._run_chunk, saved=self._saved, detected=self._detected,
                                   progress=self.progress)
        self.cuts = CutAhead(self._cut, todo, enabled=scheduler.workers == 1)  # workers overlap them already
        try:
            scheduler.run(chunks, todo, self.summary.source_frames)
        finally:
            self.cuts.close()
            self.cuts = None

    def finish(self, t_start: float) -> dict:
        """Filter folders, `complete`, the last summary; the checkpoint goes when nothing is left to retry."""
        summary = self.summary
        summary.apply_filter()
        summary.finish()
        summary.export(self.source, self.opts.export_synced, self.opts.export_synced_video)
        self.times["total"] = time.perf_counter() - t_start
        result = self._write()
        if summary.complete and not self.checkpoint.any_windows:
            self.checkpoint.remove()  # nothing left to retry: no state to keep
        return result

    def _clear_outputs(self) -> None:
        for p in (self.paths.chunks, self.paths.audio, self.paths.data, self.paths.filtered_chunks,
                  self.paths.filtered_audio):
            shutil.rmtree(p, ignore_errors=True)

    def _prepare_folders(self) -> None:
        for d in (self.paths.chunks, self.paths.audio, self.paths.data):
            d.mkdir(parents=True, exist_ok=True)
            for stale in d.glob(".*.part*"):  # a killed run's; under the lock no other writer is here
                stale.unlink(missing_ok=True)
        for stale in self.paths.out.glob(f".{Path(SUMMARY).stem}.*.part.json"):
            stale.unlink(missing_ok=True)

    def _write(self) -> dict:
        return self.summary.write(self.times, self.detector_frames_this_run)

    def _detected(self, new: int, total: int) -> None:
        self.detector_frames_this_run += new
        if self.summary is not None:  # None in a cluster worker's span: the driver records
            self.summary.detected(total)

    def _saved(self) -> None:
        """After a checkpoint: the summary too, and a chunk's buffers back to the OS (syncnet/allocator.py)."""
        self._write()
        release_freed_memory()

    def _run_each(self, todo: list[Chunk], n_chunks: int) -> None:
        """--reference_decode: each chunk's own file goes through the reference's path (its
        AVI conversion, JPEG frames, detection on them), as run_pipeline.py on that file;
        no detection pass over the source is shared, so there is nothing to checkpoint."""
        with tqdm(total=n_chunks, initial=n_chunks - len(todo), desc="chunks", unit="chunk",
                  disable=not self.progress) as bar:
            for chunk in todo:
                self._run_chunk(chunk, None)
                bar.update(1)
                self._saved()

    def _run_chunk(self, chunk: Chunk, window: Detections | None) -> None:
        """Analyse one chunk and record it in the summary (which is then written)."""
        result, disk_full = self.analysed(chunk, window)
        self.record(chunk.index, result, window, disk_full)

    def analysed(self, chunk: Chunk, window: Detections) -> tuple[ChunkResult, BaseException | None]:
        """The chunk's result; a failure is a result (one line), with the error when the disk is full."""
        try:
            return self._analyse_chunk(chunk, window), None
        except Exception as exc:  # noqa: BLE001 - one bad chunk must not stop the others
            # One line on the console and in the summary; the traceback only with -v (DEBUG).
            error = error_line(exc, with_type=not isinstance(exc, SyncNetError))
            if not _is_disk_full(exc):
                log.error("%s failed: %s", chunk.name, error)
            log.debug("%s failed", chunk.name, exc_info=True)
            return ChunkResult.failed(error), (exc if _is_disk_full(exc) else None)

    def record(self, index: int, result: ChunkResult, window: Detections | None,
               disk_full: BaseException | None = None) -> None:
        """A chunk's result into the summary, which is written; a full disk stops the job (resumable)."""
        # The checkpoint first: a summary saying "failed" always has the chunk's detections kept.
        if window is not None:
            self.checkpoint.chunk_done(index, result.status == Status.FAILED, window)
        self.summary.record(index, result)
        if disk_full is not None:  # every later chunk would fail the same way: stop, resumable
            try:
                self._write()
            except OSError:
                pass
            raise _disk_full(self.paths.out, disk_full)
        self._write()

    def _cut(self, chunk: Chunk) -> tuple[float, float]:
        return media.cut(self.source, self.paths.chunk_file(chunk), chunk.start, chunk.end, info=self.info,
                         crf=self.opts.chunk_crf, preset=self.opts.chunk_preset)

    def _analyse_chunk(self, chunk: Chunk, window: Detections | None) -> ChunkResult:
        """Cut the chunk, then run the reference's pipeline on its file with the shared
        detections (None with --reference_decode: detected on the chunk's own frames);
        the chunk's result (its snapped cut, its tracks)."""
        chunk_file = self.paths.chunk_file(chunk)
        with self.times.stage("cut"):
            # made ahead, beside detection, on one machine (cutahead.py); in line in a span or chunk by chunk
            start, end = self.cuts.take(chunk) if self.cuts is not None else self._cut(chunk)
            wav = media.extract_audio(chunk_file, self.paths.chunk_wav(chunk), 16000, 1)
        # The picture is decoded on a 25 fps grid from the chunk's own first frame (the
        # snapped cut `start`), and its sound starts at that same instant: both are used
        # as cut.  (`window` numbers its frames from source frame a; on 29.97 fps or VFR
        # sources a/25 s is up to a frame away from `start`, which moves boxes, not sound.)
        _, sound = read_wav(wav)
        own = window is None  # --reference_decode: the chunk's own frames and sound, the reference's way
        with self.times.stage("chunk"):
            analysis = analyse_video(chunk_file, self.paths.layout(chunk), self.opts.faces, model=self.model,
                                     vshift=self.opts.vshift, sync_batch=self.opts.sync_batch, detections=window,
                                     detector=self.detector if own else None, audio=None if own else sound,
                                     visualise=self.opts.visualise, times=self.times,
                                     release=release_freed_memory)
        if own:
            self._detected(analysis.n_frames, round(end * self.opts.faces.frame_rate))
        start, end = round(start, 6), round(end, 6)
        tracks = track_records(chunk.name, analysis, self.opts.vshift, chunk_start=start,
                               frame_rate=self.opts.faces.frame_rate)
        diagnosis = None
        if not tracks:
            diagnosis = analysis.diagnosis
            log.warning("%s", no_track_line(chunk.name, diagnosis))
        return ChunkResult(status_of(tracks), start=start, end=end, tracks=tracks, diagnosis=diagnosis)


def _is_disk_full(exc: BaseException) -> bool:
    """No space (or quota) left, raised by Python or reported by FFmpeg."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)


def _disk_full(out: Path, exc: BaseException) -> SyncNetError:
    return SyncNetError(f"no space left on the device of {out}; free some space and run the same command "
                        "again to resume")


def check_source(source: str | Path, opts: LongVideoOptions) -> media.MediaInfo:
    """The checks a source must pass before minutes of model loading: a picture, sound, a
    plan its length allows, and data to its end; its probe, or the one-line error."""
    info = media.probe(source)
    media.require_video(info)
    media.require_audio(info)
    if opts.chunking == "time":
        plan_time_chunks(info.duration, opts.chunk_duration, opts.overlap)
    media.require_complete(info)
    return info


def process_long_video(source: str | Path, output_dir: str | Path, opts: LongVideoOptions,
                       detector: FaceDetector, model, force: bool = False, progress: bool = False) -> dict:
    """Run the long-video job and return its summary (also in OUTPUT_DIR/processing_summary.json)."""
    return LongVideoJob(source, output_dir, opts, detector, model, force=force, progress=progress).run()
