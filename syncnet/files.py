"""Output files written safely: atomically (a temporary name, then a rename) and into
folders checked to be writable before any work starts."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError


def part_path(path: str | Path) -> Path:
    """The temporary name `path` is written under before its rename: hidden, and unique to
    this process and call (pid + random token), so two writers never share one, even
    outside the output lock; the suffix stays last for FFmpeg's choice of muxer."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.part{path.suffix}")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` via a temporary file and a rename.  The file is created
    with mode 0666 less the umask, as any other output (mkstemp would make it 0600)."""
    path = Path(path)
    tmp = part_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays, and paths, as plain JSON values."""
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
