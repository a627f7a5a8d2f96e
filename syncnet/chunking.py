"""Chunk plans (pure arithmetic) and cutting a source by a plan.

A plan is a list of `Chunk(index, start, end)` in seconds of the source.  The media
layer later snaps each cut to the source's frame times (`media.cut`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from .media import MediaInfo

# Shorter sources cannot give a SyncNet result worth a chunk (it needs 6+ frames of
# face and sound); refusing early beats a chunk that fails later.
MIN_SOURCE_SECONDS = 0.5


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def name(self) -> str:
        return f"chunk_{self.index:03d}"


def _check_source(total: float) -> None:
    if total < MIN_SOURCE_SECONDS:
        raise InputError(f"the input is too short to chunk: {total:.2f} s "
                         f"(at least {MIN_SOURCE_SECONDS} s is needed)")


def plan_time_chunks(total: float, duration: float = 30.0, overlap: float = 5.0) -> list[Chunk]:
    """Chunks of `duration` s starting every `duration - overlap` s from 0.

    Together they cover [0, total]; the last one ends at `total`; none lies wholly
    inside another (the plan stops at the first chunk that reaches the end).
    """
    if duration <= 0:
        raise InputError(f"chunk duration must be positive (got {duration:g})")
    if overlap < 0:
        raise InputError(f"overlap must not be negative (got {overlap:g})")
    if overlap >= duration:
        raise InputError(f"overlap ({overlap:g} s) must be shorter than the chunk duration ({duration:g} s)")
    _check_source(total)
    step = duration - overlap
    chunks: list[Chunk] = []
    i = 0
    while True:
        start = i * step
        end = min(start + duration, total)
        chunks.append(Chunk(i, round(start, 6), round(end, 6)))
        if end >= total - 1e-9:
            return chunks
        i += 1


def plan_silence_chunks(total: float, silences: list[tuple[float, float]],
                        min_chunk: float = 5.0) -> list[Chunk]:
    """Cut in the middle of each silence; pieces shorter than `min_chunk` join a neighbour.

    Pieces grow left to right until they reach `min_chunk`; a short last piece joins
    the one before it.  The chunks tile [0, total] without overlap.
    """
    if min_chunk < 0:
        raise InputError(f"min_chunk must not be negative (got {min_chunk:g})")
    _check_source(total)
    cuts = sorted((a + b) / 2 for a, b in silences if 0 < (a + b) / 2 < total)
    bounds = [0.0]
    for c in cuts:
        if c - bounds[-1] >= min_chunk:
            bounds.append(c)
    if len(bounds) > 1 and total - bounds[-1] < min_chunk:
        bounds.pop()
    bounds.append(total)
    return [Chunk(i, round(a, 6), round(b, 6)) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def cut_chunks(src: str | Path, chunks: list[Chunk], out_dir: str | Path, info: MediaInfo | None = None,
               progress: bool = False) -> list[dict]:
    """Cut every planned chunk to `out_dir/chunk_XXX.mp4`; write `chunks.json` there.

    Returns the records of `chunks.json` (index, file, start, end, duration), with
    start and end snapped to the source's frame times as actually cut.
    """
    from tqdm import tqdm

    from . import media
    from .results import write_json_atomic

    info = info or media.probe(src)
    out = ensure_writable_dir(out_dir)
    records = []
    for chunk in tqdm(chunks, desc="cutting", unit="chunk", disable=not progress):
        path = out / f"{chunk.name}.mp4"
        start, end = media.cut(src, path, chunk.start, chunk.end, info=info)
        records.append({"index": chunk.index, "file": path.name, "start": round(start, 6),
                        "end": round(end, 6), "duration": round(end - start, 6)})
        write_json_atomic(out / "chunks.json", {"source": str(src), "chunks": records})
    return records


def ensure_writable_dir(path: str | Path) -> Path:
    """Create `path` if needed; InputError when it cannot be created or written."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create output directory {p}: {exc.strerror or exc}") from exc
    if not p.is_dir():
        raise InputError(f"output path {p} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError(f"output directory {p} is not writable")
    return p
