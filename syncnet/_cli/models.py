"""The networks, loaded once per process for the tools (weights resolved as documented).

Every tool loads its networks here, as `models.load_models(...)`, so that tests/doubled.py
can hand out test doubles in their place.
"""
from __future__ import annotations

from ..errors import InputError


def load_models(device: str | None, s3fd_path: str | None = None, syncnet_path: str | None = None, *,
                need_s3fd: bool = True, need_syncnet: bool = True, precision: str = "fp32"):
    """(S3FD detector, SyncNet), each None when not needed.

    Every missing weights file is named in one error; then --precision is checked
    against the device (in the flags' words) before a network is built.
    """
    # torch only now: the tools check their arguments and inputs first, quickly
    import torch

    from detectors import S3FD

    from ..model import default_device, load_syncnet
    from ..precision import precision_problem
    from ..weights import S3FD as S3FD_WEIGHTS
    from ..weights import SYNCNET, resolve_all

    device = device or default_device()
    wanted = [(spec, path) for spec, path, needed in ((S3FD_WEIGHTS, s3fd_path, need_s3fd),
                                                       (SYNCNET, syncnet_path, need_syncnet)) if needed]
    files = {spec.name: path for (spec, _), path in zip(wanted, resolve_all(wanted))}
    try:
        problem = precision_problem(precision, torch.device(device))
    except (RuntimeError, TypeError, ValueError):
        problem = None  # a bad --device: the networks' loaders say so
    if problem:
        raise InputError(f"--precision {precision} {problem}")
    detector = S3FD(weights=files[S3FD_WEIGHTS.name], device=device, precision=precision) if need_s3fd else None
    model = load_syncnet(files[SYNCNET.name], device=device, precision=precision) if need_syncnet else None
    return detector, model
