"""The memory allocator: the scripts re-execute themselves once with jemalloc preloaded
where it is installed (argv, stdin, pid, exit code and stderr pass through; the opt-out
and a missing library fall back to glibc, never looping), and glibc, where it serves,
keeps freed memory for reuse: big arrays stop faulting in fresh pages."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from syncnet.allocator import JEMALLOC_CONF, find_library
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
    """With glibc serving (SYNCNET_ALLOCATOR=glibc), run_main applies it for the one-video
    scripts; process_long_video.py keeps glibc's defaults (flat memory over hours); -v logs
    it when applied."""
    env = {k: v for k, v in os.environ.items() if k not in ("SYNCNET_KEEP_FREED_MEMORY", "LD_PRELOAD")}
    env["SYNCNET_ALLOCATOR"] = "glibc"
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


# ------------------------------------------------------------------ jemalloc, preloaded by a re-execution

JEMALLOC = find_library("jemalloc")
needs_jemalloc = pytest.mark.skipif(platform.system() != "Linux" or JEMALLOC is None,
                                    reason="jemalloc is not installed (Debian: apt-get install libjemalloc2)")

# Prints what it was started with, once per start; re-executes itself as the scripts do
# (unless told to find no library); then reads stdin, writes stderr and exits 3.
REEXEC = r"""
import json, os, sys
sys.path.insert(0, os.environ["REPO"])
from syncnet import allocator
if os.environ.get("NO_LIBRARY"):
    allocator.find_library = lambda name: None
if os.environ.get("BAD_LIBRARY"):  # a file ld.so cannot preload: the re-execution must not repeat
    allocator.find_library = lambda name: os.environ["BAD_LIBRARY"]
print(json.dumps({"start": sys.argv[1:], "pid": os.getpid()}), flush=True)
allocator.preload_and_reexec()
print(json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "stdin": sys.stdin.read(),
                  "allocator": allocator.in_use()}), flush=True)
print("to stderr", file=sys.stderr)
sys.exit(3)
"""


def reexec(tmp_path, **env_extra) -> tuple[subprocess.CompletedProcess, list[dict]]:
    script = tmp_path / "probe.py"
    script.write_text(REEXEC)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "SYNCNET_ALLOCATOR")}
    env.update(REPO=str(REPO), **env_extra)
    proc = subprocess.run([sys.executable, "-u", str(script), "a b", "--x", "é"], input="piped in",
                          capture_output=True, text=True, env=env, timeout=60)
    return proc, [json.loads(line) for line in proc.stdout.splitlines()]


@needs_jemalloc
def test_reexec_preloads_jemalloc_once_and_passes_everything_through(tmp_path):
    proc, lines = reexec(tmp_path)
    started, done = [x for x in lines if "start" in x], [x for x in lines if "argv" in x]
    assert len(started) == 2 and len(done) == 1, lines  # started twice (the re-execution), ran once
    assert started[0]["pid"] == started[1]["pid"] == done[0]["pid"]  # the same process: signals reach it
    assert done[0]["argv"] == ["a b", "--x", "é"] and done[0]["stdin"] == "piped in"
    assert done[0]["allocator"] == {"name": "jemalloc", "library": JEMALLOC, "settings": JEMALLOC_CONF}
    assert proc.returncode == 3 and proc.stderr == "to stderr\n"


@needs_jemalloc
def test_opt_out_missing_library_and_a_failed_preload_run_on_glibc(tmp_path):
    for extra in ({"SYNCNET_ALLOCATOR": "glibc"}, {"NO_LIBRARY": "1"}):
        proc, lines = reexec(tmp_path, **extra)
        assert len(lines) == 2 and lines[1]["allocator"]["name"] == "glibc defaults", (extra, lines)
        assert proc.returncode == 3 and proc.stderr == "to stderr\n"
    # ld.so cannot preload a text file (it says so on stderr): one re-execution, no loop.
    proc, lines = reexec(tmp_path, BAD_LIBRARY=str(tmp_path / "probe.py"))
    assert [("start" in x) for x in lines] == [True, True, False], lines
    assert lines[-1]["allocator"]["name"] == "glibc defaults" and proc.returncode == 3


@needs_jemalloc
def test_scripts_run_with_jemalloc_and_keep_their_error_line(tmp_path):
    """The scripts' entry points re-execute; exit code and the one error line pass through."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SYNCNET_ALLOCATOR")}
    proc = subprocess.run([sys.executable, str(REPO / "run_syncnet.py"), "-v", "--videofile",
                           str(tmp_path / "none.avi")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert f"memory allocator: {{'name': 'jemalloc', 'library': '{JEMALLOC}'" in proc.stderr
    assert "malloc tuned" not in proc.stderr  # glibc's settings are not applied beside it
    quiet = subprocess.run([sys.executable, str(REPO / "process_long_video.py"), "--input", str(tmp_path / "no.mp4"),
                            "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, env=env,
                           timeout=120)
    assert quiet.returncode == 2 and quiet.stderr.count("\n") == 1 and "error" in quiet.stderr, quiet.stderr


PURGE = r"""
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from syncnet.allocator import in_use, release_freed_memory

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

for _ in range(3):
    a = np.ones(200 << 20, np.uint8)
    del a
kept = rss()
release_freed_memory()
print(json.dumps({"allocator": in_use()["name"], "kept": kept, "released": rss()}))
"""


@needs_jemalloc
def test_jemalloc_keeps_freed_memory_and_the_jobs_purge_hands_it_back():
    """Decay off (-1): the 200 MB stay with the process until release_freed_memory purges them."""
    env = dict(os.environ, LD_PRELOAD=JEMALLOC, MALLOC_CONF=JEMALLOC_CONF + ",dirty_decay_ms:-1,muzzy_decay_ms:-1")
    out = json.loads(subprocess.run([sys.executable, "-c", PURGE, str(REPO)], capture_output=True, text=True,
                                    env=env, check=True, timeout=60).stdout)
    assert out["allocator"] == "jemalloc"
    assert out["kept"] - out["released"] > 150 << 20, out


REUSE = r"""
import resource, time
import numpy as np
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    a = np.ones(100 << 20, np.uint8)  # an activation's size; freed, then a pause, as between batches
    del a
    time.sleep(0.3)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@needs_jemalloc
def test_jemalloc_settings_reuse_big_blocks_without_faulting_them_in_again():
    """With JEMALLOC_CONF a freed 100 MB block is reused; with jemalloc's defaults (or glibc's)
    each one is faulted in and zeroed afresh, the cost this module exists to remove."""
    def faults(**env) -> int:
        clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
        return int(subprocess.run([sys.executable, "-c", REUSE], capture_output=True, text=True, check=True,
                                  env={**clean, **env}, timeout=60).stdout)
    ours = faults(LD_PRELOAD=JEMALLOC, MALLOC_CONF=JEMALLOC_CONF)
    defaults = faults(LD_PRELOAD=JEMALLOC, MALLOC_CONF="background_thread:true")
    assert ours < 0.5 * defaults, (ours, defaults)
