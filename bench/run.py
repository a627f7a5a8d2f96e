#!/usr/bin/env python3
"""Benchmark: where the time goes, and how close the pipeline runs to its model floor.

  python bench/run.py --minutes 3 --device cpu --out bench.json [--rss]

Builds its own workload (clip a of ../shared/media looped to the given length: one
speaker; stand-in weights with --face-bias 1.0 so S3FD finds a few boxes a frame),
then measures two scenarios in this process:
  long:  process_long_video (30 s chunks, 5 s overlap, every output written)
  chunk: run_pipeline.py + run_syncnet.py on the first 30 s (what the scripts do)
The model floor is the time of the bare network forward passes the run made (S3FD on
every detected frame, SyncNet on every window), replayed after the runs with nothing
else running (bench/floor.py: same shapes, warmed up, freed memory kept, median of
--replays); `floor_ratio` is wall / that floor.  The same calls timed inside the run,
where decoding and encoding threads share the cores with them, give `floor_ratio_inrun`.
Like the scripts, it first re-executes itself with jemalloc preloaded where installed
(syncnet/allocator.py; SYNCNET_ALLOCATOR=glibc: no preload); each scenario reports the
allocator it ran with beside its networks' per-frame rates (`summary` in the JSON), SyncNet's
also on its full batches alone (the same work in both scenarios); `machine` names the CPU.
With --rss, the long scenario also runs in a fresh process at four times the length
(and at the length itself, unless --only long made this process a fresh run of it),
and the ratio of their peak RSS is reported, with each run's peaks chunk by chunk (ChunkPeaks).
With --rounds N, each scenario instead runs N times, each time in a fresh process with
no replays, the two alternating (long then chunk, then chunk then long, ...): one run
moves 5-10% on a shared machine, so a comparison within a few percent is read from the
medians and from the median of the rounds' long/chunk ratios (`summary` in the JSON).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from syncnet.allocator import preload_and_reexec  # noqa: E402

if __name__ == "__main__":  # as the scripts do, before torch is imported: the scenarios run in this process
    preload_and_reexec()

import torch  # noqa: E402
from floor import ForwardClock, best_conditions, freed_memory_kept, matmul_gflops  # noqa: E402
from workload import make_weights, make_workload, workdir  # noqa: E402

from syncnet import media  # noqa: E402
from syncnet.allocator import CHOICE, OPT_OUT, in_use, keep_freed_memory  # noqa: E402
from syncnet.analysis import analyse_video  # noqa: E402
from syncnet.jobs import cutahead  # noqa: E402
from syncnet.jobs.longvideo import LongVideoOptions, process_long_video  # noqa: E402
from syncnet.layout import Layout  # noqa: E402
from syncnet.options import FaceOptions  # noqa: E402
from syncnet.timing import StageTimes  # noqa: E402
from syncnet.trackfile import evaluate_tracks  # noqa: E402


def _vm_hwm_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


_peak_reset_mb = 0.0  # the largest peak RSS that a ChunkPeaks reset took out of getrusage's


class ChunkPeaks:
    """The long job's peak RSS chunk by chunk: read when each chunk is recorded, then reset
    (Linux: writing 5 to /proc/self/clear_refs), so each is the peak since the last chunk.
    A flat memory profile shows as peaks that do not rise with the chunk's index, in one run.
    The reset also lowers what getrusage reports: `peak_rss_mb` adds back what it took."""

    def __init__(self):
        self.peaks: list[float] = []
        self._record = None

    def _reset(self) -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def __enter__(self) -> ChunkPeaks:
        from syncnet.jobs.longvideo import LongVideoJob

        if _vm_hwm_mb() is None or not self._reset():
            return self  # not Linux, or not allowed: no per-chunk peaks
        self._record = original = LongVideoJob.record

        def record(job, index, *args, **kwargs):
            global _peak_reset_mb
            out = original(job, index, *args, **kwargs)
            mb = _vm_hwm_mb()
            self.peaks.append(round(mb, 1))
            _peak_reset_mb = max(_peak_reset_mb, mb)
            self._reset()
            return out

        LongVideoJob.record = record
        return self

    def __exit__(self, *exc) -> None:
        if self._record is not None:
            from syncnet.jobs.longvideo import LongVideoJob

            LongVideoJob.record = self._record

    def report(self) -> dict:
        """The peaks, and the least-squares slope of peak against chunk index (MB per chunk)."""
        slope = None
        if len(self.peaks) >= 2:
            slope = round(statistics.linear_regression(range(len(self.peaks)), self.peaks).slope, 2)
        return {"mb": self.peaks, "slope_mb_per_chunk": slope}


def peak_rss_mb() -> dict:
    self_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, _peak_reset_mb * 1024)
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"self_mb": round(self_kb / 1024, 1), "largest_child_mb": round(child_kb / 1024, 1)}


def load(device: str, s3fd_path: Path, syncnet_path: Path):
    from detectors import S3FD
    from syncnet import load_syncnet

    detector = S3FD(weights=s3fd_path, device=device)
    model = load_syncnet(syncnet_path, device=device)
    s3fd_clock, sync_clock = ForwardClock("s3fd", device), ForwardClock("syncnet", device)
    s3fd_clock.wrap(detector.net, "forward")
    # Windows are counted once, by the lip tower; a clip of T frames is T - 4 lip windows
    # (SyncNetModel.forward_lip_clip).
    sync_clock.wrap(model, "forward_lip", network=model.net)
    sync_clock.wrap(model, "forward_lip_clip", items=lambda x: int(x.shape[2]) - 4, network=model.net)
    sync_clock.wrap(model, "forward_aud", items=lambda x: 0, network=model.net)
    return detector, model, s3fd_clock, sync_clock


# CPU features that change the networks' speed several-fold (oneDNN picks its kernels by them).
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def machine() -> dict:
    """What the figures were measured on.  The 2-core cloud machine is not always the same
    CPU: the same SyncNet batch has taken from 0.4 to 1.3 CPU-seconds on it, so rates from
    two reports compare only where these match."""
    cpu = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "cpu family", "model", "flags") and key not in cpu:
                cpu[key] = value.strip()
            if key == "flags":
                break
    except OSError:
        pass
    flags = set(cpu.get("flags", "").split())
    return {"cpu": cpu.get("model name") or platform.processor() or platform.machine(),
            "cpu_family_model": f"{cpu['cpu family']}/{cpu['model']}" if "cpu family" in cpu and "model" in cpu
            else None,
            "cpu_features": [f for f in CPU_FEATURES if f in flags],
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def decode_rate(path: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], check=True)
    n = media.probe(path).n_frames or 0
    return n / (time.perf_counter() - t0)


def row(name: str, seconds: float, units: float | None, unit: str, video_seconds: float) -> dict:
    return {"stage": name, "seconds": round(seconds, 3),
            "rate": round(units / seconds, 2) if units and seconds > 0 else None, "unit": unit,
            "realtime_factor": round(video_seconds / seconds, 2) if seconds > 0 else None}


def scenario_long(video: Path, device: str, weights, batch: int, out_dir: Path,
                  chunk_preset: str = "veryfast") -> tuple[dict, tuple[ForwardClock, ForwardClock]]:
    detector, model, s3fd_clock, sync_clock = load(device, *weights)
    info = media.probe(video)
    opts = LongVideoOptions(faces=FaceOptions(min_track=5, min_face_size=10, batch_size=batch), visualise=True,
                            chunk_preset=chunk_preset)
    t0 = time.perf_counter()
    with ChunkPeaks() as chunk_peaks:
        summary = process_long_video(video, out_dir, opts, detector, model, force=True)
    wall = time.perf_counter() - t0
    t = summary["timings"]
    frames = summary["detector_frames"]
    stages = [row(k, v, frames if k in ("decode", "detect", "scenes") else None, "frames/s", info.duration)
              for k, v in t.items() if k not in ("total", "detector_frames_this_run")]
    stages += [row("total", wall, frames, "frames/s", info.duration)]
    return {"video_seconds": info.duration, "wall_seconds": round(wall, 3),
            "detector_frames": frames, "source_frames": summary["source_frames"],
            "detector_frames_ratio": round(frames / summary["source_frames"], 4),
            "syncnet_windows": sync_clock.items, "realtime_factor": round(info.duration / wall, 3),
            "chunks": summary["totals"]["chunks"], "tracks": sum(len(c["tracks"]) for c in summary["chunks"]),
            "stages": stages, "peak_rss": peak_rss_mb(),
            "chunk_peak_rss": chunk_peaks.report()}, (s3fd_clock, sync_clock)


def scenario_chunk(video: Path, device: str, weights, batch: int,
                   work: Path) -> tuple[dict, tuple[ForwardClock, ForwardClock]]:
    """run_pipeline.py + run_syncnet.py on the first 30 s, as the scripts run them (models preloaded)."""
    chunk = work / "chunk30.mp4"
    media.cut(video, chunk, 0.0, 30.0)
    detector, model, s3fd_clock, sync_clock = load(device, *weights)
    layout = Layout(work / "chunk_data", "chunk")
    times = StageTimes()
    t0 = time.perf_counter()
    analyse_video(chunk, layout, FaceOptions(batch_size=batch), detector=detector, times=times)
    with times.stage("run_syncnet"):
        results = evaluate_tracks(layout, model)
    wall = time.perf_counter() - t0
    duration = media.probe(chunk).duration
    stages = [row(k, v, None, "", duration) for k, v in times.items()]
    stages += [row("total", wall, s3fd_clock.items, "frames/s", duration)]
    return {"video_seconds": duration, "wall_seconds": round(wall, 3), "tracks": len(results),
            "realtime_factor": round(duration / wall, 3), "stages": stages}, (s3fd_clock, sync_clock)


NETWORKS = {"s3fd": ("S3FD", "frames"), "syncnet": ("SyncNet", "windows")}


def _rate(amount: float, seconds: float | None, digits: int = 2) -> float | None:
    return round(amount / seconds, digits) if seconds else None


def add_floor(res: dict, clocks: tuple[ForwardClock, ForwardClock], replays: int) -> None:
    """The floor of one scenario, in the run and replayed alone (`replays` 0: in the run only),
    into its report: ratios, seconds and per-frame rates per network, the passes made."""
    wall, duration = res["wall_seconds"], res["video_seconds"]
    networks, rows = {}, []
    for clock in clocks:
        label, unit = NETWORKS[clock.network]
        alone = clock.replay(replays) if replays > 0 else {"seconds": None, "replays": [], "calls": None}
        iso = alone["seconds"]
        flops = clock.flops()
        gflop = sum(flops.get(p, 0) * n for p, n in clock.passes.items()) / 1e9
        networks[clock.network] = {
            "calls": clock.calls, "replayed_calls": alone["calls"], unit: clock.items,
            "inrun_seconds": round(clock.seconds, 3),
            "isolated_seconds": None if iso is None else round(iso, 3),
            "replay_seconds": [round(x, 3) for x in alone["replays"]],
            f"inrun_{unit}_per_s": _rate(clock.items, clock.seconds), f"isolated_{unit}_per_s": _rate(clock.items, iso),
            # The arithmetic (convolutions and matrix products) and the rate it ran at.
            "gflop": round(gflop, 3), f"gflop_per_{unit[:-1]}": _rate(gflop, clock.items, 4),
            "inrun_gflops": _rate(gflop, clock.seconds, 1), "isolated_gflops": _rate(gflop, iso, 1),
            "passes": clock.passes_json(flops)}
        rows.append(row(f"model floor in run: {label}", clock.seconds, clock.items, f"{unit}/s", duration))
        if iso is not None:
            rows.append(row(f"model floor alone: {label}", iso, clock.items, f"{unit}/s", duration))
    res["stages"][-1:-1] = rows  # before "total"
    inrun = sum(c.seconds for c in clocks)
    isolated = None if replays <= 0 else sum(n["isolated_seconds"] for n in networks.values())
    res["floor_seconds"] = None if isolated is None else round(isolated, 3)
    res["floor_seconds_inrun"] = round(inrun, 3)
    res["floor_ratio"] = round(wall / isolated, 4) if isolated else None
    res["floor_ratio_inrun"] = round(wall / inrun, 4) if inrun else None
    res["networks"] = networks
    # What the networks alone allow: the realtime factor of a pipeline that did nothing
    # but its forward passes (at their speed alone, else in the run), and the arithmetic
    # one second of this video takes.
    res["realtime_ceiling"] = _rate(duration, isolated or inrun, 3)
    res["gflop_per_video_second"] = _rate(sum(n["gflop"] for n in networks.values()), duration, 1)


def in_subprocess(only: str, minutes: float, args) -> dict:
    """One scenario in a fresh process of this script, without replays; its report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        subprocess.run([sys.executable, __file__, "--minutes", str(minutes), "--device", args.device,
                        "--batch_size", str(args.batch_size), "--only", only, "--workdir", args.workdir,
                        "--chunk_preset", args.chunk_preset, "--cuts", args.cuts, "--replays", "0",
                        "--out", str(out)], check=True)
        return json.loads(out.read_text())


def rss_in_subprocess(minutes: float, args) -> dict:
    """The long scenario's peak RSS in a fresh process, and its chunks' peaks."""
    long = in_subprocess("long", minutes, args)["long"]
    return {"peak_mb": long["peak_rss"]["self_mb"], "chunk_peak_rss": long["chunk_peak_rss"]}


RATES = ("s3fd_frames_per_s", "syncnet_windows_per_s", "syncnet_full_batch_windows_per_s")


def full_batch_rate(passes: list[dict]) -> float | None:
    """SyncNet's windows/s on its full batches alone: the longest lip clip (a full batch is
    batch size + 4 frames) and the audio batches of as many windows.  Each track ends in a shorter batch whose
    windows cost more each, and the two scenarios end different numbers of tracks (the
    long job keeps tracks from 5 frames): on the full batches both rates are of the same work."""
    lips = [p for p in passes if p["method"] == "forward_lip_clip"]
    if not lips:
        return None
    lip = max(lips, key=lambda p: p["shape"][2])
    windows = lip["shape"][2] - 4
    seconds = lip["seconds"] + sum(p["seconds"] for p in passes
                                   if p["method"] == "forward_aud" and p["shape"][0] == windows)
    return round(windows * lip["calls"] / seconds, 2) if seconds > 0 else None


def long_over_chunk(long: dict, chunk: dict) -> dict:
    """The long job's network rates over the one-video scripts' (None where one is missing)."""
    return {f"long_over_chunk_{key}": round(long[key] / chunk[key], 4) if long[key] and chunk[key] else None
            for key in RATES}


def run_rounds(args: argparse.Namespace, work: Path) -> int:
    """--rounds: both scenarios `args.rounds` times, each in a fresh process, alternating."""
    make_weights(work)
    make_workload(work, args.minutes)
    report = {"device": args.device, "machine": machine(), "minutes": args.minutes,
              "batch_size": args.batch_size, "chunk_preset": args.chunk_preset, "cuts": args.cuts, "rounds": []}
    for k in range(args.rounds):
        order = ("long", "chunk") if k % 2 == 0 else ("chunk", "long")
        got = {}
        for name in order:
            print(f"round {k + 1}/{args.rounds}: {name}", flush=True)
            summary = in_subprocess(name, args.minutes, args)["summary"]
            got[name], matmul = summary[name], summary["matmul_gflops"]
        report["rounds"].append({"order": list(order), **got, **long_over_chunk(got["long"], got["chunk"]),
                                 "matmul_gflops": matmul})
        print(f"round {k + 1}: " + ", ".join(f"{key} long {got['long'][key]} chunk {got['chunk'][key]}"
                                             for key in RATES), flush=True)
    report["summary"] = summarise_rounds(report["rounds"])
    print("\n" + json.dumps(report["summary"], indent=1))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarise_rounds(rounds: list[dict]) -> dict:
    """Per scenario the medians over the rounds (the allocator of the first); per rate the
    median of the rounds' long/chunk ratios and their range."""
    out = {}
    for name in ("long", "chunk"):
        runs = [r[name] for r in rounds]
        out[name] = {key: _median([r[key] for r in runs])
                     for key in (*RATES, "realtime_factor", "realtime_ceiling", "s3fd_gflops",
                                 "syncnet_gflops", "peak_rss_mb")}
        out[name]["allocator"] = runs[0]["allocator"]
    for key in RATES:
        ratios = [r[f"long_over_chunk_{key}"] for r in rounds if r[f"long_over_chunk_{key}"] is not None]
        out[f"long_over_chunk_{key}"] = _median(ratios)
        out[f"long_over_chunk_{key}_range"] = [min(ratios), max(ratios)] if ratios else None
    out["matmul_gflops"] = _median([r.get("matmul_gflops") for r in rounds])
    out["rounds"] = len(rounds)
    return out


def progress(name: str, res: dict, clocks: tuple[ForwardClock, ForwardClock]) -> None:
    """The in-run figures as soon as a scenario ends: the replays take about 3x the floor."""
    inrun = sum(c.seconds for c in clocks)
    ratio = f"{res['wall_seconds'] / inrun:.4f}" if inrun else "-"
    print(f"{name}: wall {res['wall_seconds']:.1f} s, floor in the run {inrun:.1f} s "
          f"(S3FD {clocks[0].seconds:.1f} + SyncNet {clocks[1].seconds:.1f}), ratio {ratio}", flush=True)


def print_table(name: str, res: dict) -> None:
    alone = "not replayed" if res["floor_seconds"] is None else f"{res['floor_seconds']:.1f} s alone"
    print(f"\n== {name}: {res['video_seconds']:.1f} s of video, wall {res['wall_seconds']:.1f} s, "
          f"realtime x{res['realtime_factor']}\n"
          f"   floor {alone}, {res['floor_seconds_inrun']:.1f} s in the run; "
          f"floor ratio {res['floor_ratio']} (in the run {res['floor_ratio_inrun']}); "
          f"allocator {res['allocator']['name']} ({res['allocator']['library'] or 'libc'}); "
          f"freed memory kept: run {res['keep_freed_memory']}, replay {res['keep_freed_memory_alone']}")
    nets = res["networks"]
    print(f"   arithmetic: {res['gflop_per_video_second']} GFLOP per second of video; "
          f"S3FD {nets['s3fd']['gflop_per_frame']} GFLOP a frame at {nets['s3fd']['inrun_gflops']} GFLOPS "
          f"in the run ({nets['s3fd']['isolated_gflops']} alone), SyncNet {nets['syncnet']['gflop_per_window']} "
          f"GFLOP a window at {nets['syncnet']['inrun_gflops']} ({nets['syncnet']['isolated_gflops']} alone); "
          f"realtime at the floor x{res['realtime_ceiling']}")
    print(f"{'stage':32} {'seconds':>9} {'rate':>10} {'unit':10} {'x realtime':>10}")
    for r in res["stages"]:
        rate = "" if r["rate"] is None else f"{r['rate']:.2f}"
        rt = "" if r["realtime_factor"] is None else f"{r['realtime_factor']:.2f}"
        print(f"{r['stage']:32} {r['seconds']:9.2f} {rate:>10} {r['unit']:10} {rt:>10}")


def summarise(report: dict) -> dict:
    """One look: per scenario the networks' rates in the run, the allocator, peak RSS and
    realtime factor; and the long job's rates over the one-video scripts'."""
    out = {}
    for name in ("long", "chunk"):
        if name not in report:
            continue
        res, nets = report[name], report[name].get("networks", {})
        out[name] = {"s3fd_frames_per_s": nets.get("s3fd", {}).get("inrun_frames_per_s"),
                     "syncnet_windows_per_s": nets.get("syncnet", {}).get("inrun_windows_per_s"),
                     "syncnet_full_batch_windows_per_s": full_batch_rate(nets.get("syncnet", {}).get("passes", [])),
                     "allocator": res["allocator"]["name"], "allocator_library": res["allocator"]["library"],
                     "allocator_settings": res["allocator"]["settings"],
                     "peak_rss_mb": res.get("peak_rss", {}).get("self_mb"),
                     "realtime_factor": res["realtime_factor"],
                     "realtime_ceiling": res.get("realtime_ceiling"),
                     "s3fd_gflops": nets.get("s3fd", {}).get("inrun_gflops"),
                     "syncnet_gflops": nets.get("syncnet", {}).get("inrun_gflops")}
    if "long" in out and "chunk" in out:
        out.update(long_over_chunk(out["long"], out["chunk"]))
    out["matmul_gflops"] = report.get("matmul_gflops")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=3.0, help="length of the workload (fractions allowed)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--batch_size", type=int, default=16, help="detector batch (default 16)")
    ap.add_argument("--rss", action="store_true", help="also compare peak RSS at the length and at 4x it")
    ap.add_argument("--only", choices=["long", "chunk"], default=None)
    ap.add_argument("--workdir", default=None, help="keep the workload here (default: a temporary folder)")
    ap.add_argument("--chunk_preset", default="veryfast",
                    help="x264 preset of the long job's chunk files (process_long_video.py's option)")
    ap.add_argument("--cuts", choices=["ahead", "inline"], default="ahead",
                    help="the long job's chunk files: cut ahead at nice 19 where allowed (the default, "
                         "as the job runs), or in line before each chunk's analysis (to compare)")
    ap.add_argument("--replays", type=int, default=3,
                    help="replays of the forward passes alone, for the floor (median; default 3; "
                         "0: floor in the run only)")
    ap.add_argument("--rounds", type=int, default=0,
                    help="run the two scenarios this many times, each in a fresh process, alternating, "
                         "and report medians (for comparisons within a few percent; no replays, no --rss)")
    args = ap.parse_args()
    if args.rounds < 0 or (args.rounds and (args.only or args.rss)):
        ap.error("--rounds takes a positive count, without --only or --rss")
    if args.cuts == "inline":
        cutahead.can_restore_priority = lambda: False  # CutAhead then cuts every file in line
    with workdir(args.workdir, "syncnet-bench-") as work:
        args.workdir = str(work)  # the --rss runs and the rounds share the workload
        return run_rounds(args, work) if args.rounds else run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    weights = make_weights(work)
    video = make_workload(work, args.minutes)
    report = {"device": args.device, "machine": machine(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "minutes": args.minutes,
              "batch_size": args.batch_size,
              "chunk_preset": args.chunk_preset, "replays": args.replays,
              "cuts": args.cuts if cutahead.can_restore_priority() or args.cuts == "inline" else "inline (not allowed)",
              OPT_OUT: os.environ.get(OPT_OUT), CHOICE: os.environ.get(CHOICE),
              "MALLOC_CONF": os.environ.get("MALLOC_CONF")}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
    report["decode_only_fps"] = round(decode_rate(video), 1)
    # Before the scenarios, on the idle machine: the dense arithmetic rate to read the
    # networks' GFLOPS against.
    report["matmul_gflops"] = round(matmul_gflops(args.device), 1)
    # Each scenario runs with the memory setting its scripts use (syncnet/allocator.py):
    # glibc's defaults for process_long_video.py, freed memory kept for run_pipeline.py and
    # run_syncnet.py; SYNCNET_KEEP_FREED_MEMORY=0/1 sets both.  Once kept it stays kept in
    # this process, so the long job runs first, and the replays (memory kept) come last.
    clocks = {}
    if args.only in (None, "long"):
        keep_freed_memory(default=False)
        report["long"], clocks["long"] = scenario_long(video, args.device, weights, args.batch_size,
                                                       work / "long_out", args.chunk_preset)
        report["long"]["keep_freed_memory"] = freed_memory_kept()
        report["long"]["allocator"] = in_use()
        progress("long", report["long"], clocks["long"])
    if args.only in (None, "chunk"):
        keep_freed_memory(default=True)
        report["chunk"], clocks["chunk"] = scenario_chunk(video, args.device, weights, args.batch_size, work)
        report["chunk"]["keep_freed_memory"] = freed_memory_kept()
        report["chunk"]["allocator"] = in_use()
        report["chunk"]["peak_rss"] = peak_rss_mb()  # the process's: at least the long scenario's, run first
        progress("chunk", report["chunk"], clocks["chunk"])
    with best_conditions() as kept:
        for name, pair in clocks.items():
            if args.replays > 0:
                print(f"{name}: replaying {sum(c.calls for c in pair)} forward passes alone, "
                      f"{args.replays} times", flush=True)
            add_floor(report[name], pair, args.replays)
            report[name]["keep_freed_memory_alone"] = kept if args.replays > 0 else None
            report[name]["allocator_alone"] = in_use()["name"] if args.replays > 0 else None
    if "long" in report:
        long = report["long"]
        long["pipeline_fps"] = round(long["source_frames"] / long["wall_seconds"], 2)
        long["share_of_decode_rate"] = round(long["pipeline_fps"] / report["decode_only_fps"], 4)
        print_table(f"process_long_video, {args.minutes:g} min", long)
        print(f"detector frames / source frames: {long['detector_frames']} / {long['source_frames']} = "
              f"{long['detector_frames_ratio']}")
        print(f"decode-only rate {report['decode_only_fps']} fps; pipeline {long['pipeline_fps']} fps "
              f"({100 * long['share_of_decode_rate']:.1f}% of it)")
    if "chunk" in report:
        print_table("run_pipeline + run_syncnet, one 30 s chunk", report["chunk"])
    main_scenario = report.get("long", report.get("chunk", {}))
    for key in ("floor_ratio", "floor_ratio_inrun", "realtime_factor"):
        report[key] = main_scenario.get(key)
    report["detector_frames_ratio"] = report.get("long", {}).get("detector_frames_ratio")
    report["rss_ratio"] = None
    if args.rss:
        # This process ran the long scenario alone (--only long): its peak is the small one.
        runs = {f"{args.minutes:g}min": {"peak_mb": report["long"]["peak_rss"]["self_mb"],
                                          "chunk_peak_rss": report["long"]["chunk_peak_rss"]}
                if args.only == "long" else rss_in_subprocess(args.minutes, args),
                f"{4 * args.minutes:g}min": rss_in_subprocess(args.minutes * 4, args)}
        small, large = (run["peak_mb"] for run in runs.values())
        report["rss_mb"] = {label: run["peak_mb"] for label, run in runs.items()}
        report["rss_chunk_peaks"] = {label: run["chunk_peak_rss"] for label, run in runs.items()}
        report["rss_ratio"] = round(large / small, 4)
        print(f"peak RSS {small} MB at {args.minutes:g} min, {large} MB at {4 * args.minutes:g} min: "
              f"ratio {report['rss_ratio']}")
    report["summary"] = summarise(report)
    print("\n" + json.dumps(report["summary"], indent=1))
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
