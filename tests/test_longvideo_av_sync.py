"""The long job keeps each chunk's sound with its picture when chunk starts are off the 25 fps grid.

A chunk is cut at a source frame (`start`) and its picture is decoded on a 25 fps grid
from that frame, so its sound must start at `start` too.  On a 25 fps source with round
chunk times, `start` is also a frame of the source's 25 fps grid (frame_start / 25 s)
and nothing can go wrong; on 29.97 fps and variable-frame-rate sources the two differ
by up to about a frame.  The long job once re-based the sound to frame_start / 25,
which skewed it against the picture by that difference and gave offsets one frame off
(k + 1 instead of k where the cut lay 0.7-0.8 frames before the grid frame);
these tests pin that down.
"""
from __future__ import annotations

import subprocess
from fractions import Fraction

import numpy as np
import pytest

from syncnet import media
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video
from syncnet.options import FaceOptions
from syncnet.wav import read_wav
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip


def _drop_frames(src, dst):
    """Drop every frame numbered 1 or 4 mod 5 of a 60 fps clip: irregular frame times (gaps of
    17 and 33 ms, below a 25 fps frame, so every 25 fps frame still has a source frame near it)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf",
                    "select='not(eq(mod(n\\,5)\\,1)+eq(mod(n\\,5)\\,4))'", "-vsync", "vfr", "-c:v", "libx264",
                    "-preset", "ultrafast", "-crf", "10", "-c:a", "copy", str(dst)], check=True)
    return dst


@pytest.mark.parametrize("k", [-3, 4])
@pytest.mark.parametrize("source", ["29.97fps", "vfr"])
def test_known_offset_on_chunks_off_the_25fps_grid(tmp_path, source, k):
    """6.4 s chunks every 3.98 s of a 16 s clip: the cuts at 3.98, 7.96 and 11.94 s snap to
    source frames between 25 fps frames, before and after them, two by more than half a
    frame.  Every chunk reports offset k, and SyncNet heard the chunk's own sound, sample
    for sample (pyavi/<chunk>/audio.wav = audio/<chunk>.wav)."""
    if source == "vfr":
        src = _drop_frames(known_offset_clip(tmp_path / "cfr.mp4", 16.0, k, fps=Fraction(60), size=(96, 72)),
                           tmp_path / "src.mp4")
        assert media.probe(src).variable_frame_rate
    else:
        src = known_offset_clip(tmp_path / "src.mp4", 16.0, k, fps=Fraction(30000, 1001), size=(96, 72))
    opts = LongVideoOptions(chunk_duration=6.4, overlap=2.42, visualise=False,
                            faces=FaceOptions(min_track=5, min_face_size=10, batch_size=32))
    out = tmp_path / "out"
    summary = process_long_video(src, out, opts, FixedBoxDetector(box=(10, 10, 80, 60)),
                                 BrightnessLoudnessSyncNet())
    chunks = summary["chunks"]
    assert len(chunks) == 4
    # How far each cut lies from the 25 fps frame its analysis grid is numbered from (frames).
    skew = [c["start"] * 25 - c["frame_start"] for c in chunks]
    assert skew[0] == 0 and min(skew) < -0.5 and max(skew) > 0.5, skew
    for c in chunks:
        assert c["status"] == "success", c
        assert c["best_track"]["offset"] == k, (c["name"], c["start"], c["best_track"])
        _, cut_sound = read_wav(out / "audio" / f"{c['name']}.wav")
        _, heard = read_wav(out / "syncnet_data/pyavi" / c["name"] / "audio.wav")
        np.testing.assert_array_equal(heard, cut_sound)
