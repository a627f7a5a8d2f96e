"""run_syncnet.py's work: SyncNet on face-track videos as written (pycrop/R/*.avi, or one file)."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import media
from .errors import InputError
from .evaluate import evaluate_sync
from .layout import Layout
from .media import reference
from .results import write_sync_results
from .wav import read_wav

log = logging.getLogger(__name__)


def sync_report(result) -> str:
    """The reference's three lines, which existing log parsers read."""
    return "AV offset: \t%d \nMin dist: \t%.3f\nConfidence: \t%.3f" % (
        int(result.offset), float(result.min_dist), float(result.confidence))


def read_track_file(path: str | Path, max_bytes: int | None = None,
                    reference_decode: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """A 224x224 face video's frames (decoded once at 25 fps, into memory) and its sound at
    16 kHz; None, without decoding, when its frames would take more than `max_bytes`.

    With `reference_decode`, as SyncNetInstance.evaluate reads it: its JPEG dump at
    FFmpeg's default quality through cv2.imread, and its sound taken with `-async 1`."""
    info = media.probe(path)
    media.require_video(info)
    if not info.has_audio:
        raise InputError(f"{path} has no audio stream: SyncNet needs the sound of the face track")
    if info.display_size != (224, 224):
        raise InputError(f"{path} is {info.display_size[0]}x{info.display_size[1]}: SyncNet takes 224x224 "
                         "face crops (make them with run_pipeline.py)")
    if max_bytes is not None and info.duration * 25 * 224 * 224 * 3 > max_bytes:
        return None
    if reference_decode:
        return _read_like_reference(path)
    # The sound decodes in a second FFmpeg beside the frames (the file was probed once, above).
    with ThreadPoolExecutor(1) as pool:
        sound = pool.submit(media.read_audio, path, 16000, info=info)
        frames = media.read_frames(path, fps=25, info=info)
        audio = sound.result()
    expected = int(round(info.duration * 25))
    if abs(len(frames) - expected) > 1:
        log.warning("%s decoded to %d frames, its duration says %d", path, len(frames), expected)
    return frames, audio


def _read_like_reference(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="syncnet-evaluate-") as tmp:
        frames = reference.read_jpeg_frames(path, tmp, qscale=reference.EVALUATE_JPEG_QSCALE)
        _, audio = read_wav(reference.extract_sound_like_reference(path, Path(tmp) / "audio.wav", async_=True))
    return frames, audio


def evaluate_track_file(path: str | Path, model, vshift: int = 15, batch_size: int = 20,
                        report: Callable[[str], None] | None = None, data=None, reference_decode: bool = False):
    """SyncNet on one 224x224 face video (`data`: its `read_track_file` result, if already read;
    `reference_decode`: read as the reference's evaluate reads it)."""
    frames, audio = data if data is not None else read_track_file(path, reference_decode=reference_decode)
    result = evaluate_sync(model, frames, audio, vshift=vshift, batch_size=batch_size)
    if report is not None:
        report(sync_report(result))
    return result


# A track file is read ahead (while SyncNet runs on the one before) only if its frames
# are at most this big, so that two tracks in memory stay small next to one.
READ_AHEAD_BYTES = 256 << 20


def score_track_files(files: list[Path], model, vshift: int = 15, batch_size: int = 20,
                      report: Callable[[str], None] | None = None, reference_decode: bool = False) -> list:
    """SyncNet on each face video, in order.

    The next file is decoded while SyncNet runs on the current one (SyncNet leaves the
    CPU idle while a file decodes); results and reports keep their order.
    """
    results = []
    with ThreadPoolExecutor(1) as pool:
        ahead = None
        for k, f in enumerate(files):
            data = ahead.result() if ahead is not None else None  # None: too big to read ahead
            if k + 1 < len(files):
                ahead = pool.submit(read_track_file, files[k + 1], READ_AHEAD_BYTES, reference_decode)
            results.append(evaluate_track_file(f, model, vshift=vshift, batch_size=batch_size, report=report,
                                               data=data, reference_decode=reference_decode))
    return results


def evaluate_tracks(layout: Layout, model, vshift: int = 15, batch_size: int = 20,
                    report: Callable[[str], None] | None = None, reference_decode: bool = False) -> list:
    """Every track video of pycrop/R (sorted) -> pywork/R/offsets.txt, offsets.json, activesd.pckl."""
    files = layout.track_videos()
    results = score_track_files(files, model, vshift=vshift, batch_size=batch_size, report=report,
                                reference_decode=reference_decode)
    write_sync_results(layout.work_dir, results, [f.name for f in files], vshift)
    return results
