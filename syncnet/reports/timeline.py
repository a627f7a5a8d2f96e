"""timeline.png: a long video's chunks along the source's time.

Four panels sharing the x axis (source time, hh:mm:ss): each chunk's best-track offset
in frames (ms on the right axis), its confidence, the face tracks as spans, and the
chunks coloured by status and filter verdict.  Failed chunks and stretches without a
usable face (no reliable face track in any chunk) are shaded in the first two panels.

Drawn on a bare `matplotlib.figure.Figure` with the Agg canvas (no pyplot and its
global figure registry), at a fixed size, and saved without the PNG's Software tag, so
one summary always gives the same bytes.
"""
from __future__ import annotations

import io
import warnings

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from .tables import ChunkRow, chunk_rows, filter_on, hms, ms_per_frame, vshift

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 7.5, 100  # 1200 x 750 pixels
SIZE_PX = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))

COLOURS = {
    "accepted": "#2ca02c", "rejected": "#ff7f0e", "measured": "#1f77b4", "unreliable": "#9e9e9e",
    "no_faces": "#c7c7c7", "failed": "#d62728", "pending": "#ffffff", "no_face_shade": "#bdbdbd",
}
TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400]


def _tick_step(duration: float, most: int = 12) -> int:
    return next((s for s in TICK_STEPS if duration / s <= most), TICK_STEPS[-1])


def _chunk_colour(r: ChunkRow) -> str:
    if r.status in ("failed", "pending", "no_faces"):
        return COLOURS[r.status]
    if r.filter_enabled:
        return COLOURS["accepted" if r.accepted else "rejected"]
    return COLOURS["measured" if r.usable else "unreliable"]


def _point_colour(r: ChunkRow) -> str:
    if not r.usable:
        return COLOURS["unreliable"]
    if r.filter_enabled:
        return COLOURS["accepted" if r.accepted else "rejected"]
    return COLOURS["measured"]


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def no_usable_face(rows: list[ChunkRow], shortest: float = 0.04) -> list[tuple[float, float]]:
    """Stretches of the source, inside analysed chunks, covered by no reliable face track of
    any chunk (failed and pending chunks are marked on their own)."""
    analysed = _merge([(r.start, r.end) for r in rows if r.status in ("success", "no_faces")])
    faces = _merge([(t.start_time, t.end_time) for r in rows for t in r.tracks if t.reliable])
    gaps = []
    for a, b in analysed:
        at = a
        for fa, fb in faces:
            if fb <= at or fa >= b:
                continue
            if fa > at:
                gaps.append((at, fa))
            at = max(at, fb)
        if at < b:
            gaps.append((at, b))
    return [(a, b) for a, b in gaps if b - a >= shortest]


def timeline_png(summary: dict) -> bytes:
    """The timeline of a processing_summary.json, as PNG bytes (SIZE_PX)."""
    rows = chunk_rows(summary)
    duration = float(summary["input"]["duration"])
    vs = vshift(summary)
    frame_ms = ms_per_frame(summary)
    filtering = filter_on(summary)
    min_conf = (summary.get("filter_parameters") or {}).get("min_confidence")

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax_off, ax_conf, ax_tracks, ax_chunks = fig.subplots(4, 1, sharex=True,
                                                        gridspec_kw={"height_ratios": [3, 2, 1.2, 0.8]})
    name = summary["input"]["path"].replace("\\", "/").rsplit("/", 1)[-1]
    fig.suptitle(f"{name}: best face track of each chunk ({len(rows)} chunks, {hms(duration)})", fontsize=11,
                 parse_math=False)  # a file name is text, whatever its $ signs

    # Shading first, under everything: failed chunks, and no usable face.
    shade_no_face = no_usable_face(rows)
    for ax in (ax_off, ax_conf):
        for a, b in shade_no_face:
            ax.axvspan(a, b, facecolor=COLOURS["no_face_shade"], alpha=0.35, linewidth=0, zorder=0)
        for r in rows:
            if r.status == "failed":
                ax.axvspan(r.start, r.end, facecolor=COLOURS["failed"], alpha=0.15, hatch="//",
                           edgecolor=COLOURS["failed"], linewidth=0, zorder=0)

    # Offsets and confidences: a segment over each chunk, a dot in its middle.
    for r in rows:
        b = r.best
        if b is None:
            continue
        colour = _point_colour(r)
        style = "-" if r.usable else ":"
        mid = (r.start + r.end) / 2
        for ax, y in ((ax_off, b.offset), (ax_conf, b.confidence)):
            ax.hlines(y, r.start, r.end, colors=colour, linestyles=style, linewidth=2, zorder=2)
            ax.plot([mid], [y], marker="o", color=colour, markersize=4, zorder=3)
        if b.at_search_edge:
            ax_off.plot([mid], [b.offset], marker="^" if b.offset > 0 else "v", markersize=9,
                        markerfacecolor="none", markeredgecolor=COLOURS["failed"], zorder=4)

    ax_off.axhline(0, color="black", linewidth=0.8, zorder=1)
    for edge in (-vs, vs):
        ax_off.axhline(edge, color="black", linewidth=0.6, linestyle="--", zorder=1)
    ax_off.set_ylim(-vs - 1.5, vs + 1.5)
    ax_off.set_ylabel("offset (frames)\n+ = sound leads")
    ax_off.yaxis.set_major_locator(MultipleLocator(5 if vs > 6 else 1))
    sec = ax_off.secondary_yaxis("right", functions=(lambda f: f * frame_ms, lambda m: m / frame_ms))
    sec.set_ylabel("offset (ms)")
    ax_off.grid(axis="y", linewidth=0.3)

    ax_conf.set_ylabel("confidence")
    if min_conf is not None:
        ax_conf.axhline(min_conf, color=COLOURS["rejected"], linewidth=0.8, linestyle="--", zorder=1)
    confs = [r.best.confidence for r in rows if r.best is not None]
    top = max([*confs, min_conf or 0.0, 1.0])
    ax_conf.set_ylim(min(0.0, *confs) if confs else 0.0, top * 1.1)
    ax_conf.grid(axis="y", linewidth=0.3)

    # Face tracks: a lane per chunk parity (overlapping chunks side by side), a sub-lane per track.
    for r in rows:
        lane = r.index % 2
        n = max(len(r.tracks), 1)
        for k, t in enumerate(r.tracks):
            height = 0.8 / n
            y = lane + 0.1 + k * height
            colour = COLOURS["measured"] if t.reliable else COLOURS["unreliable"]
            ax_tracks.broken_barh([(t.start_time, t.end_time - t.start_time)], (y, height * 0.9),
                                  facecolors=colour, edgecolor="black" if t.best else "none", linewidth=0.6)
    ax_tracks.set_ylim(0, 2)
    ax_tracks.set_yticks([])
    ax_tracks.set_ylabel("face\ntracks")

    for r in rows:
        ax_chunks.broken_barh([(r.start, r.end - r.start)], (r.index % 2 + 0.1, 0.8),
                              facecolors=_chunk_colour(r), edgecolor="black", linewidth=0.4,
                              hatch="xx" if r.status == "failed" else None)
    ax_chunks.set_ylim(0, 2)
    ax_chunks.set_yticks([])
    ax_chunks.set_ylabel("chunks")

    step = _tick_step(duration)
    ax_chunks.xaxis.set_major_locator(MultipleLocator(step))
    ax_chunks.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: hms(x)))
    ax_chunks.set_xlim(0, duration)
    ax_chunks.set_xlabel("source time (hh:mm:ss)")

    handles = []
    if filtering:
        handles += [Patch(facecolor=COLOURS["accepted"], label="accepted"),
                    Patch(facecolor=COLOURS["rejected"], label="rejected")]
    else:
        handles.append(Patch(facecolor=COLOURS["measured"], label="measured"))
    handles += [Patch(facecolor=COLOURS["measured"], edgecolor="black", linewidth=0.6,
                      label="face track (outlined: best)"),
                Patch(facecolor=COLOURS["unreliable"], label="track too short"),
                Patch(facecolor=COLOURS["no_faces"], label="no faces"),
                Patch(facecolor=COLOURS["failed"], hatch="xx", label="failed"),
                Patch(facecolor=COLOURS["no_face_shade"], alpha=0.35, label="no usable face"),
                Line2D([], [], marker="^", linestyle="none", markerfacecolor="none",
                       markeredgecolor=COLOURS["failed"], label=f"at search edge (+-{vs})")]
    if min_conf is not None:
        handles.append(Line2D([], [], color=COLOURS["rejected"], linewidth=0.8, linestyle="--",
                              label=f"min confidence {min_conf:g}"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=8, frameon=False)

    buf = io.BytesIO()
    with warnings.catch_warnings():  # letters DejaVu Sans lacks (a CJK file name) are boxes; the page has the name
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()
