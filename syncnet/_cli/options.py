"""The flags several tools share, defined once: face options, models, speed.

Each tool picks the flags it has and its own defaults; the help text of a flag is the
same in every tool.  Flags come in one order everywhere: face options (the reference's
run_pipeline.py order), then models (device, precision, weights), then speed.
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..options import FaceOptions
from .common import float_range, int_range, non_negative_int, positive_int

# flag: (type, help with the default's place)
FACE_FLAGS = {
    "facedet_scale": (float_range(0.01, 4), "scale of the frames for S3FD, 0.01 to 4 (default {:g})"),
    "crop_scale": (float_range(0, 4), "scale of the crop box (default {:.2f})"),
    "min_track": (non_negative_int, "shortest face track in frames (default {})"),
    "frame_rate": (int_range(1, 240), "frame rate of the analysis (default {})"),
    "num_failed_det": (non_negative_int, "missed detections allowed inside a track (default {})"),
    "min_face_size": (non_negative_int, "smallest face in pixels (default {})"),
}
PRECISIONS = ("fp32", "bf16", "fp16")  # syncnet.precision.PRECISIONS, without importing torch for --help
WEIGHTS_HELP = {
    "SyncNet": "SyncNet weights (default: $SYNCNET_MODEL, data/syncnet_v2.model, ~/.cache/syncnet)",
    "S3FD": "S3FD weights (default: $S3FD_MODEL, detectors/s3fd/weights/sfd_face.pth, ~/.cache/syncnet)",
}


def add_face_options(parser: argparse.ArgumentParser, *names: str, **defaults: float) -> None:
    """The face pipeline's flags `names` (all six if none), defaults from FaceOptions unless given.

    The reference's run_pipeline.py defaults are FaceOptions'; the long-video jobs keep
    shorter tracks and smaller faces (min_track=5, min_face_size=10).
    """
    unknown = set(names) - set(FACE_FLAGS) or set(defaults) - set(names or FACE_FLAGS)
    if unknown:
        raise ValueError(f"not face flags of this tool: {sorted(unknown)}")
    base = FaceOptions()
    for name, (kind, text) in FACE_FLAGS.items():
        if names and name not in names:
            continue
        default = defaults.get(name, getattr(base, name))
        parser.add_argument(f"--{name}", type=kind, default=default, help=text.format(default))


def add_model_options(parser: argparse.ArgumentParser, syncnet: str | None = None, s3fd: str | None = None) -> None:
    """--device, --precision and the weights flags, named as the tool names them (None: no such flag)."""
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="network arithmetic: fp32 (default, the reference's), bf16 (CPU with AMX/AVX512-BF16 "
                             "or GPU), fp16 (CUDA); faster, and changes results slightly (README, Speed)")
    for flag, network in ((syncnet, "SyncNet"), (s3fd, "S3FD")):
        if flag:
            parser.add_argument(flag, default=None, help=WEIGHTS_HELP[network])


def add_speed_options(parser: argparse.ArgumentParser) -> None:
    """--detect_every and --batch_size (the detector's)."""
    parser.add_argument("--detect_every", type=positive_int, default=1,
                        help="run S3FD on every n-th frame only, holding its boxes in between (default 1: every "
                             "frame; faster, changes results slightly, see README, Speed)")
    parser.add_argument("--batch_size", type=positive_int, default=16,
                        help="frames per detector forward pass (default 16)")


def face_options(args: argparse.Namespace) -> FaceOptions:
    """FaceOptions from the face and speed flags a tool has (FaceOptions' defaults for the others)."""
    return FaceOptions(**{f.name: getattr(args, f.name) for f in fields(FaceOptions) if hasattr(args, f.name)})


def add_reference_decode_option(parser: argparse.ArgumentParser) -> None:
    """--reference_decode: the reference's own decode path (FaceOptions.reference_decode)."""
    group = parser.add_argument_group("reference decode")
    group.add_argument("--reference_decode", action="store_true",
                       help="decode as the reference does (its -r 25 AVI with MP3 sound, JPEG frames), to match "
                            "numbers it produced; off by default: its picture trails its sound by 17-57 ms "
                            "(docs/parity.md), and it is slower")
