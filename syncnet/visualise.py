"""The reference's run_visualise.py: each face box coloured by its framewise confidence.

Draws on pyavi/R/video.avi the tracks and SyncNet distances (given, or read back from
pywork/R/tracks.pckl and activesd.pckl); writes pyavi/R/video_out.avi with the sound
of pyavi/R/audio.wav.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
from scipy import signal

from . import media
from .errors import InputError
from .layout import Layout


def faces_by_frame(vidtracks: list[dict], dists: list, n_frames: int) -> list[list[dict]]:
    """For every frame, the boxes to draw: track number, framewise confidence, centre and size.

    As the reference: the distances at the best offset, padded by 3 windows of 10 on
    both sides, turned into confidences (median - distance) and median-filtered (9).
    """
    faces: list[list[dict]] = [[] for _ in range(n_frames)]
    for tidx, (track, dist) in enumerate(zip(vidtracks, dists)):
        dist = np.asarray(dist)
        if dist.size == 0:
            continue
        mean_dists = dist.mean(axis=0)
        minidx = int(np.argmin(mean_dists))
        fdist = np.pad(dist[:, minidx], (3, 3), "constant", constant_values=10)
        fconfm = signal.medfilt(np.median(mean_dists) - fdist, kernel_size=9)
        proc = track["proc_track"]
        for fidx, frame in enumerate(np.asarray(track["track"]["frame"]).tolist()):
            if frame < n_frames and fidx < len(fconfm):
                faces[frame].append({"track": tidx, "conf": float(fconfm[fidx]), "s": float(proc["s"][fidx]),
                                     "x": float(proc["x"][fidx]), "y": float(proc["y"][fidx])})
    return faces


def _bt601(bgr: tuple[float, float, float]) -> tuple[int, int, int]:
    """Y, U, V of a BGR colour in BT.601 limited range (FFmpeg's default for yuv420p)."""
    b, g, r = bgr
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return tuple(int(np.clip(round(c), 0, 255)) for c in (y, u, v))


WHITE = _bt601((255, 255, 255))
FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_faces(frame_i420: np.ndarray, width: int, height: int, faces: list[dict]) -> np.ndarray:
    """The reference's boxes and labels (green for confident, red for not; white text),
    drawn in place on an I420 frame: full size on Y, half size on U and V.

    Drawing on the decoder's own pictures spares two colour conversions and halves the
    bytes piped each way; the chroma planes are half size in the output file anyway.
    """
    planes = media.i420_planes(frame_i420, width, height)
    for face in faces:
        clr = max(min(face["conf"] * 25, 255), 0)
        colour = _bt601((0, clr, 255 - clr))
        x0, y0 = int(face["x"] - face["s"]), int(face["y"] - face["s"])
        x1, y1 = int(face["x"] + face["s"]), int(face["y"] + face["s"])
        label = "Track %d, Conf %.3f" % (face["track"], face["conf"])
        for k, (plane, c, w) in enumerate(zip(planes, colour, WHITE)):
            d = 1 if k == 0 else 2  # luma at full size, chroma at half
            cv2.rectangle(plane, (x0 // d, y0 // d), (x1 // d, y1 // d), c, 3 if d == 1 else 2)
            cv2.putText(plane, label, (x0 // d, y0 // d), FONT, 0.5 / d, w, 2 if d == 1 else 1)
    return frame_i420


def _load(path: Path, what: str):
    if not path.is_file():
        raise InputError(f"{path} not found: run {what} first")
    with open(path, "rb") as fh:
        return pickle.load(fh)


def write_visualisation(layout: Layout, frame_rate: int = 25) -> Path:
    """pyavi/R/video_out.avi from the reference's outputs of run_pipeline.py and run_syncnet.py
    (tracks.pckl and activesd.pckl, read back)."""
    vidtracks = _load(layout.work("tracks.pckl"), "run_pipeline.py")
    dists = _load(layout.work("activesd.pckl"), "run_syncnet.py")
    if len(dists) != len(vidtracks):
        raise InputError(f"{layout.work_dir}: {len(vidtracks)} tracks but {len(dists)} SyncNet results; "
                         "run run_syncnet.py again")
    return draw_visualisation(layout, vidtracks, dists, frame_rate)


def draw_visualisation(layout: Layout, vidtracks: list[dict], dists: list, frame_rate: int = 25) -> Path:
    """pyavi/R/video_out.avi: pyavi/R/video.avi with the boxes of `vidtracks` (as in tracks.pckl)
    coloured by their SyncNet distances `dists` (as in activesd.pckl), one per track."""
    info = media.probe(layout.video_avi)
    width, height = info.display_size
    n_frames = int(round(info.duration * frame_rate)) + 1
    faces = faces_by_frame(vidtracks, dists, n_frames)
    writer = None
    try:
        index = 0
        for batch in media.iter_frames(layout.video_avi, fps=frame_rate, info=info, pix_fmt="yuv420p"):
            if writer is None:
                writer = media.VideoWriter(layout.video_out, frame_rate, (width, height), pix_fmt="yuv420p",
                                           audio_wav=layout.audio_wav if layout.audio_wav.exists() else None)
            for frame in batch:  # each batch is a fresh array: draw on it in place
                draw_faces(frame, width, height, faces[index] if index < len(faces) else [])
                index += 1
            writer.write_many(batch)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise InputError(f"{layout.video_avi} holds no frames")
    return writer.close()
