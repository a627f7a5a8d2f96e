"""Encoding frames fed in batches into a video file (the AVIs the pipeline writes)."""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from ..errors import MediaError
from ..files import atomic_output, part_path
from .pixels import frame_shape
from .process import _arg_path, _tail, _tool, _writer


class VideoWriter:
    """Encode BGR frames fed in batches, optionally with a soundtrack; atomic on close.

    Used for video.avi, face-track crops (`pycrop/R/00000.avi`) and the visualisation.
    The default codec matches the reference's AVI files (MPEG-4 part 2, XVID tag).
    Frames go to FFmpeg from a feeder thread through a bounded queue (`queue_batches`),
    so encoding runs while the caller computes; a batch handed to `write_many` is
    read later and must not be modified afterwards.
    """

    def __init__(self, dst: str | os.PathLike, fps: float, size: tuple[int, int],
                 audio_wav: str | os.PathLike | None = None, codec: str = "mpeg4", quality: int = 2,
                 queue_batches: int = 2, pix_fmt: str = "bgr24"):
        self.dst = Path(dst)
        # Named now: FFmpeg starts writing it here; `close` renames it (`atomic_output`), `abort` removes it.
        self.tmp = part_path(self.dst)
        self.size = size
        self.frame_shape = frame_shape(*size, pix_fmt)
        self.frames = 0
        w, h = size
        args = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", repr(float(fps)), "-i", "-"]
        if audio_wav is not None:
            args += ["-i", _arg_path(audio_wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "pcm_s16le"]
        if codec == "mpeg4":
            args += ["-c:v", "mpeg4", "-vtag", "xvid", "-q:v", str(quality)]
        else:
            args += ["-c:v", codec, "-crf", "18", "-pix_fmt", "yuv420p"]
        args += [_arg_path(self.tmp)]
        self.proc, self.drain = _writer(args)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self._broken = False
        self._feeder = threading.Thread(target=self._feed, name="video-writer", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while True:
            frames = self._queue.get()
            if frames is None:
                return
            if self._broken:
                continue  # FFmpeg is gone: drop the rest, the caller hears of it
            try:
                view = memoryview(frames).cast("B")
                while len(view):  # a raw pipe may take part of a write
                    view = view[self.proc.stdin.write(view):]
            except (BrokenPipeError, OSError, ValueError):
                self._broken = True

    def _failed(self) -> MediaError:
        self.proc.wait()
        self.drain.join()
        return MediaError(f"ffmpeg stopped while writing {self.dst}", _tail(self.drain.text()))

    def write_many(self, frames: np.ndarray) -> None:
        """A (N, H, W, 3) uint8 BGR batch, or (N, bytes) I420 with pix_fmt="yuv420p"
        (not to be modified afterwards: it is read later)."""
        if frames.shape[1:] != self.frame_shape or frames.dtype != np.uint8:
            raise ValueError(f"frames of shape {frames.shape} do not match writer size {self.size}")
        if self._broken:
            raise self._failed()
        if len(frames):
            self._queue.put(np.ascontiguousarray(frames))
        self.frames += len(frames)

    def _stop_feeder(self) -> None:
        if self._feeder.is_alive():
            self._queue.put(None)
            self._feeder.join()

    def close(self) -> Path:
        with atomic_output(self.dst, tmp=self.tmp):
            self._stop_feeder()
            try:
                self.proc.stdin.close()
            except OSError:
                self._broken = True
            rc = self.proc.wait()
            self.drain.join()
            if rc != 0 or self._broken:
                raise MediaError(f"ffmpeg failed to write {self.dst}", _tail(self.drain.text()))
        return self.dst

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop_feeder()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
