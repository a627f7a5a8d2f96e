"""The offset's sign and size on clips whose right answer is known by construction.

A test double replaces only the learned embeddings; windows, MFCC, distances, the
shift search and the offset arithmetic are the real ones.

The clip: 16 kHz noise whose loudness is constant over each 40 ms slot (one video
frame at 25 fps), at a random level per slot.  Frame j is painted with the loudness
of slot j - k, so the picture runs k frames behind its sound: what is heard in slot
m is seen in frame m + k.  The sound of frame j therefore sits k frames *earlier*
in the file (k > 0), and by the convention of the parity README ("video window i
best matches audio window i - offset") evaluate_sync must report offset == +k.
A flipped sign gives -k, so the cases k = -8 and k = 6 fail on either mistake.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from syncnet import evaluate_sync

FPS, RATE = 25, 16000
SLOT = RATE // FPS  # 640 samples per video frame
LEVELS = np.geomspace(0.02, 1.0, 12)
MARGIN = 20  # extra slots either side, so shifted frames always have a level


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Centred, unit-length rows: only the pattern across the 5 frames counts, not its scale."""
    x = x - x.mean(dim=1, keepdim=True)
    return x / (x.norm(dim=1, keepdim=True) + 1e-6)


class LoudnessBrightnessNet(torch.nn.Module):
    """lip: each frame's mean brightness; audio: each frame's mean log energy (MFCC c0).

    Only the first two MFCC columns of each frame are used: their 25 ms spans lie inside
    that frame's 40 ms slot, so each value hears one slot only.
    """

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # (N, 3, 5, H, W)
        return _unit(x.mean(dim=(1, 3, 4)))

    def forward_lip_clip(self, clip: torch.Tensor) -> torch.Tensor:  # (1, 3, T, H, W) -> (T - 4, 5)
        return _unit(clip.mean(dim=(1, 3, 4))[0].unfold(0, 5, 1).contiguous())

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # (N, 1, 13, 20)
        energy = x[:, 0, 0, :].reshape(len(x), 5, 4)[:, :, :2].mean(dim=2)
        return _unit(energy)


def delayed_picture_clip(k: int, n_frames: int = 75, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frames BGR uint8 (T, 224, 224, 3), audio int16): frame j shows the loudness of slot j - k."""
    rng = np.random.default_rng(seed)
    levels = rng.choice(LEVELS, size=n_frames + 2 * MARGIN)  # slot m has levels[m + MARGIN]
    slot_of_sample = np.arange(n_frames * SLOT) // SLOT
    audio = (levels[slot_of_sample + MARGIN] * rng.uniform(-1, 1, slot_of_sample.size) * 20000).astype(np.int16)
    shown = levels[np.arange(n_frames) - k + MARGIN]
    brightness = 30 + 200 * np.log(shown / LEVELS[0]) / np.log(LEVELS[-1] / LEVELS[0])
    frames = np.broadcast_to(brightness.round().astype(np.uint8)[:, None, None, None], (n_frames, 224, 224, 3))
    return np.ascontiguousarray(frames), audio


@pytest.mark.parametrize("k", [-8, 0, 6])
def test_known_offset(k):
    frames, audio = delayed_picture_clip(k)
    res = evaluate_sync(LoudnessBrightnessNet(), frames, audio, vshift=15, batch_size=20)
    assert res.offset == k
    assert res.confidence > 0.5  # a clear minimum, not a coin toss between shifts
    best = res.dists.mean(axis=0).argmin()
    assert best == 15 - k  # column vshift - offset holds the smallest mean distance


def test_a_track_in_sync_but_cut_late_keeps_its_offset():
    """Dropping the first frames of picture and sound together changes nothing."""
    frames, audio = delayed_picture_clip(6, n_frames=90, seed=4)
    res = evaluate_sync(LoudnessBrightnessNet(), frames[10:], audio[10 * SLOT:], vshift=15)
    assert res.offset == 6
