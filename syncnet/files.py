"""Files handled safely: outputs written atomically (a temporary name, then a rename) into
folders checked to be writable before any work starts, and inputs checked to be readable
files before anything reads them."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import InputError


def part_path(path: str | Path) -> Path:
    """The temporary name `path` is written under before its rename: hidden, and unique to
    this process and call (pid + random token), so two writers never share one, even
    outside the output lock; the suffix stays last for FFmpeg's choice of muxer."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.part{path.suffix}")


@contextmanager
def atomic_output(path: str | Path, *, suffix: str | None = None, tmp: Path | None = None) -> Iterator[Path]:
    """Yield the temporary name to write `path` under; when the block ends normally it is
    renamed to `path`, when the block (or the rename) fails it is removed and `path`, if
    it existed, is left as it was.

    `suffix`: the temporary's suffix when not `path`'s (FFmpeg picks a muxer by it).
    `tmp`: a temporary named beforehand (`part_path`), for writers whose name must be
    known before the block, such as an FFmpeg process started earlier.
    """
    path = Path(path)
    if tmp is None:
        tmp = part_path(path if suffix is None else path.with_suffix(suffix))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file and a rename.  The file is created
    with mode 0666 less the umask, as any other output (mkstemp would make it 0600)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, default=json_default) + "\n").encode())


def json_default(value: Any) -> Any:
    """numpy scalars and arrays, and paths, as plain JSON values (`json.dumps`'s `default`)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` if needed; InputError when it cannot be created or written."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((a for a in [p, *p.parents] if a.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise InputError(f"cannot create output directory {p}: {blocker} is a file, not a directory") from exc
        raise InputError(f"cannot create output directory {p}: {exc.strerror or exc}") from exc
    if not p.is_dir():
        raise InputError(f"output path {p} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"output directory {p} is not writable")
    try:  # root passes os.access everywhere; /proc, read-only mounts and full disks do not pass this
        with tempfile.TemporaryFile(dir=p):
            pass
    except OSError as exc:
        raise InputError(f"output directory {p} is not writable ({exc.strerror or exc})") from exc
    return p


def check_input_file(path: str | os.PathLike) -> Path:
    """Reject what is not a readable file before FFmpeg (or another reader) sees it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {p}: permission denied")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty")
    return p
