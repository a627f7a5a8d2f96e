"""The reference's published demo result, and whether ours agrees with it.

The reference's README states what `demo_syncnet.py` prints for its example video
(`data/example.avi`, fetched beside the weights): offset 3, min dist 5.353, confidence
10.021.  Our users' first check compares our numbers with those: the offset must be
equal and both floats within 0.5% (the published ones are rounded to 3 decimals, and
FFmpeg and torch builds move the decoded frames and sums a little).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoNumbers:
    """One run's three numbers (offset in frames, min dist, confidence)."""

    offset: int
    min_dist: float
    confidence: float


PUBLISHED = DemoNumbers(offset=3, min_dist=5.353, confidence=10.021)
RTOL = 0.005  # 0.5 %


@dataclass(frozen=True)
class DemoCheck:
    """The comparison: `agree`, and one line per number (ours, published, verdict), then the verdict."""

    agree: bool
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def compare(ours: DemoNumbers, published: DemoNumbers = PUBLISHED, rtol: float = RTOL) -> DemoCheck:
    """Ours against the published numbers: offsets equal, floats within `rtol` of the published value."""
    rows = [("AV offset", f"{ours.offset:d}", f"{published.offset:d}", ours.offset == published.offset, "")]
    for name, mine, theirs in (("Min dist", ours.min_dist, published.min_dist),
                               ("Confidence", ours.confidence, published.confidence)):
        rel = abs(mine - theirs) / abs(theirs)
        rows.append((name, f"{mine:.3f}", f"{theirs:.3f}", rel <= rtol, f"{100 * rel:.2f}% apart"))
    lines = [f"{'':12s} {'ours':>10s} {'published':>10s}"]
    for name, mine, theirs, ok, note in rows:
        verdict = "ok" if ok else "DIFFERS"
        lines.append(f"{name:12s} {mine:>10s} {theirs:>10s}  {verdict}{' (' + note + ')' if note else ''}")
    agree = all(r[3] for r in rows)
    if agree:
        lines.append(f"AGREE: the offset is equal and min dist and confidence are within {100 * rtol:g}% "
                     "of the reference's published numbers")
    else:
        bad = ", ".join(r[0] for r in rows if not r[3])
        lines.append(f"DISAGREE: {bad} not as published (the offset must be equal, min dist and confidence "
                     f"within {100 * rtol:g}%); see README, Quick start, for what to check")
    return DemoCheck(agree=agree, lines=lines)
