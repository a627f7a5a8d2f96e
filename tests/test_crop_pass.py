"""The crop pass: decoding only the part of the picture the tracks need, and crop AVIs
encoded while the pass goes on, give the same crops as whole frames."""
from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from syncnet import analysis, media, trackfile
from syncnet.analysis import analyse_video
from syncnet.croppass import CROP_FLUSH, crop_tracks
from syncnet.errors import InputError
from syncnet.layout import Layout
from syncnet.options import FaceOptions


class DriftingFacesDetector:
    """Two faces that drift: one across the top-left corner (crops padded), one mid-frame."""

    def __init__(self):
        self.frames = 0

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        out = []
        for _ in images_rgb:
            k = self.frames
            self.frames += 1
            out.append(np.array([[-30 + 0.8 * k, 10 + 0.3 * k, 110 + 0.8 * k, 150 + 0.3 * k, 0.99],
                                 [380 - 0.5 * k, 300 + 0.2 * k, 560 - 0.5 * k, 480 + 0.2 * k, 0.98]], np.float32))
        return out


def crops_of(layout: Layout) -> list[np.ndarray]:
    return [media.read_frames(f) for f in sorted(layout.crop_dir.glob("*.avi"))]


def test_region_and_whole_frames_give_the_same_crops(media_dir, tmp_path, monkeypatch):
    clip = media_dir / "talking_25fps_a.mp4"
    opts = FaceOptions(min_track=10, min_face_size=20)
    regions = []
    real_crop_region = analysis.crop_region

    def spy(*args):
        regions.append(real_crop_region(*args))
        return regions[-1]

    monkeypatch.setattr(analysis, "crop_region", spy)
    # run_pipeline: detection pass, then a crop pass over the region only.
    narrow = analyse_video(clip, Layout(tmp_path / "a", "r"), opts, detector=DriftingFacesDetector())
    # The long job's form (shared detections, video.avi written by the crop pass), both ways.
    analyse_video(clip, Layout(tmp_path / "b", "r"), opts, detections=narrow.detections)
    monkeypatch.setattr(media, "region_exact", lambda info: False)
    whole = analyse_video(clip, Layout(tmp_path / "c", "r"), opts, detections=narrow.detections)

    region = regions[0]
    assert regions == [region, region, None]
    assert region is not None and region.width * region.height < 0.8 * 844 * 844
    assert len(narrow.tracks) == 2
    a, b, c = (crops_of(Layout(tmp_path / d, "r")) for d in "abc")
    assert len(a) == len(b) == len(c) == 2
    for x, y, z in zip(a, b, c):
        assert len(x) == 125 and np.array_equal(x, y) and np.array_equal(x, z)
    assert (a[0] == 110).all(axis=-1).any()  # the corner track's crops show the padding
    for d in "abc":
        layout = Layout(tmp_path / d, "r")
        assert media.probe(layout.avi_dir / "video.avi").display_size == (844, 844)
        tracks = pickle.loads((layout.work_dir / "tracks.pckl").read_bytes())
        assert [len(t["track"]["frame"]) for t in tracks] == [125, 125]
    assert [t.x.tolist() for t in narrow.tracks] == [t.x.tolist() for t in whole.tracks]


def test_crops_are_handed_on_as_they_are_made():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (100, 90, 130, 3), dtype=np.uint8)
    box = np.array([[30.0, 20.0, 80.0, 70.0]])
    tracks = [{"frame": np.arange(0, 75), "bbox": np.repeat(box, 75, 0)},
              {"frame": np.arange(10, 100), "bbox": np.repeat(box + 5, 90, 0)}]
    events = []
    pieces: dict[int, list] = {0: [], 1: []}

    def on_crops(i, crops):
        events.append(("crops", i, len(crops)))
        pieces[i].append(crops.copy())

    results = {}

    def on_done(i, result):
        events.append(("done", i))
        results[i] = result

    crop_tracks([frames[:40], frames[40:]], tracks, 0.4, on_done=on_done, on_crops=on_crops)
    for i in (0, 1):
        assert np.array_equal(np.concatenate(pieces[i]), results[i].crops)
        sizes = [e[2] for e in events if e[:2] == ("crops", i)]
        assert all(0 < n <= CROP_FLUSH for n in sizes) and sum(sizes) == len(tracks[i]["frame"])
        assert events.index(("done", i)) > max(k for k, e in enumerate(events) if e[:2] == ("crops", i))
    # Track 0's first crops are handed on long before the pass ends.
    assert events.index(("crops", 0, CROP_FLUSH)) < events.index(("done", 0)) - 1


def test_a_failed_crop_pass_leaves_no_half_written_crop_video(media_dir, tmp_path):
    clip = media_dir / "talking_25fps_b.mp4"
    opts = FaceOptions(min_track=10, min_face_size=20)
    first = analyse_video(clip, Layout(tmp_path / "ok", "r"), opts, detector=DriftingFacesDetector())
    det = first.detections
    # Detections for more frames than the video has: the crop pass runs out of frames.
    det.faces = det.faces + [[dict(f, frame=f["frame"] + len(det.faces)) for f in fr] for fr in det.faces]
    det.scenes = [(0, len(det.faces))]
    with pytest.raises(InputError, match="ended at frame"):
        analyse_video(clip, Layout(tmp_path / "bad", "r"), opts, detections=det)
    assert not list((tmp_path / "bad").rglob("*.avi"))


@pytest.mark.parametrize("read_ahead", [trackfile.READ_AHEAD_BYTES, 0])
def test_run_syncnet_reads_the_next_track_ahead_with_the_same_results(media_dir, tmp_path, monkeypatch,
                                                                      read_ahead):
    """run_syncnet.py decodes track k+1 while SyncNet runs on track k (only if it is small):
    the results, and the order of the printed reports, are those of one file at a time."""
    from testkit.doubles import BrightnessLoudnessSyncNet

    layout = Layout(tmp_path, "r")
    analyse_video(media_dir / "talking_25fps_b.mp4", layout, FaceOptions(min_track=10, min_face_size=20),
                  detector=DriftingFacesDetector())
    files = layout.track_videos()
    assert len(files) == 2
    model = BrightnessLoudnessSyncNet()
    alone = [trackfile.evaluate_track_file(f, model) for f in files]
    monkeypatch.setattr(trackfile, "READ_AHEAD_BYTES", read_ahead)
    reports: list[str] = []
    together = trackfile.evaluate_tracks(layout, model, report=reports.append)
    assert [r.offset for r in together] == [r.offset for r in alone]
    for a, b in zip(alone, together):
        assert np.array_equal(a.dists, b.dists) and a.confidence == b.confidence
    assert reports == [trackfile.sync_report(r) for r in alone]
    assert (layout.work_dir / "offsets.txt").read_text().count("TRACK") == 2


def test_a_bad_track_file_fails_at_its_turn(media_dir, tmp_path):
    from testkit.doubles import BrightnessLoudnessSyncNet

    layout = Layout(tmp_path, "r")
    analyse_video(media_dir / "talking_25fps_b.mp4", layout, FaceOptions(min_track=10, min_face_size=20),
                  detector=DriftingFacesDetector())
    second = layout.track_videos()[1]
    silent = second.with_name("silent.avi")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(second), "-an", "-c", "copy", str(silent)], check=True)
    silent.replace(second)
    reports: list[str] = []
    with pytest.raises(InputError, match="no audio stream"):
        trackfile.evaluate_tracks(layout, BrightnessLoudnessSyncNet(), report=reports.append)
    assert len(reports) == 1  # the first track was evaluated and reported before the error


def _child_commands() -> list[str]:
    """The command lines of this process's child processes (FFmpeg's)."""
    out = []
    for task in Path("/proc/self/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return out


def test_syncnet_runs_after_the_crop_pass_not_beside_its_decoder(media_dir, tmp_path):
    """The long job's chunks (given detections): SyncNet scores the crop videos once the crop
    pass is over, as run_syncnet.py does, so the pass's decoder (which also encodes
    video.avi) never runs beside it; results are those of the scripts."""
    from testkit.doubles import BrightnessLoudnessSyncNet

    clip = media_dir / "talking_25fps_b.mp4"
    opts = FaceOptions(min_track=10, min_face_size=20)
    det = analyse_video(clip, Layout(tmp_path / "detect", "r"), opts, detector=DriftingFacesDetector()).detections
    half = len(det.faces) // 2  # the tracks end mid-video, while the crop pass still decodes
    det.faces = det.faces[:half] + [[] for _ in det.faces[half:]]

    seen: list[list[str]] = []

    class Watching(BrightnessLoudnessSyncNet):
        def forward_lip_clip(self, clip_tensor):
            seen.append(_child_commands())
            return super().forward_lip_clip(clip_tensor)

    layout = Layout(tmp_path / "given", "r")
    got = analyse_video(clip, layout, opts, detections=det, model=Watching())
    assert len(got.tracks) == 2 and seen
    assert not [c for calls in seen for c in calls if str(clip) in c]
    scripts = trackfile.evaluate_tracks(layout, BrightnessLoudnessSyncNet())
    for track, alone in zip(got.tracks, scripts):
        assert np.array_equal(track.sync.dists, alone.dists) and track.sync.offset == alone.offset
