"""One video, as the reference's run_pipeline.py does it: detect -> scenes -> tracks -> crops.

The stages take frame batches (any iterable of (B, H, W, 3) BGR arrays) and a
detector object, so tests can pass generated frames and a test double, and the
long-video job can share one detection pass between overlapping chunks.

Memory stays bounded: detection keeps only boxes; the crop pass decodes the video
again and holds only the crops of the tracks that are still open.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from . import media
from .croppass import TrackVideo, crop_region, crop_tracks, track_audio
from .cropping import CropResult
from .detection import Detections, FaceDetector, detect_video, find_tracks
from .files import write_bytes_atomic, write_json_atomic
from .layout import Layout, staged
from .options import FaceOptions
from .scenes import scene_list_for_pickle
from .timing import StageTimes
from .trackfile import evaluate_track_file
from .wav import write_wav

log = logging.getLogger(__name__)


@dataclass
class TrackOutput:
    """What is kept of a track once its crops are written: smoothed boxes and its SyncNet result."""

    track: dict
    x: np.ndarray
    y: np.ndarray
    s: np.ndarray
    sync: object | None = None  # evaluate.SyncResult when SyncNet ran


@dataclass
class VideoAnalysis:
    layout: Layout
    detections: Detections
    tracks: list[TrackOutput]
    n_frames: int

    @property
    def sync_results(self) -> list:
        return [t.sync for t in self.tracks]




def write_track_files(layout: Layout, det: Detections, tracks: list[TrackOutput], frame_rate: int) -> None:
    """faces.pckl, scene.pckl, tracks.pckl (the reference's pickles) and tracks.json."""
    work = layout.work_dir
    work.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(work / "faces.pckl", pickle.dumps(det.faces))
    write_bytes_atomic(work / "scene.pckl", pickle.dumps(scene_list_for_pickle(det.scenes, frame_rate)))
    vidtracks = [{"track": t.track, "proc_track": {"x": t.x, "y": t.y, "s": t.s}} for t in tracks]
    write_bytes_atomic(work / "tracks.pckl", pickle.dumps(vidtracks))
    write_json_atomic(work / "tracks.json", {
        "frame_rate": frame_rate,
        "n_frames": det.n_frames,
        "scenes": [list(sc) for sc in det.scenes],
        "tracks": [{"frame": t.track["frame"], "bbox": t.track["bbox"],
                    "proc_track": {"x": t.x, "y": t.y, "s": t.s}} for t in tracks],
    })


class _FrameDump:
    """pyframes/R/000001.jpg ... (the reference's frame dump), only with --keep_frames."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, batch: np.ndarray, first: int) -> None:
        for k, frame in enumerate(batch):
            cv2.imwrite(str(self.folder / f"{first + k + 1:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])


def _tee(batches: Iterable[np.ndarray], sinks: list) -> Iterator[np.ndarray]:
    first = 0
    for batch in batches:
        for sink in sinks:
            sink(batch, first)
        first += len(batch)
        yield batch


def _progress_batches(batches: Iterable[np.ndarray], total: int | None, desc: str,
                      progress: bool) -> Iterator[np.ndarray]:
    source = iter(batches)
    try:
        with tqdm(total=total, desc=desc, unit="frame", disable=not progress, leave=False) as bar:
            for batch in source:
                yield batch
                bar.update(len(batch))
    finally:  # stopping early stops the decoder now, not at garbage collection
        close = getattr(source, "close", None)
        if close is not None:
            close()


def analyse_video(videofile: str | Path, layout: Layout, opts: FaceOptions, detector: FaceDetector | None = None,
                  model=None, vshift: int = 15, sync_batch: int = 20, detections: Detections | None = None,
                  audio: np.ndarray | None = None, visualise: bool = False, keep_frames: bool = False,
                  progress: bool = False, times: StageTimes | None = None) -> VideoAnalysis:
    """One video into the reference's layout: run_pipeline.py, and with a `model` also
    run_syncnet.py (on each crop video as written) and, with `visualise`, run_visualise.py.

    `detections` (frames numbered from this video's first frame) replaces the detection
    pass, as the long-video job does with its shared pass; `audio` (16 kHz int16,
    aligned to the first frame) replaces reading the file's sound.  Outputs are built
    in a staging directory and swapped in only when complete.  `times` collects wall
    seconds per stage (detect, crop, syncnet, write, visualise).
    """
    from .results import write_sync_results

    info = media.probe(videofile)
    media.require_video(info)
    media.require_audio(info)
    expected = int(round(info.duration * opts.frame_rate))
    times = times if times is not None else StageTimes()
    kinds = ("pyavi", "pycrop", "pywork") + (("pyframes",) if keep_frames else ())
    with staged(layout, kinds) as stage:
        if audio is None:
            audio = media.read_audio(videofile, 16000)
        write_wav(stage.audio_wav, audio)
        # video.avi comes from the same FFmpeg decode as the detection pass (or, with
        # shared detections, the crop pass): no second decode, no BGR frames piped back.
        avi_copy = media.AviCopy(stage.video_avi, stage.audio_wav)
        sinks: list = [_FrameDump(stage.frames_dir)] if keep_frames else []
        outputs: dict[int, TrackOutput] = {}

        def frames(desc: str, total: int | None, copy: bool,
                   region: media.Region | None = None) -> Iterator[np.ndarray]:
            batches = media.iter_frames(videofile, fps=opts.frame_rate, batch_size=opts.batch_size, info=info,
                                        copy_to=avi_copy if copy else None, region=region)
            return _progress_batches(batches, total, desc, progress)

        shared = detections
        if detections is None:
            if detector is None:
                raise ValueError("analyse_video needs a detector or detections")
            with times.stage("detect"), closing(frames("detecting", expected, copy=True)) as batches:
                detections = detect_video(batches, detector, opts, sinks)
            sinks = []
        tracks = find_tracks(detections, opts)
        if not tracks:
            log.warning("no face tracks found in %s", videofile)

        # A track's crop AVI encodes as its crops are made, so when the track is done only
        # its tail is left to write.  SyncNet then scores the file as written, decoded
        # (what run_syncnet.py and the reference's run_syncnet score), not the crops in
        # memory: the crop AVI is lossy MPEG-4, and scoring the crops before encoding
        # moved confidences by about 1% from the scripts' on the same file.
        writing: dict[int, TrackVideo] = {}

        def crops_made(i: int, crops: np.ndarray) -> None:
            if i not in writing:
                sound = track_audio(audio, tracks[i], opts.frame_rate)
                writing[i] = TrackVideo(stage.track_video(i), sound, opts.frame_rate)
            writing[i].write(crops)

        def done(i: int, result: CropResult) -> None:
            with times.stage("write"):
                writing.pop(i).close()
            sync = None
            if model is not None:
                with times.stage("syncnet"):
                    sync = evaluate_track_file(stage.track_video(i), model, vshift=vshift, batch_size=sync_batch)
            outputs[i] = TrackOutput(tracks[i], result.x, result.y, result.s, sync)

        if tracks or sinks or shared is not None:
            copy = shared is not None
            # The frame dump wants whole frames; crops and video.avi (encoded from the
            # decoder's own pictures) do not.
            region = None if sinks else crop_region(tracks, opts.crop_scale, info)
            try:
                with times.stage("crop"), closing(frames("cropping", detections.n_frames, copy=copy,
                                                         region=region)) as decoded:
                    batches = _tee(decoded, sinks)
                    crop_tracks(batches, tracks, opts.crop_scale, on_done=done, on_crops=crops_made,
                                tail_tolerance=0 if shared is None else 2, region=region,
                                frame_size=info.display_size)
                    if copy or sinks:  # video.avi and the frame dump want the frames after the last track too
                        for _ in batches:
                            pass
            except BaseException:
                for video in writing.values():
                    video.abort()
                raise
        with times.stage("write"):
            kept = [outputs[i] for i in range(len(tracks))]
            write_track_files(stage, detections, kept, opts.frame_rate)
            if model is not None:
                write_sync_results(stage.work_dir, [t.sync for t in kept],
                                   [stage.track_video(i).name for i in range(len(kept))], vshift)
        if model is not None and visualise:
            from .visualise import write_visualisation

            with times.stage("visualise"):
                write_visualisation(stage, opts.frame_rate)
    return VideoAnalysis(layout=layout, detections=detections, tracks=kept, n_frames=detections.n_frames)
