"""The benchmarks: the forward clock and its replay (bench/floor.py), and a smoke run of
bench/run.py and bench/options.py on a second or two of video, so that a broken bench
is caught before someone spends an hour measuring with it."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import threading

import pytest
import torch

from syncnet.allocator import find_library
from tests.conftest import MEDIA, PARITY, REPO

_spec = importlib.util.spec_from_file_location("bench_floor", REPO / "bench" / "floor.py")
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)
ForwardClock = floor.ForwardClock
_spec = importlib.util.spec_from_file_location("bench_run", REPO / "bench" / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)

needs_shared = pytest.mark.skipif(not (PARITY / "make_weights.py").exists() or not MEDIA.exists(),
                                  reason="../shared (stand-in weights maker, clips) is not present")


class Net(torch.nn.Module):
    """Records the strides of what it is given."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), tuple(x.stride())))
        return self.conv(x)


def test_clock_counts_calls_from_many_threads_and_replays_the_same_passes():
    net = Net()
    clock = ForwardClock("net", "cpu")
    clock.wrap(net, "forward")
    wide = torch.rand(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    small = torch.rand(1, 3, 6, 6)

    def work():
        with torch.inference_mode():
            for i in range(25):
                net(wide if i % 5 else small)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.calls == 200 and clock.items == 160 * 2 + 40 * 1
    assert sorted(clock.passes.values()) == [40, 160]
    assert set(clock.pass_seconds) == set(clock.passes)
    assert sum(clock.pass_seconds.values()) == pytest.approx(clock.seconds, rel=1e-9)
    assert [(p["calls"], p["seconds"]) for p in clock.passes_json()] == [
        (n, round(clock.pass_seconds[p], 4)) for p, n in clock.passes.most_common()]
    in_run = list(net.seen)
    net.seen.clear()
    alone = clock.replay(3)
    assert alone["calls"] == 200 and alone["passes"] == clock.passes
    assert len(alone["replays"]) == 3 and alone["seconds"] == statistics.median(alone["replays"]) > 0
    # one untimed warm-up call per distinct pass, then 3 replays; same shapes and layouts (channels-last kept)
    assert len(net.seen) == 2 + 3 * 200 and set(net.seen) == set(in_run)


def _hooked_flops(net: torch.nn.Module, call) -> int:
    """FLOPs of `call()` counted independently of torch's counter: two per multiply-add of
    every convolution and linear layer, from the output sizes the real forward pass made."""
    total = 0

    def count(module, inputs, out):
        nonlocal total
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            total += 2 * out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, torch.nn.Linear):
            total += 2 * out.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules()]
    try:
        with torch.inference_mode():
            call()
    finally:
        for h in hooks:
            h.remove()
    return total


def test_clock_counts_each_passes_arithmetic_on_a_weightless_copy():
    from detectors.s3fd.net import S3FDNet
    from syncnet.model import SyncNet, SyncNetModel

    s3fd = S3FDNet().eval().to(memory_format=torch.channels_last)
    weights = {k: v.clone() for k, v in s3fd.state_dict().items()}
    clock = ForwardClock("s3fd", "cpu")
    clock.wrap(s3fd, "forward")
    frames = torch.rand(2, 3, 211, 211).contiguous(memory_format=torch.channels_last)  # the bench's detection size
    with torch.inference_mode():
        s3fd(frames)
    (flops,) = clock.flops().values()
    assert flops == _hooked_flops(s3fd, lambda: s3fd(frames)) == 2 * 27_264_461_184
    # The copy is on the meta device: the network itself is untouched and still runs.
    assert all(torch.equal(v, weights[k]) for k, v in s3fd.state_dict().items())
    assert next(s3fd.parameters()).device.type == "cpu" and clock.calls == 2  # the hooked call was timed too

    model = SyncNet(SyncNetModel().eval())
    clock = ForwardClock("syncnet", "cpu")
    clock.wrap(model, "forward_lip_clip", items=lambda x: int(x.shape[2]) - 4, network=model.net)
    clock.wrap(model, "forward_aud", items=lambda x: 0, network=model.net)
    clip, aud = torch.rand(1, 3, 9, 224, 224), torch.rand(5, 1, 13, 20)
    with torch.inference_mode():
        model.forward_lip_clip(clip)
        model.forward_aud(aud)
    counted = {p.method: f for p, f in clock.flops().items()}
    assert counted == {"forward_lip_clip": _hooked_flops(model.net, lambda: model.net.forward_lip_clip(clip)),
                       "forward_aud": _hooked_flops(model.net, lambda: model.net.forward_aud(aud))}
    assert [p["gflop_per_call"] for p in clock.passes_json()] == [
        round(counted["forward_lip_clip"] / 1e9, 4), round(counted["forward_aud"] / 1e9, 4)]
    # A method wrapped without a network is left out, not guessed.
    bare = ForwardClock("net", "cpu")
    bare.wrap(model, "forward_lip")
    with torch.inference_mode():
        model.forward_lip(torch.rand(1, 3, 5, 224, 224))
    assert bare.flops() == {} and bare.passes_json()[0]["gflop_per_call"] is None


def test_matmul_rate_is_the_arithmetic_of_the_product():
    calls = []
    real = torch.Tensor.__matmul__

    def seen(a, b):
        calls.append((tuple(a.shape), tuple(b.shape)))
        return real(a, b)

    torch.Tensor.__matmul__ = seen
    try:
        rate = floor.matmul_gflops("cpu", n=256, repeats=3)
    finally:
        torch.Tensor.__matmul__ = real
    assert calls == [((256, 256), (256, 256))] * 4 and rate > 0  # a warm-up and three timed products


def _pass(method: str, shape: list[int], calls: int, seconds: float) -> dict:
    return {"network": "syncnet", "method": method, "shape": shape, "calls": calls, "seconds": seconds}


def test_full_batch_rate_counts_only_the_full_batches_lip_and_audio_passes():
    lip, aud = "forward_lip_clip", "forward_aud"
    passes = [_pass(lip, [1, 3, 24, 224, 224], 10, 8.0), _pass(aud, [20, 1, 13, 20], 10, 2.0),
              _pass(lip, [1, 3, 5, 224, 224], 12, 3.0), _pass(aud, [1, 1, 13, 20], 12, 1.0),
              _pass(lip, [1, 3, 9, 224, 224], 1, 0.5), _pass(aud, [5, 1, 13, 20], 1, 0.1)]
    # The full batch (24 frames, 20 windows), though the one-window batches were called more often.
    assert bench_run.full_batch_rate(passes) == pytest.approx(20 * 10 / (8.0 + 2.0), abs=0.005)
    # No track long enough for a full batch: the longest clip there is (9 frames, 5 windows).
    assert bench_run.full_batch_rate(passes[2:]) == pytest.approx(5 * 1 / (0.5 + 0.1), abs=0.005)
    assert bench_run.full_batch_rate([p for p in passes if p["method"] == aud]) is None


def test_machine_names_the_cpu_the_figures_were_measured_on():
    m = bench_run.machine()
    assert m["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["torch_threads"] == torch.get_num_threads() and m["cpu_count"] == os.cpu_count()
    cpuinfo = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    assert m["cpu_features"] == [f for f in bench_run.CPU_FEATURES if f in flags]
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
    if names:
        assert m["cpu"] == names[0]


def _touch(mb: int) -> None:
    """RSS up by `mb` MB, then back (an anonymous mapping, whatever the allocator keeps)."""
    import mmap

    if mb == 0:
        return
    m = mmap.mmap(-1, mb << 20)
    for i in range(0, mb << 20, 4096):
        m[i] = 1
    m.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux only")
def test_chunk_peaks_are_each_chunks_own_peak(monkeypatch):
    from syncnet.jobs.longvideo import LongVideoJob

    sizes = [0, 400, 0, 0]
    monkeypatch.setattr(LongVideoJob, "record", lambda job, index, *a, **k: _touch(sizes[index]))
    with bench_run.ChunkPeaks() as peaks:
        for i in range(len(sizes)):
            LongVideoJob.record(None, i)
    mb = peaks.report()["mb"]
    assert len(mb) == 4
    assert mb[1] - mb[0] > 350  # the second chunk's 400 MB
    assert abs(mb[2] - mb[0]) < 100 and abs(mb[3] - mb[0]) < 100  # reset after it: not carried on
    assert peaks.report()["slope_mb_per_chunk"] == pytest.approx(
        statistics.linear_regression(range(4), mb).slope, abs=0.01)
    assert bench_run.peak_rss_mb()["self_mb"] >= mb[1]  # the reset did not lose the process's peak
    LongVideoJob.record(None, 1)  # unwrapped on exit: not counted
    assert len(peaks.peaks) == 4


def smoke(script: str, *args: str, tmp) -> dict:
    out = tmp / f"{script}.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), "--device", "cpu", "--out", str(out),
                           "--workdir", str(tmp / "work"), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def bench_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")  # one workdir: the stand-in weights are made once


@needs_shared
def test_run_py_reports_the_floor_alone_and_in_the_run(bench_tmp):
    r = smoke("run.py", "--minutes", "0.01", tmp=bench_tmp)
    for key in ("floor_ratio", "floor_ratio_inrun", "realtime_factor", "detector_frames_ratio", "rss_ratio",
                "decode_only_fps", "replays", "SYNCNET_KEEP_FREED_MEMORY", "SYNCNET_ALLOCATOR", "summary"):
        assert key in r, key
    # One look: per scenario the networks' rates in the run, the allocator, peak RSS, realtime factor.
    jemalloc = find_library("jemalloc") if os.environ.get("SYNCNET_ALLOCATOR", "auto") in ("auto", "jemalloc") \
        else None
    summary = r["summary"]
    for name in ("long", "chunk"):
        s, nets = summary[name], r[name]["networks"]
        assert s["s3fd_frames_per_s"] == nets["s3fd"]["inrun_frames_per_s"] > 0
        assert s["syncnet_windows_per_s"] == nets["syncnet"]["inrun_windows_per_s"]  # None: no window (0.6 s chunk)
        assert s["realtime_factor"] == r[name]["realtime_factor"] and s["peak_rss_mb"] > 0
        assert s["syncnet_full_batch_windows_per_s"] == bench_run.full_batch_rate(nets["syncnet"]["passes"])
        if jemalloc:  # bench/run.py re-executed itself with it preloaded, as the scripts do
            assert (s["allocator"], s["allocator_library"]) == ("jemalloc", jemalloc), s
        else:
            assert s["allocator"] == ("glibc defaults" if name == "long" else "glibc tuned"), s
    assert summary["long"]["syncnet_windows_per_s"] > 0 and summary["long"]["syncnet_full_batch_windows_per_s"] > 0
    assert r["machine"] == bench_run.machine()
    assert summary["long_over_chunk_s3fd_frames_per_s"] == pytest.approx(
        summary["long"]["s3fd_frames_per_s"] / summary["chunk"]["s3fd_frames_per_s"], rel=1e-3)
    assert r["floor_ratio"] == r["long"]["floor_ratio"] and r["replays"] == 3
    from syncnet.jobs.cutahead import can_restore_priority

    assert r["cuts"] == ("ahead" if can_restore_priority() else "inline (not allowed)")  # the job's own way
    for name in ("long", "chunk"):
        s = r[name]
        for key in ("wall_seconds", "floor_seconds", "floor_seconds_inrun", "floor_ratio", "floor_ratio_inrun",
                    "keep_freed_memory", "keep_freed_memory_alone", "networks", "stages"):
            assert key in s, (name, key)
        assert isinstance(s["keep_freed_memory"], bool) and isinstance(s["keep_freed_memory_alone"], bool)
        assert s["floor_seconds"] > 0, name
        if name == "long":
            # Its wall holds much beside the networks (x264, crops, drawing: 1.5x the floor
            # here).  The 0.6 s chunk's wall is one S3FD batch and little else, so the noise
            # of a shared machine (2x seen) decides which of the two is larger.
            assert s["floor_seconds"] < s["wall_seconds"]
        assert s["floor_ratio"] == pytest.approx(s["wall_seconds"] / s["floor_seconds"], rel=1e-3)
        assert s["floor_ratio_inrun"] == pytest.approx(s["wall_seconds"] / s["floor_seconds_inrun"], rel=1e-3)
        nets = s["networks"]
        assert set(nets) == {"s3fd", "syncnet"}
        assert s["floor_seconds"] == pytest.approx(sum(n["isolated_seconds"] for n in nets.values()), abs=2e-3)
        for net, n in nets.items():
            assert n["replayed_calls"] == n["calls"] == sum(p["calls"] for p in n["passes"]), (name, net)
            assert n["inrun_seconds"] == pytest.approx(sum(p["seconds"] for p in n["passes"]), abs=1e-3)
            assert len(n["replay_seconds"]) == 3
            assert n["isolated_seconds"] == pytest.approx(statistics.median(n["replay_seconds"]), abs=2e-3)
        assert nets["s3fd"]["calls"] > 0 and nets["s3fd"]["isolated_frames_per_s"] > 0
        assert nets["s3fd"]["inrun_frames_per_s"] > 0
        assert {p["network"] for p in nets["s3fd"]["passes"]} == {"s3fd"}
    assert r["long"]["networks"]["s3fd"]["frames"] == r["long"]["detector_frames"]
    chunk_peaks = r["long"]["chunk_peak_rss"]["mb"]
    assert len(chunk_peaks) == r["long"]["chunks"] and 0 < max(chunk_peaks) <= r["long"]["peak_rss"]["self_mb"]
    # The arithmetic: each network's GFLOP is its passes' (each call's count times its calls),
    # S3FD's a frame is that of the workload's 211x211 detection size (844 px at scale 0.25),
    # and the rates and the realtime ceiling are those amounts over the seconds reported.
    assert r["matmul_gflops"] > 0 and r["summary"]["matmul_gflops"] == r["matmul_gflops"]
    for name in ("long", "chunk"):
        s = r[name]
        for net, n in s["networks"].items():
            assert n["gflop"] == pytest.approx(sum(p["gflop_per_call"] * p["calls"] for p in n["passes"]), abs=2e-3)
            for way in ("inrun", "isolated"):  # no call, no rate (SyncNet in the 0.6 s chunk)
                seconds = n[f"{way}_seconds"]
                assert n[f"{way}_gflops"] == (pytest.approx(n["gflop"] / seconds, rel=2e-3, abs=0.1) if seconds
                                              else None), (name, net, way)
        assert s["networks"]["s3fd"]["gflop_per_frame"] == pytest.approx(27.2645, abs=1e-4)
        assert r["summary"][name]["s3fd_gflops"] == s["networks"]["s3fd"]["inrun_gflops"]
        assert s["realtime_ceiling"] == pytest.approx(s["video_seconds"] / s["floor_seconds"], rel=2e-3, abs=1e-3)
        assert r["summary"][name]["realtime_ceiling"] == s["realtime_ceiling"]
        assert s["gflop_per_video_second"] == pytest.approx(
            sum(n["gflop"] for n in s["networks"].values()) / s["video_seconds"], rel=2e-3)
    sync = r["long"]["networks"]["syncnet"]  # the long job's min_track 5 keeps a track of 0.6 s
    assert sync["calls"] > 0 and sync["windows"] == r["long"]["syncnet_windows"] > 0
    assert sync["isolated_windows_per_s"] > 0 and sync["inrun_windows_per_s"] > 0
    assert sync["gflop_per_window"] == pytest.approx(sync["gflop"] / sync["windows"], abs=1e-4)
    assert sync["gflop_per_window"] > 0
    assert {p["method"] for p in sync["passes"]} == {"forward_lip_clip", "forward_aud"}


@needs_shared
def test_run_py_rss_compares_two_lengths_with_their_chunks_peaks(bench_tmp):
    r = smoke("run.py", "--minutes", "0.01", "--only", "long", "--rss", "--replays", "0", tmp=bench_tmp)
    assert list(r["rss_mb"]) == ["0.01min", "0.04min"]
    small, large = r["rss_mb"].values()
    assert small == r["long"]["peak_rss"]["self_mb"]  # --only long: this process's run is the short one
    assert r["rss_ratio"] == pytest.approx(large / small, abs=1e-4)
    peaks = r["rss_chunk_peaks"]
    assert peaks["0.01min"] == r["long"]["chunk_peak_rss"]
    assert len(peaks["0.01min"]["mb"]) == 1 and len(peaks["0.04min"]["mb"]) >= 1  # 0.6 s and 2.4 s: a chunk each
    assert max(peaks["0.04min"]["mb"]) <= large


@needs_shared
def test_options_py_warms_up_and_compares_with_the_default(bench_tmp):
    r = smoke("options.py", "--seconds", "1", "--known_seconds", "3", "--variants", "detect_every 2",
              tmp=bench_tmp)
    assert [v["name"] for v in r["variants"]] == ["default", "detect_every 2"]
    for v in r["variants"]:
        assert v["standin"]["warm_up_seconds"] > 0 and v["standin"]["wall_seconds"] > 0
        assert v["speedup"] > 0 and "standin_change" in v
        assert [v["known_offset"][k]["offset"] for k in ("-5", "0", "7")] == [-5, 0, 7]
    assert r["variants"][0]["speedup"] == 1.0


@needs_shared
def test_run_py_rounds_alternate_fresh_processes_and_report_medians(bench_tmp):
    r = smoke("run.py", "--minutes", "0.01", "--rounds", "3", tmp=bench_tmp)
    rounds = r["rounds"]
    assert [x["order"] for x in rounds] == [["long", "chunk"], ["chunk", "long"], ["long", "chunk"]]
    summary = r["summary"]
    assert summary["rounds"] == 3 and r["machine"] == bench_run.machine()
    assert summary["matmul_gflops"] == pytest.approx(statistics.median(x["matmul_gflops"] for x in rounds), abs=1e-4)
    assert "long_over_chunk_syncnet_full_batch_windows_per_s" in summary  # None: no window in the 0.6 s chunk
    for key in ("s3fd_frames_per_s", "realtime_factor", "realtime_ceiling", "s3fd_gflops", "peak_rss_mb"):
        for name in ("long", "chunk"):
            values = [x[name][key] for x in rounds]
            assert all(v > 0 for v in values), (name, key, values)
            assert summary[name][key] == pytest.approx(statistics.median(values), abs=1e-4)
    # Each round's ratio is of its own two runs; the summary's is their median, not the ratio of medians.
    ratios = []
    for x in rounds:
        ratios.append(x["long_over_chunk_s3fd_frames_per_s"])
        assert ratios[-1] == pytest.approx(x["long"]["s3fd_frames_per_s"] / x["chunk"]["s3fd_frames_per_s"],
                                           rel=1e-3)
    assert summary["long_over_chunk_s3fd_frames_per_s"] == pytest.approx(statistics.median(ratios), abs=1e-4)
    assert summary["long_over_chunk_s3fd_frames_per_s_range"] == [min(ratios), max(ratios)]
    # Fresh processes: each run's peak is its own, so the long job's is not the chunk's.
    assert len({x["long"]["peak_rss_mb"] for x in rounds} | {x["chunk"]["peak_rss_mb"] for x in rounds}) > 1
