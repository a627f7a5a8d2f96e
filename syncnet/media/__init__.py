"""Every FFmpeg and ffprobe call of the project.

All commands are argument lists (never a shell string).  Failures raise
`MediaError` carrying the last lines of FFmpeg's stderr; unreadable or unsuitable
inputs raise `InputError`.  Nothing is printed: FFmpeg runs with `-loglevel error`
and its output is logged at DEBUG level (visible with -v).

Timing rules that keep sound and picture aligned:
- cuts re-encode and are snapped to the source's own frame timestamps, and both
  streams are trimmed at that same instant (stream copy cuts at keyframes and
  shifts the picture against the sound, which is the error this tool measures);
- frames decoded at a requested rate sit on a grid that starts at t=0 of the file,
  and audio is padded to start at t=0 too, so frame k and sample k*rate/fps meet.

The modules, by job: `process` (running the tools, pipes), `probe` (what a file
holds, and the input checks), `pixels` (raw frame layouts, regions), `decode`
(frames), `sound` (the soundtrack), `edit` (cuts), `resync` (the sound shifted
against a stream-copied picture), `encode` (`VideoWriter`).  Use
the names below as `media.<name>`.  WAV files read and written without FFmpeg are
in `syncnet.wav`; `prefetch` lives in `syncnet.prefetch` and is named here too.
"""
from __future__ import annotations

from ..prefetch import prefetch
from .decode import AviCopy, iter_frames, read_frames
from .edit import cut, snap_to_frame
from .encode import VideoWriter
from .pixels import Region, even_region, frame_shape, i420_planes, region_exact
from .probe import AudioStream, MediaInfo, probe, require_audio, require_complete, require_video
from .process import run_ffmpeg
from .resync import resync
from .sound import detect_silences, extract_audio, read_audio

__all__ = [
    "AudioStream", "AviCopy", "MediaInfo", "Region", "VideoWriter",
    "cut", "detect_silences", "even_region", "extract_audio", "frame_shape", "i420_planes", "iter_frames",
    "prefetch", "probe", "read_audio", "read_frames", "region_exact", "require_audio", "require_complete",
    "require_video", "resync", "run_ffmpeg", "snap_to_frame",
]
