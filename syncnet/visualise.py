"""The reference's run_visualise.py: each face box coloured by its framewise confidence.

Reads pywork/R/tracks.pckl and activesd.pckl and pyavi/R/video.avi; writes
pyavi/R/video_out.avi with the sound of pyavi/R/audio.wav.
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


def draw_faces(image: np.ndarray, faces: list[dict]) -> np.ndarray:
    """Green for confident, red for not (the reference's colours and label)."""
    for face in faces:
        clr = max(min(face["conf"] * 25, 255), 0)
        x0, y0 = int(face["x"] - face["s"]), int(face["y"] - face["s"])
        x1, y1 = int(face["x"] + face["s"]), int(face["y"] + face["s"])
        cv2.rectangle(image, (x0, y0), (x1, y1), (0, clr, 255 - clr), 3)
        cv2.putText(image, "Track %d, Conf %.3f" % (face["track"], face["conf"]), (x0, y0),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
    return image


def _load(path: Path, what: str):
    if not path.is_file():
        raise InputError(f"{path} not found: run {what} first")
    with open(path, "rb") as fh:
        return pickle.load(fh)


def write_visualisation(layout: Layout, frame_rate: int = 25) -> Path:
    """pyavi/R/video_out.avi from the reference's outputs of run_pipeline.py and run_syncnet.py."""
    vidtracks = _load(layout.work("tracks.pckl"), "run_pipeline.py")
    dists = _load(layout.work("activesd.pckl"), "run_syncnet.py")
    if len(dists) != len(vidtracks):
        raise InputError(f"{layout.work_dir}: {len(vidtracks)} tracks but {len(dists)} SyncNet results; "
                         "run run_syncnet.py again")
    info = media.probe(layout.video_avi)
    n_frames = int(round(info.duration * frame_rate)) + 1
    faces = faces_by_frame(vidtracks, dists, n_frames)
    writer = None
    try:
        index = 0
        for batch in media.iter_frames(layout.video_avi, fps=frame_rate, info=info):
            if writer is None:
                writer = media.VideoWriter(layout.video_out, frame_rate, (batch.shape[2], batch.shape[1]),
                                           audio_wav=layout.audio_wav if layout.audio_wav.exists() else None)
            for frame in batch:  # each batch is a fresh array: draw on it in place
                draw_faces(frame, faces[index] if index < len(faces) else [])
                index += 1
            writer.write_many(batch)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is None:
        raise InputError(f"{layout.video_avi} holds no frames")
    return writer.close()
