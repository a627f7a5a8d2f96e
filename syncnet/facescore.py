"""SyncNet over a whole face video, as the published LSE protocol scores it.

The protocol (Wav2Lip's `evaluation/scores_LSE`, on the reference's `SyncNetInstance`)
takes each video as one face track: every frame resized to 224x224 (`cv2.resize`,
bilinear), the 16 kHz mono sound, SyncNet's offset, confidence (LSE-C) and min dist
(LSE-D).  Two decodes:
- `ours`: frames on a 25 fps grid from t=0 and the sound from t=0, straight from the
  file (no intermediate files, no JPEG);
- `reference`: the protocol's own, a JPEG dump with FFmpeg's default quality read back
  with OpenCV at the file's own frame rate, and the sound extracted with `-async 1`
  (`syncnet.media.reference`), so that its numbers come out.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np

from . import media
from .errors import MediaError
from .evaluate import SyncResult, evaluate_sync
from .media import reference
from .wav import read_wav

log = logging.getLogger(__name__)

PROTOCOLS = ("ours", "reference")
SIZE = 224  # SyncNet's input; the protocol resizes every frame to it


def to_input_size(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) BGR frames at 224x224, resized as the protocol does (cv2.resize, bilinear);
    frames already 224x224 are returned as they are."""
    if frames.shape[1:3] == (SIZE, SIZE):
        return frames
    out = np.empty((len(frames), SIZE, SIZE, 3), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (SIZE, SIZE))
    return out


def read_ours(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames (224x224 BGR, 25 fps from t=0) and 16 kHz mono sound, decoded directly.

    Frames are resized batch by batch, so only the 224x224 copies are kept."""
    info = media.probe(path)
    media.require_video(info)
    media.require_audio(info)
    batches = [to_input_size(b) for b in media.iter_frames(path, fps=25, batch_size=64, info=info)]
    frames = np.concatenate(batches) if batches else np.empty((0, SIZE, SIZE, 3), np.uint8)
    return frames, media.read_audio(path, 16000, info=info)


def read_reference(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames and sound as the protocol's script decodes them, frames resized to 224x224.

    The frames are FFmpeg's JPEG dump at its default quality (`-f image2`, no `-qscale`),
    at the file's own frame rate, read back with cv2.imread; the sound is extracted
    with `-async 1` to 16 kHz mono PCM (`syncnet.media.reference`, the one copy of
    those commands).  The dump is read batch by batch and deleted as it is read."""
    info = media.probe(path)
    media.require_video(info)
    media.require_audio(info)
    with tempfile.TemporaryDirectory(prefix="syncnet-lse-") as tmp:
        dump = reference.iter_jpeg_frames(path, tmp, qscale=reference.EVALUATE_JPEG_QSCALE)
        batches = [to_input_size(b) for b in dump]
        rate, audio = read_wav(reference.extract_sound_like_reference(path, Path(tmp) / "audio.wav", async_=True))
    if rate != reference.SAMPLE_RATE:
        raise MediaError(f"{path}: the extracted sound is at {rate} Hz, not {reference.SAMPLE_RATE}")
    frames = np.concatenate(batches) if batches else np.empty((0, SIZE, SIZE, 3), np.uint8)
    return frames, audio


def read_face_video(path: str | Path, protocol: str = "ours") -> tuple[np.ndarray, np.ndarray]:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return read_reference(path) if protocol == "reference" else read_ours(path)


def score_face_video(path: str | Path, model, protocol: str = "ours", vshift: int = 15,
                     batch_size: int = 20) -> SyncResult:
    """SyncNet's verdict on one face video taken whole (its confidence is LSE-C, its min dist LSE-D)."""
    frames, audio = read_face_video(path, protocol)
    log.debug("%s: %d frames, %.3f s of sound (%s decode)", path, len(frames), len(audio) / 16000, protocol)
    return evaluate_sync(model, frames, audio, vshift=vshift, batch_size=batch_size)
