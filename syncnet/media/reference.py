"""The reference's own decode path (joonson/syncnet_python), command for command.

The project decodes frames and sound straight from the source (see `decode`,
`sound`).  The reference instead converts every video to an MPEG-4 + MP3 AVI at
25 fps, dumps that AVI to JPEG files read back with `cv2.imread`, and takes its
sound from the AVI; its scoring step (`SyncNetInstance.evaluate`) dumps each crop
video to JPEG files again, at FFmpeg's default quality.  Those steps move picture
and sound apart (docs/parity.md, tools/reference_bias.py), so a user who must match
the reference's numbers needs them exactly: this module is the one copy of their
flags.

- `convert_like_reference`: run_pipeline.py's `-qscale:v 2 -async 1 -r 25` AVI.
- `iter_jpeg_frames` / `read_jpeg_frames`: an `image2` JPEG dump (`-threads 1`; the
  pipeline's `-qscale:v 2`, or FFmpeg's default quality for evaluate) read back as
  BGR batches, each file deleted once read, so memory does not grow with length.
- `extract_sound_like_reference`: the 16 kHz mono PCM sound of a file (evaluate
  adds `-async 1`, run_pipeline.py does not).
- `cut_sound_like_reference`, `CropVideoLikeReference`: crop_video's track videos (crops
  through `cv2.VideoWriter` XVID, the sound cut with `-ss/-to`, muxed by stream copy).
- `iter_capture_frames`: video.avi as the reference's scene detection reads it (OpenCV).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError
from .process import _arg_path, run_ffmpeg

FRAME_RATE = 25  # run_pipeline.py's `-r 25`
SAMPLE_RATE = 16000  # `-ar 16000` everywhere in the reference
PIPELINE_JPEG_QSCALE = 2  # run_pipeline.py dumps video.avi with `-qscale:v 2`
EVALUATE_JPEG_QSCALE = None  # SyncNetInstance.evaluate dumps a crop with no quality flag
JPEG_PATTERN = "%06d.jpg"
DEFAULT_BATCH = 64


def convert_like_reference(src: str | os.PathLike, dst_avi: str | os.PathLike) -> Path:
    """run_pipeline.py's first step: `ffmpeg -y -i SRC -qscale:v 2 -async 1 -r 25 DST.avi`.

    The AVI holds MPEG-4 Part 2 video on the 25 fps grid FFmpeg's `-r` picks and MP3
    sound (the AVI muxer's default codecs), whose encoder delay the reference keeps."""
    dst = Path(dst_avi)
    run_ffmpeg(["-loglevel", "error", "-i", _arg_path(src), "-qscale:v", "2", "-async", "1",
                "-r", str(FRAME_RATE), _arg_path(dst)], "convert the video like the reference")
    return dst


def _jpeg_args(video: str | os.PathLike, pattern: Path, qscale: int | None) -> list[str]:
    quality = [] if qscale is None else ["-qscale:v", str(qscale)]
    return ["-loglevel", "error", "-i", _arg_path(video), *quality, "-threads", "1", "-f", "image2",
            _arg_path(pattern)]


def dump_jpegs(video: str | os.PathLike, frames_dir: str | os.PathLike, *, qscale: int | None) -> list[Path]:
    """The reference's JPEG dump of `video` into `frames_dir` (000001.jpg, ...), sorted.

    `qscale=2` is run_pipeline.py's dump of video.avi, `None` evaluate's dump of a crop."""
    out = Path(frames_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_ffmpeg(_jpeg_args(video, out / JPEG_PATTERN, qscale), "dump the frames to JPEG like the reference")
    return sorted(out.glob("*.jpg"))


def read_jpeg_batches(files: list[Path], batch_size: int = DEFAULT_BATCH, delete: bool = False) -> Iterator[np.ndarray]:
    """JPEG files read back as the reference reads them (`cv2.imread`): uint8 BGR batches
    (n, H, W, 3), n <= batch_size; with `delete`, each file is removed once read."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(files), batch_size):
        batch = []
        for path in files[start:start + batch_size]:
            image = cv2.imread(str(path))
            if image is None:
                raise MediaError(f"cannot read the JPEG frame {path}")
            batch.append(image)
            if delete:
                path.unlink()
        yield np.stack(batch)


def iter_jpeg_frames(video: str | os.PathLike, workdir: str | os.PathLike, *, qscale: int | None = None,
                     batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """Frames of `video` as the reference sees them: dumped to JPEG, read back with cv2.imread.

    Yields uint8 BGR arrays (n, H, W, 3), n <= batch_size, in frame order.  The dump
    goes to a fresh folder inside `workdir`; each JPEG is deleted once read and the
    folder when the iterator ends or is closed, so memory holds one batch whatever
    the length (the dump itself is on disk, as in the reference)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="jpegs-", dir=workdir))
    try:
        yield from read_jpeg_batches(dump_jpegs(video, folder, qscale=qscale), batch_size, delete=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def iter_capture_frames(video: str | os.PathLike, batch_size: int = DEFAULT_BATCH) -> Iterator[np.ndarray]:
    """`video` decoded by OpenCV (`cv2.VideoCapture`), as the reference's scene detection
    (PySceneDetect's OpenCV backend) reads video.avi: uint8 BGR batches."""
    capture = cv2.VideoCapture(os.fspath(video))
    if not capture.isOpened():
        raise MediaError(f"OpenCV cannot open {video}")
    try:
        while True:
            batch = []
            while len(batch) < batch_size:
                ok, image = capture.read()
                if not ok:
                    break
                batch.append(image)
            if batch:
                yield np.stack(batch)
            if len(batch) < batch_size:
                return
    finally:
        capture.release()


def read_jpeg_frames(video: str | os.PathLike, workdir: str | os.PathLike, *, qscale: int | None = None) -> np.ndarray:
    """All of `iter_jpeg_frames` in one (T, H, W, 3) array: for short clips and tests."""
    batches = list(iter_jpeg_frames(video, workdir, qscale=qscale))
    if not batches:
        raise MediaError(f"{video}: FFmpeg dumped no frames")
    return np.concatenate(batches)


def extract_sound_like_reference(video: str | os.PathLike, wav: str | os.PathLike, *, async_: bool = True) -> Path:
    """The reference's 16 kHz mono 16-bit sound of `video`, written to `wav`.

    `async_=True` is SyncNetInstance.evaluate's command (`-async 1`, taken from a crop
    video); `async_=False` is run_pipeline.py's, taken from video.avi."""
    dst = Path(wav)
    sync = ["-async", "1"] if async_ else []
    run_ffmpeg(["-loglevel", "error", "-i", _arg_path(video), *sync, "-ac", "1", "-vn", "-acodec", "pcm_s16le",
                "-ar", str(SAMPLE_RATE), _arg_path(dst)], "extract the sound like the reference")
    return dst


def cut_sound_like_reference(wav: str | os.PathLike, first_frame: int, last_frame: int,
                             dst: str | os.PathLike, frame_rate: int = FRAME_RATE) -> Path:
    """crop_video's cut of the sound for a track of frames first..last (inclusive).

    `ffmpeg -y -i audio.wav -ss %.3f -to %.3f OUT`: times rounded to the millisecond,
    as the reference prints them."""
    out = Path(dst)
    start, end = first_frame / frame_rate, (last_frame + 1) / frame_rate
    run_ffmpeg(["-loglevel", "error", "-i", _arg_path(wav), "-ss", f"{start:.3f}", "-to", f"{end:.3f}",
                _arg_path(out)], "cut the sound like the reference")
    return out


def mux_like_reference(video: str | os.PathLike, wav: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """crop_video's last step: `ffmpeg -y -i VIDEO -i WAV -c:v copy -c:a copy DST` (PCM sound in the AVI)."""
    out = Path(dst)
    run_ffmpeg(["-loglevel", "error", "-i", _arg_path(video), "-i", _arg_path(wav), "-c:v", "copy", "-c:a", "copy",
                _arg_path(out)], "join the crop video and its sound like the reference")
    return out


class CropVideoLikeReference:
    """A face track's crop video written as crop_video writes it: the 224x224 crops to
    `cv2.VideoWriter` (XVID, OpenCV's own encoder settings) as `<name>t.avi`, the track's
    sound cut from `audio_wav` with `cut_sound_like_reference`, then both muxed into
    `dst` by stream copy.  Same interface as the project's own track writer:
    `write(crops)`, `close()`, `abort()`."""

    def __init__(self, dst: str | os.PathLike, audio_wav: str | os.PathLike, first_frame: int, last_frame: int,
                 frame_rate: int = FRAME_RATE, size: tuple[int, int] = (224, 224)):
        self.dst = Path(dst)
        self.audio_wav, self.first, self.last, self.frame_rate = Path(audio_wav), first_frame, last_frame, frame_rate
        self.silent = self.dst.with_name(f".{self.dst.stem}t.avi")
        self.sound = self.dst.with_name(f".{self.dst.stem}.wav")
        self.writer = cv2.VideoWriter(str(self.silent), cv2.VideoWriter_fourcc(*"XVID"), frame_rate, size)
        if not self.writer.isOpened():
            raise MediaError(f"OpenCV cannot write {self.silent} (XVID)")

    def write(self, crops: np.ndarray) -> None:
        for crop in crops:
            self.writer.write(crop)

    def close(self) -> Path:
        self.writer.release()
        try:
            cut_sound_like_reference(self.audio_wav, self.first, self.last, self.sound, self.frame_rate)
            mux_like_reference(self.silent, self.sound, self.dst)
        except BaseException:
            self.dst.unlink(missing_ok=True)
            raise
        finally:
            self.silent.unlink(missing_ok=True)
            self.sound.unlink(missing_ok=True)
        return self.dst

    def abort(self) -> None:
        self.writer.release()
        for p in (self.silent, self.sound):
            p.unlink(missing_ok=True)
