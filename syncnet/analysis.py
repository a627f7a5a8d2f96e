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
from collections.abc import Callable, Iterable, Iterator
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
from .diagnosis import Diagnosis, diagnose
from .errors import MediaError
from .files import write_bytes_atomic, write_json_atomic
from .layout import Layout, staged
from .media import reference
from .options import FaceOptions
from .results import write_sync_results
from .scenes import scene_list_for_pickle
from .timing import StageTimes
from .trackfile import score_track_files
from .visualise import draw_visualisation
from .wav import read_wav, write_wav

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
    diagnosis: Diagnosis | None = None  # without tracks: why (syncnet.diagnosis)


def reference_tracks(tracks: list[TrackOutput]) -> list[dict]:
    """The tracks as the reference's tracks.pckl holds them: track and smoothed boxes."""
    return [{"track": t.track, "proc_track": {"x": t.x, "y": t.y, "s": t.s}} for t in tracks]


def write_track_files(layout: Layout, det: Detections, tracks: list[TrackOutput], frame_rate: int) -> None:
    """faces.pckl, scene.pckl, tracks.pckl (the reference's pickles) and tracks.json."""
    work = layout.work_dir
    work.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(work / "faces.pckl", pickle.dumps(det.faces))
    write_bytes_atomic(work / "scene.pckl", pickle.dumps(scene_list_for_pickle(det.scenes, frame_rate)))
    write_bytes_atomic(work / "tracks.pckl", pickle.dumps(reference_tracks(tracks)))
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


class _ReferenceDecode:
    """The reference's decode path for one video (`FaceOptions.reference_decode`).

    As run_pipeline.py: pyavi/R/video.avi is its `-qscale:v 2 -async 1 -r 25` conversion,
    pyavi/R/audio.wav that AVI's sound, and the frames its `-qscale:v 2` JPEG dump read
    back with cv2.imread (into pyframes/R, kept, with keep_frames; else a temporary
    folder of the staging area), once for detection and once for the crops.  Shots are
    found on video.avi as OpenCV decodes it, as the reference's PySceneDetect does.
    """

    def __init__(self, videofile: str | Path, stage: Layout, keep_frames: bool):
        self.avi = reference.convert_like_reference(videofile, stage.video_avi)
        _, self.audio = read_wav(reference.extract_sound_like_reference(self.avi, stage.audio_wav, async_=False))
        self.keep = keep_frames
        folder = stage.frames_dir if keep_frames else stage.data_dir / "pytmp" / stage.reference / "frames"
        self.files = reference.dump_jpegs(self.avi, folder, qscale=reference.PIPELINE_JPEG_QSCALE)

    def frames(self, batch_size: int, last_read: bool) -> Iterator[np.ndarray]:
        """The JPEG frames; on the `last_read` each file goes once read (unless kept)."""
        return reference.read_jpeg_batches(self.files, batch_size, delete=last_read and not self.keep)

    def scene_frames(self, batch_size: int) -> Iterator[np.ndarray]:
        """video.avi through OpenCV, batch for batch as `frames` (its last frame repeated
        should OpenCV find fewer)."""
        decoded = (f for b in reference.iter_capture_frames(self.avi, batch_size) for f in b)
        last = None
        for start in range(0, len(self.files), batch_size):
            batch = []
            for _ in range(min(batch_size, len(self.files) - start)):
                last = next(decoded, last)
                if last is None:
                    raise MediaError(f"OpenCV decodes no frame of {self.avi}")
                batch.append(last)
            yield np.stack(batch)


def analyse_video(videofile: str | Path, layout: Layout, opts: FaceOptions, detector: FaceDetector | None = None,
                  model=None, vshift: int = 15, sync_batch: int = 20, detections: Detections | None = None,
                  audio: np.ndarray | None = None, visualise: bool = False, keep_frames: bool = False,
                  progress: bool = False, times: StageTimes | None = None,
                  release: Callable[[], None] | None = None) -> VideoAnalysis:
    """One video into the reference's layout: run_pipeline.py, and with a `model` also
    run_syncnet.py (on each crop video as written) and, with `visualise`, run_visualise.py.

    `detections` (frames numbered from this video's first frame) replaces the detection
    pass, as the long-video job does with its shared pass (see `_Analysis` for what
    else that changes); `audio` (16 kHz int16, aligned to the first frame) replaces
    reading the file's sound.  Outputs are built in a staging directory and swapped in
    only when complete.  `times` collects wall seconds per stage (detect, crop, syncnet,
    write, visualise).  `release`, if given, is called between the phases whose buffers
    differ (after detection, and after SyncNet): the long-running jobs pass
    `allocator.release_freed_memory`, so that memory one phase freed and the allocator
    kept for reuse is not still held while the next builds its own (the peak).
    """
    if detections is None and detector is None:
        raise ValueError("analyse_video needs a detector or detections")
    run = _Analysis(videofile, opts, given=detections is not None, keep_frames=keep_frames,
                    progress=progress, times=times)
    with staged(layout, run.kinds) as stage:
        run.prepare(stage, audio)
        if detections is None:
            detections = run.detect(detector)
        if release is not None:
            release()
        tracks = run.crop_and_score(detections, model, vshift, sync_batch)
        if release is not None and model is not None:
            release()
        run.write_files(detections, tracks, model is not None, vshift)
        if model is not None and visualise:
            run.visualise(tracks)
    return VideoAnalysis(layout=layout, detections=detections, tracks=tracks, n_frames=detections.n_frames,
                         diagnosis=run.diagnosis)


class _Analysis:
    """analyse_video's phases: prepare -> detect (unless detections are given) -> crop,
    encode and score -> write files -> visualise.

    The callers differ in one thing, whether the detections are `given`:
    - detected here (run_pipeline.py, the batch job): the detection decode also writes
      video.avi (and, with keep_frames, the frame dump); the crop pass then decodes only
      the crop region and stops after the last track.  Both decodes give the same frames.
    - given (the long job, from its pass over the whole source): the crop decode is the
      only one, so it writes video.avi and the frame dump and reads to the end; and a
      re-encoded chunk can decode to a frame or two fewer than the source range it was
      detected on, so up to TAIL_TOLERANCE missing last frames are stood in for.
    """

    TAIL_TOLERANCE = 2

    def __init__(self, videofile: str | Path, opts: FaceOptions, given: bool, keep_frames: bool,
                 progress: bool, times: StageTimes | None):
        self.videofile, self.opts, self.given = videofile, opts, given
        self.keep_frames, self.progress = keep_frames, progress
        self.times = times if times is not None else StageTimes()
        self.info = media.probe(videofile)
        media.require_video(self.info)
        media.require_audio(self.info)
        self.kinds = ("pyavi", "pycrop", "pywork") + (("pyframes",) if keep_frames else ())

    def prepare(self, stage: Layout, audio: np.ndarray | None) -> None:
        """pyavi/R/audio.wav (from `audio` or the file's sound), and what video.avi is encoded to.

        With reference_decode: the reference's video.avi, its sound and its JPEG frames
        (`_ReferenceDecode`); `audio` is not used (the sound is the AVI's)."""
        self.stage = stage
        self.ref = None
        if self.opts.reference_decode:
            if self.given:
                raise ValueError("reference_decode detects on the video's own JPEG frames: give a detector")
            self.ref = _ReferenceDecode(self.videofile, stage, self.keep_frames)
            self.audio, self.avi_copy = self.ref.audio, None
            return
        self.audio = audio if audio is not None else media.read_audio(self.videofile, 16000)
        write_wav(stage.audio_wav, self.audio)
        # video.avi comes from the first decode of the video (no second decode, no BGR
        # frames piped back): the detection pass's, or with given detections the crop pass's.
        self.avi_copy = media.AviCopy(stage.video_avi, stage.audio_wav)

    def _first_decode_sinks(self) -> list:
        return [_FrameDump(self.stage.frames_dir)] if self.keep_frames else []

    def _frames(self, desc: str, total: int | None, copy: bool,
                region: media.Region | None = None) -> Iterator[np.ndarray]:
        batches = media.iter_frames(self.videofile, fps=self.opts.frame_rate, batch_size=self.opts.batch_size,
                                    info=self.info, copy_to=self.avi_copy if copy else None, region=region)
        return _progress_batches(batches, total, desc, self.progress)

    def detect(self, detector: FaceDetector) -> Detections:
        """The detection pass, writing video.avi (and the frame dump) from the same decode."""
        if self.ref is not None:
            bs = self.opts.batch_size
            batches = _progress_batches(self.ref.frames(bs, last_read=False), len(self.ref.files), "detecting",
                                        self.progress)
            with self.times.stage("detect"), closing(batches):
                return detect_video(batches, detector, self.opts, scene_batches=self.ref.scene_frames(bs))
        expected = int(round(self.info.duration * self.opts.frame_rate))
        with self.times.stage("detect"), closing(self._frames("detecting", expected, copy=True)) as batches:
            return detect_video(batches, detector, self.opts, self._first_decode_sinks())

    def crop_and_score(self, detections: Detections, model, vshift: int, sync_batch: int) -> list[TrackOutput]:
        """The tracks; their crop videos, encoded as the crops are made; SyncNet on each file."""
        self.tracks = find_tracks(detections, self.opts)
        self.diagnosis = None
        if not self.tracks:  # why, measured; the caller says it (once, naming the video its way)
            faces = [[] for _ in range(detections.first_frame)] + detections.faces
            self.diagnosis = diagnose(faces, detections.scenes, self.opts, len(self.audio))
        self.model, self.vshift, self.sync_batch = model, vshift, sync_batch
        self.writing: dict[int, TrackVideo] = {}
        self.crops: dict[int, CropResult] = {}
        if self.tracks or self.given:  # given: the crop pass also writes video.avi
            try:
                self._crop_pass(detections.n_frames)
            except BaseException:
                for video in self.writing.values():
                    video.abort()
                raise
        return self._score()

    def _crop_pass(self, n_frames: int) -> None:
        if self.ref is not None:  # the reference crops its JPEG frames, whole
            batches = _progress_batches(self.ref.frames(self.opts.batch_size, last_read=True), n_frames,
                                        "cropping", self.progress)
            with self.times.stage("crop"), closing(batches):
                crop_tracks(batches, self.tracks, self.opts.crop_scale, on_done=self._track_done,
                            on_crops=self._crops_made)
            return
        sinks = self._first_decode_sinks() if self.given else []
        # The frame dump wants whole frames; crops and video.avi (encoded from the
        # decoder's own pictures) do not.
        region = None if sinks else crop_region(self.tracks, self.opts.crop_scale, self.info)
        with self.times.stage("crop"), closing(self._frames("cropping", n_frames, copy=self.given,
                                                            region=region)) as decoded:
            batches = _tee(decoded, sinks)
            crop_tracks(batches, self.tracks, self.opts.crop_scale, on_done=self._track_done,
                        on_crops=self._crops_made, tail_tolerance=self.TAIL_TOLERANCE if self.given else 0,
                        region=region, frame_size=self.info.display_size)
            if self.given:  # video.avi and the frame dump want the frames after the last track too
                for _ in batches:
                    pass

    # A track's crop AVI encodes as its crops are made, so when the track is done only
    # its tail is left to write.  SyncNet then scores the file as written, decoded
    # (what run_syncnet.py and the reference's run_syncnet score), not the crops in
    # memory: the crop AVI is lossy MPEG-4, and scoring the crops before encoding
    # moved confidences by about 1% from the scripts' on the same file.  It scores them
    # after the crop pass, as run_syncnet.py does: in the middle of it, the pass's
    # decoder and encoders ran beside SyncNet and slowed it by a quarter.
    def _crops_made(self, i: int, crops: np.ndarray) -> None:
        if i not in self.writing and self.ref is not None:
            track = self.tracks[i]
            self.writing[i] = reference.CropVideoLikeReference(
                self.stage.track_video(i), self.stage.audio_wav, int(track["frame"][0]), int(track["frame"][-1]),
                self.opts.frame_rate)
        elif i not in self.writing:
            sound = track_audio(self.audio, self.tracks[i], self.opts.frame_rate)
            self.writing[i] = TrackVideo(self.stage.track_video(i), sound, self.opts.frame_rate)
        self.writing[i].write(crops)

    def _track_done(self, i: int, result: CropResult) -> None:
        with self.times.stage("write"):
            self.writing.pop(i).close()
        self.crops[i] = result

    def _score(self) -> list[TrackOutput]:
        """Each track with its smoothed boxes and, with a model, SyncNet's result on its file."""
        n = len(self.tracks)
        syncs: list = [None] * n
        if self.model is not None and n:
            with self.times.stage("syncnet"):
                syncs = score_track_files([self.stage.track_video(i) for i in range(n)], self.model,
                                          vshift=self.vshift, batch_size=self.sync_batch,
                                          reference_decode=self.ref is not None)
        return [TrackOutput(self.tracks[i], self.crops[i].x, self.crops[i].y, self.crops[i].s, syncs[i])
                for i in range(n)]

    def write_files(self, detections: Detections, tracks: list[TrackOutput], scored: bool, vshift: int) -> None:
        """The pickles and tracks.json; with SyncNet results, offsets and activesd.pckl."""
        with self.times.stage("write"):
            write_track_files(self.stage, detections, tracks, self.opts.frame_rate)
            if scored:
                write_sync_results(self.stage.work_dir, [t.sync for t in tracks],
                                   [self.stage.track_video(i).name for i in range(len(tracks))], vshift)

    def visualise(self, tracks: list[TrackOutput]) -> None:
        """pyavi/R/video_out.avi from the tracks and distances in memory."""
        with self.times.stage("visualise"):
            draw_visualisation(self.stage, reference_tracks(tracks), [t.sync.dists for t in tracks],
                               self.opts.frame_rate)
