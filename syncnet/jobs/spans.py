"""One long video in spans: consecutive chunks of its plan, each with a detection pass of its own.

A cluster runner (syncnet.cluster) plans and records in the driver (`LongVideoJob.prepare`,
`record`, `finish`) and hands each span to a worker (`run_span`).  A span's detection
starts at its first chunk's first frame, exactly as a resumed run starts (the shot detector
sees the frame before it first), so every chunk gets the detections and shots a single pass
gives it; the overlap frames at a span boundary are detected by both spans (`detector_frames`
counts them).  The single-machine job is the same code with the whole plan as one span.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .. import media
from ..allocator import release_freed_memory
from ..chunking import Chunk
from ..detection import Detections
from ..errors import SyncNetError
from ..outlock import output_lock
from .checkpoint import SpanState
from .longvideo import LongVideoJob, LongVideoOptions, _is_disk_full
from .paths import frame_range
from .records import ChunkResult
from .scheduler import ChunkScheduler


@dataclass
class SpanResult:
    """What a worker sends back for a span: each chunk's result, frames detected, stage seconds."""

    results: list[tuple[int, ChunkResult]] = field(default_factory=list)
    detector_frames: int = 0
    times: dict[str, float] = field(default_factory=dict)


def split_spans(todo: list[Chunk], n: int) -> list[list[Chunk]]:
    """`todo` as at least `n` spans of consecutive chunks where it has that many (fewer spans:
    less detected twice); a gap in the plan (chunks done before) always ends a span."""
    spans: list[list[Chunk]] = []
    for c in todo:
        if spans and spans[-1][-1].index + 1 == c.index:
            spans[-1].append(c)
        else:
            spans.append([c])
    while len(spans) < n and any(len(s) > 1 for s in spans):
        longest = max(range(len(spans)), key=lambda i: len(spans[i]))
        s = spans[longest]
        spans[longest:longest + 1] = [s[:len(s) // 2], s[len(s) // 2:]]
    return spans


def span_start(span: list[Chunk], opts: LongVideoOptions) -> int:
    """The first frame a span detects: its first chunk's, moved back onto --detect_every's grid
    so that the boxes held between detected frames are the single pass's."""
    a = frame_range(span[0], opts.faces.frame_rate)[0]
    return a - a % max(1, opts.faces.detect_every)


def run_span(source: str | Path, output_dir: str | Path, opts: LongVideoOptions, detector, model,
             info: media.MediaInfo, chunks: list[Chunk], span: list[Chunk], source_frames: int) -> SpanResult:
    """Detect from the span's first frame to its last chunk's end and analyse its chunks (files
    written atomically under OUTPUT_DIR, as on one machine); their results, not recorded."""
    job = LongVideoJob(source, output_dir, opts, detector, model)
    job.info = info
    fr = opts.faces.frame_rate
    out = SpanResult()

    def analyse(chunk: Chunk, window: Detections | None) -> None:
        result, _ = job.analysed(chunk, window)  # a full disk is a failed chunk here; the driver stops
        out.results.append((chunk.index, result))

    def detected(new: int, total: int) -> None:
        out.detector_frames += new

    if opts.faces.reference_decode:  # each chunk from its own file, the reference's way: no pass to share
        for chunk in span:
            analyse(chunk, None)
            release_freed_memory()
        out.detector_frames = job.detector_frames_this_run
    else:
        ChunkScheduler(job.source, info, opts, detector, job.times, SpanState(span_start(span, opts)),
                       analyse=analyse, saved=release_freed_memory,
                       detected=detected).run(chunks, span, source_frames, until=frame_range(span[-1], fr)[1])
    out.times = job.times.rounded()
    return out


# The cluster's side of a run: given the spans, yields each span with its result as it comes
# back, or with an error line when its task failed for good (syncnet.cluster).
SpanExecutor = Callable[[list[list[Chunk]]], Iterable[tuple[list[Chunk], SpanResult | str]]]

log = logging.getLogger(__name__)


def process_in_spans(job: LongVideoJob, spans: int, execute: SpanExecutor) -> dict:
    """`job` with its chunks run as about `spans` spans by `execute`; the driver plans, records
    each span's chunks as it comes back (the summary written after each: a killed driver loses
    nothing, a rerun resumes) and finishes, as `LongVideoJob.run` does on one machine."""
    t_start = time.perf_counter()
    info = media.probe(job.source)
    media.require_video(info)
    media.require_audio(info)
    with output_lock(job.paths.out):
        chunks, todo = job.prepare(info)
        for span, result in execute(split_spans(todo, spans)):
            if isinstance(result, str):  # the task itself failed (not one chunk): each of its chunks failed
                log.error("chunks %s..%s failed: %s", span[0].name, span[-1].name, result)
                for c in span:
                    job.record(c.index, ChunkResult.failed(result), None)
                continue
            job.summary.detector_frames += result.detector_frames
            job.detector_frames_this_run += result.detector_frames
            for stage, seconds in result.times.items():
                job.times[stage] = job.times.get(stage, 0.0) + seconds
            for index, chunk_result in result.results:
                full = chunk_result.error if chunk_result.error and _is_disk_full(SyncNetError(chunk_result.error)) \
                    else None
                job.record(index, chunk_result, None, SyncNetError(full) if full else None)
        return job.finish(t_start)


__all__ = ["SpanExecutor", "SpanResult", "process_in_spans", "run_span", "span_start", "split_spans"]
