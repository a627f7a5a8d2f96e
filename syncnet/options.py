"""The face pipeline's settings: the reference's run_pipeline.py flags, and the speed options."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaceOptions:
    """The reference's run_pipeline.py settings (its flag names and defaults)."""

    facedet_scale: float = 0.25
    crop_scale: float = 0.40
    min_track: int = 100
    frame_rate: int = 25
    num_failed_det: int = 25
    min_face_size: int = 100
    batch_size: int = 16
    conf_th: float = 0.9  # the reference's detection threshold
    detect_every: int = 1  # speed option: S3FD on every n-th frame only (see FrameDetector)
    reference_decode: bool = False  # the reference's own decode path (syncnet.media.reference, docs/parity.md)


def speed_parameters(opts: FaceOptions, precision: str, chunk_preset: str = "veryfast") -> dict:
    """The speed options that change results, and --reference_decode, for a summary's
    `parameters`: only those set away from their defaults, so summaries of default runs
    keep their earlier form (and an earlier summary without one reads as its default)."""
    p: dict = {}
    if chunk_preset != "veryfast":
        p["chunk_preset"] = chunk_preset
    if opts.detect_every != 1:
        p["detect_every"] = opts.detect_every
    if precision != "fp32":
        p["precision"] = precision
    if opts.reference_decode:
        p["reference_decode"] = True
    return p
