"""The long job cuts the next chunk's file ahead, on a thread whose FFmpeg runs at nice 19;
each chunk is cut exactly once, whatever order its chunks are taken in."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from syncnet.chunking import Chunk
from syncnet.jobs.cutahead import LOWEST, CutAhead, can_restore_priority


def chunks(n: int) -> list[Chunk]:
    return [Chunk(index=i, start=25.0 * i, end=25.0 * i + 30.0) for i in range(n)]


class Recorder:
    """A stand-in for media.cut: records which chunk was cut, on which thread, at what
    priority a process it starts runs (`nice` prints its own niceness)."""

    def __init__(self, fail: int | None = None, seconds: float = 0.0):
        self.calls: list[tuple[int, str, int]] = []
        self.fail, self.seconds = fail, seconds

    def __call__(self, chunk: Chunk) -> tuple[float, float]:
        niceness = int(subprocess.run(["sh", "-c", f"sleep {self.seconds}; nice"], capture_output=True, text=True,
                                      check=True).stdout)
        self.calls.append((chunk.index, threading.current_thread().name, niceness))
        if chunk.index == self.fail:
            raise OSError("disk full")
        return chunk.start, chunk.end


def wait_for(n: int, rec: Recorder) -> None:
    deadline = time.monotonic() + 120  # nice 19 on a loaded machine: slow
    while len(rec.calls) < n and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.skipif(not can_restore_priority(), reason="cut ahead: Linux, with the right to raise priority again")
def test_next_chunk_is_cut_ahead_at_the_lowest_priority():
    plan, rec = chunks(3), Recorder()
    cuts = CutAhead(rec, plan)
    try:
        wait_for(1, rec)  # the first chunk is under way before anyone asks for it
        assert [c[0] for c in rec.calls] == [0]
        assert cuts.take(plan[0]) == (0.0, 30.0)
        wait_for(2, rec)
        assert cuts.take(plan[1]) == (25.0, 55.0)
        wait_for(3, rec)  # done before it is needed: nice 19 all along
        assert cuts.take(plan[2]) == (50.0, 80.0)
    finally:
        cuts.close()
    assert [c[0] for c in rec.calls] == [0, 1, 2]
    assert all(name.startswith("cut-ahead") and nice == LOWEST for _, name, nice in rec.calls), rec.calls
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0  # the caller keeps its priority


@pytest.mark.skipif(not can_restore_priority(), reason="needs the right to raise priority again")
def test_a_cut_waited_for_goes_back_to_normal_priority():
    """The job waits for it: behind every other process of a shared machine it could starve."""
    plan, rec = chunks(2), Recorder(seconds=1.0)
    cuts = CutAhead(rec, plan)
    try:
        cuts.take(plan[0])  # waited for from the start: its `sleep; nice` ends at nice 0
        wait_for(2, rec)
        cuts.take(plan[1])  # cut ahead while nobody waited: nice 19 all along
    finally:
        cuts.close()
    assert [(i, nice) for i, _, nice in rec.calls] == [(0, 0), (1, LOWEST)], rec.calls


@pytest.mark.skipif(not can_restore_priority(), reason="cut ahead: Linux, with the right to raise priority again")
def test_out_of_order_takes_cut_each_chunk_once_and_errors_reach_the_taker():
    plan, rec = chunks(4), Recorder(fail=2)
    cuts = CutAhead(rec, plan)
    try:
        assert cuts.take(plan[1]) == (25.0, 55.0)  # a retried chunk first: cut now, in line
        assert cuts.take(plan[0]) == (0.0, 30.0)  # was ahead; its next (1) is taken already
        with pytest.raises(OSError, match="disk full"):
            cuts.take(plan[2])
        assert cuts.take(plan[3]) == (75.0, 105.0)
    finally:
        cuts.close()
    assert sorted(c[0] for c in rec.calls) == [0, 1, 2, 3]
    assert [c for c in rec.calls if c[0] == 3][0][1].startswith("cut-ahead")  # started despite 2's failure
    assert [c for c in rec.calls if c[0] == 1][0][1] == threading.current_thread().name


def test_disabled_cuts_everything_in_line():
    plan, rec = chunks(2), Recorder()
    cuts = CutAhead(rec, plan, enabled=False)
    assert rec.calls == []
    assert [cuts.take(c) for c in plan] == [(0.0, 30.0), (25.0, 55.0)]
    cuts.close()
    assert [(i, name) for i, name, _ in rec.calls] == [(0, threading.current_thread().name),
                                                       (1, threading.current_thread().name)]
