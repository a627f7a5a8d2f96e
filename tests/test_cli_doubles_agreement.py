"""A chunk of the long job equals the one-video path on its file, with offsets inside the search.

The stand-in SyncNet's offsets sit at the search edge whatever the input (see
test_longvideo_standin.py), so that comparison cannot catch an offset that moves.  Here
the test doubles (testkit/doubles.py) give the known offset k of a generated clip, well
inside +-vshift, and every chunk of the long job must give what run_pipeline.py's and
run_syncnet.py's library calls (`analyse_video`, then `evaluate_tracks`) give on the
chunk file: the same track frames, offset k, and the same confidence, min_dist and
distances (rtol 1e-5).
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from syncnet.analysis import analyse_video
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video
from syncnet.layout import Layout
from syncnet.options import FaceOptions
from syncnet.trackfile import evaluate_tracks
from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip

RTOL = 1e-5


@pytest.mark.parametrize("k", [-4, 3])
def test_every_chunk_equals_the_one_video_path(tmp_path, k):
    src = known_offset_clip(tmp_path / "src.mp4", 10.0, k)
    faces = FaceOptions(min_track=5, min_face_size=10, batch_size=32)
    opts = LongVideoOptions(chunk_duration=4.0, overlap=1.0, chunk_crf=0, visualise=False, faces=faces)
    out = tmp_path / "long"
    summary = process_long_video(src, out, opts, FixedBoxDetector(), BrightnessLoudnessSyncNet())
    assert len(summary["chunks"]) == 3
    for chunk in summary["chunks"]:
        assert chunk["status"] == "success", chunk
        name = chunk["name"]
        alone = Layout(tmp_path / "alone", name)
        analyse_video(chunk["files"]["chunk"], alone, faces, detector=FixedBoxDetector())
        scripts = evaluate_tracks(alone, BrightnessLoudnessSyncNet())
        mine = Layout(out / "syncnet_data", name)
        ours = json.loads(mine.work("offsets.json").read_text())["tracks"]
        assert len(ours) == len(scripts) == len(chunk["tracks"]) == 1
        o, s, rec = ours[0], scripts[0], chunk["tracks"][0]
        assert int(s.offset) == o["offset"] == rec["offset"] == k
        np.testing.assert_allclose([o["confidence"], o["min_dist"]], [float(s.confidence), float(s.min_dist)],
                                   rtol=RTOL)
        np.testing.assert_allclose(rec["confidence"], o["confidence"], rtol=RTOL)
        mine_tracks, alone_tracks = (pickle.loads(x.work("tracks.pckl").read_bytes()) for x in (mine, alone))
        np.testing.assert_array_equal(mine_tracks[0]["track"]["frame"], alone_tracks[0]["track"]["frame"])
        mine_d, alone_d = (pickle.loads(x.work("activesd.pckl").read_bytes()) for x in (mine, alone))
        for d1, d2 in zip(mine_d, alone_d):
            np.testing.assert_allclose(d1, d2, rtol=RTOL)
