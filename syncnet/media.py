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
"""
from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np

from .errors import InputError, MediaError, SyncNetError
from .files import part_path

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 4
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


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SyncNetError(f"{name} not found: install FFmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg)")
    return path


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


def _arg_path(path: str | os.PathLike) -> str:
    """An absolute path, so that names like '-x.mp4' or 'a:b.mp4' are never read as options or protocols."""
    return os.path.abspath(os.fspath(path))


def run_ffmpeg(args: list[str], what: str) -> str:
    """Run ffmpeg with `args` and return its stderr; raise MediaError on failure."""
    cmd = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", *args]
    log.debug("ffmpeg: %s", cmd)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg failed to {what}", _tail(proc.stderr))
    if proc.stderr.strip():
        log.debug("ffmpeg stderr: %s", proc.stderr.strip()[-2000:])
    return proc.stderr


def check_input_file(path: str | os.PathLike) -> Path:
    """Reject what is not a readable file before FFmpeg sees it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such file: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a directory, not a video file")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {p}: permission denied")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty")
    return p


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
    cmd = [_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
           _arg_path(p)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
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


def _last_packet_time(src: str | os.PathLike, start: float | None) -> float | None:
    """The latest packet time of any stream, reading from `start` (None: the whole file)."""
    cmd = [_tool("ffprobe"), "-v", "quiet", "-show_entries", "packet=pts_time", "-of", "csv=p=0"]
    if start is not None:
        cmd += ["-read_intervals", f"{max(0.0, start):.3f}%"]
    proc = subprocess.run([*cmd, _arg_path(src)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace")
    times = [v for v in (_float(x.strip().strip(",")) for x in proc.stdout.splitlines()) if v is not None]
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


def _audio_filter(sample_rate: int) -> str:
    # Pad (or trim) so the first sample is the file's t=0, the same origin as the frames.
    return f"aresample={sample_rate}:async=1:first_pts=0"


def extract_audio(src: str | os.PathLike, dst: str | os.PathLike, sample_rate: int = 16000,
                  channels: int = 1, start: float | None = None, end: float | None = None) -> Path:
    """Write the first audio stream as 16-bit PCM WAV (atomically), optionally only [start, end)."""
    info = probe(src)
    require_audio(info)
    if sample_rate <= 0 or channels <= 0:
        raise InputError("sample rate and channels must be positive")
    dst = Path(dst)
    tmp = part_path(dst if dst.suffix else dst.with_suffix(".wav"))
    args = ["-i", _arg_path(src), "-map", "0:a:0", "-vn", "-af", _audio_filter(sample_rate)]
    args += _range_args(start, end)
    args += ["-ac", str(channels), "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "wav", _arg_path(tmp)]
    try:
        run_ffmpeg(["-loglevel", "error", *args], f"extract audio from {src}")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst


def _range_args(start: float | None, end: float | None) -> list[str]:
    """Output-side trimming after the filters, so the t=0 padding is applied first."""
    args = []
    if start:
        args += ["-ss", f"{start:.6f}"]
    if end is not None:
        args += ["-to", f"{end:.6f}"]
    return args


def read_audio(src: str | os.PathLike, sample_rate: int = 16000, start: float | None = None,
               end: float | None = None, info: MediaInfo | None = None) -> np.ndarray:
    """Decode the first audio stream to mono int16 samples at `sample_rate` (from t=0 of the file)."""
    info = info or probe(src)
    require_audio(info)
    args = ["-loglevel", "error", "-i", _arg_path(src), "-map", "0:a:0", "-vn",
            "-af", _audio_filter(sample_rate), *_range_args(start, end),
            "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "s16le", "-"]
    cmd = [_tool("ffmpeg"), "-hide_banner", "-nostdin", *args]
    log.debug("ffmpeg: %s", cmd)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg failed to decode the audio of {src}",
                         _tail(proc.stderr.decode(errors="replace")))
    return np.frombuffer(proc.stdout, dtype="<i2").astype(np.int16)


def read_wav(path: str | os.PathLike) -> tuple[int, np.ndarray]:
    """(sample_rate, int16 samples) of a PCM WAV file, mono or the first channel."""
    from scipy.io import wavfile

    p = check_input_file(path)
    try:
        rate, data = wavfile.read(p)
    except ValueError as exc:
        raise InputError(f"{p} is not a PCM WAV file ({exc})") from exc
    if data.ndim > 1:
        data = data[:, 0]
    if data.dtype != np.int16:
        raise InputError(f"{p}: expected 16-bit PCM samples, found {data.dtype}")
    return int(rate), data


class _StderrDrain(threading.Thread):
    """Read a pipe to the end so FFmpeg never blocks on a full stderr buffer."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.chunks: list[bytes] = []

    def run(self) -> None:
        for line in iter(self.pipe.readline, b""):
            self.chunks.append(line)
            if len(self.chunks) > 200:
                del self.chunks[:100]

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


T = TypeVar("T")
_END = object()
PREFETCH_BYTES = 256 << 20


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield `items`, produced in a background thread up to `depth` ahead (a bounded queue).

    Decoding (FFmpeg, and reading its pipe) then runs while the caller computes,
    instead of waiting for each batch: a pipe holds only 64 KB, so without this the
    decoder stalls whenever the network runs.  Errors reach the caller; closing the
    generator stops the producer and closes `items`.
    """
    if depth <= 0:
        yield from items
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_END, exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = q.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _read_into(pipe, view: memoryview) -> int:
    """Fill `view` from a raw pipe; fewer bytes only at the end of the stream."""
    got = 0
    while got < len(view):
        n = pipe.readinto(view[got:])
        if not n:
            break
        got += n
    return got


AVI_COPY_THREADS = 4


@dataclass
class AviCopy:
    """An AVI the decoder writes from the very frames it yields (the reference's video.avi).

    MPEG-4 part 2 with the XVID tag at `quality` (-q:v), with `audio_wav` as PCM sound.
    FFmpeg encodes it from its own decoded pictures, so the frames do not travel back
    through a pipe as BGR; the file appears, complete, when the last frame is read.
    """

    path: Path
    audio_wav: Path | None = None
    quality: int = 2
    _tmp: Path | None = field(default=None, init=False, repr=False)

    @property
    def tmp(self) -> Path:
        if self._tmp is None:  # one name per instance, unique per process and call
            self._tmp = part_path(self.path)
        return self._tmp


PIXEL_FORMATS = ("bgr24", "yuv420p")

# 8-bit planar YUV: FFmpeg converts each pixel to BGR from its own samples, so a
# region cut before the conversion (at even offsets, even sizes) is exactly that part
# of the converted frame.  Not so for 10-bit sources (the dither to 8 bits depends on
# the position) nor for odd sizes in 4:2:0 (measured on FFmpeg 5.1; see test_media).
_REGION_EXACT_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})


@dataclass(frozen=True)
class Region:
    """A rectangle of the displayed frame: columns [left, left + width), rows [top, top + height)."""

    left: int
    top: int
    width: int
    height: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width


def region_exact(info: MediaInfo) -> bool:
    """Whether `iter_frames(region=...)` gives exactly the pixels of slicing full frames.

    Only then may a decode be narrowed to the part of the picture it is needed for.
    """
    w, h = info.display_size
    return info.pix_fmt in _REGION_EXACT_FORMATS and w % 2 == 0 and h % 2 == 0


def even_region(top: int, bottom: int, left: int, right: int, width: int, height: int) -> Region:
    """The smallest region with even offsets and sizes that holds rows [top, bottom) and
    columns [left, right) of an even-sized `width` x `height` frame (at least 2x2)."""
    top = min(max(0, top), height - 2) // 2 * 2
    left = min(max(0, left), width - 2) // 2 * 2
    bottom = min(height, (max(bottom, top + 2) + 1) // 2 * 2)
    right = min(width, (max(right, left + 2) + 1) // 2 * 2)
    return Region(left, top, right - left, bottom - top)


def frame_shape(width: int, height: int, pix_fmt: str = "bgr24") -> tuple[int, ...]:
    """Shape of one raw frame: (H, W, 3) for BGR; for I420 (yuv420p) the three planes
    flat, Y then U then V, each chroma plane ceil(W/2) x ceil(H/2) (see `i420_planes`)."""
    if pix_fmt == "bgr24":
        return (height, width, 3)
    if pix_fmt == "yuv420p":
        return (width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2),)
    raise ValueError(f"pixel format {pix_fmt!r} is not one of {PIXEL_FORMATS}")


def i420_planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Writable (H, W), (ceil(H/2), ceil(W/2)) x 2 views of an I420 frame's Y, U and V planes."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y_end, u_end = width * height, width * height + cw * ch
    return (frame[:y_end].reshape(height, width), frame[y_end:u_end].reshape(ch, cw),
            frame[u_end:u_end + cw * ch].reshape(ch, cw))


def iter_frames(src: str | os.PathLike, fps: float | None = 25.0, batch_size: int = 32,
                start: float | None = None, end: float | None = None,
                info: MediaInfo | None = None, prefetch_batches: int = 2,
                copy_to: AviCopy | None = None, pix_fmt: str = "bgr24",
                region: Region | None = None) -> Iterator[np.ndarray]:
    """Yield decoded frames as uint8 BGR arrays of shape (B, H, W, 3), B <= batch_size.

    With `fps`, frames sit on that rate's grid from t=0 of the file (nearest source
    frame, as FFmpeg's fps filter does); `fps=None` yields the source frames as they are.
    `start`/`end` (seconds) select the frames of [start, end) of that grid (decoding
    from the start of the file).  Up to `prefetch_batches` batches are decoded ahead in
    a thread; memory is those batches, whatever the length of the video.  Each batch
    is a fresh array the caller may keep or modify.  With `copy_to` (needs `fps`) the
    same decode also writes those frames to an AVI, which exists once the iteration
    has run to its end (it is removed if the iteration stops early).  `pix_fmt="yuv420p"`
    yields the decoder's own I420 pictures, (B, bytes) (see `frame_shape`), unconverted.
    With `region` (BGR only) the frames are that part of the picture, (B, height, width, 3),
    cut before the colour conversion (the AVI copy keeps the whole picture); see
    `region_exact` for when this equals slicing the full frames.
    """
    info = info or probe(src)
    require_video(info)
    if copy_to is not None and not fps:
        raise ValueError("an AVI copy needs a frame rate")
    w, h = info.display_size
    if region is not None:
        if pix_fmt != "bgr24":
            raise ValueError("a region is decoded as BGR only")
        if (min(region.left, region.top) < 0 or region.right > w or region.bottom > h
                or any(v % 2 for v in (region.left, region.top, region.width, region.height))
                or region.width <= 0 or region.height <= 0):
            raise ValueError(f"{region} is not an even-aligned part of a {w}x{h} picture")
    size = (region.width, region.height) if region is not None else (w, h)
    frame_bytes = math.prod(frame_shape(*size, pix_fmt))
    # At most ~256 MB decoded ahead (one batch of 4K frames at 16 a batch is 400 MB).
    depth = min(prefetch_batches, max(1, PREFETCH_BYTES // max(1, frame_bytes * batch_size)))
    yield from prefetch(_decode(src, fps, batch_size, start, end, info, copy_to, pix_fmt, region), depth)


# Linux's F_SETPIPE_SZ: a 1 MB pipe instead of 64 KB moves a frame in a few system
# calls instead of dozens (measured: a third less system time on a decode).
_F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


def _widen_pipe(pipe) -> None:
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError, ValueError):
        pass  # not Linux, or a lower limit: the default pipe works, only slower


def _decode_args(src: str | os.PathLike, fps: float | None, start: float | None, end: float | None,
                 copy_to: AviCopy | None, pix_fmt: str = "bgr24", region: Region | None = None) -> list[str]:
    filters = []
    if fps:
        filters.append(f"fps={float(fps)!r}:start_time=0")
    if start is not None or end is not None:
        lo = 0.0 if start is None else start
        if fps:  # grid frame k is at k/fps: select by frame number, exactly
            trim = f"trim=start_frame={math.ceil(lo * fps - 1e-6)}"
            if end is not None:
                trim += f":end_frame={math.ceil(end * fps - 1e-6)}"
        else:
            trim = f"trim=start={max(0.0, lo - TIME_EPS):.6f}"
            if end is not None:
                trim += f":end={end - TIME_EPS:.6f}"
        filters.append(trim)
    # No input seek for ranges: FFmpeg's fps filter picks other source frames when it
    # starts elsewhere than t=0, and a range must be exactly a slice of the full decode.
    args = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", _arg_path(src)]
    raw = ["-vsync", "passthrough", "-f", "rawvideo", "-pix_fmt", pix_fmt, "pipe:1"]
    # Cut before the conversion to BGR: less to convert, to pipe and to copy.
    cut = [] if region is None else [f"crop={region.width}:{region.height}:{region.left}:{region.top}:exact=1"]
    if copy_to is None:
        args += ["-map", "0:v:0", "-an", "-sn"]
        if filters or cut:
            args += ["-vf", ",".join(filters + cut)]
        return args + raw
    # One decode, two outputs: the raw pipe, and the AVI numbered from frame 0 at `fps`.
    graph = (f"[0:v:0]{','.join(filters)},split=2[{'whole' if cut else 'raw'}][avi];"
             f"[avi]setpts=N/({float(fps)!r}*TB)[copy]" + (f";[whole]{cut[0]}[raw]" if cut else ""))
    # Slice threads: the copy is encoded in FFmpeg's main loop, in step with the pipe, and
    # one thread would make it the slowest part of a decode (measured: 3.6 -> 3.0 s per 30 s).
    avi = ["-map", "[copy]", "-c:v", "mpeg4", "-vtag", "xvid", "-q:v", str(copy_to.quality),
           "-threads", str(AVI_COPY_THREADS)]
    if copy_to.audio_wav is not None:
        args += ["-i", _arg_path(copy_to.audio_wav)]
        avi += ["-map", "1:a:0", "-c:a", "pcm_s16le"]
    return args + ["-filter_complex", graph, "-map", "[raw]", *raw, "-y", *avi, _arg_path(copy_to.tmp)]


@contextmanager
def _reader(args: list[str]) -> Iterator[tuple[subprocess.Popen, _StderrDrain]]:
    """An FFmpeg process whose stdout is read raw (unbuffered: straight into the caller's
    arrays); killed if the caller stops early."""
    log.debug("ffmpeg: %s", args)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            bufsize=0)
    _widen_pipe(proc.stdout)
    drain = _StderrDrain(proc.stderr)
    drain.start()
    try:
        yield proc, drain
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _finish(proc: subprocess.Popen, drain: _StderrDrain, src: str | os.PathLike) -> None:
    rc = proc.wait()
    drain.join()
    if rc != 0:
        raise MediaError(f"ffmpeg failed to decode {src}", _tail(drain.text()))


def _decode(src: str | os.PathLike, fps: float | None, batch_size: int, start: float | None,
            end: float | None, info: MediaInfo, copy_to: AviCopy | None = None,
            pix_fmt: str = "bgr24", region: Region | None = None) -> Iterator[np.ndarray]:
    size = (region.width, region.height) if region is not None else info.display_size
    shape = frame_shape(*size, pix_fmt)
    frame_bytes = math.prod(shape)
    done = False
    try:
        with _reader(_decode_args(src, fps, start, end, copy_to, pix_fmt, region)) as (proc, drain):
            while True:
                batch = np.empty((batch_size, *shape), np.uint8)
                got = _read_into(proc.stdout, memoryview(batch).cast("B"))
                n = got // frame_bytes
                if n:
                    yield batch[:n]
                if got < frame_bytes * batch_size:
                    break
            _finish(proc, drain, src)
        if copy_to is not None:
            os.replace(copy_to.tmp, copy_to.path)
        done = True
    finally:
        if copy_to is not None and not done:
            copy_to.tmp.unlink(missing_ok=True)


def read_frames(src: str | os.PathLike, fps: float | None = 25.0, info: MediaInfo | None = None) -> np.ndarray:
    """All frames of a short clip as one (T, H, W, 3) BGR array (for face tracks, not whole videos).

    Decoded straight into one array sized from the duration (grown if the file holds
    more): no per-batch arrays to join, no thread.
    """
    info = info or probe(src)
    require_video(info)
    shape = frame_shape(*info.display_size)
    frame_bytes = math.prod(shape)
    rate = fps or info.fps or 25.0
    frames = np.empty((int(round(info.duration * rate)) + 2, *shape), np.uint8)
    n = 0
    with _reader(_decode_args(src, fps, None, None, None)) as (proc, drain):
        while True:
            if n == len(frames):
                frames = np.concatenate([frames, np.empty_like(frames[: max(len(frames), 16)])])
            got = _read_into(proc.stdout, memoryview(frames[n:]).cast("B"))
            n += got // frame_bytes
            if n < len(frames):
                break
        _finish(proc, drain, src)
    return frames[:n]


def _frame_times_near(src: str | os.PathLike, t: float, window: float = 2.0) -> list[float]:
    """Presentation times of the source's video frames around `t` (packets only, nothing decoded)."""
    lo = max(0.0, t - window)
    cmd = [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-read_intervals",
           f"{lo:.6f}%{t + window:.6f}", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
           _arg_path(src)]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise MediaError(f"ffprobe failed to read frame times of {src}", _tail(proc.stderr))
    times = sorted(v for v in (_float(x.strip().strip(",")) for x in proc.stdout.splitlines()) if v is not None)
    return times


def snap_to_frame(src: str | os.PathLike, t: float, info: MediaInfo) -> float:
    """The source frame time nearest to `t`: a cut there starts both streams on a frame."""
    if t <= 0:
        return 0.0
    if t >= info.duration:
        return info.duration
    times = _frame_times_near(src, t)
    if times and info.fps:
        times.append(times[-1] + 1.0 / info.fps)  # the end of the last frame read is a boundary too
    if not times:
        rate = Fraction(info.fps_fraction) if info.fps_fraction else Fraction(info.fps)
        k = round((t - info.video_start) * rate)
        return info.video_start + float(k / rate)
    return min(times, key=lambda x: (abs(x - t), x))


def cut(src: str | os.PathLike, dst: str | os.PathLike, start: float, end: float | None,
        info: MediaInfo | None = None, crf: int = 18, preset: str = "veryfast") -> tuple[float, float]:
    """Cut [start, end) frame-accurately with sound and picture aligned; return the snapped times.

    Both cut points move to the nearest source frame time, then both streams are
    trimmed at exactly those instants and re-timed from zero.  `end=None` runs to
    the end of the input.  Written to a temporary name and renamed when complete.
    """
    info = info or probe(src)
    require_video(info)
    _require_data_at(src, start, info)
    s = snap_to_frame(src, start, info)
    e = None if end is None or end >= info.duration - TIME_EPS else snap_to_frame(src, end, info)
    if e is not None and e <= s:
        raise InputError(f"empty cut: [{start:.3f}, {end:.3f}) holds no frame")
    vtrim = f"trim=start={max(0.0, s - TIME_EPS):.6f}" + (f":end={e - TIME_EPS:.6f}" if e is not None else "")
    vf = f"{vtrim},setpts=PTS-{s:.6f}/TB"
    width, height = info.display_size
    if width % 2 or height % 2:
        vf += ",pad=ceil(iw/2)*2:ceil(ih/2)*2"  # yuv420p needs even sizes: add one black row/column
    args = ["-loglevel", "error"]
    if s > 2.0:
        args += ["-ss", f"{s - 2.0:.6f}", "-copyts"]
    args += ["-i", _arg_path(src), "-map", "0:v:0", "-vf", vf]
    if info.has_audio:
        atrim = f"atrim=start={s:.6f}" + (f":end={e:.6f}" if e is not None else "")
        args += ["-map", "0:a:0", "-af", f"{atrim},asetpts=PTS-{s:.6f}/TB", "-c:a", "aac", "-b:a", "192k"]
    args += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-vsync", "passthrough", "-movflags", "+faststart"]
    dst = Path(dst)
    tmp = part_path(dst)
    try:
        run_ffmpeg([*args, _arg_path(tmp)], f"cut {src} at {s:.3f}s")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return s, (info.duration if e is None else e)


_SILENCE_RE = re.compile(r"silence_(start|end):\s*(-?[0-9.]+)")


def detect_silences(src: str | os.PathLike, threshold_db: float = -30.0, min_silence: float = 1.0,
                    info: MediaInfo | None = None) -> list[tuple[float, float]]:
    """(start, end) of every stretch of at least `min_silence` s below `threshold_db` dB."""
    info = info or probe(src)
    require_audio(info)
    stderr = run_ffmpeg(["-nostats", "-loglevel", "info", "-i", _arg_path(src), "-map", "0:a:0", "-vn",
                         "-af", f"silencedetect=noise={threshold_db}dB:d={min_silence}", "-f", "null", "-"],
                        f"find silences in {src}")
    silences: list[tuple[float, float]] = []
    open_start: float | None = None
    for kind, value in _SILENCE_RE.findall(stderr):
        t = max(0.0, float(value))
        if kind == "start":
            open_start = t
        elif open_start is not None:
            silences.append((open_start, min(t, info.duration)))
            open_start = None
    if open_start is not None and info.duration - open_start >= min_silence - TIME_EPS:
        silences.append((open_start, info.duration))
    return silences


class VideoWriter:
    """Encode BGR frames fed in batches, optionally with a soundtrack; atomic on close.

    Used for video.avi, face-track crops (`pycrop/R/00000.avi`) and the visualisation.
    The default codec matches the reference's AVI files (MPEG-4 part 2, XVID tag).
    Frames go to FFmpeg from a feeder thread through a bounded queue (`queue_batches`),
    so encoding runs while the caller computes; a batch handed to `write_many` is
    read later and must not be modified afterwards.
    """

    def __init__(self, dst: str | os.PathLike, fps: float, size: tuple[int, int],
                 audio_wav: str | os.PathLike | None = None, codec: str = "mpeg4", quality: int = 2,
                 queue_batches: int = 2, pix_fmt: str = "bgr24"):
        self.dst = Path(dst)
        self.tmp = part_path(self.dst)
        self.size = size
        self.frame_shape = frame_shape(*size, pix_fmt)
        self.frames = 0
        w, h = size
        args = [_tool("ffmpeg"), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
                "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{w}x{h}", "-r", repr(float(fps)), "-i", "-"]
        if audio_wav is not None:
            args += ["-i", _arg_path(audio_wav), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "pcm_s16le"]
        if codec == "mpeg4":
            args += ["-c:v", "mpeg4", "-vtag", "xvid", "-q:v", str(quality)]
        else:
            args += ["-c:v", codec, "-crf", "18", "-pix_fmt", "yuv420p"]
        args += [_arg_path(self.tmp)]
        log.debug("ffmpeg: %s", args)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, bufsize=0)
        _widen_pipe(self.proc.stdin)
        self.drain = _StderrDrain(self.proc.stderr)
        self.drain.start()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_batches))
        self._broken = False
        self._feeder = threading.Thread(target=self._feed, name="video-writer", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        while True:
            frames = self._queue.get()
            if frames is None:
                return
            if self._broken:
                continue  # FFmpeg is gone: drop the rest, the caller hears of it
            try:
                view = memoryview(frames).cast("B")
                while len(view):  # a raw pipe may take part of a write
                    view = view[self.proc.stdin.write(view):]
            except (BrokenPipeError, OSError, ValueError):
                self._broken = True

    def _failed(self) -> MediaError:
        self.proc.wait()
        self.drain.join()
        return MediaError(f"ffmpeg stopped while writing {self.dst}", _tail(self.drain.text()))

    def write(self, frame: np.ndarray) -> None:
        """One (H, W, 3) uint8 BGR frame (copied: the caller may reuse its buffer)."""
        self.write_many(frame[None].copy())

    def write_many(self, frames: np.ndarray) -> None:
        """A (N, H, W, 3) uint8 BGR batch, or (N, bytes) I420 with pix_fmt="yuv420p"
        (not to be modified afterwards: it is read later)."""
        if frames.shape[1:] != self.frame_shape or frames.dtype != np.uint8:
            raise ValueError(f"frames of shape {frames.shape} do not match writer size {self.size}")
        if self._broken:
            raise self._failed()
        if len(frames):
            self._queue.put(np.ascontiguousarray(frames))
        self.frames += len(frames)

    def _stop_feeder(self) -> None:
        if self._feeder.is_alive():
            self._queue.put(None)
            self._feeder.join()

    def close(self) -> Path:
        self._stop_feeder()
        try:
            self.proc.stdin.close()
        except OSError:
            self._broken = True
        rc = self.proc.wait()
        self.drain.join()
        if rc != 0 or self._broken:
            self.tmp.unlink(missing_ok=True)
            raise MediaError(f"ffmpeg failed to write {self.dst}", _tail(self.drain.text()))
        os.replace(self.tmp, self.dst)
        return self.dst

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stop_feeder()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_wav(dst: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000) -> Path:
    """Write int16 samples as a WAV file, atomically."""
    from scipy.io import wavfile

    dst = Path(dst)
    tmp = part_path(dst.with_suffix(".wav"))
    try:
        wavfile.write(tmp, sample_rate, np.asarray(audio, dtype=np.int16))
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
