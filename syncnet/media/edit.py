"""Cutting a file frame-accurately, with sound and picture aligned.

Cuts re-encode and are snapped to the source's own frame timestamps, and both streams
are trimmed at that same instant (stream copy cuts at keyframes and shifts the picture
against the sound, which is the error this tool measures).
"""
from __future__ import annotations

import os
from fractions import Fraction

from ..errors import InputError
from ..files import atomic_output
from .probe import TIME_EPS, MediaInfo, _frame_times_near, _require_data_at, probe, require_video
from .process import _arg_path, run_ffmpeg


def snap_to_frame(src: str | os.PathLike, t: float, info: MediaInfo) -> float:
    """The source frame time nearest to `t`: a cut there starts both streams on a frame."""
    if t <= 0:
        return 0.0
    if t >= info.duration:
        return info.duration
    times = _frame_times_near(src, t)
    if times and info.fps:
        times.append(times[-1] + 1.0 / info.fps)  # the end of the last frame read is a boundary too
    if not times:
        rate = Fraction(info.fps_fraction) if info.fps_fraction else Fraction(info.fps)
        k = round((t - info.video_start) * rate)
        return info.video_start + float(k / rate)
    return min(times, key=lambda x: (abs(x - t), x))


def cut(src: str | os.PathLike, dst: str | os.PathLike, start: float, end: float | None,
        info: MediaInfo | None = None, crf: int = 18, preset: str = "veryfast") -> tuple[float, float]:
    """Cut [start, end) frame-accurately with sound and picture aligned; return the snapped times.

    Both cut points move to the nearest source frame time, then both streams are
    trimmed at exactly those instants and re-timed from zero.  `end=None` runs to
    the end of the input.  Written to a temporary name and renamed when complete.
    """
    info = info or probe(src)
    require_video(info)
    _require_data_at(src, start, info)
    s = snap_to_frame(src, start, info)
    e = None if end is None or end >= info.duration - TIME_EPS else snap_to_frame(src, end, info)
    if e is not None and e <= s:
        raise InputError(f"empty cut: [{start:.3f}, {end:.3f}) holds no frame")
    vtrim = f"trim=start={max(0.0, s - TIME_EPS):.6f}" + (f":end={e - TIME_EPS:.6f}" if e is not None else "")
    vf = f"{vtrim},setpts=PTS-{s:.6f}/TB"
    width, height = info.display_size
    if width % 2 or height % 2:
        vf += ",pad=ceil(iw/2)*2:ceil(ih/2)*2"  # yuv420p needs even sizes: add one black row/column
    args = ["-loglevel", "error"]
    if s > 2.0:
        args += ["-ss", f"{s - 2.0:.6f}", "-copyts"]
    args += ["-i", _arg_path(src), "-map", "0:v:0", "-vf", vf]
    if info.has_audio:
        atrim = f"atrim=start={s:.6f}" + (f":end={e:.6f}" if e is not None else "")
        args += ["-map", "0:a:0", "-af", f"{atrim},asetpts=PTS-{s:.6f}/TB", "-c:a", "aac", "-b:a", "192k"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-vsync", "passthrough", "-movflags", "+faststart"]
    with atomic_output(dst) as tmp:
        run_ffmpeg([*args, _arg_path(tmp)], f"cut {src} at {s:.3f}s")
    return s, (info.duration if e is None else e)
