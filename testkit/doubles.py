"""Test doubles for the two networks, and clips whose right offset is known.

The doubles keep the real data path (crops, MFCC windows, distances, offset
arithmetic) and replace only the learned embeddings:
- lip embedding = the z-scored mean brightness of each of the window's 5 frames;
- audio embedding = the z-scored log energy (MFCC c0) of each of the 5 frames'
  4 MFCC columns.
On a clip whose brightness follows the loudness of its sound, the distance is
smallest where picture and sound line up, which pins the sign and the windows.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from testkit.mediagen import encode


class BrightnessLoudnessSyncNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # gives the module a device and dtype

    @staticmethod
    def _z(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=1, keepdim=True)
        return x / (x.std(dim=1, keepdim=True) + 1e-3)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, 5, H, W)
        return self._z(x.mean(dim=(1, 3, 4)))

    def forward_lip_clip(self, clip: torch.Tensor) -> torch.Tensor:  # (1, 3, T, H, W) -> (T - 4, 5)
        """`forward_lip` of every 5-frame window of the clip, with the same sums."""
        return self._z(clip.mean(dim=(1, 3, 4))[0].unfold(0, 5, 1).contiguous())

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 13, 20)
        energy = x[:, 0, 0, :].reshape(x.shape[0], 5, 4).mean(dim=2)
        return self._z(energy)


class FixedBoxDetector:
    """Finds one face at a fixed place in every frame."""

    def __init__(self, box=(40.0, 20.0, 120.0, 100.0), score: float = 0.99):
        self.box = np.array([*box, score], np.float32)
        self.frames = 0

    def detect_batch(self, images_rgb, conf_th: float = 0.9, scale: float = 0.25):
        self.frames += len(images_rgb)
        return [self.box[None, :].copy() for _ in range(len(images_rgb))]


def loudness_levels(n: int, seed: int = 0) -> np.ndarray:
    """A loudness per 40 ms slot: random, with no long repeats."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.geomspace(0.02, 1.0, 12), size=n)


def known_offset_clip(path: Path, seconds: float, offset: int, fps: Fraction = Fraction(25),
                      size: tuple[int, int] = (160, 120), sample_rate: int = 48000, seed: int = 0) -> Path:
    """A clip whose picture shows, at 25 fps frame j, the loudness of the sound at frame j - offset.

    Sound: noise whose amplitude is constant over each 40 ms slot [0.04m, 0.04m + 0.04).
    Picture: a source frame at time t shows the level of slot round(t / 0.04) - offset,
    so resampling to 25 fps (nearest frame) lands on exactly that slot.  Per the parity
    README, SyncNet must then report `offset` (the sound of a frame sits `offset`
    frames earlier in the file when positive).
    """
    slots = int(np.ceil(seconds * 25)) + 2
    levels = loudness_levels(slots + abs(offset) + 2, seed)
    rng = np.random.default_rng(seed + 1)
    n_samples = int(seconds * sample_rate)
    slot_of_sample = (np.arange(n_samples) * 25) // sample_rate
    audio = levels[slot_of_sample] * rng.uniform(-1, 1, n_samples) * 20000
    n_frames = int(round(seconds * fps))

    def frames():
        for n in range(n_frames):
            slot = int(round(float(n / fps) / 0.04)) - offset
            level = levels[slot] if 0 <= slot < len(levels) else levels[0]
            # 60..140: brightness steps stay below the shot detector's threshold (mean HSV change 30)
            value = int(60 + 80 * (np.log(level) - np.log(0.02)) / (0 - np.log(0.02)))
            yield np.full((size[1], size[0], 3), value, np.uint8)

    return encode(path, frames(), fps, audio.astype(np.int16), sample_rate, size=size)
