"""The long job's chunk files, cut one chunk ahead at the lowest CPU priority.

On the CPU the long job analyses chunks in line, and each chunk's file (an x264
re-encode of 30 s of source, `media.cut`) used to be cut just before its analysis,
while nothing else ran: about 6% of a run's wall time.  A cut needs only the source
and the plan, so the next chunk's file can be cut while detection and the current
chunk's analysis run.  Its FFmpeg runs at nice 19 (the thread that starts it lowers
its own priority, and a child inherits its parent thread's), so on a busy machine it
takes the cycles the networks leave idle rather than the networks' own.  The files are
the same bytes either way: only when they are made changes.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..chunking import Chunk

log = logging.getLogger(__name__)

LOWEST = 19


def _lower_this_thread() -> None:
    """Nice 19 for the calling thread only (Linux: threads are scheduled on their own), so
    the FFmpeg processes it starts inherit it; elsewhere nothing is changed."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)
    except OSError as exc:
        log.debug("could not lower the cutting thread's priority: %s", exc)


class CutAhead:
    """`take(chunk)`: the chunk's cut (`cut(chunk)`'s result), made ahead when it was the
    next in `order`, else now; each take starts the cut of the chunk after it.
    `enabled` False: every cut is made in line (chunk workers already overlap them)."""

    def __init__(self, cut: Callable[[Chunk], tuple[float, float]], order: list[Chunk], enabled: bool = True):
        self._cut = cut
        self._after = {a.index: b for a, b in zip(order, order[1:])}
        self._pool = ThreadPoolExecutor(1, "cut-ahead", initializer=_lower_this_thread) if enabled else None
        self._ahead: dict[int, Future] = {}
        self._taken: set[int] = set()  # never cut twice, whatever order the chunks come in
        if order:
            self._start(order[0])

    def _start(self, chunk: Chunk) -> None:
        if self._pool is not None and chunk.index not in self._ahead and chunk.index not in self._taken:
            self._ahead[chunk.index] = self._pool.submit(self._cut, chunk)

    def take(self, chunk: Chunk) -> tuple[float, float]:
        self._taken.add(chunk.index)
        ahead = self._ahead.pop(chunk.index, None)
        try:
            return ahead.result() if ahead is not None else self._cut(chunk)
        finally:  # a failed chunk does not stop the next one's cut
            nxt = self._after.get(chunk.index)
            if nxt is not None:
                self._start(nxt)

    def close(self) -> None:
        """Stop: a cut not started is dropped, one under way finishes (its file is written
        atomically, and cut again by the run that analyses its chunk)."""
        if self._pool is not None:
            for f in self._ahead.values():
                f.cancel()
            self._pool.shutdown(wait=True)
            self._ahead.clear()
