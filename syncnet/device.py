"""Which torch device the networks run on: one parser for SyncNet and S3FD alike."""
from __future__ import annotations

import torch

from .errors import InputError


def default_device() -> str:
    """"cuda" when a GPU is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def parse_device(device: str | torch.device) -> torch.device:
    """A torch device from "cpu", "cuda" or "cuda:N", or InputError in one line."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif dev.type != "cpu":
        raise InputError(f"unsupported device {device!r} (use cpu, cuda or cuda:N)")
    return dev
