"""The memory allocator: jemalloc preloaded where installed, else glibc's malloc tuned.

Every S3FD batch allocates activations of a few hundred MB, every SyncNet batch and
decoded batch tens of MB.  glibc serves blocks that large with fresh mappings and
unmaps them on free, so every forward pass had the kernel map and zero hundreds of MB
again: 14% of S3FD's and 17% of SyncNet's CPU time was system time on the 2-core
machine.  Keeping freed memory instead (`mallopt`: 1 GB mmap threshold, no trimming)
removed that, but in a long-running process the kept blocks of changing sizes
fragment: a 3-minute long job grew from 1.5 GB to 1.6-2.6 GB, so the long job and the
batch runner had to stay on glibc's defaults and ran about a fifth slower.

jemalloc (Debian's libjemalloc2; PyTorch's CPU tuning guide recommends it) keeps freed
pages for reuse, marks those unused for a while as free to the kernel (its decay), and
hands everything back when purged: reuse for speed, a purge per chunk for a flat peak.
It can only replace malloc before the process
starts, so the scripts re-execute themselves once with it in LD_PRELOAD
(`preload_and_reexec`, called by each script's entry point): same interpreter, same
argv, same pid, stdin and signals; nothing has run yet.  Where it is not installed,
or SYNCNET_ALLOCATOR=glibc, nothing is re-executed and the glibc settings below apply
(`keep_freed_memory`: on in the one-video scripts, off in the long-running ones, as
before; SYNCNET_KEEP_FREED_MEMORY=1/0 overrides).  The long job and the batch runner
also purge what is kept after every chunk and file (`release_freed_memory`), so the peak
stays flat whatever the load (jemalloc's decay is in wall time).  Figures: docs/speed.md.

SYNCNET_ALLOCATOR: `auto` (default: jemalloc, else tcmalloc, else glibc), `jemalloc`,
`tcmalloc` (libtcmalloc-minimal4), `glibc` (no preload: the opt-out).  A user's own
LD_PRELOAD is left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform
import sys
import sysconfig
from pathlib import Path

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = (1 << 31) - 1
OPT_OUT = "SYNCNET_KEEP_FREED_MEMORY"  # glibc only; 1: on everywhere, 0: off everywhere, unset: the script's default
CHOICE = "SYNCNET_ALLOCATOR"  # auto | jemalloc | tcmalloc | glibc
REEXECUTED = "SYNCNET_ALLOCATOR_REEXEC"  # the pid that re-executed itself: at most once per process

# The library files, in the order `auto` prefers them (Debian: libjemalloc2, libtcmalloc-minimal4).
LIBRARIES = {"jemalloc": ("libjemalloc.so.2",), "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")}
# jemalloc's settings unless the user set MALLOC_CONF (measured in docs/speed.md):
# background_thread: pages are handed back by a thread of its own, not the networks';
# oversize_threshold:0: blocks over 8 MB (S3FD's activations) stay in the ordinary arenas
# instead of a dedicated one that hands them back at once; muzzy_decay_ms:-1: freed pages,
# after the 10 s dirty decay, are only marked free (MADV_FREE: the kernel takes them when
# it needs memory, and reusing them faults nothing) instead of unmapped (a fault and a
# zeroing on reuse).  The jobs purge all of it after every chunk or file.
JEMALLOC_CONF = "background_thread:true,oversize_threshold:0,muzzy_decay_ms:-1"
_ARENAS_ALL = 4096  # jemalloc's MALLCTL_ARENAS_ALL: "arena.4096.purge" purges every arena

_libc = None  # set once the glibc settings are applied


def _library_dirs() -> list[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu"
    return [Path(d) for d in (f"/usr/lib/{multiarch}", f"/lib/{multiarch}", "/usr/lib64", "/usr/lib",
                              "/usr/local/lib")]


def find_library(name: str) -> str | None:
    """The path of allocator `name`'s shared library, None where it is not installed."""
    for file in LIBRARIES.get(name, ()):
        for folder in _library_dirs():
            if (folder / file).is_file():
                return str(folder / file)
    return None


def loaded() -> tuple[str, str] | None:
    """(name, path) of the jemalloc or tcmalloc library mapped into this process, else None."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        path = fields[5] if len(fields) == 6 else ""
        base = os.path.basename(path)
        for name, files in LIBRARIES.items():
            if base.startswith(files):  # libtcmalloc_minimal.so.4.5.10
                return name, path
    return None


def _wanted() -> list[str]:
    choice = os.environ.get(CHOICE, "auto").strip().lower() or "auto"
    if choice == "auto":
        return list(LIBRARIES)
    return [choice] if choice in LIBRARIES else []  # glibc, or a name we do not know: no preload


def preload_and_reexec() -> None:
    """Re-execute this command once with jemalloc (or tcmalloc) in LD_PRELOAD, where one is
    installed and wanted, Linux only; returns (doing nothing) when it is not installed,
    already loaded, opted out (SYNCNET_ALLOCATOR=glibc), the user set LD_PRELOAD, or this
    process already re-executed itself.  Call before any work: `execve` replaces the
    process (same pid, argv, stdin, exit code and signals)."""
    if platform.system() != "Linux" or loaded() is not None:
        return
    if os.environ.get("LD_PRELOAD") or os.environ.get(REEXECUTED) == str(os.getpid()):
        return  # the user's own preload, or ours did not take: never loop
    path = next((p for p in map(find_library, _wanted()) if p), None)
    if path is None:
        return
    env = dict(os.environ, LD_PRELOAD=path, **{REEXECUTED: str(os.getpid())})
    if "jemalloc" in path:
        env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    argv = [sys.executable, *getattr(sys, "orig_argv", [sys.executable, *sys.argv])[1:]]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as exc:  # the interpreter could not be run again: carry on as we are
        log.debug("could not re-execute with %s preloaded: %s", path, exc)


def in_use() -> dict:
    """The allocator of this process, for logs and the benchmark: name (jemalloc, tcmalloc,
    glibc tuned, glibc defaults), the library's path and its settings."""
    found = loaded()
    if found is not None:
        name, path = found
        return {"name": name, "library": path,
                "settings": os.environ.get("MALLOC_CONF") if name == "jemalloc" else None}
    return {"name": "glibc tuned" if _libc is not None else "glibc defaults", "library": None,
            "settings": f"mmap_threshold={MMAP_THRESHOLD},trim_threshold={TRIM_THRESHOLD}" if _libc else None}


def keep_freed_memory(default: bool = True) -> bool:
    """Tune glibc's malloc for this process (once) unless SYNCNET_KEEP_FREED_MEMORY says
    otherwise (`default` when unset); False where it was not applied, and where jemalloc or
    tcmalloc serves malloc (they keep freed memory already)."""
    global _libc
    if _libc is not None:
        return True
    wanted = os.environ.get(OPT_OUT, "").strip()
    if not (wanted == "1" or (wanted != "0" and default)):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or loaded() is not None:
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
    """Hand freed memory kept for reuse back to the OS (between chunks or files): glibc's
    after `keep_freed_memory`, jemalloc's (it would hand it back after its decay time
    anyway; a purge here keeps the peak flat whatever the machine's load)."""
    if _libc is not None:
        _libc.malloc_trim(0)
        return
    found = loaded()
    if found is not None and found[0] == "jemalloc":
        try:
            ctypes.CDLL(found[1]).mallctl(f"arena.{_ARENAS_ALL}.purge".encode(), None, None, None,
                                          ctypes.c_size_t(0))
        except (OSError, AttributeError) as exc:
            log.debug("jemalloc purge failed: %s", exc)
