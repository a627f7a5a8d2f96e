"""SyncNet audio-visual synchronisation for long videos.

The public API is re-exported here; see README.md ("Library API").
"""
from .errors import InputError, MediaError, SyncNetError, WeightsError

__version__ = "0.1.0"

__all__ = ["InputError", "MediaError", "SyncNetError", "WeightsError", "__version__"]
