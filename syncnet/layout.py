"""The one place that knows the reference's output layout.

    DATA_DIR/pyavi/R/video.avi, audio.wav, video_out.avi
    DATA_DIR/pycrop/R/00000.avi, 00001.avi, ...
    DATA_DIR/pywork/R/faces.pckl, scene.pckl, tracks.pckl, tracks.json,
                      offsets.txt, offsets.json, activesd.pckl
    DATA_DIR/pyframes/R/000001.jpg ...   (only with --keep_frames)

A run writes a reference into a staging directory and swaps it in only when it is
complete, so a failed run leaves the earlier complete outputs in place (the
reference implementation deletes them first).
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    reference: str

    def dir(self, kind: str) -> Path:
        return self.data_dir / kind / self.reference

    @property
    def avi_dir(self) -> Path:
        return self.dir("pyavi")

    @property
    def crop_dir(self) -> Path:
        return self.dir("pycrop")

    @property
    def work_dir(self) -> Path:
        return self.dir("pywork")

    @property
    def frames_dir(self) -> Path:
        return self.dir("pyframes")

    @property
    def video_avi(self) -> Path:
        return self.avi_dir / "video.avi"

    @property
    def audio_wav(self) -> Path:
        return self.avi_dir / "audio.wav"

    @property
    def video_out(self) -> Path:
        return self.avi_dir / "video_out.avi"

    def track_video(self, index: int) -> Path:
        return self.crop_dir / f"{index:05d}.avi"

    def track_videos(self) -> list[Path]:
        if not self.crop_dir.is_dir():
            return []
        return sorted(p for p in self.crop_dir.iterdir() if p.suffix == ".avi" and not p.name.startswith("."))

    def work(self, name: str) -> Path:
        """faces.pckl, scene.pckl, tracks.pckl, tracks.json, offsets.txt, offsets.json, activesd.pckl."""
        return self.work_dir / name


def is_plain_name(reference: str) -> bool:
    """Whether `reference` names one folder (not empty, not `.` or `..`, no path separator)."""
    return bool(reference) and reference not in (".", "..") and "/" not in reference and os.sep not in reference


def check_reference(reference: str) -> str:
    """`reference`, or InputError unless it is a plain folder name."""
    if not is_plain_name(reference):
        raise InputError(f"a reference must be a plain folder name, not a path (got {reference!r})")
    return reference


def _owner_alive(name: str) -> bool:
    """Whether the process named in a staging folder's name (`.staging-R-PID-TOKEN`) runs.

    Names without a pid (older runs) count as dead.  A pid reused by an unrelated
    process keeps a stale folder until a later run: harmless.
    """
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return True  # another thread of this process (a batch); its own failures clean up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@contextmanager
def staged(layout: Layout, kinds: tuple[str, ...] = ("pyavi", "pycrop", "pywork")) -> Iterator[Layout]:
    """Yield a layout in a staging directory; on success, swap each kind's folder in.

    On failure the staging directory is removed and the earlier outputs stay.
    """
    # What an earlier run of this reference left when it was killed (not a live run's).
    for stale in layout.data_dir.glob(f".staging-{layout.reference}-*"):
        if not _owner_alive(stale.name):
            shutil.rmtree(stale, ignore_errors=True)
    stage_root = layout.data_dir / f".staging-{layout.reference}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        stage_root.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"cannot write to {layout.data_dir}: {exc.strerror or exc}") from exc
    stage = Layout(stage_root, layout.reference)
    for kind in kinds:
        stage.dir(kind).mkdir(parents=True, exist_ok=True)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage_root, ignore_errors=True)
        raise
    try:
        for kind in kinds:
            src, dst = stage.dir(kind), layout.dir(kind)
            dst.parent.mkdir(parents=True, exist_ok=True)
            old = dst.with_name(f".old-{dst.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            if dst.exists():
                os.replace(dst, old)
            os.replace(src, dst)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(stage_root, ignore_errors=True)
