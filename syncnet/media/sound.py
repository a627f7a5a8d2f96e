"""The soundtrack: extracted to WAV, decoded to samples, or searched for silences.

Audio is padded (or trimmed) to start at t=0 of the file, the origin of the frame
grid, so frame k and sample k*rate/fps meet.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..files import atomic_output
from .probe import TIME_EPS, MediaInfo, probe, require_audio
from .process import _arg_path, _ffmpeg_stdout, run_ffmpeg


def _audio_filter(sample_rate: int) -> str:
    # Pad (or trim) so the first sample is the file's t=0, the same origin as the frames.
    return f"aresample={sample_rate}:async=1:first_pts=0"


def _range_args(start: float | None, end: float | None) -> list[str]:
    """Output-side trimming after the filters, so the t=0 padding is applied first."""
    args = []
    if start:
        args += ["-ss", f"{start:.6f}"]
    if end is not None:
        args += ["-to", f"{end:.6f}"]
    return args


def extract_audio(src: str | os.PathLike, dst: str | os.PathLike, sample_rate: int = 16000,
                  channels: int = 1, start: float | None = None, end: float | None = None) -> Path:
    """Write the first audio stream as 16-bit PCM WAV (atomically), optionally only [start, end)."""
    info = probe(src)
    require_audio(info)
    if sample_rate <= 0 or channels <= 0:
        raise InputError("sample rate and channels must be positive")
    dst = Path(dst)
    with atomic_output(dst, suffix=dst.suffix or ".wav") as tmp:
        args = ["-i", _arg_path(src), "-map", "0:a:0", "-vn", "-af", _audio_filter(sample_rate)]
        args += _range_args(start, end)
        args += ["-ac", str(channels), "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "wav", _arg_path(tmp)]
        run_ffmpeg(["-loglevel", "error", *args], f"extract audio from {src}")
    return dst


def read_audio(src: str | os.PathLike, sample_rate: int = 16000, start: float | None = None,
               end: float | None = None, info: MediaInfo | None = None) -> np.ndarray:
    """Decode the first audio stream to mono int16 samples at `sample_rate` (from t=0 of the file)."""
    info = info or probe(src)
    require_audio(info)
    args = ["-loglevel", "error", "-i", _arg_path(src), "-map", "0:a:0", "-vn",
            "-af", _audio_filter(sample_rate), *_range_args(start, end),
            "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "s16le", "-"]
    return np.frombuffer(_ffmpeg_stdout(args, f"decode the audio of {src}"), dtype="<i2").astype(np.int16)


_SILENCE_RE = re.compile(r"silence_(start|end):\s*(-?[0-9.]+)")


def detect_silences(src: str | os.PathLike, threshold_db: float = -30.0, min_silence: float = 1.0,
                    info: MediaInfo | None = None) -> list[tuple[float, float]]:
    """(start, end) of every stretch of at least `min_silence` s below `threshold_db` dB."""
    info = info or probe(src)
    require_audio(info)
    stderr = run_ffmpeg(["-nostats", "-loglevel", "info", "-i", _arg_path(src), "-map", "0:a:0", "-vn",
                         "-af", f"silencedetect=noise={threshold_db}dB:d={min_silence}", "-f", "null", "-"],
                        f"find silences in {src}")
    silences: list[tuple[float, float]] = []
    open_start: float | None = None
    for kind, value in _SILENCE_RE.findall(stderr):
        t = max(0.0, float(value))
        if kind == "start":
            open_start = t
        elif open_start is not None:
            silences.append((open_start, min(t, info.duration)))
            open_start = None
    if open_start is not None and info.duration - open_start >= min_silence - TIME_EPS:
        silences.append((open_start, info.duration))
    return silences
