"""Writers of result files.  Everything is written atomically: a temporary file in the
same directory, then a rename, so a run killed at any moment leaves either the old
complete file or the new complete file, never half of one."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
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


def offsets_lines(results: list) -> str:
    """offsets.txt of the reference: one `TRACK i: OFFSET o, CONF c` line per track."""
    return "".join("TRACK %d: OFFSET %d, CONF %.3f\n" % (i, int(r.offset), float(r.confidence))
                   for i, r in enumerate(results))


def track_record(index: int, result, file: str | None = None) -> dict:
    """One track's entry of offsets.json and of the summaries."""
    rec = {"track": index, "offset": int(result.offset), "confidence": round(float(result.confidence), 6),
           "min_dist": round(float(result.min_dist), 6), "n_frames": int(result.n_frames),
           "framewise_conf": [round(float(v), 4) for v in result.framewise_conf]}
    if file is not None:
        rec["file"] = file
    return rec


def write_sync_results(work_dir: str | Path, results: list, files: list[str], vshift: int) -> None:
    """offsets.txt, offsets.json and activesd.pckl (the per-track dists the visualisation reads)."""
    import pickle

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(work / "activesd.pckl", pickle.dumps([r.dists for r in results]))
    write_json_atomic(work / "offsets.json", {
        "vshift": vshift,
        "tracks": [track_record(i, r, f) for i, (r, f) in enumerate(zip(results, files))],
    })
    write_bytes_atomic(work / "offsets.txt", offsets_lines(results).encode())
