"""The SyncNet network of the reference (SyncNetModel.py), with the module names of `syncnet_v2.model`.

Audio branch: a 13x20 MFCC window (0.2 s) -> 1024-d.  Lip branch: five 224x224 BGR
frames (0.2 s at 25 fps) as raw 0..255 floats -> 1024-d.  Windows that belong
together lie close in that space.  The layer order (and so every Sequential index)
is the reference's: the published weights are addressed by those indices.

`SyncNet` runs a network as this project does (device, precision, memory format);
`load_syncnet` gives one with the published weights.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .device import default_device, parse_device
from .precision import autocast, check_precision
from .weights import SYNCNET, load_weights_into

__all__ = ["SyncNet", "SyncNetModel", "default_device", "load_syncnet", "parse_device"]


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


class SyncNet:
    """SyncNet as this project runs it: a network (`SyncNetModel`, or any module with
    `forward_lip_clip` and `forward_aud`) with the device, precision and lip-tower memory
    format it runs at, as `detectors.S3FD` owns its own.

    `embed` turns a batch of frames and MFCC windows into embeddings.  Other attributes
    (`parameters`, `state_dict`, `training`, `netcnnlip`, ...) are the network's, so a
    loaded SyncNet still reads like the module it wraps.
    """

    def __init__(self, net: nn.Module, device: torch.device | None = None, precision: str = "fp32",
                 lip_memory_format: torch.memory_format = torch.contiguous_format):
        self.net = net
        self.device = device if device is not None else _device_of(net)
        self.precision = precision
        self.lip_memory_format = lip_memory_format

    @classmethod
    def of(cls, model) -> SyncNet:
        """What runs `model`: itself if it runs itself (a SyncNet, or a proxy of one such as
        jobs.batch.Serialised, which has its `embed`), else SyncNet(model) for a bare network
        (or a proxy of one): fp32, on the device of its parameters."""
        if isinstance(model, SyncNet) or (not isinstance(model, nn.Module) and hasattr(model, "embed")):
            return model
        return cls(model)

    def __getattr__(self, name: str):
        if name == "net":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.net, name)

    # The passes go through these (not straight to `net`) so that a caller can time them
    # on this object (bench/run.py replaces them with timed calls).
    def forward_lip_clip(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net.forward_lip_clip(clip)

    def forward_lip(self, windows: torch.Tensor) -> torch.Tensor:
        return self.net.forward_lip(windows)

    def forward_aud(self, windows: torch.Tensor) -> torch.Tensor:
        return self.net.forward_aud(windows)

    def embed(self, frames: torch.Tensor, mfcc_windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, H, W, 3) consecutive BGR frames (uint8, CPU) and their (t - 4, 13, 20) MFCC windows
        -> lip and audio embeddings, each (t - 4, D) float32 on the CPU.

        Only these frames go to the device, as one clip (1, 3, t, H, W), and become float there.
        """
        clip = frames.permute(3, 0, 1, 2).unsqueeze(0).to(self.device)
        clip = clip.contiguous(memory_format=self.lip_memory_format).float()
        aud_in = mfcc_windows.unsqueeze(1).contiguous().to(self.device)
        with autocast(self.device, self.precision):
            lip = self.forward_lip_clip(clip)
            aud = self.forward_aud(aud_in)
        return lip.float().cpu(), aud.float().cpu()


def _device_of(net: nn.Module) -> torch.device:
    for tensor in net.parameters():
        return tensor.device
    return torch.device("cpu")


def load_syncnet(path: str | Path, device: str | torch.device = "cpu", precision: str = "fp32") -> SyncNet:
    """The network with the published (or stand-in) weights at `path`, in eval mode on `device`.

    Raises WeightsError for a missing or wrong file and InputError for an unusable device
    or precision (see syncnet.precision; fp32, the reference's, by default).
    """
    dev = parse_device(device)
    net = load_weights_into(SyncNetModel(), path, SYNCNET).to(dev).eval()
    lip_format = torch.contiguous_format
    if dev.type == "cpu":
        # oneDNN runs the 3-D convolutions of the lip tower about 1.4x faster on
        # channels-last tensors; the results are the same up to float rounding.
        net.netcnnlip.to(memory_format=torch.channels_last_3d)
        lip_format = torch.channels_last_3d
    return SyncNet(net, dev, check_precision(precision, dev), lip_format)
