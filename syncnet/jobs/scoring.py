"""LSE-C / LSE-D of a set of videos, in the two forms of the published evaluation protocol.

- `cropped`: each video is already a face crop (LRS2/LRS3-style test sets); SyncNet
  scores it whole (`syncnet.facescore`), one track per file.
- `detect`: the full pipeline per video (detection, tracking, 224x224 crop videos, as
  run_pipeline.py), then SyncNet on each crop video; one row per track.  With the
  `reference` protocol the pipeline takes the reference's decode path too
  (`FaceOptions.reference_decode`: its AVI conversion and JPEG frames).

The networks are loaded once by the caller.  A file that fails is recorded with one
line and the others go on.  After every file the outputs are rewritten (atomically):
`scores.json` (schemas/scores.schema.json), `scores.csv` and `all_scores.txt` in the
protocol's own format, so an interrupted run keeps what it measured.
"""
from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..analysis import analyse_video
from ..errors import InputError, SyncNetError
from ..facescore import PROTOCOLS, score_face_video
from ..files import write_bytes_atomic, write_json_atomic
from ..layout import Layout
from ..lse import all_scores_text, lse_means
from ..options import FaceOptions
from ..outlock import output_lock
from ..results import TrackRecord, error_line
from .batch import VIDEO_SUFFIXES
from .previous import face_parameters

log = logging.getLogger(__name__)

FACES = ("cropped", "detect")
SCORES_JSON = "scores.json"
SCORES_CSV = "scores.csv"
ALL_SCORES = "all_scores.txt"
WORK_DIR = "work"  # detect form: OUTPUT/work/pyavi|pycrop|pywork/<file name>/
SCHEMA_VERSION = 1
CSV_COLUMNS = ("file", "track", "status", "offset", "offset_ms", "confidence", "min_dist", "n_frames",
               "reliable", "at_search_edge", "error")


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """The videos to score: each folder's videos (by suffix, sorted by name: `ls` in the C
    locale, the protocol's order) and each named file, in the order given.

    A path that does not exist, a folder without videos, or two inputs with one file name
    (names key the rows and the work folders) is an InputError.
    """
    videos: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES),
                           key=lambda f: f.name)
            if not found:
                raise InputError(f"no video files ({', '.join(VIDEO_SUFFIXES)}) in {p}")
            videos.extend(found)
        elif p.is_file():
            videos.append(p)
        else:
            raise InputError(f"{p} does not exist")
    seen: dict[str, Path] = {}
    unique = []
    for v in videos:
        other = seen.get(v.name)
        if other is not None:
            if other.resolve() == v.resolve():
                continue
            raise InputError(f"two inputs are named {v.name} ({other} and {v}): rows and work folders are keyed "
                             "by file name; score them in separate runs")
        seen[v.name] = v
        unique.append(v)
    return unique


@dataclass
class ScoreSettings:
    """What the scores depend on: the form, the decode, SyncNet's search and the face pipeline."""

    faces: str = "cropped"
    protocol: str = "ours"
    vshift: int = 15
    batch_size: int = 20
    face_options: FaceOptions = field(default_factory=FaceOptions)

    def __post_init__(self):
        if self.faces not in FACES:
            raise ValueError(f"faces must be one of {FACES}, got {self.faces!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        # The reference protocol runs the reference's run_pipeline.py: its decode path too.
        self.face_options = replace(self.face_options, reference_decode=self.protocol == "reference")

    def parameters(self, precision: str) -> dict:
        p = {"vshift": self.vshift, "batch_size": self.batch_size, "precision": precision}
        if self.faces == "detect":
            p.update(face_parameters(self.face_options))
        return p


def _track(index: int, result) -> dict:
    """A track's record, its confidence and min dist exactly as SyncNet returned them (float32)."""
    d = TrackRecord.of(index, result).to_dict()
    d["confidence"], d["min_dist"] = float(result.confidence), float(result.min_dist)
    return d


class _ScoreJob:
    def __init__(self, videos: list[Path], out: Path, settings: ScoreSettings, model, detector):
        self.videos, self.out, self.settings = videos, out, settings
        self.model, self.detector = model, detector
        self.t0 = time.perf_counter()
        self.records: dict[str, dict] = {}
        self.head = {"schema_version": SCHEMA_VERSION,
                     "software": {"name": "syncnet-score-videos", "version": __version__},
                     "faces": settings.faces, "protocol": settings.protocol,
                     "parameters": settings.parameters(getattr(model, "precision", "fp32"))}

    def tracks_of(self, video: Path) -> list[dict]:
        s = self.settings
        if s.faces == "cropped":
            return [_track(0, score_face_video(video, self.model, s.protocol, s.vshift, s.batch_size))]
        layout = Layout(self.out / WORK_DIR, video.name)
        analysis = analyse_video(video, layout, s.face_options, detector=self.detector, vshift=s.vshift)
        if not analysis.tracks and analysis.diagnosis is not None:
            log.warning("%s: no face track: %s", video.name, analysis.diagnosis.message)
        return [_track(i, score_face_video(f, self.model, s.protocol, s.vshift, s.batch_size))
                for i, f in enumerate(layout.track_videos())]

    def one(self, video: Path) -> dict:
        t = time.perf_counter()
        rec = {"file": video.name, "path": str(video), "status": "failed", "error": None, "tracks": []}
        try:
            rec["tracks"] = self.tracks_of(video)
            rec["status"] = "success" if rec["tracks"] else "no_faces"
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
            rec["error"] = error_line(exc, with_type=not isinstance(exc, SyncNetError))
            log.debug("%s failed", video.name, exc_info=True)
        rec["seconds"] = round(time.perf_counter() - t, 3)
        return rec

    def summary(self, complete: bool) -> dict:
        files = [self.records.get(v.name) or {"file": v.name, "path": str(v), "status": "pending", "error": None,
                                              "tracks": [], "seconds": None} for v in self.videos]
        tracks = [t for f in files for t in f["tracks"]]
        totals = {"files": len(files), "tracks": len(tracks)}
        for status in ("success", "no_faces", "failed", "pending"):
            totals[status] = sum(f["status"] == status for f in files)
        return {**self.head, "complete": complete, "files": files, "means": lse_means(tracks).to_dict(),
                "totals": totals, "wall_seconds": round(time.perf_counter() - self.t0, 3)}

    def save(self, complete: bool = False) -> dict:
        summary = self.summary(complete)
        write_json_atomic(self.out / SCORES_JSON, summary)
        write_bytes_atomic(self.out / SCORES_CSV, csv_text(summary).encode())
        write_bytes_atomic(self.out / ALL_SCORES,
                           all_scores_text(t for f in summary["files"] for t in f["tracks"]).encode())
        return summary

    def run(self, progress: bool) -> dict:
        self.save()
        for video in tqdm(self.videos, desc="scoring", unit="file", disable=not progress):
            rec = self.records[video.name] = self.one(video)
            if rec["status"] == "failed":
                log.error("%s failed: %s", video.name, rec["error"])
            self.save()
        return self.save(complete=True)


def csv_text(summary: dict) -> str:
    """scores.csv: one row per track, and one (without numbers) per file without a track."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for f in summary["files"]:
        base = {"file": f["file"], "status": f["status"], "error": f["error"] or ""}
        if not f["tracks"]:
            w.writerow(base)
        for t in f["tracks"]:
            w.writerow({**base, **t, "reliable": str(t["reliable"]).lower(),
                        "at_search_edge": str(t["at_search_edge"]).lower()})
    return buf.getvalue()


def score_videos(videos: list[Path], output_dir: str | Path, settings: ScoreSettings, model, detector=None,
                 progress: bool = False) -> dict:
    """Score `videos` into OUTPUT_DIR (scores.json, scores.csv, all_scores.txt); return the summary.

    `detector` (S3FD) is needed for the detect form only.  Holds OUTPUT_DIR's lock throughout.
    """
    if settings.faces == "detect" and detector is None:
        raise ValueError("the detect form needs a face detector")
    out = Path(output_dir)
    with output_lock(out):
        return _ScoreJob(videos, out, settings, model, detector).run(progress)
