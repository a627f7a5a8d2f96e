"""One writer per output folder: an advisory lock on a file inside it.

Two runs into one folder would share chunk files, summaries and staging names and
corrupt each other's results, so every job takes `output_lock(folder)` first; a second
run finds the folder taken and stops at once with one line naming the first.

`fcntl.flock` on `FOLDER/.syncnet.lock`: the kernel drops the lock when the holder's
process ends however it ends (kill -9 included), so no stale lock can block a rerun;
the file holds the holder's pid, host, start time and command line only for the message.
The file is removed on release.  Python opens it close-on-exec, so FFmpeg children
never inherit the lock.  Nesting in one thread is free (the script takes the lock
before loading models, the library job takes it again); another thread of the same
process is refused like another process.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

LOCK_NAME = ".syncnet.lock"

_held: dict[str, list] = {}  # lock path -> [owner thread id, depth, fd]
_guard = threading.Lock()


class OutputInUse(InputError):
    """The output folder is being written by another run (exit code 2)."""


def _holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file (best effort)."""
    for _ in range(20):  # the holder writes its line just after taking the lock
        try:
            raw = os.pread(fd, 4096, 0)
            if raw:
                info = json.loads(raw)
                cmd = info.get("command", "")
                cmd = cmd if len(cmd) <= 120 else cmd[:117] + "..."
                return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
                        + (f": {cmd}" if cmd else ""))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return "pid unknown"


def _open_locked(path: Path, what: str) -> int:
    """Open and lock `path`, retrying when the file was removed or replaced in between."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise InputError(f"cannot create the lock file {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise InputError(f"cannot lock {path}: {exc.strerror or exc}") from exc
            who = _holder(fd)
            os.close(fd)
            raise OutputInUse(f"{what} is in use by another run ({who}); wait for it to finish "
                              "or choose another output folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its previous holder removed while we waited to lock it
            return fd
        os.close(fd)


@contextmanager
def output_lock(folder: str | Path, name: str = LOCK_NAME, what: str | None = None) -> Iterator[Path]:
    """Hold `folder`'s lock for the block (created if missing); OutputInUse when taken.

    `what` names the locked thing in the message (default: the folder).
    """
    folder = Path(folder)
    what = what or str(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {folder}: {exc.strerror or exc}") from exc
    path = folder / name
    key = os.path.realpath(path)
    me = threading.get_ident()
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            if entry[0] != me:
                raise OutputInUse(f"{what} is in use by another run of this process; choose another "
                                  "output folder")
            entry[1] += 1
    if entry is not None:
        try:
            yield path
        finally:
            with _guard:
                entry[1] -= 1
        return
    fd = _open_locked(path, what)
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    with _guard:
        _held[key] = [me, 1, fd]
    try:
        yield path
    finally:
        with _guard:
            del _held[key]
        try:
            path.unlink(missing_ok=True)  # while still locked: the next run makes a fresh file
        except OSError:
            pass
        os.close(fd)


def reference_lock(data_dir: str | Path, reference: str):
    """The lock of one reference under a data_dir (run_pipeline.py): `DATA_DIR/.syncnet-REF.lock`.

    Runs of other references into one data_dir share no file and may run side by
    side; two runs of one reference may not.
    """
    return output_lock(data_dir, f".syncnet-{reference}.lock", what=f"reference {reference} in {data_dir}")
