"""Generated media whose right answers are known, for plumbing tests.

Frames carry their source frame number as a 16-bit barcode in the top rows, so a
decoded frame tells which source frame it came from even after re-encoding.
"""
from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.io import wavfile

BITS = 16
BLOCK = 10


def barcode_frame(index: int, width: int = 160, height: int = 120, flash: bool = False) -> np.ndarray:
    frame = np.full((height, width, 3), 40, np.uint8)
    for b in range(BITS):
        if (index >> b) & 1:
            frame[0:BLOCK * 2, b * BLOCK:(b + 1) * BLOCK] = 255
    if flash:
        frame[height // 2:] = 255
    return frame


def read_barcode(frame: np.ndarray) -> int:
    value = 0
    for b in range(BITS):
        if frame[2:BLOCK * 2 - 2, b * BLOCK + 2:(b + 1) * BLOCK - 2].mean() > 128:
            value |= 1 << b
    return value


def is_flash(frame: np.ndarray) -> bool:
    return frame[frame.shape[0] // 2 + 4:].mean() > 200


def encode(path: Path, frames, fps: Fraction | float, audio: np.ndarray | None, sample_rate: int,
           extra_vf: str | None = None, size: tuple[int, int] = (160, 120)) -> Path:
    """Encode BGR frames (an iterable) and int16 audio to an H.264/AAC mp4."""
    path = Path(path)
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
           "-s", f"{size[0]}x{size[1]}", "-r", str(fps), "-i", "-"]
    wav = path.with_suffix(".src.wav")
    if audio is not None:
        wavfile.write(wav, sample_rate, audio.astype(np.int16))
        cmd += ["-i", str(wav)]
    if extra_vf:
        cmd += ["-vf", extra_vf, "-vsync", "vfr"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p", "-g", "48"]
    if audio is not None:
        cmd += ["-c:a", "aac", "-b:a", "192k"]
    cmd.append(str(path))
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0, f"ffmpeg failed to make {path}"
    wav.unlink(missing_ok=True)
    return path


def flash_beep_source(path: Path, fps: Fraction, seconds: float, flash_times: list[float],
                      vfr: bool = False, sample_rate: int = 48000) -> dict:
    """A barcode video with a flash frame and a 1 kHz beep starting at the same instants.

    Returns the flash frame numbers of the encoded source.  With `vfr`, every frame
    whose number is 1 or 4 mod 5 is dropped (flashes are kept), so frame times are
    irregular while the flash and beep instants stay exact.
    """
    n = int(round(seconds * fps))
    flash_frames = sorted({int(round(t * fps)) for t in flash_times})
    frames = (barcode_frame(k, flash=k in flash_frames) for k in range(n))
    audio = np.zeros(int(seconds * sample_rate), np.float64)
    beep_len = int(0.1 * sample_rate)
    t = np.arange(beep_len) / sample_rate
    for k in flash_frames:
        s = int(round(float(k / fps) * sample_rate))
        audio[s:s + beep_len] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    vf = None
    if vfr:
        keep = "+".join(f"eq(n\\,{k})" for k in flash_frames)
        vf = f"select='not(eq(mod(n\\,5)\\,1)+eq(mod(n\\,5)\\,4))+{keep}'"
    encode(path, frames, fps, (audio * 32767).astype(np.int16), sample_rate, extra_vf=vf)
    return {"flash_frames": flash_frames, "fps": fps}
