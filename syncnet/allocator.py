"""Keep freed memory for reuse instead of handing it back to the OS (glibc only).

glibc serves blocks above its mmap threshold (128 KB, adapting up to 32 MB) with fresh
mappings and unmaps them on free.  Every S3FD batch allocates activations of a few
hundred MB and every decoded batch tens of MB, so each forward pass faulted in, and
had the kernel zero, hundreds of MB of new pages: on the 2-core CPU machine 14% of
S3FD's and 17% of SyncNet's CPU time was system time.  With a 1 GB threshold and no
trimming the process keeps what it freed and reuses it (measured: S3FD 7.9 -> 6.7 s,
SyncNet 7.3 -> 5.8 s per batch set; peak RSS +15%, and it no longer shrinks between
batches).

The price is memory: kept blocks are never returned, and blocks of changing sizes
(crop buffers, track lengths, regions) fragment what is kept.  A 3-minute long job
grew from 1.3 to 2.5 GB; handing the kept memory back after each chunk or file
(`release_freed_memory`, `malloc_trim`) stopped the growth, but peaks still came
higher and less predictable than glibc's (1.6-1.9 GB with one spike to 2.5 GB, where
glibc's defaults hold 1.5 GB flat).  So it is on by default only in the one-video
scripts (run_pipeline.py, run_syncnet.py, run_visualise.py: short processes, as
when a shell loop runs them chunk by chunk), and opt-in for the long-running ones
(process_long_video.py, batch_process.py): SYNCNET_KEEP_FREED_MEMORY=1 turns it on
everywhere, =0 off everywhere.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
OPT_OUT = "SYNCNET_KEEP_FREED_MEMORY"  # 1: on everywhere, 0: off everywhere, unset: the script's default

_libc = None  # set once the settings are applied


def keep_freed_memory(default: bool = True) -> bool:
    """Tune glibc's malloc for this process (once) unless SYNCNET_KEEP_FREED_MEMORY says
    otherwise (`default` when unset); False where it was not applied."""
    global _libc
    if _libc is not None:
        return True
    wanted = os.environ.get(OPT_OUT, "").strip()
    if not (wanted == "1" or (wanted != "0" and default)):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        ok = False
    log.debug("malloc tuned to keep freed memory: %s", ok)
    _libc = libc if ok else None
    return ok


def release_freed_memory() -> None:
    """Hand the memory kept by `keep_freed_memory` back to the OS (between chunks or files)."""
    if _libc is not None:
        _libc.malloc_trim(0)
