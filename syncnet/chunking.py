"""Chunk plans (pure arithmetic) and cutting a source by a plan.

A plan is a list of `Chunk(index, start, end)` in seconds of the source.  The media
layer later snaps each cut to the source's frame times (`media.cut`).
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import media
from .errors import InputError
from .files import ensure_writable_dir, write_json_atomic

log = logging.getLogger(__name__)

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
    if not math.isfinite(total):
        raise InputError(f"the input's duration is not a finite number ({total})")
    if total < MIN_SOURCE_SECONDS:
        raise InputError(f"the input is too short to chunk: {total:.2f} s "
                         f"(at least {MIN_SOURCE_SECONDS} s is needed)")


def _check_finite(**values: float | None) -> None:
    """NaN compares false with everything, so a NaN length passes `<= 0` checks and a
    planner loop never reaches its end; inf ends in a NaN later.  Refuse both first."""
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise InputError(f"{name} must be a finite number (got {value})")


def plan_time_chunks(total: float, duration: float = 30.0, overlap: float = 5.0) -> list[Chunk]:
    """Chunks of `duration` s starting every `duration - overlap` s from 0.

    Together they cover [0, total]; the last one ends at `total`; none lies wholly
    inside another (the plan stops at the first chunk that reaches the end).
    """
    _check_finite(chunk_duration=duration, overlap=overlap)
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


# A silence starting or ending this close to the source's ends touches them.
EDGE = 1e-3

# Levels for splitting long pieces: RMS of 40 ms frames (one frame at 25 fps).
LEVEL_FRAME = 0.04
# Frames this close to the quietest one (in dB) count as equally quiet; among them the
# one nearest to an even split wins, so a flat level splits evenly.
LEVEL_TIE_DB = 1.0

# levels(start, end) -> dB of each LEVEL_FRAME frame from `start` (None: unknown).
Levels = Callable[[float, float], "np.ndarray | None"]


def check_silence_options(min_chunk: float, max_chunk: float | None, min_silence: float | None = None) -> None:
    """Refuse settings no plan can meet, before any work (library callers included)."""
    _check_finite(min_chunk=min_chunk, max_chunk=max_chunk, min_silence=min_silence)
    if min_silence is not None and min_silence <= 0:
        raise InputError(f"--min_silence must be positive (got {min_silence:g})")
    if min_chunk < 0:
        raise InputError(f"--min_chunk must not be negative (got {min_chunk:g})")
    if max_chunk is not None and max_chunk <= 0:
        raise InputError(f"--max_chunk must be positive (got {max_chunk:g})")
    if max_chunk is not None and max_chunk < 2 * min_chunk:
        raise InputError(f"--max_chunk ({max_chunk:g} s) must be at least twice --min_chunk ({min_chunk:g} s), "
                         "so that a long piece can be split into pieces of at least --min_chunk")


def plan_silence_chunks(total: float, silences: list[tuple[float, float]], min_chunk: float = 5.0,
                        max_chunk: float | None = None, levels: Levels | None = None) -> list[Chunk]:
    """Cut in the middle of each silence; a piece shorter than `min_chunk` joins the piece after it.

    Pieces grow left to right in one pass: a cut is kept only when the piece it closes
    is at least `min_chunk` long, so a short piece joins the one after it (its closing
    cut is dropped).  Joining the one after is what lets the first piece of the video,
    which has nothing before it, be handled like every other, and it keeps each cut at
    the earliest silence that makes its piece long enough.  A short last piece has no
    piece after it and joins the one before.  A silence touching the start or the end
    of the source gives no cut: its middle would make a chunk of nothing but silence.

    Then every piece longer than `max_chunk` is split at its quietest points (`levels`,
    see `split_long_piece`) into as few pieces as fit, each at least `min_chunk` long.
    The chunks tile [0, total] without overlap.
    """
    check_silence_options(min_chunk, max_chunk)
    _check_source(total)
    cuts = sorted((a + b) / 2 for a, b in silences
                  if math.isfinite(a) and math.isfinite(b) and a > EDGE and b < total - EDGE)
    bounds = [0.0]
    for c in cuts:
        if c - bounds[-1] >= min_chunk:
            bounds.append(c)
    if len(bounds) > 1 and total - bounds[-1] < min_chunk:
        bounds.pop()
    bounds.append(total)
    if max_chunk is not None:
        split = [0.0]
        for a, b in zip(bounds, bounds[1:]):
            split += split_long_piece(a, b, min_chunk, max_chunk, levels)[1:]
        bounds = split
    return [Chunk(i, round(a, 6), round(b, 6)) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


def split_long_piece(a: float, b: float, min_chunk: float, max_chunk: float,
                     levels: Levels | None = None) -> list[float]:
    """Bounds [a, ..., b] splitting [a, b] into the fewest pieces of at most `max_chunk`.

    Each cut goes to the quietest 40 ms frame of the window that still leaves the
    piece before it at most `max_chunk` and the rest splittable into the pieces left
    (and every piece at least `min_chunk`, which `max_chunk >= 2 * min_chunk` makes
    possible): speech is cut where it pauses, not mid-word.  Without levels, or
    where the level is flat, the cut goes to the even split point.
    """
    bounds = [a]
    while b - bounds[-1] > max_chunk + 1e-9:
        pos = bounds[-1]
        n = math.ceil((b - pos) / max_chunk - 1e-9)
        lo = max(pos + min_chunk, b - (n - 1) * max_chunk)
        hi = min(b - min_chunk, pos + max_chunk)
        even = min(max(pos + (b - pos) / n, lo), hi)
        bounds.append(_quietest(lo, hi, even, levels))
    bounds.append(b)
    return bounds


def _quietest(lo: float, hi: float, even: float, levels: Levels | None) -> float:
    """The middle of the quietest 40 ms frame inside [lo, hi]; ties go to the one nearest `even`."""

    if levels is None or hi - lo < LEVEL_FRAME:
        return even
    db = levels(lo, hi)
    if db is None or not len(db):
        return even
    db = np.asarray(db, np.float64)
    centres = lo + (np.arange(len(db)) + 0.5) * LEVEL_FRAME
    inside = centres <= hi
    db, centres = db[inside], centres[inside]
    if not len(db):
        return even
    quiet = db <= db.min() + LEVEL_TIE_DB
    candidates = centres[quiet]
    return float(candidates[np.argmin(np.abs(candidates - even))])


def audio_levels(src: str | Path, info: media.MediaInfo) -> Levels:
    """`levels(start, end)`: dB (RMS of 16 kHz mono) of each 40 ms frame from `start`.

    Decodes only the range asked for: only pieces longer than --max_chunk need it.
    """

    rate = 16000
    frame = int(round(LEVEL_FRAME * rate))

    def levels(start: float, end: float) -> np.ndarray | None:
        samples = media.read_audio(src, rate, start=start, end=end, info=info).astype(np.float64)
        n = len(samples) // frame
        if not n:
            return None
        rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
        return 20 * np.log10(np.maximum(rms, 1.0) / 32768.0)

    return levels


def cut_chunks(src: str | Path, chunks: list[Chunk], out_dir: str | Path, info: media.MediaInfo | None = None,
               progress: bool = False) -> list[dict]:
    """Cut every planned chunk to `out_dir/chunk_XXX.mp4`; write `chunks.json` there.

    Returns the records of `chunks.json` (index, file, start, end, duration), with
    start and end snapped to the source's frame times as actually cut.
    """

    info = info or media.probe(src)
    out = ensure_writable_dir(out_dir)
    earlier = _earlier_chunk_files(out)
    records = []
    for chunk in tqdm(chunks, desc="cutting", unit="chunk", disable=not progress):
        path = out / f"{chunk.name}.mp4"
        start, end = media.cut(src, path, chunk.start, chunk.end, info=info)
        records.append({"index": chunk.index, "file": path.name, "start": round(start, 6),
                        "end": round(end, 6), "duration": round(end - start, 6)})
        write_json_atomic(out / "chunks.json", {"source": str(src), "chunks": records})
    stale = sorted(earlier - {r["file"] for r in records})
    for name in stale:
        (out / name).unlink(missing_ok=True)
    if stale:
        log.info("removed %d chunk files of an earlier plan from %s: %s", len(stale), out, ", ".join(stale))
    return records


CHUNK_FILE = re.compile(r"chunk_[0-9]{3,}\.mp4")


def _earlier_chunk_files(out: Path) -> set[str]:
    """Chunk files an earlier plan left in `out`: ours by name (chunk_NNN.mp4), listed in
    its chunks.json or not.

    A new plan with fewer chunks would otherwise leave chunk_004.mp4 ... beside a
    chunks.json that no longer lists them, and a batch run over the folder would
    analyse them.  They are removed once the new plan is written; nothing else in the
    folder is touched (a listed name that is not chunk_NNN.mp4 is not ours).
    """
    names = {p.name for p in out.iterdir() if CHUNK_FILE.fullmatch(p.name) and p.is_file()}
    try:
        listed = json.loads((out / "chunks.json").read_text()).get("chunks", [])
        names |= {r["file"] for r in listed if isinstance(r.get("file"), str) and CHUNK_FILE.fullmatch(r["file"])}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    return names
