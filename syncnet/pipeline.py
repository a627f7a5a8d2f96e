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
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from tqdm import tqdm

from . import media
from .cropping import CropResult, TrackCropper
from .errors import InputError
from .layout import Layout, staged
from .results import write_bytes_atomic, write_json_atomic
from .scenes import SceneDetector, scene_list_for_pickle
from .timing import StageTimes
from .tracking import track_shot

log = logging.getLogger(__name__)


class FaceDetector(Protocol):
    def detect_batch(self, images_rgb: np.ndarray, conf_th: float, scale: float) -> list[np.ndarray]: ...


@dataclass
class FaceOptions:
    """The reference's run_pipeline.py settings (its flag names and defaults)."""

    facedet_scale: float = 0.25
    crop_scale: float = 0.40
    min_track: int = 100
    frame_rate: int = 25
    num_failed_det: int = 25
    min_face_size: int = 100
    batch_size: int = 16
    conf_th: float = 0.9  # the reference's detection threshold
    detect_every: int = 1  # speed option: S3FD on every n-th frame only (see FrameDetector)


@dataclass
class Detections:
    """Per-frame faces in the reference's faces.pckl format, and the shots.

    `faces[i]` holds the faces of frame `first_frame + i`, so a long job can drop the
    frames it no longer needs and keep memory flat.
    """

    faces: list[list[dict]] = field(default_factory=list)
    scenes: list[tuple[int, int]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    first_frame: int = 0

    @property
    def n_frames(self) -> int:
        """Frames seen so far (the end of the detected range)."""
        return self.first_frame + len(self.faces)

    def faces_of(self, frame: int) -> list[dict]:
        return self.faces[frame - self.first_frame]

    def add_batch(self, boxes: list[np.ndarray]) -> None:
        first = self.n_frames
        for k, frame_boxes in enumerate(boxes):
            self.faces.append([{"frame": first + k, "bbox": b[:-1].tolist(), "conf": float(b[-1])}
                               for b in np.asarray(frame_boxes, dtype=np.float64).reshape(-1, 5)])

    def window(self, start: int, end: int, scenes: list[tuple[int, int]]) -> Detections:
        """Frames [start, end) as a video of their own: frames and shots numbered from `start`."""
        faces = [[{**face, "frame": face["frame"] - start} for face in self.faces_of(i)] for i in range(start, end)]
        clipped = [(max(s, start) - start, min(e, end) - start) for s, e in scenes if min(e, end) > max(s, start)]
        return Detections(faces=faces, scenes=clipped or [(0, end - start)], width=self.width, height=self.height)

    def forget_before(self, frame: int) -> None:
        drop = min(max(0, frame - self.first_frame), len(self.faces))
        del self.faces[:drop]
        self.first_frame += drop


def speed_parameters(opts: FaceOptions, precision: str, chunk_preset: str = "veryfast") -> dict:
    """The speed options that change results, for a summary's `parameters`: only those
    set away from their defaults, so summaries of default runs keep their earlier form."""
    p: dict = {}
    if chunk_preset != "veryfast":
        p["chunk_preset"] = chunk_preset
    if opts.detect_every != 1:
        p["detect_every"] = opts.detect_every
    if precision != "fp32":
        p["precision"] = precision
    return p


class FrameDetector:
    """Boxes for every frame of a stream, as the reference finds them: S3FD on each frame.

    With `opts.detect_every = n > 1` (a speed option, off by default) S3FD sees only
    frames 0, n, 2n, ... of the frame grid, and the n - 1 frames after each hold its
    boxes; the tracker and the track smoothing then treat them as detections.  `held`
    carries the boxes of the last detected frame into a resumed run.
    """

    def __init__(self, detector: FaceDetector, opts: FaceOptions, held: np.ndarray | None = None):
        self.detector, self.opts, self.held = detector, opts, held
        self.frames_detected = 0

    def _run(self, frames_bgr: np.ndarray) -> list[np.ndarray]:
        self.frames_detected += len(frames_bgr)
        return self.detector.detect_batch(frames_bgr[..., ::-1], conf_th=self.opts.conf_th,
                                          scale=self.opts.facedet_scale)

    def __call__(self, batch_bgr: np.ndarray, first: int) -> list[np.ndarray]:
        """Boxes of frames first .. first + len(batch) - 1 (BGR frames)."""
        every = max(1, int(self.opts.detect_every))
        if every == 1:
            return self._run(batch_bgr)
        picked = [k for k in range(len(batch_bgr)) if (first + k) % every == 0]
        found = iter(self._run(batch_bgr[picked]) if picked else [])
        boxes = []
        for k in range(len(batch_bgr)):
            if (first + k) % every == 0:
                self.held = next(found)
            elif self.held is None:  # a run resumed between detected frames without their boxes
                self.held = self._run(batch_bgr[k:k + 1])[0]
            boxes.append(self.held)
        return boxes


def detect_video(batches: Iterable[np.ndarray], detector: FaceDetector, opts: FaceOptions,
                 sinks: Iterable[Callable[[np.ndarray, int], None]] = ()) -> Detections:
    """Faces (score > opts.conf_th) and shot boundaries of every frame, in one pass.

    `sinks` see every batch with its first frame number (to dump JPEG frames from the
    same decode).
    """
    det = Detections()
    scenes = SceneDetector()
    sinks = list(sinks)
    find_faces = FrameDetector(detector, opts)
    for batch in batches:
        first = det.n_frames
        if not det.width:
            det.height, det.width = batch.shape[1:3]
        det.add_batch(find_faces(batch, first))
        scenes.push(batch, first)
        for sink in sinks:
            sink(batch, first)
    det.scenes = scenes.scenes(det.n_frames)
    return det


def find_tracks(det: Detections, opts: FaceOptions) -> list[dict]:
    """The reference's track_shot on every shot of at least min_track frames."""
    tracks: list[dict] = []
    for s, e in det.scenes:
        if e - s < opts.min_track:
            continue
        shot = [[dict(face) for face in det.faces_of(i)] for i in range(s, e)]
        tracks.extend(track_shot(shot, num_failed_det=opts.num_failed_det, min_track=opts.min_track,
                                 min_face_size=opts.min_face_size))
    return tracks


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
        self.wav = media.write_wav(path.with_name(f".{path.stem}.wav"), audio)
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
        media.write_wav(stage.audio_wav, audio)
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


def sync_report(result) -> str:
    """The reference's three lines, which existing log parsers read."""
    return "AV offset: \t%d \nMin dist: \t%.3f\nConfidence: \t%.3f" % (
        int(result.offset), float(result.min_dist), float(result.confidence))


def read_track_file(path: str | Path, max_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """A 224x224 face video's frames (decoded once at 25 fps, into memory) and its sound at
    16 kHz; None, without decoding, when its frames would take more than `max_bytes`."""
    info = media.probe(path)
    media.require_video(info)
    if not info.has_audio:
        raise InputError(f"{path} has no audio stream: SyncNet needs the sound of the face track")
    if info.display_size != (224, 224):
        raise InputError(f"{path} is {info.display_size[0]}x{info.display_size[1]}: SyncNet takes 224x224 "
                         "face crops (make them with run_pipeline.py)")
    if max_bytes is not None and info.duration * 25 * 224 * 224 * 3 > max_bytes:
        return None
    # The sound decodes in a second FFmpeg beside the frames (the file was probed once, above).
    with ThreadPoolExecutor(1) as pool:
        sound = pool.submit(media.read_audio, path, 16000, info=info)
        frames = media.read_frames(path, fps=25, info=info)
        audio = sound.result()
    expected = int(round(info.duration * 25))
    if abs(len(frames) - expected) > 1:
        log.warning("%s decoded to %d frames, its duration says %d", path, len(frames), expected)
    return frames, audio


def evaluate_track_file(path: str | Path, model, vshift: int = 15, batch_size: int = 20,
                        report: Callable[[str], None] | None = None, data=None):
    """SyncNet on one 224x224 face video (`data`: its `read_track_file` result, if already read)."""
    from .evaluate import evaluate_sync

    frames, audio = data if data is not None else read_track_file(path)
    result = evaluate_sync(model, frames, audio, vshift=vshift, batch_size=batch_size)
    if report is not None:
        report(sync_report(result))
    return result


# A track file is read ahead (while SyncNet runs on the one before) only if its frames
# are at most this big, so that two tracks in memory stay small next to one.
READ_AHEAD_BYTES = 256 << 20


def evaluate_tracks(layout: Layout, model, vshift: int = 15, batch_size: int = 20,
                    report: Callable[[str], None] | None = None) -> list:
    """Every track video of pycrop/R (sorted) -> pywork/R/offsets.txt, offsets.json, activesd.pckl.

    The next track's file is decoded while SyncNet runs on the current one (SyncNet
    leaves the CPU idle while a file decodes); results and reports keep their order.
    """
    from .results import write_sync_results

    files = layout.track_videos()
    results = []
    with ThreadPoolExecutor(1) as pool:
        ahead = None
        for k, f in enumerate(files):
            data = ahead.result() if ahead is not None else None  # None: too big to read ahead
            if k + 1 < len(files):
                ahead = pool.submit(read_track_file, files[k + 1], READ_AHEAD_BYTES)
            results.append(evaluate_track_file(f, model, vshift=vshift, batch_size=batch_size, report=report,
                                               data=data))
    write_sync_results(layout.work_dir, results, [f.name for f in files], vshift)
    return results
