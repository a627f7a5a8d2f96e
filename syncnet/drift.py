"""Is an offset constant over a long video, or does it drift?  A robust line through
(source time, offset) points.

Broadcast QA needs to know whether one shift fixes a whole file (a constant offset) or
the sound slides against the picture (a drifting one: a wrong sample rate, dropped
frames upstream), or whether the measurements do not agree on any line (inconsistent:
several speakers, dubbing, wrong faces).  Offsets are measured in whole frames (40 ms),
so a line through them is fitted with a robust loss (scipy's `least_squares`,
soft-L1: a few wrong chunks do not tilt it), each point weighted by its confidence.

Verdicts, with the thresholds below:
- `unknown`: fewer than MIN_POINTS points, or all within MIN_SPAN_S of each other;
- `inconsistent`: the residuals' robust spread (1.4826 x their weighted median absolute
  deviation, an estimate of their standard deviation) exceeds SPREAD_MS (one frame):
  no line explains the points;
- `drifting`: the fitted line moves by more than DRIFT_MS (half a frame) over the
  points' time span;
- `constant`: otherwise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import least_squares

MIN_POINTS = 3
MIN_SPAN_S = 1.0
SPREAD_MS = 40.0  # one frame at 25 fps
DRIFT_MS = 20.0  # half a frame
SOFT_L1_MS = 4.0  # soft-L1 is quadratic within this of the line, linear beyond: a tenth of a frame
MAD_TO_SD = 1.4826  # a normal distribution's standard deviation / its median absolute deviation

THRESHOLDS = {"min_points": MIN_POINTS, "min_span_s": MIN_SPAN_S, "spread_ms": SPREAD_MS, "drift_ms": DRIFT_MS}


@dataclass(frozen=True)
class DriftFit:
    """The fitted line and the verdict; the numbers are None when the verdict is `unknown`."""

    points: int
    span_s: float | None = None  # first to last point, source seconds
    intercept_ms: float | None = None  # the line at t = 0 of the source
    slope_ms_per_hour: float | None = None
    offset_ms: float | None = None  # the line at the middle of the span: the constant offset, when constant
    spread_ms: float | None = None
    verdict: str = "unknown"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("span_s", "intercept_ms", "slope_ms_per_hour", "offset_ms", "spread_ms"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 3)
        return {**d, "thresholds": dict(THRESHOLDS)}


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.quantile(x, 0.5, weights=w, method="inverted_cdf"))


def fit_drift(times_s, offsets_ms, weights) -> DriftFit:
    """The robust, weighted line of `offsets_ms` against `times_s` (source seconds) and its verdict.

    `weights` (confidences) must be positive.  Time is centred on the middle of the span
    before fitting, so the intercept and slope are not entangled."""
    t, y, w = (np.asarray(a, np.float64).ravel() for a in (times_s, offsets_ms, weights))
    if not (len(t) == len(y) == len(w)):
        raise ValueError("times, offsets and weights must have the same length")
    if len(t) and (not np.all(np.isfinite(np.concatenate([t, y, w]))) or np.any(w <= 0)):
        raise ValueError("times, offsets and weights must be finite, weights positive")
    n = len(t)
    if n < MIN_POINTS or np.ptp(t) < MIN_SPAN_S:
        return DriftFit(points=n)
    w = w / w.mean()
    mid = (t.min() + t.max()) / 2
    x = (t - mid) / 3600.0  # hours from the middle
    sw = np.sqrt(w)

    def residuals(p: np.ndarray) -> np.ndarray:
        return sw * (p[0] + p[1] * x - y)

    # Offsets come in whole frames, so nearly every residual is 0 or a multiple of 40 ms: a loss
    # that is linear (L1) beyond a tenth of a frame lets a few wrong chunks pull the line by nothing.
    fit = least_squares(residuals, x0=[_weighted_median(y, w), 0.0], loss="soft_l1", f_scale=SOFT_L1_MS,
                        x_scale="jac")
    level, slope = (float(v) for v in fit.x)
    e = y - (level + slope * x)
    spread = MAD_TO_SD * _weighted_median(np.abs(e - _weighted_median(e, w)), w)
    span = float(np.ptp(t))
    if spread > SPREAD_MS:
        verdict = "inconsistent"
    elif abs(slope) * span / 3600.0 > DRIFT_MS:
        verdict = "drifting"
    else:
        verdict = "constant"
    return DriftFit(points=n, span_s=span, intercept_ms=level - slope * mid / 3600.0, slope_ms_per_hour=slope,
                    offset_ms=level, spread_ms=spread, verdict=verdict)


def describe(drift: dict) -> str:
    """A summary's `drift` in one line (the console's report and report.html)."""
    n = drift["points"]
    if drift["verdict"] == "unknown":
        return (f"unknown: {n} confident chunk{'' if n == 1 else 's'} ({drift['thresholds']['min_points']} needed, "
                f"at least {drift['thresholds']['min_span_s']:g} s apart)")
    return (f"{drift['verdict']}: {drift['offset_ms']:+.0f} ms at mid-run, slope {drift['slope_ms_per_hour']:+.1f} "
            f"ms/h, spread {drift['spread_ms']:.1f} ms ({n} chunks over {drift['span_s']:.0f} s)")
