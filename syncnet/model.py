"""The SyncNet network of the reference (SyncNetModel.py), with the module names of `syncnet_v2.model`.

Audio branch: a 13x20 MFCC window (0.2 s) -> 1024-d.  Lip branch: five 224x224 BGR
frames (0.2 s at 25 fps) as raw 0..255 floats -> 1024-d.  Windows that belong
together lie close in that space.  The layer order (and so every Sequential index)
is the reference's: the published weights are addressed by those indices.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .errors import InputError
from .precision import check_precision
from .weights import SYNCNET, load_weights_into


def _block(conv: nn.Module, channels: int, norm: type[nn.Module]) -> list[nn.Module]:
    return [conv, norm(channels), nn.ReLU(inplace=True)]


def _head(embedding: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))


class SyncNetModel(nn.Module):
    """The reference's `S`: two CNN towers with fully connected heads."""

    def __init__(self, embedding: int = 1024):
        super().__init__()
        bn2, bn3 = nn.BatchNorm2d, nn.BatchNorm3d
        self.netcnnaud = nn.Sequential(
            *_block(nn.Conv2d(1, 64, (3, 3), (1, 1), (1, 1)), 64, bn2),
            nn.MaxPool2d((1, 1), (1, 1)),
            *_block(nn.Conv2d(64, 192, (3, 3), (1, 1), (1, 1)), 192, bn2),
            nn.MaxPool2d((3, 3), (1, 2)),
            *_block(nn.Conv2d(192, 384, (3, 3), padding=(1, 1)), 384, bn2),
            *_block(nn.Conv2d(384, 256, (3, 3), padding=(1, 1)), 256, bn2),
            *_block(nn.Conv2d(256, 256, (3, 3), padding=(1, 1)), 256, bn2),
            nn.MaxPool2d((3, 3), (2, 2)),
            *_block(nn.Conv2d(256, 512, (5, 4), padding=(0, 0)), 512, bn2),
        )
        self.netfcaud = _head(embedding)
        self.netfclip = _head(embedding)
        self.netcnnlip = nn.Sequential(
            *_block(nn.Conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0), 96, bn3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_block(nn.Conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), 256, bn3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            *_block(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, bn3),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_block(nn.Conv3d(256, 512, (1, 6, 6), padding=0), 512, bn3),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        mid = self.netcnnaud(x)
        return self.netfcaud(mid.view(mid.size(0), -1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR frames as float 0..255 -> (N, 1024)."""
        mid = self.netcnnlip(x)
        return self.netfclip(mid.reshape(mid.size(0), -1))

    def forward_lip_clip(self, clip: torch.Tensor) -> torch.Tensor:
        """(1, 3, T, 224, 224) consecutive frames -> (T - 4, 1024): `forward_lip` of every 5-frame window.

        The first convolution is the only layer that looks across frames (5 deep; the
        rest are 1 deep), so it runs once over the clip and its T - 4 time steps become
        the windows' batch.  The same sums as window by window (bit-identical on the
        CPU), without copying every frame into five windows first.
        """
        first = self.netcnnlip[0](clip)  # (1, 96, T - 4, h, w)
        _, c, d, h, w = first.shape
        # A view in channels-last memory (time, then pixels, then channels), a copy otherwise.
        per_window = first.permute(0, 2, 1, 3, 4).reshape(d, c, h, w).unsqueeze(2)
        mid = self.netcnnlip[1:](per_window)
        return self.netfclip(mid.reshape(mid.size(0), -1))


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


def load_syncnet(path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32") -> SyncNetModel:
    """The network with the published (or stand-in) weights at `path`, in eval mode on `device`.

    Raises WeightsError for a missing or wrong file and InputError for an unusable device
    or precision (see syncnet.precision; fp32, the reference's, by default).
    """
    dev = parse_device(device)
    model = load_weights_into(SyncNetModel(), path, SYNCNET).to(dev).eval()
    model.precision = check_precision(precision, dev)  # read by evaluate.embed_windows
    model.lip_memory_format = torch.contiguous_format  # read by evaluate.embed_windows
    if dev.type == "cpu":
        # oneDNN runs the 3-D convolutions of the lip tower about 1.4x faster on
        # channels-last tensors; the results are the same up to float rounding.
        model.netcnnlip.to(memory_format=torch.channels_last_3d)
        model.lip_memory_format = torch.channels_last_3d
    return model
