"""The exceptions the scripts turn into one line on stderr and an exit code."""
from __future__ import annotations


class SyncNetError(Exception):
    """A failure the user should read about in one line (exit code 1)."""

    exit_code = 1


class InputError(SyncNetError):
    """Bad input or arguments: missing file, no video stream, bad durations (exit code 2)."""

    exit_code = 2


class MediaError(SyncNetError):
    """FFmpeg or ffprobe failed; carries the last lines of its stderr."""

    def __init__(self, message: str, stderr_tail: str = ""):
        self.stderr_tail = stderr_tail.strip()
        full = message if not self.stderr_tail else f"{message}: {self.stderr_tail}"
        super().__init__(full)


class WeightsError(SyncNetError):
    """Model weights missing, unreadable or of the wrong kind (exit code 2)."""

    exit_code = 2


class ConflictingOutput(InputError):
    """An output folder holds results made from another input or with other settings.

    Said in the library's terms; the command line adds how to proceed (its flags).
    """
