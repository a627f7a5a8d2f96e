"""SyncNet evaluation of one face track: offset, confidence and the distances behind them.

Semantics of the reference (`SyncNetInstance.evaluate`): video window i is frames
i..i+4, audio window i is MFCC columns 4i..4i+19 (0.2 s each); the number of windows
is min(frames, floor(samples / 640)) - 5.  Each video window is compared with the
audio windows shifted by -vshift..+vshift (audio embeddings zero-padded at both
ends); offset = vshift - argmin of the mean distance, confidence = median - min.
So video window i best matches audio window i - offset: a positive offset means the
sound of a frame sits `offset` frames earlier in the file than the frame.

The work is split in two stages so that callers can time or batch them apart:
`embed_windows` (the network) and `sync_from_features` (distances and verdict).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal

from .audio import SAMPLE_RATE, mfcc
from .errors import InputError
from .model import SyncNet

log = logging.getLogger(__name__)

FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
WINDOW = 5  # video frames per window
MFCC_PER_FRAME = 4
MFCC_WINDOW = WINDOW * MFCC_PER_FRAME  # 20 columns
MEDFILT_KERNEL = 9
PDIST_CHUNK = 1024  # windows per distance block: bounds memory at ~chunk * (2*vshift+1) * 1024 floats


@dataclass
class SyncResult:
    """SyncNet's verdict on one track.

    offset: frames; positive = the sound of a frame sits that many frames earlier in the file.
    confidence: median minus minimum of the mean distance over the 2*vshift+1 shifts.
    min_dist, median_dist: that minimum and median.
    dists: float32 (windows, 2*vshift+1), distance of each video window to the audio window
        shifted by -vshift..+vshift (column vshift is no shift).
    framewise_conf: float32 (windows,), median(mean distance) minus each window's distance at
        the best shift, median-filtered with kernel 9 (the reference's `conf` per frame).
    n_frames: frames of the track as given (windows = min(frames, samples // 640) - 5).
    vshift: the largest shift searched, in frames.
    """

    offset: int
    confidence: float
    min_dist: float
    median_dist: float
    dists: np.ndarray
    framewise_conf: np.ndarray
    n_frames: int
    vshift: int = 15

    @property
    def n_windows(self) -> int:
        return int(self.dists.shape[0])


def count_windows(n_frames: int, n_samples: int) -> int:
    """Number of 5-frame windows the reference evaluates (may be < 1 for short input)."""
    return min(n_frames, n_samples // SAMPLES_PER_FRAME) - WINDOW


def _check_inputs(frames_bgr, audio) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate shapes and lengths without touching torch; warn, as the reference does, on a length mismatch."""
    frames = np.asarray(frames_bgr)
    audio = np.asarray(audio)
    n_frames = int(frames.shape[0]) if frames.ndim else 0
    if n_frames and (frames.ndim != 4 or frames.shape[1:] != (224, 224, 3)):
        raise InputError(f"expected face frames of shape (T, 224, 224, 3), got {frames.shape}")
    if audio.ndim != 1:
        raise InputError(f"expected mono audio samples (1-d), got shape {audio.shape}")
    if audio.size == 0:
        raise InputError(f"no audio: the track ({n_frames} frames) has no sound to compare with")
    n_win = count_windows(n_frames, audio.size)
    if n_win < 1:
        raise InputError(
            f"too short: {n_frames} frames and {audio.size / SAMPLE_RATE:.3f} s of audio; SyncNet needs at "
            f"least {WINDOW + 1} frames ({(WINDOW + 1) / FPS:.2f} s) of both")
    if audio.size * FPS != n_frames * SAMPLE_RATE:
        # Less than a frame apart is the norm for AAC sound (its last packet is cut short),
        # and one warning per track would bury a long run's console: a warning from one frame.
        apart = abs(audio.size - n_frames * SAMPLES_PER_FRAME)
        log.log(logging.WARNING if apart >= SAMPLES_PER_FRAME else logging.INFO,
                "audio (%.4fs) and video (%.4fs) lengths differ; using the first %d frames of both",
                audio.size / SAMPLE_RATE, n_frames / FPS, n_win + WINDOW)
    return frames, audio, n_win


def _embed(model: SyncNet, frames: np.ndarray, audio: np.ndarray, n_win: int,
           batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Column 4(n_win-1)+19 ends before sample 640*(n_win+5); MFCC columns are local, so
    # the cut leaves every used column bit-for-bit as on the whole track.
    used = audio[:SAMPLES_PER_FRAME * (n_win + WINDOW)]
    cc = torch.from_numpy(mfcc(used).astype(np.float32))  # (13, n)
    aud_windows = cc.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME).permute(1, 0, 2)[:n_win]  # (n_win, 13, 20) view
    clip = torch.from_numpy(np.ascontiguousarray(frames[:n_win + WINDOW - 1]))  # (T, H, W, 3), no copy
    lip_out, aud_out = [], []
    with torch.inference_mode():
        for start in range(0, n_win, batch_size):
            stop = min(n_win, start + batch_size)
            lip, aud = model.embed(clip[start:stop + WINDOW - 1], aud_windows[start:stop])
            lip_out.append(lip)
            aud_out.append(aud)
    return torch.cat(lip_out), torch.cat(aud_out)


def embed_windows(model: SyncNet | torch.nn.Module, frames_bgr: np.ndarray, audio: np.ndarray,
                  batch_size: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Lip and audio embeddings, each (windows, D) float32 on the CPU, of every 5-frame window.

    frames_bgr: (T, 224, 224, 3) BGR (uint8 or float 0..255); audio: 16 kHz mono samples
    (int16 as the reference reads them).  `model`: see `evaluate_sync`.  Raises InputError
    for unusable input.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    frames, audio, n_win = _check_inputs(frames_bgr, audio)
    return _embed(SyncNet.of(model), frames, audio, n_win, batch_size)


def shift_distances(lip: torch.Tensor, aud: torch.Tensor, vshift: int) -> torch.Tensor:
    """(windows, 2*vshift+1): distance of lip window i to audio window i+k-vshift (zero beyond the ends).

    The reference's `calc_pdist`, vectorised: `F.pairwise_distance` keeps its eps (1e-6).
    """
    width = 2 * vshift + 1
    padded = F.pad(aud, (0, 0, vshift, vshift))
    shifted = padded.unfold(0, width, 1).permute(0, 2, 1)  # (windows, width, D) view
    with torch.inference_mode():
        blocks = [F.pairwise_distance(lip[i:i + PDIST_CHUNK].unsqueeze(1), shifted[i:i + PDIST_CHUNK])
                  for i in range(0, lip.shape[0], PDIST_CHUNK)]
    return torch.cat(blocks)


def sync_from_distances(dists: torch.Tensor, vshift: int, n_frames: int) -> SyncResult:
    """Offset, confidence and framewise confidence from the (windows, 2*vshift+1) distances."""
    with torch.inference_mode():
        # The reference stacks to (shifts, windows) and averages along windows; same layout, same sums.
        mdist = dists.t().contiguous().mean(1)
        minval, minidx = torch.min(mdist, 0)
        median = torch.median(mdist)
        fconf = (median - dists[:, minidx]).numpy()
    # medfilt zero-pads the ends; padding them ourselves gives the same numbers without
    # scipy's warning on tracks shorter than the kernel.
    half = MEDFILT_KERNEL // 2
    framewise = signal.medfilt(np.pad(fconf, half), kernel_size=MEDFILT_KERNEL)[half:-half].astype(np.float32)
    return SyncResult(offset=int(vshift - int(minidx)), confidence=float(median - minval),
                      min_dist=float(minval), median_dist=float(median),
                      dists=dists.numpy().astype(np.float32, copy=False),
                      framewise_conf=framewise, n_frames=n_frames, vshift=vshift)


def sync_from_features(lip: torch.Tensor, aud: torch.Tensor, vshift: int = 15,
                       n_frames: int | None = None) -> SyncResult:
    """The verdict from embeddings as `embed_windows` returns them."""
    if lip.shape != aud.shape or lip.ndim != 2:
        raise InputError(f"lip and audio embeddings must both be (windows, D), got {tuple(lip.shape)} "
                         f"and {tuple(aud.shape)}")
    n_frames = lip.shape[0] + WINDOW if n_frames is None else n_frames
    return sync_from_distances(shift_distances(lip, aud, vshift), vshift, n_frames)


def evaluate_sync(model: SyncNet | torch.nn.Module, frames_bgr: np.ndarray, audio: np.ndarray, vshift: int = 15,
                  batch_size: int = 20) -> SyncResult:
    """Offset and confidence of a (T, 224, 224, 3) BGR face track with its 16 kHz mono sound.

    `model` is a SyncNet (see `load_syncnet`), or a bare network with `forward_lip_clip`
    and `forward_aud` (run in fp32 on the device of its parameters).  Raises InputError when
    there is no sound or fewer than 6 frames of both; warns when the lengths differ
    (the shorter is used).
    """
    if vshift < 0:
        raise InputError(f"vshift must be >= 0, got {vshift}")
    lip, aud = embed_windows(model, frames_bgr, audio, batch_size)
    return sync_from_features(lip, aud, vshift, n_frames=len(frames_bgr))
