"""The benchmarks' workload: a one-speaker video of a given length, and stand-in weights."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def make_workload(work: Path, minutes: float) -> Path:
    src = SHARED / "media" / "talking_25fps_a.mp4"
    out = work / f"talk_{minutes:g}min.mp4"
    if not out.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src), "-t",
                        f"{minutes * 60:.3f}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                        "-c:a", "aac", str(out)], check=True)
    return out


def make_weights(work: Path) -> tuple[Path, Path]:
    maker = SHARED / "parity" / "make_weights.py"
    if not maker.exists():
        sys.exit("bench: ../shared/parity/make_weights.py is needed for the stand-in weights")
    s3fd, syncnet = work / "s3fd_bias1.pth", work / "syncnet_seed0.model"
    for kind, path, extra in (("s3fd", s3fd, ["--face-bias", "1.0"]), ("syncnet", syncnet, [])):
        if not path.exists():
            subprocess.run([sys.executable, str(maker), kind, str(path), "--seed", "0", *extra], check=True,
                           capture_output=True)
    return s3fd, syncnet


@contextlib.contextmanager
def workdir(path: str | None, prefix: str) -> Iterator[Path]:
    """`path` (kept, made if missing), or a temporary folder removed afterwards."""
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)
