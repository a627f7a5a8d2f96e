"""16-bit PCM WAV files read and written directly (scipy, no FFmpeg)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from .errors import InputError
from .files import atomic_output, check_input_file


def read_wav(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """(sample_rate, int16 samples) of a PCM WAV file, mono or the first channel."""
    p = check_input_file(path)
    try:
        rate, data = wavfile.read(p)
    except ValueError as exc:
        raise InputError(f"{p} is not a PCM WAV file ({exc})") from exc
    if data.ndim > 1:
        data = data[:, 0]
    if data.dtype != np.int16:
        raise InputError(f"{p}: expected 16-bit PCM samples, found {data.dtype}")
    return int(rate), data


def write_wav(dst: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write int16 samples as a WAV file, atomically."""
    dst = Path(dst)
    with atomic_output(dst, suffix=".wav") as tmp:
        wavfile.write(tmp, sample_rate, np.asarray(audio, dtype=np.int16))
    return dst
