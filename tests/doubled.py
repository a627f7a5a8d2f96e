"""Run a top-level script with the test doubles in place of the two networks.

    python tests/doubled.py process_long_video.py --input_video ... --output_dir ...

The script runs as it is (argument parsing, output lock, exit codes, stderr), only
`syncnet._cli.models.load_models` hands out `FixedBoxDetector` and `BrightnessLoudnessSyncNet`,
so job-level fault tests need no weights and little CPU.  Environment knobs:
SYNCNET_TEST_FAIL_CHUNK: a chunk name whose analysis raises RuntimeError;
SYNCNET_TEST_HOLD: a file; while it exists the run holds at SYNCNET_TEST_HOLD_AT:
`record` (after each chunk the job records, once it has recorded SYNCNET_TEST_HOLD_AFTER
chunks, 1 by default, in this process: the cluster's driver), `saved` (the same count, at the
checkpoint saved after a chunk: one machine, where a resumed run goes on from it) or
`detect` (each detector batch but a detector's first: the cluster's workers too).  Holding, it first creates FILE.held,
so a test can stop the run at a known point however loaded the machine is (the hold ends
by itself after HOLD_LIMIT seconds: a broken test fails, it does not hang).
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from syncnet.allocator import preload_and_reexec  # noqa: E402

# Ctrl-C as a terminal gives it: a test suite started in the background (`cmd &` in a shell
# without job control, nohup) ignores SIGINT, and its children would inherit that.
signal.signal(signal.SIGINT, signal.default_int_handler)

# As the scripts do, but before torch is imported below (the scripts import it later):
# the script's own entry point then finds jemalloc loaded and goes on.
preload_and_reexec()

import syncnet._cli.models  # noqa: E402
import syncnet.jobs.longvideo  # noqa: E402
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector  # noqa: E402

HOLD_LIMIT = 120.0


def hold(at: str) -> None:
    """Block here while the SYNCNET_TEST_HOLD file exists, when SYNCNET_TEST_HOLD_AT is `at`."""
    path = os.environ.get("SYNCNET_TEST_HOLD")
    if not path or os.environ.get("SYNCNET_TEST_HOLD_AT") != at or not os.path.exists(path):
        return
    Path(path + ".held").touch()
    end = time.monotonic() + HOLD_LIMIT
    while os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.05)


class HeldDetector(FixedBoxDetector):
    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        if self.frames:
            hold("detect")
        return super().detect_batch(images_rgb, conf_th, scale)


def load_models(*args, need_s3fd: bool = True, need_syncnet: bool = True, **kwargs):
    """`syncnet._cli.models.load_models` for every tool: the doubles of the networks asked for."""
    return (HeldDetector() if need_s3fd else None), (BrightnessLoudnessSyncNet() if need_syncnet else None)


syncnet._cli.models.load_models = load_models
_fail = os.environ.get("SYNCNET_TEST_FAIL_CHUNK")
if _fail:
    _analyse_chunk = syncnet.jobs.longvideo.LongVideoJob._analyse_chunk

    def failing(self, chunk, window):
        if chunk.name == _fail:
            raise RuntimeError(f"planted failure of {chunk.name}")
        return _analyse_chunk(self, chunk, window)

    syncnet.jobs.longvideo.LongVideoJob._analyse_chunk = failing

_record = syncnet.jobs.longvideo.LongVideoJob.record
_recorded = 0


_saved = syncnet.jobs.longvideo.LongVideoJob._saved


def _enough_recorded() -> bool:
    return _recorded >= int(os.environ.get("SYNCNET_TEST_HOLD_AFTER", "1"))


def recorded_then_hold(self, *args, **kwargs):
    global _recorded
    _record(self, *args, **kwargs)
    _recorded += 1
    if _enough_recorded():
        hold("record")


def saved_then_hold(self):
    _saved(self)
    if _enough_recorded():
        hold("saved")


syncnet.jobs.longvideo.LongVideoJob.record = recorded_then_hold
syncnet.jobs.longvideo.LongVideoJob._saved = saved_then_hold

script = str(REPO / sys.argv[1])
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
