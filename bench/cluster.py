#!/usr/bin/env python3
"""Benchmark of the cluster runner (syncnet.cluster) on this machine: a local Ray cluster of
CPU workers against one process, and a worker's memory over many tasks.

  python bench/cluster.py --seconds 60 --workers 2 --tasks 24 --out cluster.json

Workload: bench/workload.py's talk (clip a of ../shared/media looped to --seconds) and its
stand-in weights.  Measured, each in this order:
  one:    process_long_video in this process, torch on --workers threads
  spans:  the same video on a local cluster of --workers workers of 1 core each, in
          --workers spans (the cluster started here; its start-up timed apart)
  batch:  --tasks short files (the talk's first --task_seconds, copies) on the same cluster, each
          worker's RSS after every task it ran (flat = no growth with tasks)
Figures: wall seconds, the throughput ratio one/spans (wall and CPU time of all the
processes), detector frames, cluster start-up, RSS per task.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from workload import make_weights, make_workload, workdir  # noqa: E402


def cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def proc_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds so far of running processes (their threads; /proc/PID/stat utime + stime)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def doubles(device: str):
    """The networks' test doubles (testkit/doubles.py), as a worker's model factory."""
    from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector

    return FixedBoxDetector(), BrightnessLoudnessSyncNet()


def memory_only(args, figures: dict) -> None:
    """--tasks generated clips through 2 workers holding the doubles; RSS after every task."""
    import ray

    from syncnet.cluster import Cluster
    from syncnet.jobs.batch import process_folder
    from syncnet.options import FaceOptions
    from testkit.doubles import known_offset_clip

    with workdir(args.work, "bench-cluster-") as work:
        files = work / "clips"
        files.mkdir(exist_ok=True)
        for k in range(args.tasks):
            if not (files / f"c{k:03d}.mp4").exists():
                known_offset_clip(files / f"c{k:03d}.mp4", args.task_seconds, k % 7 - 3, seed=k)
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        with Cluster("auto", doubles, cpus_per_worker=1, device="cpu") as cluster:
            shutil.rmtree(work / "batch", ignore_errors=True)
            faces = FaceOptions(min_track=5, min_face_size=10)
            t0 = time.perf_counter()
            process_folder(files, work / "batch", faces, None, None, precision="fp32",
                           execute=cluster.files(work / "batch", faces, 15, True))
            figures["memory_doubles"] = {"wall": time.perf_counter() - t0, "tasks": args.tasks,
                                         "rss_mib_per_task": {w: [round(r / 2**20, 1) for r in t.rss]
                                                              for w, t in cluster.totals.items()}}
            for w, rss in figures["memory_doubles"]["rss_mib_per_task"].items():
                print(f"worker {w}: RSS after each of its {len(rss)} tasks (MiB): {rss}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--chunk_duration", type=float, default=30.0)
    ap.add_argument("--overlap", type=float, default=5.0)
    ap.add_argument("--task_seconds", type=float, default=2.0, help="length of each memory-test file")
    ap.add_argument("--work", default=None, help="keep the workload here (default: a temporary folder)")
    ap.add_argument("--out", default=None, help="also write the figures as JSON here")
    ap.add_argument("--no_one", action="store_true", help="skip the one-process run (measured before)")
    ap.add_argument("--only_memory", action="store_true",
                    help="only the memory part, with the test doubles of the networks (testkit/doubles.py) on "
                         "generated 1 s clips: the pipeline's memory, not the weights'")
    args = ap.parse_args()

    if args.only_memory:
        figures = {"workers": args.workers, "loadavg_start": os.getloadavg()}
        memory_only(args, figures)
        figures["loadavg_end"] = os.getloadavg()
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=1))
        return

    import ray
    import torch

    from syncnet._cli import models
    from syncnet.cluster import Cluster
    from syncnet.jobs.longvideo import LongVideoOptions, process_long_video

    figures: dict = {"seconds": args.seconds, "workers": args.workers, "host_cpus": os.cpu_count(),
                     "loadavg_start": os.getloadavg()}
    with workdir(args.work, "bench-cluster-") as work:
        src = make_workload(work, args.seconds / 60)
        s3fd, syncnet = make_weights(work)
        opts = LongVideoOptions(visualise=True, chunk_duration=args.chunk_duration, overlap=args.overlap)

        one = None
        if not args.no_one:
            # one process, torch on --workers threads
            torch.set_num_threads(args.workers)
            detector, model = models.load_models("cpu", str(s3fd), str(syncnet))
            shutil.rmtree(work / "one", ignore_errors=True)
            t0, c0 = time.perf_counter(), cpu_seconds()
            one = process_long_video(src, work / "one", opts, detector, model)
            figures["one"] = {"wall": time.perf_counter() - t0, "cpu": cpu_seconds() - c0,
                              "detector_frames": one["detector_frames"]}
            print(f"one process, {args.workers} threads: {figures['one']['wall']:.1f} s wall, "
                  f"{figures['one']['cpu']:.1f} s CPU, {one['detector_frames']} frames", flush=True)
            del detector, model

        # a local cluster of --workers workers of 1 core each
        factory = functools.partial(models.load_models, s3fd_path=str(s3fd), syncnet_path=str(syncnet))
        t0 = time.perf_counter()
        os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
        with Cluster("auto", factory, cpus_per_worker=1, device="cpu") as cluster:
            cluster._start()
            figures["startup"] = {"cluster": time.perf_counter() - t0, "workers_ready": cluster.startup_seconds}
            pids = [int(name.rsplit(":", 1)[1]) for name in cluster.names]
            print(f"cluster: {cluster.size} workers ready {figures['startup']['cluster']:.1f} s after ray.init",
                  flush=True)
            shutil.rmtree(work / "spans", ignore_errors=True)
            t0, c0, w0 = time.perf_counter(), cpu_seconds(), proc_cpu_seconds(pids)
            spans = cluster.long_video(src, work / "spans", opts)
            wall = time.perf_counter() - t0
            cpu = cpu_seconds() - c0 + proc_cpu_seconds(pids) - w0  # FFmpeg: once reaped
            figures["spans"] = {"wall": wall, "cpu_driver_and_workers": cpu,
                                "detector_frames": spans["detector_frames"],
                                "same_results": None if one is None else
                                [c["tracks"] for c in spans["chunks"]] == [c["tracks"] for c in one["chunks"]]}
            print(f"{cluster.size} workers, spans: {wall:.1f} s wall, {cpu:.1f} s CPU, {spans['detector_frames']} "
                  f"frames, same results as one process: {figures['spans']['same_results']}", flush=True)
            print(cluster.report("chunks"), flush=True)

            # memory: --tasks short files through the same workers
            files = work / "files"
            files.mkdir(exist_ok=True)
            first = files / "f000.mp4"
            if not first.exists():
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", f"{args.task_seconds:g}",
                                "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(first)], check=True)
            for k in range(1, args.tasks):
                if not (files / f"f{k:03d}.mp4").exists():
                    shutil.copy(first, files / f"f{k:03d}.mp4")
            cluster.totals.clear()
            from syncnet.jobs.batch import process_folder
            from syncnet.options import FaceOptions

            shutil.rmtree(work / "batch", ignore_errors=True)
            faces = FaceOptions(min_track=5, min_face_size=10)
            t0 = time.perf_counter()
            process_folder(files, work / "batch", faces, None, None, precision="fp32",
                           execute=cluster.files(work / "batch", faces, 15, False))
            figures["batch"] = {"wall": time.perf_counter() - t0,
                                "rss_mib_per_task": {w: [round(r / 2**20, 1) for r in t.rss]
                                                     for w, t in cluster.totals.items()}}
            for w, rss in figures["batch"]["rss_mib_per_task"].items():
                print(f"worker {w}: RSS after each of its {len(rss)} tasks (MiB): {rss}", flush=True)
    figures["loadavg_end"] = os.getloadavg()
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
