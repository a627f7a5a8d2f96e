"""SyncNet audio-visual synchronisation for long videos.

The public API (see README.md, "Library API").  Names that need torch are loaded on
first use, so the media tools start without importing it.
"""
from __future__ import annotations

import importlib

from .errors import InputError, MediaError, SyncNetError, WeightsError

__version__ = "0.1.0"

_LAZY = {
    "load_syncnet": "model", "SyncNet": "model", "SyncNetModel": "model", "default_device": "device",
    "evaluate_sync": "evaluate", "SyncResult": "evaluate",
    "track_shot": "tracking",
    "crop_track": "cropping", "CropResult": "cropping", "TrackCropper": "cropping",
    "SceneDetector": "scenes", "detect_scenes": "scenes",
    "FaceOptions": "options", "analyse_video": "analysis",
    "LongVideoOptions": "jobs.longvideo", "process_long_video": "jobs.longvideo",
    "resolve_weights": "weights",
    "keep_freed_memory": "allocator",
}

__all__ = ["InputError", "MediaError", "SyncNetError", "WeightsError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'syncnet' has no attribute {name!r}")
