"""SyncNet audio-visual synchronisation for long videos.

The public API is re-exported here; see README.md ("Library API").
"""
from .errors import InputError, MediaError, SyncNetError, WeightsError

__version__ = "0.1.0"

__all__ = ["InputError", "MediaError", "SyncNetError", "WeightsError", "__version__"]

# The model-side API is imported on first use, so that `import syncnet` stays free of
# torch and `python -m syncnet.weights` runs its module only once.
_LAZY = {"load_syncnet": "model", "evaluate_sync": "evaluate", "SyncResult": "evaluate",
         "resolve_weights": "weights"}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
