#!/usr/bin/env python3
"""What --reference_decode costs: run_pipeline.py then run_syncnet.py on one clip, with and without it.

  python bench/reference_decode.py CLIP --s3fd_model S3FD.pth --syncnet_model SYNCNET.model [--repeat 3]

Each tool runs as a user runs it (a fresh process, the CPU unless --device says
otherwise); the figures are the median wall time and the median CPU time (user +
system of the tools and the FFmpeg they start) of `--repeat` runs of each mode.  CPU
time moves less than wall time when other work shares the machine; say which machine
and how loaded it was when quoting them.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_once(clip: Path, work: Path, args: argparse.Namespace, reference_decode: bool) -> tuple[float, float]:
    """Wall and CPU seconds of run_pipeline.py + run_syncnet.py on `clip`."""
    flag = ["--reference_decode"] if reference_decode else []
    common = ["--data_dir", str(work), "--reference", "bench", "--device", args.device]
    steps = [[sys.executable, str(REPO / "run_pipeline.py"), "--videofile", str(clip), "--s3fd_model",
              args.s3fd_model, "--min_track", "5", "--min_face_size", "10", *common, *flag],
             [sys.executable, str(REPO / "run_syncnet.py"), "--initial_model", args.syncnet_model, *common, *flag]]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    for cmd in steps:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - t0, _children_cpu() - cpu0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", type=Path)
    p.add_argument("--s3fd_model", required=True)
    p.add_argument("--syncnet_model", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-refdecode-") as tmp:
        for mode in (False, True):
            runs = [run_once(args.clip, Path(tmp) / f"{mode}{k}", args, mode) for k in range(args.repeat)]
            figures[mode] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
    (ow, oc), (rw, rc) = figures[False], figures[True]
    print(f"clip: {args.clip.name}, {args.repeat} runs of each, device {args.device}, {os.cpu_count()} CPUs")
    print("| decode | wall s (median) | CPU s (median) |")
    print("| --- | --- | --- |")
    print(f"| ours (default) | {ow:.2f} | {oc:.2f} |")
    print(f"| --reference_decode | {rw:.2f} | {rc:.2f} |")
    print(f"| ratio | {rw / ow:.2f}x | {rc / oc:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
