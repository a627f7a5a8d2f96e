"""Wall time per stage, exclusive: time spent in a nested stage counts only there.

The long-video job and the benchmark report these; stages may run inside one another
(a crop video's encode inside the crop pass, a chunk's stages inside the long job's),
so each stage's clock pauses while a nested stage runs.  Each thread keeps its own nesting; with chunk
workers running beside detection, the stages' sum exceeds the wall time.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes(dict):
    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._lock = threading.Lock()

    def _add(self, name: str, seconds: float) -> None:
        with self._lock:
            self[name] = self.get(name, 0.0) + seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        stack: list[tuple[str, float]] = self._local.__dict__.setdefault("stack", [])
        now = time.perf_counter()
        if stack:  # pause the enclosing stage
            outer, since = stack[-1]
            self._add(outer, now - since)
        stack.append((name, now))
        try:
            yield
        finally:
            end = time.perf_counter()
            _, since = stack.pop()
            self._add(name, end - since)
            if stack:  # resume the enclosing stage
                outer, _ = stack[-1]
                stack[-1] = (outer, end)

    def rounded(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 3) for k, v in self.items()}
