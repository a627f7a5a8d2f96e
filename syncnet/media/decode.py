"""Decoding video: frames streamed in batches (optionally narrowed to a region, and
optionally copied to an AVI by the same decode), or a short clip read whole.

Frames decoded at a requested rate sit on a grid that starts at t=0 of the file (the
origin the audio is padded to as well), so frame k and sample k*rate/fps meet.
"""
from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..files import atomic_output, part_path
from ..prefetch import prefetch
from .pixels import Region, frame_shape
from .probe import TIME_EPS, MediaInfo, probe, require_video
from .process import _arg_path, _read_into, _reader, _StderrDrain, _tail, _tool

PREFETCH_BYTES = 256 << 20
AVI_COPY_THREADS = 4


@dataclass
class AviCopy:
    """An AVI the decoder writes from the very frames it yields (the reference's video.avi).

    MPEG-4 part 2 with the XVID tag at `quality` (-q:v), with `audio_wav` as PCM sound.
    FFmpeg encodes it from its own decoded pictures, so the frames do not travel back
    through a pipe as BGR; the file appears, complete, when the last frame is read.
    """

    path: Path
    audio_wav: Path | None = None
    quality: int = 2
    _tmp: Path | None = field(default=None, init=False, repr=False)

    @property
    def tmp(self) -> Path:
        # One name per instance, unique per process and call, named before the decode
        # starts: FFmpeg's argument list holds it (see `atomic_output`'s `tmp`).
        if self._tmp is None:
            self._tmp = part_path(self.path)
        return self._tmp


def iter_frames(src: str | os.PathLike, fps: float | None = 25.0, batch_size: int = 32,
                start: float | None = None, end: float | None = None,
                info: MediaInfo | None = None, prefetch_batches: int = 2,
                copy_to: AviCopy | None = None, pix_fmt: str = "bgr24",
                region: Region | None = None) -> Iterator[np.ndarray]:
    """Yield decoded frames as uint8 BGR arrays of shape (B, H, W, 3), B <= batch_size.

    With `fps`, frames sit on that rate's grid from t=0 of the file (nearest source
    frame, as FFmpeg's fps filter does); `fps=None` yields the source frames as they are.
    `start`/`end` (seconds) select the frames of [start, end) of that grid (decoding
    from the start of the file).  Up to `prefetch_batches` batches are decoded ahead in
    a thread; memory is those batches, whatever the length of the video.  Each batch
    is a fresh array the caller may keep or modify.  With `copy_to` (needs `fps`) the
    same decode also writes those frames to an AVI, which exists once the iteration
    has run to its end (it is removed if the iteration stops early).  `pix_fmt="yuv420p"`
    yields the decoder's own I420 pictures, (B, bytes) (see `frame_shape`), unconverted.
    With `region` (BGR only) the frames are that part of the picture, (B, height, width, 3),
    cut before the colour conversion (the AVI copy keeps the whole picture); see
    `region_exact` for when this equals slicing the full frames.
    """
    info = info or probe(src)
    require_video(info)
    if copy_to is not None and not fps:
        raise ValueError("an AVI copy needs a frame rate")
    w, h = info.display_size
    if region is not None:
        if pix_fmt != "bgr24":
            raise ValueError("a region is decoded as BGR only")
        if (min(region.left, region.top) < 0 or region.right > w or region.bottom > h
                or any(v % 2 for v in (region.left, region.top, region.width, region.height))
                or region.width <= 0 or region.height <= 0):
            raise ValueError(f"{region} is not an even-aligned part of a {w}x{h} picture")
    size = (region.width, region.height) if region is not None else (w, h)
    frame_bytes = math.prod(frame_shape(*size, pix_fmt))
    # At most ~256 MB decoded ahead (one batch of 4K frames at 16 a batch is 400 MB).
    depth = min(prefetch_batches, max(1, PREFETCH_BYTES // max(1, frame_bytes * batch_size)))
    yield from prefetch(_decode(src, fps, batch_size, start, end, info, copy_to, pix_fmt, region), depth)


def _decode_args(src: str | os.PathLike, fps: float | None, start: float | None, end: float | None,
                 copy_to: AviCopy | None, pix_fmt: str = "bgr24", region: Region | None = None) -> list[str]:
    filters = []
    if fps:
        filters.append(f"fps={float(fps)!r}:start_time=0")
    if start is not None or end is not None:
        lo = 0.0 if start is None else start
        if fps:  # grid frame k is at k/fps: select by frame number, exactly
            trim = f"trim=start_frame={math.ceil(lo * fps - 1e-6)}"
            if end is not None:
                trim += f":end_frame={math.ceil(end * fps - 1e-6)}"
        else:
            trim = f"trim=start={max(0.0, lo - TIME_EPS):.6f}"
            if end is not None:
                trim += f":end={end - TIME_EPS:.6f}"
        filters.append(trim)
    # No input seek for ranges: FFmpeg's fps filter picks other source frames when it
    # starts elsewhere than t=0, and a range must be exactly a slice of the full decode.
    args = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", _arg_path(src)]
    raw = ["-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    # Cut before the conversion to BGR: less to convert, to pipe and to copy.
    cut = [] if region is None else [f"crop={region.width}:{region.height}:{region.left}:{region.top}:exact=1"]
    if copy_to is None:
        args += ["-map", "0:v:0", "-an", "-sn"]
        if filters or cut:
            args += ["-vf", ",".join(filters + cut)]
        return args + raw
    # One decode, two outputs: the raw pipe, and the AVI numbered from frame 0 at `fps`.
    graph = (f"[0:v:0]{','.join(filters)},split=2[{'whole' if cut else 'raw'}][avi];"
             f"[avi]setpts=N/({float(fps)!r}*TB)[copy]" + (f";[whole]{cut[0]}[raw]" if cut else ""))
    # Slice threads: the copy is encoded in FFmpeg's main loop, in step with the pipe, and
    # one thread would make it the slowest part of a decode (measured: 3.6 -> 3.0 s per 30 s).
    avi = ["-map", "[copy]", "-c:v", "mpeg4", "-vtag", "xvid", "-q:v", str(copy_to.quality),
           "-threads", str(AVI_COPY_THREADS)]
    if copy_to.audio_wav is not None:
        args += ["-i", _arg_path(copy_to.audio_wav)]
        avi += ["-map", "1:a:0", "-c:a", "pcm_s16le"]
    return args + ["-filter_complex", graph, "-map", "[raw]", *raw, "-y", *avi, _arg_path(copy_to.tmp)]


def _finish(proc: subprocess.Popen, drain: _StderrDrain, src: str | os.PathLike) -> None:
    rc = proc.wait()
    drain.join()
    if rc != 0:
        raise MediaError(f"ffmpeg failed to decode {src}", _tail(drain.text()))


def _decode(src: str | os.PathLike, fps: float | None, batch_size: int, start: float | None,
            end: float | None, info: MediaInfo, copy_to: AviCopy | None = None,
            pix_fmt: str = "bgr24", region: Region | None = None) -> Iterator[np.ndarray]:
    size = (region.width, region.height) if region is not None else info.display_size
    shape = frame_shape(*size, pix_fmt)
    frame_bytes = math.prod(shape)
    # The AVI copy is renamed into place once the decode has run to its end, and removed
    # if it fails or the caller stops early (the generator is closed).
    copy = nullcontext() if copy_to is None else atomic_output(copy_to.path, tmp=copy_to.tmp)
    with copy, _reader(_decode_args(src, fps, start, end, copy_to, pix_fmt, region)) as (proc, drain):
        while True:
            batch = np.empty((batch_size, *shape), np.uint8)
            got = _read_into(proc.stdout, memoryview(batch).cast("B"))
            n = got // frame_bytes
            if n:
                yield batch[:n]
            if got < frame_bytes * batch_size:
                break
        _finish(proc, drain, src)


def read_frames(src: str | os.PathLike, fps: float | None = 25.0, info: MediaInfo | None = None) -> np.ndarray:
    """All frames of a short clip as one (T, H, W, 3) BGR array (for face tracks, not whole videos).

    Decoded straight into one array sized from the duration (grown if the file holds
    more): no per-batch arrays to join, no thread.
    """
    info = info or probe(src)
    require_video(info)
    shape = frame_shape(*info.display_size)
    frame_bytes = math.prod(shape)
    rate = fps or info.fps or 25.0
    frames = np.empty((int(round(info.duration * rate)) + 2, *shape), np.uint8)
    n = 0
    with _reader(_decode_args(src, fps, None, None, None)) as (proc, drain):
        while True:
            if n == len(frames):
                frames = np.concatenate([frames, np.empty_like(frames[: max(len(frames), 16)])])
            got = _read_into(proc.stdout, memoryview(frames[n:]).cast("B"))
            n += got // frame_bytes
            if n < len(frames):
                break
        _finish(proc, drain, src)
    return frames[:n]
