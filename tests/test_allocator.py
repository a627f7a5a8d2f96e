"""The scripts keep freed memory for reuse: big arrays stop faulting in fresh pages."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from syncnet.allocator import keep_freed_memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

applied = keep_freed_memory(default=sys.argv[2] == "1")
after_free = []
for _ in range(4):
    a = np.empty(200 << 20, np.uint8)
    a.fill(1)  # touch every page, as a decoded batch or an activation does
    del a
    after_free.append(rss())
print(json.dumps({"applied": applied, "after_free": after_free}))
"""


def probe(env_value: str | None, default: bool = True) -> dict:
    env = dict(os.environ)
    env.pop("SYNCNET_KEEP_FREED_MEMORY", None)
    if env_value is not None:
        env["SYNCNET_KEEP_FREED_MEMORY"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE, str(REPO), "1" if default else "0"], capture_output=True,
                         text=True, env=env, check=True).stdout
    return json.loads(out)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_reused_and_the_opt_out_works():
    tuned, default = probe(None), probe("0")
    assert tuned["applied"] and not default["applied"]
    mb = 1 << 20
    # glibc's default: a 200 MB array is a mapping of its own, handed back when freed
    # (and the next one is faulted in and zeroed by the kernel again).
    # Kept: the pages stay with the process after the first array, and are reused.
    assert min(tuned["after_free"]) > min(default["after_free"]) + 150 * mb, (tuned, default)
    assert max(tuned["after_free"]) - min(tuned["after_free"]) < 20 * mb, tuned
    # The long-running scripts leave it off unless asked; the variable wins both ways.
    assert not probe(None, default=False)["applied"] and probe("1", default=False)["applied"]


def test_one_video_scripts_apply_it_long_running_ones_do_not(tmp_path):
    """run_main applies it for the one-video scripts; process_long_video.py keeps glibc's
    defaults (flat memory over hours); -v logs it when applied."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCNET_KEEP_FREED_MEMORY"}
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    for name, args, applied in [("run_syncnet.py", ["--videofile", str(tmp_path / "none.avi")], glibc),
                                ("process_long_video.py", ["--input", str(tmp_path / "none.mp4"),
                                                           "--output_dir", str(tmp_path / "out")], False)]:
        proc = subprocess.run([sys.executable, str(REPO / name), "-v", *args], capture_output=True, text=True,
                              env=env)
        assert proc.returncode != 0  # the file does not exist: one clear error, as always
        assert ("malloc tuned to keep freed memory: True" in proc.stderr) == applied, (name, proc.stderr[-300:])


PROBE_RELEASE = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from syncnet.allocator import keep_freed_memory, release_freed_memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

keep_freed_memory()
keep = []
for size in (150, 90, 210, 60, 180):  # changing sizes, as crop buffers and regions are
    a = np.ones(size << 20, np.uint8)
    keep.append(np.ones(1 << 20, np.uint8))  # a small live block after each: fragments the heap
    del a
kept = rss()
release_freed_memory()
print(json.dumps({"kept": kept, "released": rss()}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_hands_kept_memory_back():
    out = json.loads(subprocess.run([sys.executable, "-c", PROBE_RELEASE, str(REPO)], capture_output=True,
                                    text=True, check=True).stdout)
    assert out["kept"] - out["released"] > 150 << 20, out
