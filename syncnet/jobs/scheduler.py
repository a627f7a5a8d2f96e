"""The long job's chunk scheduler: one streamed decode of the source at 25 fps feeds S3FD
and the shot detector (`DetectionPass`); as soon as detection has passed the end of a
chunk, the chunk is handed on with its detections (`Detections.window`), analysed in
line or by a pool of chunk workers.  Overlapping chunks share the detections of their
overlap, so S3FD runs once per source frame.

Detection resumes from the checkpoint where an earlier run stopped; chunks that failed
before are redone first, from their saved detections, without decoding anything.  A span
of a cluster run (`checkpoint.SpanState`) starts the same way, at its own first frame.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from .. import media
from ..chunking import Chunk
from ..detection import DetectionPass, Detections, FaceDetector
from ..scenes import SceneDetector
from ..timing import StageTimes
from .checkpoint import Checkpoint, SpanState, held_boxes
from .paths import frame_range

if TYPE_CHECKING:
    from .longvideo import LongVideoOptions

log = logging.getLogger(__name__)

# Detection state is checkpointed at least this often (frames), besides after every chunk.
CHECKPOINT_EVERY = 1500


class ChunkScheduler:
    """Detection over the source, and each chunk of this run handed to `analyse(chunk, window)`
    once its frames are detected.  After every chunk (and every CHECKPOINT_EVERY frames)
    the checkpoint is saved and `saved()` called; `detected(new, total)` after every batch."""

    def __init__(self, source: Path, info: media.MediaInfo, opts: LongVideoOptions, detector: FaceDetector,
                 times: StageTimes, checkpoint: Checkpoint | SpanState, analyse: Callable[[Chunk, Detections], None],
                 saved: Callable[[], None], detected: Callable[[int, int], None], progress: bool = False):
        self.source, self.info, self.opts, self.detector, self.times = source, info, opts, detector, times
        self.checkpoint, self.analyse, self.saved, self.detected = checkpoint, analyse, saved, detected
        self.progress = progress
        self.workers = opts.workers_for(detector)
        self.det = Detections()
        self.scenes = SceneDetector()
        self.detection: DetectionPass | None = None
        self.ranges: dict[int, tuple[int, int]] = {}
        self.queue: list[Chunk] = []  # chunks waiting for their frames, in order
        self.pending: list[tuple[Chunk, Future]] = []  # chunks being analysed by the pool, oldest first
        self.pool: ThreadPoolExecutor | None = None
        self.until: int | None = None

    def run(self, chunks: list[Chunk], todo: list[Chunk], source_frames: int, until: int | None = None) -> None:
        """`until`: detect no frame at or past it (a span's end: the next span detects those)."""
        fr = self.opts.faces.frame_rate
        self.until = until
        self.ranges = {c.index: frame_range(c, fr) for c in chunks}
        state = self.checkpoint.load()
        # Chunks that failed before kept their detections: they are redone without detection.
        self.checkpoint.keep_windows((state or {}).get("windows", {}), [c.index for c in todo])
        retry = [c for c in todo if self.checkpoint.has_window(c.index)]
        self.queue = [c for c in todo if not self.checkpoint.has_window(c.index)]
        resume_at = self._restore(state, self.ranges[self.queue[0].index][0] if self.queue else source_frames)
        self.bar = tqdm(total=source_frames, initial=resume_at, desc="detecting", unit="frame",
                        disable=not self.progress, leave=False)
        self.chunk_bar = tqdm(total=len(chunks), initial=len(chunks) - len(todo), desc="chunks", unit="chunk",
                              disable=not self.progress)
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="chunk")
        try:
            self._retry(retry)
            if self.queue:
                self._detect(resume_at)
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.bar.close()
            self.chunk_bar.close()

    def _restore(self, state: dict | None, need_from: int) -> int:
        """Continue detection where the last run stopped, keeping what it found; the frame to resume at."""
        resume_at = 0
        if state and state["first_frame"] <= need_from:
            self.det = Detections(faces=state["faces"], width=state["width"], height=state["height"],
                                  first_frame=state["first_frame"])
            resume_at = state["n_frames"]
            self.scenes.restore(state["cuts"], resume_at)
            if self.queue and not state.get("span"):
                log.warning("resuming detection at frame %d", resume_at)
        self.detection = DetectionPass(self.detector, self.opts.faces, detections=self.det, scenes=self.scenes,
                                       held=held_boxes(self.det, resume_at, self.opts.faces.detect_every),
                                       times=self.times)
        return resume_at

    def _retry(self, retry: list[Chunk]) -> None:
        if retry:
            log.warning("retrying %d failed chunk%s with their saved detections", len(retry),
                        "" if len(retry) == 1 else "s")
        for chunk in retry:
            self.analyse(chunk, self.checkpoint.window(chunk.index))
            self.chunk_bar.update(1)
            self._save()

    def _detect(self, resume_at: int) -> None:
        """Decode and detect from `resume_at` until every queued chunk has its frames."""
        fr, bs = self.opts.faces.frame_rate, self.opts.faces.batch_size
        # The frame before the resume point lets the shot detector compare as if it never stopped.
        first = max(0, resume_at - 1)
        frames = media.iter_frames(self.source, fps=fr, batch_size=bs, start=first / fr, info=self.info)
        last_checkpoint = resume_at
        try:
            while True:
                with self.times.stage("decode"):
                    batch = next(frames, None)
                if batch is None:
                    break
                if first < resume_at:  # the one frame shown to the shot detector only
                    self.detection.prime(batch[: resume_at - first], first)
                    batch, first = batch[resume_at - first:], resume_at
                    if not len(batch):
                        continue
                if self.until is not None:
                    batch = batch[: max(0, self.until - first)]
                    if not len(batch):
                        break
                self.detection.push(batch, first)
                first += len(batch)
                self.bar.update(len(batch))
                self.detected(len(batch), self.det.n_frames)
                while self.queue and self.ranges[self.queue[0].index][1] <= self.det.n_frames:
                    self._finish(self.queue.pop(0))
                    last_checkpoint = self.det.n_frames
                self._settle(self.workers)
                if not self.queue:
                    break  # every chunk of this run has its frames: the rest need no detection
                if self.det.n_frames - last_checkpoint >= CHECKPOINT_EVERY:
                    self._save()
                    last_checkpoint = self.det.n_frames
            # The source ended: the last chunks end at the last decoded frame.
            while self.queue:
                self._finish(self.queue.pop(0))
            self._settle(0)
        finally:
            frames.close()  # stops the decoder now when detection ends early

    def _keep_from(self) -> int:
        """Detections are kept from the first chunk not finished (a resume needs them)."""
        firsts = [self.ranges[c.index][0] for c, _ in self.pending] + [self.ranges[c.index][0] for c in self.queue]
        return min(firsts) if firsts else self.det.n_frames

    def _save(self) -> None:
        self.checkpoint.save(self.det, self.scenes.cuts, self._keep_from())
        self.saved()

    def _settle(self, in_flight: int) -> None:
        """Collect finished chunks, waiting until at most `in_flight` remain; then checkpoint."""
        finished = 0
        while self.pending and (len(self.pending) > in_flight or self.pending[0][1].done()):
            self.pending.pop(0)[1].result()
            finished += 1
        if finished:
            self.chunk_bar.update(finished)
            self._save()

    def _finish(self, chunk: Chunk) -> None:
        """The chunk's frames are detected: analyse it now, or hand it to the pool."""
        a, b = self.ranges[chunk.index]
        window = self.det.window(a, min(b, self.det.n_frames), self.detection.shots())  # a copy: detection goes on
        if self.pool is None:
            self.analyse(chunk, window)
            self.chunk_bar.update(1)
            self._save()
        else:
            self._settle(self.workers - 1)
            self.pending.append((chunk, self.pool.submit(self.analyse, chunk, window)))
