"""The model floor: the networks' forward passes of a run, timed in the run and replayed alone.

Timed in the run, a forward pass shares the cores with whatever runs beside it
(decoding, encoding, cropping threads), so moving work beside the networks slows them
and raises the in-run floor: a ratio to that floor can fall without anything getting
faster.  So the clock also records what each pass was given (shape, dtype, strides,
device, autocast), and `replay` runs the same passes again after the run, alone, in the
best conditions this process can give them: warmed up, freed memory kept for reuse (as
the one-video scripts run), every core free, the median of a few replays.  The inputs
are synthetic tensors of the recorded shapes and layouts: a dense network's time does
not depend materially on the pixel values (no data-dependent branches; random values
keep denormals out), so only what shapes the work is copied.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import os
import statistics
import threading
import time
from collections import Counter
from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from syncnet import allocator


class Pass(NamedTuple):
    """What shapes the work of one forward call (its first argument and the autocast state)."""

    network: str
    method: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str
    device: str
    autocast: str | None  # the autocast dtype on the call's device, None when off


def _autocast_of(device: torch.device) -> str | None:
    if not torch.is_autocast_enabled(device.type):
        return None
    return str(torch.get_autocast_dtype(device.type)).removeprefix("torch.")


def freed_memory_kept() -> bool:
    """Whether this process keeps freed memory for reuse: jemalloc or tcmalloc serves malloc
    (preloaded), or syncnet.allocator applied its glibc settings (once applied they stay)."""
    return allocator._libc is not None or allocator.loaded() is not None


class ForwardClock:
    """Wraps bound forward methods of one network: adds up their wall time (synchronising
    CUDA) and counts each distinct `Pass`.  Chunk workers call the networks from several
    threads on a GPU, hence the lock."""

    def __init__(self, network: str, device: str):
        self.network = network
        self.device = device
        self.seconds = 0.0
        self.calls = 0
        self.items = 0
        self.passes: Counter[Pass] = Counter()
        self.pass_seconds: Counter[Pass] = Counter()  # in-run seconds of each distinct pass
        self._methods: dict[str, object] = {}  # method name -> the unwrapped bound method
        self._meta: dict[str, torch.nn.Module] = {}  # method name -> a weightless copy of its network
        self._copies: dict[int, torch.nn.Module] = {}  # id of a network -> its weightless copy
        self._lock = threading.Lock()

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def wrap(self, obj, method: str, items=lambda x: int(x.shape[0]), network: torch.nn.Module | None = None) -> None:
        """Replace `obj.method` by a timed call; `items(x)` counts what one call computes
        (frames, windows).  `network` (`obj` when it is a module) is the module whose
        method of that name does the arithmetic: a copy of it on the meta device counts the
        passes' FLOPs (`flops`)."""
        fn = getattr(obj, method)
        self._methods[method] = fn
        network = obj if network is None and isinstance(obj, torch.nn.Module) else network
        if network is not None:
            if id(network) not in self._copies:  # before the wrapper is set on it
                self._copies[id(network)] = copy.deepcopy(network).to("meta")
            self._meta[method] = self._copies[id(network)]

        def timed(x, *args, **kwargs):
            key = Pass(self.network, method, tuple(x.shape), tuple(x.stride()),
                       str(x.dtype).removeprefix("torch."), str(x.device), _autocast_of(x.device))
            self._sync()
            t0 = time.perf_counter()
            out = fn(x, *args, **kwargs)
            self._sync()
            dt = time.perf_counter() - t0
            with self._lock:
                self.seconds += dt
                self.calls += 1
                self.items += items(x)
                self.passes[key] += 1
                self.pass_seconds[key] += dt
            return out

        setattr(obj, method, timed)

    def replay(self, repeats: int = 3) -> dict:
        """The recorded passes again, alone: each distinct pass once untimed (kernel
        selection, first allocations), then `repeats` timed replays of every pass, each
        call timed as in the run.  Returns the median and each replay's seconds, and the
        calls replayed per replay."""
        replayed: Counter[Pass] = Counter()
        times = []
        with torch.inference_mode():
            for p in self.passes:
                with _autocast(p):
                    self._methods[p.method](_synthetic(p))
            for r in range(repeats):
                total = 0.0
                for p, n in self.passes.items():
                    fn, x = self._methods[p.method], _synthetic(p)  # one input at a time: bounded memory
                    with _autocast(p):
                        for _ in range(n):
                            self._sync()
                            t0 = time.perf_counter()
                            fn(x)
                            self._sync()
                            total += time.perf_counter() - t0
                    if r == 0:
                        replayed[p] += n
                times.append(total)
        return {"seconds": statistics.median(times) if times else None, "replays": times,
                "calls": sum(replayed.values()), "passes": replayed}

    def flops(self) -> dict[Pass, int]:
        """FLOPs of one call of each distinct pass: convolutions and matrix products, two per
        multiply-add, as torch's FlopCounterMode counts them, on the network's meta copy
        (shapes only, no arithmetic).  Passes of a method without a network are left out."""
        out = {}
        for p in self.passes:
            net = self._meta.get(p.method)
            if net is None:
                continue
            x = torch.empty_strided(p.shape, p.stride, dtype=getattr(torch, p.dtype), device="meta")
            with FlopCounterMode(display=False) as counter, torch.inference_mode():
                getattr(net, p.method)(x)
            out[p] = counter.get_total_flops()
        return out

    def passes_json(self, flops: dict[Pass, int] | None = None) -> list[dict]:
        """Each distinct pass, its calls, seconds and GFLOP a call (`flops`: as `flops()` gives)."""
        flops = self.flops() if flops is None else flops
        return [{**p._asdict(), "calls": n, "seconds": round(self.pass_seconds[p], 4),
                 "gflop_per_call": round(flops[p] / 1e9, 4) if p in flops else None}
                for p, n in sorted(self.passes.items(), key=lambda kv: -kv[1])]


def matmul_gflops(device: str = "cpu", n: int = 2048, repeats: int = 5) -> float:
    """The machine's dense arithmetic rate: GFLOPS of an n x n float32 matrix product (torch's
    BLAS, every thread), median of `repeats` after one warm-up.  A network whose convolutions
    run at about this rate is bound by the arithmetic itself, not by how it is called."""
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def _synthetic(p: Pass) -> torch.Tensor:
    """Random values laid out exactly as recorded (same strides, so channels-last stays
    channels-last): the storage a view of that shape and stride needs, filled, then viewed."""
    dtype = getattr(torch, p.dtype)
    size = 1 + sum((n - 1) * s for n, s in zip(p.shape, p.stride) if n > 0)
    if dtype.is_floating_point:
        flat = torch.empty(size, dtype=dtype, device=p.device).uniform_(-128.0, 128.0)
    else:
        flat = torch.randint(0, 256, (size,), dtype=dtype, device=p.device)
    return flat.as_strided(p.shape, p.stride)


def _autocast(p: Pass):
    if p.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(p.device).type, dtype=getattr(torch, p.autocast))


@contextlib.contextmanager
def best_conditions():
    """Freed memory kept for reuse (jemalloc, where the run had it preloaded, keeps it
    already; on glibc syncnet.allocator's settings, forced on even where
    SYNCNET_KEEP_FREED_MEMORY=0 turned them off for the run: once on they stay on, so
    call this after the runs) and garbage collected; yields whether memory is kept."""
    saved = os.environ.get(allocator.OPT_OUT)
    os.environ[allocator.OPT_OUT] = "1"
    try:
        kept = allocator.keep_freed_memory()
    finally:  # child processes started later (the --rss runs) get the caller's setting
        if saved is None:
            del os.environ[allocator.OPT_OUT]
        else:
            os.environ[allocator.OPT_OUT] = saved
    gc.collect()
    yield kept or freed_memory_kept()
