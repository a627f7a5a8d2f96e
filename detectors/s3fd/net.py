"""The S3FD network of the published detector, with the module names of `sfd_face.pth`.

The module layout (indices inside `vgg`, the `L2Norm*` names, `extras`, `loc`,
`conf`) is what lets the published state dict load as is.  The forward pass
stops at the per-prior outputs: priors, decoding and NMS live in box_utils.py,
so that a batch of frames can share one forward pass and the post-processing
can be tested on its own.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# VGG16 up to conv5_3; "C" is the pool with ceil_mode (odd conv3_3 maps keep their last row).
_VGG_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C",
                                   512, 512, 512, "M", 512, 512, 512, "M")
# Where the sources are taken: after vgg[:16] (conv3_3), vgg[:23] (conv4_3), vgg[:30] (conv5_3).
_VGG_SPLITS = (16, 23, 30)
SOURCE_CHANNELS = (256, 512, 512, 1024, 512, 256)
# On the CPU, torch runs a 3x3 convolution of a single image of at most this many input
# values with its native kernel, and any batch of two or more with oneDNN; the two round
# differently in the last bit (torch's ConvParams::use_mkldnn heuristic).
_NATIVE_CONV_NUMEL = 20480


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (ParseNet),
    which keeps the early, large-magnitude sources comparable to the later ones."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return x / norm * self.weight.view(1, -1, 1, 1)


def _vgg() -> nn.ModuleList:
    layers: list[nn.Module] = []
    channels = 3
    for v in _VGG_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        elif v == "C":
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        else:
            layers += [nn.Conv2d(channels, int(v), 3, 1, padding=1), nn.ReLU(inplace=True)]
            channels = int(v)
    # fc6 / fc7 as convolutions (fc6 dilated), as in the published detector.
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


class S3FDNet(nn.Module):
    """S3FD: (B, 3, H, W) mean-subtracted RGB -> per-prior box offsets and class probabilities."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = _vgg()
        self.L2Norm3_3 = L2Norm(256, 10)
        self.L2Norm4_3 = L2Norm(512, 8)
        self.L2Norm5_3 = L2Norm(512, 5)
        self.extras = nn.ModuleList([
            nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
            nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1),
        ])
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in SOURCE_CHANNELS])
        # The first head predicts three background logits (max-out against the many small negatives).
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1)
                                   for i, c in enumerate(SOURCE_CHANNELS)])

    @staticmethod
    def _run(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`layer(x)`, except that on the CPU the convolutions that torch would compute with
        a different kernel for one image than for a batch run image by image, so that a
        batch gives bit for bit what one image at a time (the reference) gives."""
        if (len(x) > 1 and x.device.type == "cpu" and isinstance(layer, nn.Conv2d)
                and (x[0].numel() <= _NATIVE_CONV_NUMEL or layer.kernel_size == (1, 1))):
            return torch.cat([layer(x[i:i + 1]) for i in range(len(x))])
        return layer(x)

    def _sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        sources = []
        start = 0
        for stop, norm in zip(_VGG_SPLITS, (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)):
            for layer in self.vgg[start:stop]:
                x = self._run(layer, x)
            sources.append(norm(x))
            start = stop
        for layer in self.vgg[start:]:
            x = self._run(layer, x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(self._run(layer, x), inplace=True)
            if k % 2 == 1:
                sources.append(x)
        return sources

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """Returns loc (B, P, 4) raw offsets, conf (B, P, 2) softmax [background, face],
        and the (height, width) of each source's feature map, which the priors are built from."""
        locs, confs, sizes = [], [], []
        for i, src in enumerate(self._sources(x)):
            conf = self._run(self.conf[i], src)
            if i == 0:
                conf = torch.cat((conf[:, 0:3].max(dim=1, keepdim=True)[0], conf[:, 3:]), dim=1)
            loc = self._run(self.loc[i], src)
            sizes.append((int(loc.shape[2]), int(loc.shape[3])))
            locs.append(loc.permute(0, 2, 3, 1).reshape(loc.shape[0], -1, 4))
            confs.append(conf.permute(0, 2, 3, 1).reshape(conf.shape[0], -1, 2))
        return torch.cat(locs, 1), F.softmax(torch.cat(confs, 1), dim=-1), sizes


__all__ = ["L2Norm", "S3FDNet"]
