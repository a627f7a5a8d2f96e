"""Where the published weights live, and loading them strictly.

The published files are plain state dicts (`syncnet_v2.model`, `sfd_face.pth`).
Loading checks every key and shape so that a wrong file gets one clear line,
never a stack trace from deep inside torch, and never a half-loaded model.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import WeightsError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WeightSpec:
    """One published weights file: its name, where the reference keeps it, where it comes from."""

    name: str
    filename: str
    env: str
    reference_path: str  # relative to the repository (and to the working directory)
    url: str

    def fetch_hint(self) -> str:
        return (f"get {self.filename} with 'bash download_model.sh' (or from {self.url}) "
                f"and put it at {self.reference_path}, or set {self.env}=PATH")


SYNCNET = WeightSpec(
    name="SyncNet", filename="syncnet_v2.model", env="SYNCNET_MODEL",
    reference_path="data/syncnet_v2.model",
    url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
)
S3FD = WeightSpec(
    name="S3FD", filename="sfd_face.pth", env="S3FD_MODEL",
    reference_path="detectors/s3fd/weights/sfd_face.pth",
    url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
)


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def read_state_dict(path: str | Path, spec: WeightSpec) -> dict[str, torch.Tensor]:
    """Read a plain state dict safely (weights_only), or raise WeightsError naming the file."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{spec.name} weights not found at {path}: {spec.fetch_hint()}")
    if not path.is_file():
        raise WeightsError(f"{spec.name} weights path {path} is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path} is not a readable {spec.name} weights file "
                           f"(truncated or not a torch file: {reason[:160]})") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} is not a {spec.name} weights file (expected a plain state dict of tensors)")
    return dict(obj)


def load_weights_into(module: torch.nn.Module, path: str | Path, spec: WeightSpec) -> torch.nn.Module:
    """Load a published state dict into `module`, accepting files with or without
    batch-norm `num_batches_tracked` counters, and naming every mismatch."""
    state = {k: v for k, v in read_state_dict(path, spec).items() if not _is_counter(k)}
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items() if not _is_counter(k)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"{path} does not hold {spec.name} weights: {'; '.join(parts)}")
    bad = [f"{k} {tuple(state[k].shape)} != {expected[k]}" for k in expected
           if tuple(state[k].shape) != expected[k]]
    if bad:
        raise WeightsError(f"{path} does not hold {spec.name} weights: shape mismatch "
                           f"for {len(bad)} tensors (e.g. {bad[0]})")
    module.load_state_dict(state, strict=False)
    return module
