"""The worker of a cluster run: one process (a Ray actor) holding S3FD and SyncNet, loaded once,
for every task it is given.  Plain Python: `pool.py` makes it a Ray actor, so this module runs
(and is tested) without Ray too."""
from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import media
from ..chunking import Chunk
from ..jobs.batch import analyse_file
from ..jobs.longvideo import LongVideoOptions
from ..jobs.records import FileRecord
from ..jobs.spans import SpanResult, run_span
from ..options import FaceOptions

# Loads the two networks on a device: (detector, model).  The command line passes its own
# loader (`syncnet._cli.models.load_models` with the weights flags bound), pickled to the workers,
# so a test's doubles reach them the way they reach the one-machine run.
ModelFactory = Callable[[str], tuple]


def rss_bytes() -> int:
    """This process's resident memory now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class TaskStats:
    """Who did a task and how long it took; the driver's per-worker throughput and the memory bench."""

    worker: str
    seconds: float
    frames: int
    tasks_done: int
    rss: int


class Worker:
    """Networks loaded once (`factory(device)`), torch's threads set to the worker's cores."""

    def __init__(self, factory: ModelFactory, device: str, threads: int | None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.detector, self.model = factory(device)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.tasks_done = 0

    def _stats(self, t0: float, frames: int) -> TaskStats:
        self.tasks_done += 1
        return TaskStats(self.name, round(time.perf_counter() - t0, 3), frames, self.tasks_done, rss_bytes())

    def file(self, video: str, out: str, opts: FaceOptions, vshift: int,
             visualise: bool) -> tuple[FileRecord, TaskStats]:
        t0 = time.perf_counter()
        rec = analyse_file(Path(video), Path(out), opts, self.detector, self.model, vshift, visualise)
        return rec, self._stats(t0, 0)

    def span(self, source: str, out: str, opts: LongVideoOptions, info: media.MediaInfo, chunks: list[Chunk],
             span: list[Chunk], source_frames: int) -> tuple[SpanResult, TaskStats]:
        t0 = time.perf_counter()
        result = run_span(source, out, opts, self.detector, self.model, info, chunks, span, source_frames)
        return result, self._stats(t0, result.detector_frames)
