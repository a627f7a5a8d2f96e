"""Optional reduced-precision inference (off by default: it changes the numbers a little).

`fp32` is the reference's arithmetic.  `bf16` runs the convolutions under autocast in
bfloat16 (fast on CPUs with AMX or AVX512-BF16, and on recent GPUs); `fp16` does the
same in float16 on CUDA.  Outputs are turned back into float32 before any box or
distance maths, so only the network activations lose precision.  README, Speed,
lists the measured gains and changes.
"""
from __future__ import annotations

import contextlib

import torch

from .errors import InputError

PRECISIONS = ("fp32", "bf16", "fp16")


def precision_problem(precision: str, device: torch.device) -> str | None:
    """Why a known `precision` cannot run on `device`, as words to follow its name; None if it can.

    The command line says it of its flag ("--precision fp16 needs ..."), the library of
    the precision ("fp16 precision needs ...").
    """
    if precision == "fp16" and device.type != "cuda":
        return "needs a CUDA device; on the CPU use bf16"
    return None


def check_precision(precision: str, device: torch.device) -> str:
    """`precision` if it can run on `device`; InputError (one line) otherwise."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (use one of {', '.join(PRECISIONS)})")
    problem = precision_problem(precision, device)
    if problem:
        raise InputError(f"{precision} precision {problem}")
    return precision


def autocast(device: torch.device, precision: str):
    """A context under which forward passes run at `precision` (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
