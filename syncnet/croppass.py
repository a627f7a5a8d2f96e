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
                offsets: list[int] | None = None,
                on_done: Callable[[int, CropResult], None] | None = None,
                on_crops: Callable[[int, np.ndarray], None] | None = None,
                tail_tolerance: int = 0, region: media.Region | None = None,
                frame_size: tuple[int, int] | None = None) -> list[CropResult | None]:
    """Crop every track in one pass over the frames.

    Track i's frame numbers count from `offsets[i]` in the frame stream.  Each track's
    result goes to `on_done(i, result)` as soon as its last frame is cropped; it is
    also returned unless `on_done` is given (then the list holds None), so a caller
    can write or evaluate a track and let its crops go.  `on_crops(i, crops)` sees a
    track's crops as they are made, every `CROP_FLUSH` frames and before `on_done`, in
    order (e.g. to encode them while the pass goes on); those rows are final and must
    not be modified.  When the stream ends up to
    `tail_tolerance` frames early (a re-encoded chunk can decode to one frame fewer
    than its source range), the last frame stands in for the missing ones.  With
    `region` the frames are that part of `frame_size` (width, height) pictures (see
    `crop_region`).
    """
    origin = (0, 0) if region is None else (region.top, region.left)
    hw = None if frame_size is None else (frame_size[1], frame_size[0])
    offsets = offsets or [0] * len(tracks)
    croppers = [TrackCropper(t, crop_scale) for t in tracks]
    first_abs = [int(t["frame"][0]) + o for t, o in zip(tracks, offsets)]
    last_abs = [int(t["frame"][-1]) + o for t, o in zip(tracks, offsets)]
    buffers: dict[int, np.ndarray] = {}
    results: list[CropResult | None] = [None] * len(tracks)
    order = sorted(range(len(tracks)), key=lambda i: first_abs[i])
    pending = 0
    open_ids: list[int] = []
    frame_no = 0

    flushed = [0] * len(tracks)

    def flush(i: int, upto: int) -> None:
        if on_crops is not None and upto > flushed[i]:
            on_crops(i, buffers[i][flushed[i]:upto])
            flushed[i] = upto

    def finish(i: int) -> None:
        flush(i, len(buffers[i]))
        result = CropResult(crops=buffers.pop(i), x=croppers[i].x, y=croppers[i].y, s=croppers[i].s)
        if on_done is not None:
            on_done(i, result)
        else:
            results[i] = result

    def stream() -> Iterator[np.ndarray]:
        image = None
        for batch in batches:
            yield from batch
            image = batch[-1]
        if image is not None:
            for _ in range(tail_tolerance):
                yield image

    for image in stream():
        if pending == len(order) and not open_ids:
            break
        while pending < len(order) and first_abs[order[pending]] <= frame_no:
            i = order[pending]
            buffers[i] = np.empty((len(tracks[i]["frame"]), 224, 224, 3), np.uint8)
            open_ids.append(i)
            pending += 1
        for i in list(open_ids):
            buffers[i][frame_no - first_abs[i]] = croppers[i].crop(frame_no - offsets[i], image, origin, hw)
            if frame_no == last_abs[i]:
                open_ids.remove(i)
                finish(i)
            elif (frame_no - first_abs[i] + 1) % CROP_FLUSH == 0:
                flush(i, frame_no - first_abs[i] + 1)
        frame_no += 1
    if open_ids or pending < len(order):
        missing = sorted(open_ids + order[pending:])
        raise InputError(f"the video ended at frame {frame_no} before face tracks {missing} did "
                         "(it decodes to fewer frames than at detection)")
    return results


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
