"""Wall time per stage, exclusive: time spent in a nested stage counts only there.

The long-video job and the benchmark report these; the stages run inside one another
(SyncNet runs inside the crop pass, as each track completes), so each stage's clock
pauses while a nested stage runs.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimes(dict):
    def __init__(self) -> None:
        super().__init__()
        self._stack: list[tuple[str, float]] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._stack:  # pause the enclosing stage
            outer, since = self._stack[-1]
            self[outer] = self.get(outer, 0.0) + now - since
        self._stack.append((name, now))
        try:
            yield
        finally:
            end = time.perf_counter()
            _, since = self._stack.pop()
            self[name] = self.get(name, 0.0) + end - since
            if self._stack:  # resume the enclosing stage
                outer, _ = self._stack[-1]
                self._stack[-1] = (outer, end)

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.items()}
