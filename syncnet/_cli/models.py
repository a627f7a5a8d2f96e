"""The two networks, loaded once per process for the scripts (weights resolved as documented)."""
from __future__ import annotations


def load_models(device: str | None, s3fd_path: str | None = None, syncnet_path: str | None = None,
                need_syncnet: bool = True, precision: str = "fp32"):
    """The detector and SyncNet, loaded once per process (weights resolved as documented)."""
    from detectors import S3FD

    from ..model import default_device, load_syncnet
    from ..weights import S3FD as S3FD_WEIGHTS
    from ..weights import SYNCNET, resolve_all

    device = device or default_device()
    files = resolve_all([(S3FD_WEIGHTS, s3fd_path)] + ([(SYNCNET, syncnet_path)] if need_syncnet else []))
    s3fd_file, syncnet_file = files[0], (files[1] if need_syncnet else None)
    detector = S3FD(weights=s3fd_file, device=device, precision=precision)
    model = load_syncnet(syncnet_file, device=device, precision=precision) if need_syncnet else None
    return detector, model
