"""run_pipeline.py -> run_syncnet.py -> run_visualise.py as a user runs them, on real and generated clips."""
from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from syncnet import media
from testkit.mediagen import encode
from tests.conftest import REPO

OFFSET_LINE = re.compile(r"^TRACK \d+: OFFSET -?\d+, CONF -?\d+\.\d{3}$")


def script(name: str, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / name), *args], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def weights(s3fd_face_weights, syncnet_weights):
    return {"s3fd": str(s3fd_face_weights), "syncnet": str(syncnet_weights)}


def pipeline(video, data_dir, reference, weights, *extra):
    return script("run_pipeline.py", "--videofile", str(video), "--reference", reference, "--data_dir",
                  str(data_dir), "--s3fd_model", weights["s3fd"], "--min_track", "10", "--min_face_size", "20",
                  *extra)


def test_real_clip_whole_layout(media_dir, weights, tmp_path):
    data = tmp_path / "work"
    proc = pipeline(media_dir / "talking_25fps_a.mp4", data, "clip_a", weights)
    assert proc.returncode == 0, proc.stderr
    crops = sorted((data / "pycrop/clip_a").glob("*.avi"))
    assert crops, "stand-in S3FD with face bias 1.0 finds faces on clip a"
    for f in crops:
        info = media.probe(f)
        assert (info.width, info.height, info.fps) == (224, 224, 25.0)
        assert info.has_audio
        n = len(media.read_frames(f))
        assert abs(len(media.read_audio(f)) / 16000 - n / 25) <= 0.04
    for f in ("video.avi", "audio.wav"):
        assert (data / "pyavi/clip_a" / f).stat().st_size > 0
    work = data / "pywork/clip_a"
    tracks = pickle.loads((work / "tracks.pckl").read_bytes())
    assert len(tracks) == len(crops)
    assert {"track", "proc_track"} <= set(tracks[0]) and {"x", "y", "s"} <= set(tracks[0]["proc_track"])
    scenes = pickle.loads((work / "scene.pckl").read_bytes())
    assert scenes[0][0].frame_num == 0 and scenes[-1][1].frame_num == 125
    faces = pickle.loads((work / "faces.pckl").read_bytes())
    assert len(faces) == 125 and all(f["frame"] == i for i, fr in enumerate(faces) for f in fr)
    tj = json.loads((work / "tracks.json").read_text())
    assert len(tj["tracks"]) == len(crops) and tj["n_frames"] == 125
    assert not (data / "pyframes").exists()

    proc = script("run_syncnet.py", "--reference", "clip_a", "--data_dir", str(data),
                  "--initial_model", weights["syncnet"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("AV offset:") == len(crops)
    assert "Min dist:" in proc.stdout and "Confidence:" in proc.stdout
    lines = (work / "offsets.txt").read_text().splitlines()
    assert len(lines) == len(crops) and all(OFFSET_LINE.match(line) for line in lines)
    offsets = json.loads((work / "offsets.json").read_text())
    assert [t["offset"] for t in offsets["tracks"]] == [int(line.split()[3].rstrip(",")) for line in lines]
    dists = pickle.loads((work / "activesd.pckl").read_bytes())
    assert len(dists) == len(crops) and dists[0].shape[1] == 31

    proc = script("run_visualise.py", "--reference", "clip_a", "--data_dir", str(data))
    assert proc.returncode == 0, proc.stderr
    out = media.probe(data / "pyavi/clip_a/video_out.avi")
    assert out.has_audio and (out.width, out.height) == (844, 844)


def test_syncnet_videofile_on_parity_clip(parity_dir, weights):
    """The file-level path: decoding the clip differs a little from the reference's frames."""
    expected = json.loads((parity_dir / "syncnet_eval/expected.json").read_text())
    proc = script("run_syncnet.py", "--videofile", str(parity_dir / "syncnet_eval/clip.mp4"),
                  "--initial_model", weights["syncnet"])
    assert proc.returncode == 0, proc.stderr
    offset = int(re.search(r"AV offset: \t(-?\d+)", proc.stdout).group(1))
    conf = float(re.search(r"Confidence: \t(-?[\d.]+)", proc.stdout).group(1))
    assert offset == expected["offset"]
    assert conf == pytest.approx(expected["confidence"], rel=0.05)


def test_keep_frames(media_dir, weights, tmp_path):
    proc = pipeline(media_dir / "talking_25fps_b.mp4", tmp_path, "b", weights, "--keep_frames")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "pyframes/b").glob("*.jpg"))) == 122


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory, media_dir):
    d = tmp_path_factory.mktemp("odd")
    src = media_dir / "talking_25fps_a.mp4"
    out = {}

    def ff(name, *args):
        path = d / name
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(path)], check=True)
        out[name] = path

    ff("fps30.mp4", "-vf", "fps=30")
    ff("fps2997.mp4", "-vf", "fps=30000/1001")
    ff("odd.mp4", "-vf", "scale=421:317", "-c:v", "libx264", "-pix_fmt", "yuv444p")
    ff("landscape.mp4", "-vf", "scale=480:270")
    rotated = d / "rotated.mp4"  # a phone video: stored landscape, shown portrait
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(out["landscape.mp4"]), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(rotated)], check=True)
    out["rotated.mp4"] = rotated
    ff("noaudio.mp4", "-an")
    ff("half.mp4", "-t", "0.5")
    return out


@pytest.mark.parametrize("name", ["fps30.mp4", "fps2997.mp4", "odd.mp4", "rotated.mp4"])
def test_other_inputs(odd_inputs, weights, tmp_path, name):
    proc = pipeline(odd_inputs[name], tmp_path, "r", weights)
    assert proc.returncode == 0, proc.stderr
    info = media.probe(odd_inputs[name])
    n = len(pickle.loads((tmp_path / "pywork/r/faces.pckl").read_bytes()))
    assert abs(n - info.duration * 25) <= 1.5
    avi = media.probe(tmp_path / "pyavi/r/video.avi")
    assert avi.fps == 25.0 and (avi.width, avi.height) == info.display_size
    if name == "rotated.mp4":
        assert info.rotation in (90, 270) and info.display_size == (270, 480)


def test_no_sound_is_a_clear_error(odd_inputs, weights, tmp_path):
    proc = pipeline(odd_inputs["noaudio.mp4"], tmp_path, "n", weights)
    assert proc.returncode == 2
    assert "no audio stream" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_half_second_video(odd_inputs, weights, tmp_path):
    """Shorter than the reference's min_track (100 frames): no track, a clear word, exit 0."""
    proc = script("run_pipeline.py", "--videofile", str(odd_inputs["half.mp4"]), "--reference", "h",
                  "--data_dir", str(tmp_path), "--s3fd_model", weights["s3fd"])
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "pycrop/h").glob("*.avi")) == []
    assert "no face tracks" in proc.stdout
    proc = script("run_syncnet.py", "--reference", "h", "--data_dir", str(tmp_path), "--initial_model",
                  weights["syncnet"])
    assert proc.returncode == 0, proc.stderr
    assert "no face tracks" in proc.stdout
    assert (tmp_path / "pywork/h/offsets.txt").read_text() == ""


def test_no_faces_anywhere(tmp_path, weights):
    frames = [np.full((120, 160, 3), 90, np.uint8) for _ in range(50)]
    rate = 16000
    audio = (np.random.default_rng(0).uniform(-1, 1, 2 * rate) * 3000).astype(np.int16)
    video = encode(tmp_path / "grey.mp4", frames, Fraction(25), audio, rate)
    proc = pipeline(video, tmp_path / "w", "g", weights)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "w/pycrop/g").is_dir() and not any((tmp_path / "w/pycrop/g").iterdir())
    assert "no face tracks" in proc.stdout + proc.stderr


def test_failed_run_keeps_earlier_outputs(media_dir, weights, tmp_path):
    import signal
    import time

    data = tmp_path / "w"
    assert pipeline(media_dir / "talking_25fps_a.mp4", data, "keep", weights).returncode == 0
    before = {p.relative_to(data): p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    # A run killed in the middle of its work leaves the earlier outputs as they were.
    proc = subprocess.Popen([sys.executable, str(REPO / "run_pipeline.py"), "--videofile",
                             str(media_dir / "talking_25fps_b.mp4"), "--reference", "keep", "--data_dir", str(data),
                             "--s3fd_model", weights["s3fd"]])
    deadline = time.time() + 60
    while time.time() < deadline and not list(data.glob(".staging-keep-*/pyavi/keep/audio.wav")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = {p.relative_to(data): p.stat().st_mtime_ns for p in data.rglob("*")
             if p.is_file() and not str(p.relative_to(data)).startswith((".staging", ".syncnet-"))}  # and its lock
    assert after == before
    # A run with the wrong weights fails before touching anything, with one line.
    proc = script("run_pipeline.py", "--videofile", str(media_dir / "talking_25fps_a.mp4"), "--reference",
                  "keep", "--data_dir", str(data), "--s3fd_model", weights["syncnet"])
    assert proc.returncode == 2 and "S3FD" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # The next good run replaces the outputs and clears what the killed run left.
    assert pipeline(media_dir / "talking_25fps_b.mp4", data, "keep", weights).returncode == 0
    assert not list(data.glob(".staging-*"))
    assert pickle.loads((data / "pywork/keep/faces.pckl").read_bytes()).__len__() == 122


def test_missing_weights_say_where_to_put_them(media_dir, tmp_path, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("S3FD_MODEL", "SYNCNET_MODEL")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    proc = subprocess.run([sys.executable, str(REPO / "run_pipeline.py"), "--videofile",
                           str(media_dir / "talking_25fps_a.mp4"), "--reference", "x", "--data_dir",
                           str(tmp_path)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    if (REPO / "detectors/s3fd/weights/sfd_face.pth").exists():
        pytest.skip("real weights are installed in this checkout")
    assert proc.returncode == 2
    assert "sfd_face.pth" in proc.stderr and "download_model.sh" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
