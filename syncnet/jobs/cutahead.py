"""The long job's chunk files, cut one chunk ahead at the lowest CPU priority.

On the CPU the long job analyses chunks in line, and each chunk's file (an x264
re-encode of 30 s of source, `media.cut`) used to be cut just before its analysis,
while nothing else ran: about 6% of a run's wall time.  A cut needs only the source
and the plan, so the next chunk's file can be cut while detection and the current
chunk's analysis run.  Its FFmpeg runs at nice 19 (the thread that starts it lowers
its own priority, and a child inherits its parent thread's), so on a busy machine it
takes the cycles the networks leave idle rather than the networks' own.  When the job
needs a file still being cut, the waiting would be at nice 19 too, behind every other
process of a shared machine: so its FFmpeg is put back to nice 0 first.  Only a process
allowed to raise priority again (root, CAP_SYS_NICE or RLIMIT_NICE) can do that; any
other cuts in line, as before.  The files are the same bytes either way: only when they
are made changes.
"""
from __future__ import annotations

import logging
import os
import platform
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from ..chunking import Chunk

log = logging.getLogger(__name__)

LOWEST = 19


def can_restore_priority() -> bool:
    """Linux, and allowed to set nice 0 again after 19 (root, or RLIMIT_NICE >= 20)."""
    if platform.system() != "Linux":
        return False
    import resource

    return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20


def _set_thread_nice(tid: int, nice: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)  # Linux: one thread (task), not the whole process
    except OSError as exc:  # gone, or not allowed
        log.debug("could not set the priority of %d: %s", tid, exc)


def _restore_children(tid: int) -> None:
    """Nice 0 for every thread of the processes thread `tid` started (x264's threads exist already)."""
    try:
        children = Path(f"/proc/self/task/{tid}/children").read_text().split()
    except OSError:
        return
    for pid in children:
        try:
            tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for t in tasks:
            _set_thread_nice(t, 0)


class CutAhead:
    """`take(chunk)`: the chunk's cut (`cut(chunk)`'s result), made ahead when it was the
    next in `order`, else now; each take starts the cut of the chunk after it.
    `enabled` False (chunk workers overlap them already), or where priority cannot be
    restored: every cut is made in line."""

    def __init__(self, cut: Callable[[Chunk], tuple[float, float]], order: list[Chunk], enabled: bool = True):
        self._cut = cut
        self._after = {a.index: b for a, b in zip(order, order[1:])}
        self._tid: int | None = None
        on = enabled and can_restore_priority()
        self._pool = ThreadPoolExecutor(1, "cut-ahead", initializer=self._lower_this_thread) if on else None
        self._ahead: dict[int, Future] = {}
        self._taken: set[int] = set()  # never cut twice, whatever order the chunks come in
        if order:
            self._start(order[0])

    def _lower_this_thread(self) -> None:
        """Nice 19 for the cutting thread only, so the FFmpeg processes it starts inherit it."""
        self._tid = threading.get_native_id()
        _set_thread_nice(self._tid, LOWEST)

    def _start(self, chunk: Chunk) -> None:
        if self._pool is not None and chunk.index not in self._ahead and chunk.index not in self._taken:
            self._ahead[chunk.index] = self._pool.submit(self._cut, chunk)

    def take(self, chunk: Chunk) -> tuple[float, float]:
        self._taken.add(chunk.index)
        ahead = self._ahead.pop(chunk.index, None)
        try:
            if ahead is None:
                return self._cut(chunk)
            self._wait(ahead)
            return ahead.result()
        finally:  # a failed chunk does not stop the next one's cut
            nxt = self._after.get(chunk.index)
            if nxt is not None:
                self._start(nxt)

    def _wait(self, ahead: Future) -> None:
        """Wait for a cut under way, its FFmpeg back at nice 0 (again for each process it starts)."""
        while not wait([ahead], timeout=0.2).done:
            if self._tid is not None:
                _restore_children(self._tid)

    def close(self) -> None:
        """Stop: a cut not started is dropped, one under way finishes (its file is written
        atomically, and cut again by the run that analyses its chunk)."""
        if self._pool is not None:
            for f in self._ahead.values():
                if not f.cancel():
                    self._wait(f)
            self._pool.shutdown(wait=True)
            self._ahead.clear()
