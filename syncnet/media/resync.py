"""Shifting a file's sound against its picture by a measured offset, the picture untouched.

The picture is stream-copied (its packets and their times are those of the input: no
frame is re-encoded, lost or moved); only the sound is filtered and re-encoded.  A
file measured at offset N (frames, the sign of the README: positive when the sound
leads the picture) has its sound delayed by N frames (silence added at the start) or,
for a negative N, advanced (its start trimmed, silence added at the end), and keeps
the length of its sound, so that measuring the result gives offset 0.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import InputError
from ..files import atomic_output
from .probe import MediaInfo, probe, require_audio, require_video
from .process import _arg_path, run_ffmpeg

FRAME_MS = 40.0  # one frame at the 25 fps the offsets are measured at


def _audio_codec_args(dst: Path, info: MediaInfo) -> list[str]:
    """PCM stays PCM; WebM takes Opus; everything else AAC (what our chunks carry)."""
    if info.audio[0].codec.startswith("pcm_"):
        return ["-c:a", "pcm_s16le"]
    if dst.suffix.lower() == ".webm":
        return ["-c:a", "libopus", "-b:a", "128k"]
    return ["-c:a", "aac", "-b:a", "192k"]


def shift_filter(shift_ms: float, sample_rate: int, length: float) -> str:
    """The FFmpeg audio filter that delays the sound by `shift_ms` (advances it when negative)
    and keeps `length` seconds of it, counted from t=0 of the file.

    The sound is first padded (or trimmed) to start at t=0, the origin the picture's
    times are read from; the shift is a whole number of samples."""
    samples = round(abs(shift_ms) * sample_rate / 1000)
    chain = [f"aresample={sample_rate}:async=1:first_pts=0"]
    if shift_ms > 0:
        chain.append(f"adelay=delays={samples}S:all=1")
    elif shift_ms < 0:
        chain += [f"atrim=start_sample={samples}", "asetpts=PTS-STARTPTS"]
    chain += [f"apad=whole_dur={length:.6f}", f"atrim=end={length:.6f}"]
    return ",".join(chain)


def check_shift(shift_ms: float, info: MediaInfo) -> None:
    """Refuse a shift that is not a finite number or would move all the sound out of the file."""
    if not math.isfinite(shift_ms):
        raise InputError(f"the shift must be a finite number of ms (got {shift_ms})")
    if abs(shift_ms) / 1000 >= info.duration:
        raise InputError(f"a shift of {shift_ms:g} ms is not shorter than {info.path} ({info.duration:.3f} s)")


def resync(src: str | os.PathLike, dst: str | os.PathLike, shift_ms: float,
           info: MediaInfo | None = None) -> Path:
    """Write `dst`: `src` with its sound delayed by `shift_ms` (advanced when negative), the
    picture stream-copied, the sound's length kept.  A file measured at offset N frames
    needs `shift_ms = 40 * N`.  Written to a temporary name and renamed when complete."""
    info = info or probe(src)
    require_video(info)
    require_audio(info)
    check_shift(shift_ms, info)
    dst = Path(dst)
    if dst.exists() and dst.resolve() == Path(src).resolve():
        raise InputError(f"the output {dst} is the input; give another file name")
    stream = info.audio[0]
    length = stream.duration if stream.duration else info.duration
    length = min(length, info.duration)  # from t=0: a stream that starts late is padded first
    args = ["-loglevel", "error", "-i", _arg_path(src), "-map", "0:v:0", "-map", "0:a:0", "-c:v", "copy",
            "-af", shift_filter(shift_ms, stream.sample_rate, length), *_audio_codec_args(dst, info),
            "-ar", str(stream.sample_rate), "-map_metadata", "0"]
    if dst.suffix.lower() in (".mp4", ".m4v", ".mov"):
        args += ["-movflags", "+faststart"]
    with atomic_output(dst) as tmp:
        run_ffmpeg([*args, _arg_path(tmp)], f"re-sync {src} by {shift_ms:g} ms")
    return dst
