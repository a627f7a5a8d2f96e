"""The S3FD network of the published detector, with the module names of `sfd_face.pth`.

The forward pass returns raw box offsets and face probabilities for every prior,
plus the feature-map sizes the priors are built from; decoding and NMS live in
box_utils.py.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned scale per channel."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight.view(1, -1, 1, 1)


def _vgg() -> nn.ModuleList:
    layers: list[nn.Module] = []
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512, "M"]
    channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif v == "C":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(channels, v, 3, 1, padding=1), nn.ReLU(inplace=True)]
            channels = v
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class S3FDNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.vgg = _vgg()
        self.L2Norm3_3 = L2Norm(256, 10)
        self.L2Norm4_3 = L2Norm(512, 8)
        self.L2Norm5_3 = L2Norm(512, 5)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
                                     nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1)])
        source_channels = [256, 512, 512, 1024, 512, 256]
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in source_channels])
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1)
                                   for i, c in enumerate(source_channels)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """(B, 3, H, W) mean-subtracted RGB -> loc (B, P, 4), face probability (B, P), feature-map sizes."""
        sources = []
        for k in range(16):
            x = self.vgg[k](x)
        sources.append(self.L2Norm3_3(x))
        for k in range(16, 23):
            x = self.vgg[k](x)
        sources.append(self.L2Norm4_3(x))
        for k in range(23, 30):
            x = self.vgg[k](x)
        sources.append(self.L2Norm5_3(x))
        for k in range(30, len(self.vgg)):
            x = self.vgg[k](x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)
        locs, confs, sizes = [], [], []
        for i, src in enumerate(sources):
            conf = self.conf[i](src)
            if i == 0:  # max-out background over the first three channels
                conf = torch.cat((conf[:, 0:3].max(dim=1, keepdim=True)[0], conf[:, 3:]), dim=1)
            loc = self.loc[i](src)
            sizes.append((loc.shape[2], loc.shape[3]))
            locs.append(loc.permute(0, 2, 3, 1).reshape(loc.shape[0], -1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(conf.shape[0], -1, 2))
        scores = F.softmax(torch.cat(confs, 1), dim=-1)[..., 1]
        return torch.cat(locs, 1), scores, sizes
