"""What a media file holds (ffprobe), and the checks that reject unsuitable inputs:
no video, no audio, or data that ends before the duration the file declares."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction

from ..errors import InputError, MediaError
from ..files import check_input_file
from .process import _arg_path, _run_ffprobe, _tail

# Frame timestamps and cut points are compared with this slack (seconds): far
# below any frame interval, far above floating-point noise.
TIME_EPS = 1e-4


@dataclass
class AudioStream:
    index: int
    codec: str
    sample_rate: int
    channels: int
    duration: float | None


@dataclass
class MediaInfo:
    """What ffprobe says about a file, in the units the pipeline uses."""

    path: str
    duration: float
    format_name: str
    has_video: bool
    width: int = 0
    height: int = 0
    rotation: int = 0
    fps: float = 0.0
    fps_fraction: str = ""
    variable_frame_rate: bool = False
    video_codec: str = ""
    pix_fmt: str = ""
    video_start: float = 0.0
    n_frames: int | None = None
    audio: list[AudioStream] = field(default_factory=list)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after the rotation FFmpeg applies when decoding."""
        if self.rotation % 180:
            return self.height, self.width
        return self.width, self.height

    def to_dict(self) -> dict:
        d = asdict(self)
        d["has_audio"] = self.has_audio
        d["display_width"], d["display_height"] = self.display_size
        return d


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


def _float(value, default: float | None = None) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate else 0


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe a media file; InputError when it is not one FFmpeg can read."""
    p = check_input_file(path)
    proc = _run_ffprobe(["-v", "error", "-print_format", "json", "-show_format", "-show_streams", _arg_path(p)])
    if proc.returncode != 0:
        raise InputError(f"{p} is not a media file FFmpeg can read ({_tail(proc.stderr, 1) or 'ffprobe failed'})")
    data = json.loads(proc.stdout or "{}")
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not (s.get("disposition") or {}).get("attached_pic")), None)
    audio = [AudioStream(index=int(s["index"]), codec=s.get("codec_name", ""),
                         sample_rate=int(s.get("sample_rate") or 0), channels=int(s.get("channels") or 0),
                         duration=_float(s.get("duration")))
             for s in streams if s.get("codec_type") == "audio"]
    durations = [_float(fmt.get("duration"))]
    if video:
        durations.append(_float(video.get("duration")))
    durations += [a.duration for a in audio]
    known = [d for d in durations if d]
    if not known:
        raise InputError(f"{p}: cannot tell its duration (not a complete media file?)")
    info = MediaInfo(path=str(p), duration=known[0], format_name=fmt.get("format_name", ""),
                     has_video=video is not None, audio=audio)
    if video:
        avg = _fraction(video.get("avg_frame_rate"))
        real = _fraction(video.get("r_frame_rate"))
        rate = avg or real
        info.width = int(video.get("width") or 0)
        info.height = int(video.get("height") or 0)
        info.rotation = _rotation(video)
        info.video_codec = video.get("codec_name", "")
        info.pix_fmt = video.get("pix_fmt", "") or ""
        info.video_start = _float(video.get("start_time"), 0.0) or 0.0
        info.fps = float(rate) if rate else 0.0
        info.fps_fraction = f"{rate.numerator}/{rate.denominator}" if rate else ""
        info.variable_frame_rate = bool(avg and real and abs(float(avg) - float(real)) > 0.01 * float(real))
        nb = video.get("nb_frames")
        info.n_frames = int(nb) if nb and str(nb).isdigit() else None
        if not info.fps or not info.width:
            info.has_video = False
    return info


def require_video(info: MediaInfo) -> None:
    if not info.has_video:
        raise InputError(f"{info.path} has no video stream")


def require_audio(info: MediaInfo) -> None:
    if not info.has_audio:
        raise InputError(f"{info.path} has no audio stream")


# A complete file has packets within this many seconds of its declared end.
COMPLETE_MARGIN = 3.0


def _packet_times(lines: str) -> list[float]:
    return [v for v in (_float(x.strip().strip(",")) for x in lines.splitlines()) if v is not None]


def _last_packet_time(src: str | os.PathLike, start: float | None) -> float | None:
    """The latest packet time of any stream, reading from `start` (None: the whole file)."""
    args = ["-v", "quiet", "-show_entries", "packet=pts_time", "-of", "csv=p=0"]
    if start is not None:
        args += ["-read_intervals", f"{max(0.0, start):.3f}%"]
    times = _packet_times(_run_ffprobe([*args, _arg_path(src)]).stdout)
    return max(times) if times else None


def require_complete(info: MediaInfo) -> None:
    """InputError when the file's data ends well before the duration its header declares.

    An MP4 cut short (a copy or download that stopped) with its index in front still
    probes as whole; every chunk past the break would then fail on its own with a
    puzzling message.  Reading the packets of the last seconds (from the keyframe
    before them, no decoding) tells, and only then is the whole file scanned to say
    where it ends.
    """
    if info.duration <= COMPLETE_MARGIN:
        return
    tail = (info.video_start or 0.0) + info.duration - COMPLETE_MARGIN  # packet times count from the file's start
    last = _last_packet_time(info.path, tail)
    if last is not None and last >= tail:
        return
    last = _last_packet_time(info.path, None)
    where = f"at {last:.1f} s" if last is not None else "before its first frame"
    raise InputError(f"{info.path} ends early {where} although it declares {info.duration:.1f} s "
                     "(truncated file?)")


def _frame_times_near(src: str | os.PathLike, t: float, window: float = 2.0) -> list[float]:
    """Presentation times of the source's video frames around `t` (packets only, nothing decoded)."""
    lo = max(0.0, t - window)
    proc = _run_ffprobe(["-v", "error", "-select_streams", "v:0", "-read_intervals", f"{lo:.6f}%{t + window:.6f}",
                         "-show_entries", "packet=pts_time", "-of", "csv=p=0", _arg_path(src)])
    if proc.returncode != 0:
        raise MediaError(f"ffprobe failed to read frame times of {src}", _tail(proc.stderr))
    return sorted(_packet_times(proc.stdout))


def _require_data_at(src: str | os.PathLike, t: float, info: MediaInfo) -> None:
    """InputError when the file holds no packets from `t` on although it declares more.

    A cut there would write an empty chunk, whose probe then fails with a puzzling
    "cannot tell its duration"; this says where the input really ends.  Costs one
    look at the packets of a few seconds around `t`; the whole file is scanned only
    when they are missing.
    """
    frame = 1.0 / info.fps if info.fps else 0.04
    if t <= 0 or any(x >= t - 1.5 * frame for x in _frame_times_near(src, t)):
        return
    last = _last_packet_time(src, None)
    where = f"at {last:.1f} s" if last is not None else "before its first frame"
    raise InputError(f"{src} ends early {where}: nothing to cut from {t:.1f} s on, although it declares "
                     f"{info.duration:.1f} s (truncated file?)")
