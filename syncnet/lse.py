"""LSE-C and LSE-D, the lip-sync scores of the published evaluation protocol, from track results.

LSE-C is the mean of SyncNet's confidence and LSE-D the mean of its minimum distance,
over every scored face track of a set of videos (Wav2Lip's `evaluation/scores_LSE`,
built on the reference's `SyncNetInstance.evaluate`).  This module holds the plain
arithmetic and the protocol's text format, so that the job, the command line and the
tests agree on them; it reads no file and runs no network.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


def protocol_number(value: float) -> str:
    """`value` as the protocol's script prints it: `str()` of the float32 that SyncNet returned.

    The script prints 0-d float32 arrays (`str(dist) + " " + str(conf)`), which NumPy writes
    as the shortest text that reads back to the same float32 (e.g. `5.3534894`).
    """
    return str(np.float32(value))


def all_scores_line(min_dist: float, confidence: float) -> str:
    """One line of `all_scores.txt`: `<min_dist> <confidence>`, distance first, as the protocol writes it."""
    return f"{protocol_number(min_dist)} {protocol_number(confidence)}"


def all_scores_text(tracks: Iterable[Mapping]) -> str:
    """`all_scores.txt` of scored tracks (dicts with `min_dist` and `confidence`), in the order given.

    The protocol appends one line per track of each video, videos in `ls` order, tracks
    in file order; the caller passes them so.  Nothing names the file: a video without a
    track (or one that failed) adds no line, as in the protocol.
    """
    return "".join(all_scores_line(t["min_dist"], t["confidence"]) + "\n" for t in tracks)


@dataclass(frozen=True)
class LseMeans:
    """LSE-C (mean confidence) and LSE-D (mean min dist) over `n` tracks; None when `n` is 0."""

    lse_c: float | None
    lse_d: float | None
    n: int

    def to_dict(self) -> dict:
        return {"lse_c": self.lse_c, "lse_d": self.lse_d, "n_tracks": self.n}


def lse_means(tracks: Iterable[Mapping]) -> LseMeans:
    """The means over `tracks` (dicts with `confidence` and `min_dist`), in float64."""
    conf, dist = [], []
    for t in tracks:
        conf.append(float(t["confidence"]))
        dist.append(float(t["min_dist"]))
    if not conf:
        return LseMeans(None, None, 0)
    return LseMeans(math.fsum(conf) / len(conf), math.fsum(dist) / len(dist), len(conf))


def averages_lines(means: LseMeans) -> list[str]:
    """The two closing lines of the protocol's calculate_scores_LRS.py, which scripts parse."""
    return [f"Average Confidence: {means.lse_c}", f"Average Minimum Distance: {means.lse_d}"]
