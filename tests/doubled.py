"""Run a top-level script with the test doubles in place of the two networks.

    python tests/doubled.py process_long_video.py --input_video ... --output_dir ...

The script runs as it is (argument parsing, output lock, exit codes, stderr), only
`syncnet._cli.models.load_models` hands out `FixedBoxDetector` and `BrightnessLoudnessSyncNet`,
so job-level fault tests need no weights and little CPU.  Environment knobs:
SYNCNET_TEST_DETECT_SLEEP: seconds each detector batch sleeps (to interrupt a run);
SYNCNET_TEST_FAIL_CHUNK: a chunk name whose analysis raises RuntimeError.
"""
from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from syncnet.allocator import preload_and_reexec  # noqa: E402

# As the scripts do, but before torch is imported below (the scripts import it later):
# the script's own entry point then finds jemalloc loaded and goes on.
preload_and_reexec()

import syncnet._cli.models  # noqa: E402
import syncnet.jobs.longvideo  # noqa: E402
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector  # noqa: E402


class SlowDetector(FixedBoxDetector):
    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        time.sleep(float(os.environ.get("SYNCNET_TEST_DETECT_SLEEP", "0")))
        return super().detect_batch(images_rgb, conf_th, scale)


def load_models(*args, need_s3fd: bool = True, need_syncnet: bool = True, **kwargs):
    """`syncnet._cli.models.load_models` for every tool: the doubles of the networks asked for."""
    return (SlowDetector() if need_s3fd else None), (BrightnessLoudnessSyncNet() if need_syncnet else None)


syncnet._cli.models.load_models = load_models
_fail = os.environ.get("SYNCNET_TEST_FAIL_CHUNK")
if _fail:
    _analyse_chunk = syncnet.jobs.longvideo.LongVideoJob._analyse_chunk

    def failing(self, chunk, window):
        if chunk.name == _fail:
            raise RuntimeError(f"planted failure of {chunk.name}")
        return _analyse_chunk(self, chunk, window)

    syncnet.jobs.longvideo.LongVideoJob._analyse_chunk = failing

script = str(REPO / sys.argv[1])
sys.argv = [script, *sys.argv[2:]]
runpy.run_path(script, run_name="__main__")
