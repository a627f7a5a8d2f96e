"""The crop pass: every track's 224x224 crops in one pass over the frames, and each
track's crop video (pycrop/R/0000i.avi) encoded while the crops are made."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from . import media
from .cropping import CropResult, TrackCropper
from .errors import InputError
from .wav import write_wav

CROP_FLUSH = 32  # frames of a track's crops handed to `on_crops` at a time


def crop_tracks(batches: Iterable[np.ndarray], tracks: list[dict], crop_scale: float,
                on_done: Callable[[int, CropResult], None] | None = None,
                on_crops: Callable[[int, np.ndarray], None] | None = None,
                tail_tolerance: int = 0, region: media.Region | None = None,
                frame_size: tuple[int, int] | None = None) -> list[CropResult | None]:
    """Crop every track in one pass over the frames (track frame numbers count from the
    stream's first frame); the pass stops once the last track is cropped.

    Each track's result goes to `on_done(i, result)` as soon as its last frame is cropped;
    it is also returned unless `on_done` is given (then the list holds None), so a caller
    can write or evaluate a track and let its crops go.  `on_crops(i, crops)` sees a
    track's crops as they are made, every `CROP_FLUSH` frames and before `on_done`, in
    order (e.g. to encode them while the pass goes on); those rows are final and must
    not be modified.  When the stream ends up to `tail_tolerance` frames early (a
    re-encoded chunk can decode to one frame fewer than its source range), the last
    frame stands in for the missing ones.  With `region` the frames are that part of
    `frame_size` (width, height) pictures (see `crop_region`).
    """
    crops = _CropPass(tracks, crop_scale, on_done, on_crops, region, frame_size)
    frame_no = 0
    for image in _frames(batches, tail_tolerance):
        if crops.finished:
            break
        crops.push(frame_no, image)
        frame_no += 1
    if not crops.finished:
        raise InputError(f"the video ended at frame {frame_no} before face tracks {crops.unfinished()} did "
                         "(it decodes to fewer frames than at detection)")
    return crops.results


def _frames(batches: Iterable[np.ndarray], tail_tolerance: int) -> Iterator[np.ndarray]:
    """The frames of the batches, then the last one `tail_tolerance` times more."""
    image = None
    for batch in batches:
        yield from batch
        image = batch[-1]
    if image is not None:
        for _ in range(tail_tolerance):
            yield image


class _CropPass:
    """crop_tracks' state: the tracks not begun yet (in order of their first frame), the
    open ones with their crops so far, and how many of those were handed on."""

    def __init__(self, tracks: list[dict], crop_scale: float, on_done, on_crops,
                 region: media.Region | None, frame_size: tuple[int, int] | None):
        self.tracks, self.on_done, self.on_crops = tracks, on_done, on_crops
        self.origin = (0, 0) if region is None else (region.top, region.left)
        self.hw = None if frame_size is None else (frame_size[1], frame_size[0])
        self.croppers = [TrackCropper(t, crop_scale) for t in tracks]
        self.first = [int(t["frame"][0]) for t in tracks]
        self.last = [int(t["frame"][-1]) for t in tracks]
        self.order = sorted(range(len(tracks)), key=lambda i: self.first[i])
        self.pending = 0  # order[pending:] have not begun
        self.open_ids: list[int] = []
        self.buffers: dict[int, np.ndarray] = {}
        self.flushed = [0] * len(tracks)
        self.results: list[CropResult | None] = [None] * len(tracks)

    @property
    def finished(self) -> bool:
        return self.pending == len(self.order) and not self.open_ids

    def unfinished(self) -> list[int]:
        return sorted(self.open_ids + self.order[self.pending:])

    def push(self, frame_no: int, image: np.ndarray) -> None:
        """Frame `frame_no`: open the tracks that begin there, crop every open track."""
        while self.pending < len(self.order) and self.first[self.order[self.pending]] <= frame_no:
            i = self.order[self.pending]
            self.buffers[i] = np.empty((len(self.tracks[i]["frame"]), 224, 224, 3), np.uint8)
            self.open_ids.append(i)
            self.pending += 1
        for i in list(self.open_ids):
            made = frame_no - self.first[i] + 1
            self.buffers[i][made - 1] = self.croppers[i].crop(frame_no, image, self.origin, self.hw)
            if frame_no == self.last[i]:
                self.open_ids.remove(i)
                self._finish(i)
            elif made % CROP_FLUSH == 0:
                self._flush(i, made)

    def _flush(self, i: int, upto: int) -> None:
        if self.on_crops is not None and upto > self.flushed[i]:
            self.on_crops(i, self.buffers[i][self.flushed[i]:upto])
            self.flushed[i] = upto

    def _finish(self, i: int) -> None:
        self._flush(i, len(self.buffers[i]))
        c = self.croppers[i]
        result = CropResult(crops=self.buffers.pop(i), x=c.x, y=c.y, s=c.s)
        if self.on_done is not None:
            self.on_done(i, result)
        else:
            self.results[i] = result


def crop_region(tracks: list[dict], crop_scale: float, info: media.MediaInfo) -> media.Region | None:
    """The part of the picture the crop pass needs to decode, or None for all of it.

    The union of every crop window of every track, rounded out to even pixels: the
    rest of the frame is never read, so it need not be converted to BGR nor piped.
    None where a narrowed decode would not give exactly the same pixels (`region_exact`).
    With no tracks, any 2x2 corner does (the pass then only writes video.avi).
    """
    w, h = info.display_size
    if not media.region_exact(info):
        return None
    extents = [e for e in (TrackCropper(t, crop_scale).extent(h, w) for t in tracks) if e is not None]
    if not extents:
        return media.even_region(0, 2, 0, 2, w, h)
    return media.even_region(min(e[0] for e in extents), max(e[1] for e in extents),
                             min(e[2] for e in extents), max(e[3] for e in extents), w, h)


def track_audio(audio: np.ndarray, track: dict, frame_rate: int, sample_rate: int = 16000) -> np.ndarray:
    """The track's slice of the sound: frames first..last+1 at the frame rate (as the reference)."""
    a = int(round(int(track["frame"][0]) / frame_rate * sample_rate))
    b = int(round((int(track["frame"][-1]) + 1) / frame_rate * sample_rate))
    return audio[a:b]


class TrackVideo:
    """pycrop/R/0000i.avi: a track's crops at the frame rate with its slice of sound.

    Crops go to FFmpeg (fed from a thread) as they are made, so the file is encoded
    while the crop pass and SyncNet go on; `close` waits for the file, `abort` drops
    it.  Crops handed to `write` must not change until then.
    """

    def __init__(self, path: Path, audio: np.ndarray, frame_rate: int):
        self.wav = write_wav(path.with_name(f".{path.stem}.wav"), audio)
        self.writer = None
        try:
            self.writer = media.VideoWriter(path, frame_rate, (224, 224), audio_wav=self.wav)
        except BaseException:
            self.abort()
            raise

    def write(self, crops: np.ndarray) -> None:
        self.writer.write_many(crops)

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.wav.unlink(missing_ok=True)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        self.wav.unlink(missing_ok=True)
