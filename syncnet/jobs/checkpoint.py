"""The long job's checkpoint: detection state (faces still needed, shot cuts, how far it
got) and the detections of failed chunks, written beside the summary so that a rerun
need not detect again."""
from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np

from ..detection import Detections
from ..files import write_bytes_atomic

# Failed chunks whose detections are kept for their retry (a 30 s chunk's are ~100 KB):
# a run where every chunk fails keeps memory and checkpoint bounded; beyond it a retry detects.
MAX_KEPT_WINDOWS = 64


def held_boxes(det: Detections, resume_at: int, every: int) -> np.ndarray | None:
    """With detect_every > 1, the boxes a resumed run holds until its next detected frame."""
    last = resume_at - 1 - (resume_at - 1) % every if resume_at else -1
    if every <= 1 or resume_at % every == 0 or last < det.first_frame or last >= det.n_frames:
        return None
    return np.array([[*f["bbox"], f["conf"]] for f in det.faces_of(last)], np.float64).reshape(-1, 5)


def _window_state(window: Detections) -> dict:
    return {"faces": window.faces, "scenes": list(window.scenes), "width": window.width, "height": window.height}


def _window_from_state(state: dict) -> Detections:
    return Detections(faces=state["faces"], scenes=[tuple(s) for s in state["scenes"]], width=state["width"],
                      height=state["height"])


class Checkpoint:
    """Detection state and failed chunks' windows in one pickle, valid for one `key`
    (source, duration, parameters).  Thread-safe: chunk workers record their windows."""

    def __init__(self, path: Path, key: dict):
        self.path, self.key = path, key
        self._lock = threading.Lock()
        # Detections of chunks that failed (window state by chunk index), kept until they
        # succeed: a retry of a failed chunk needs no detection.  Only failed chunks'.
        self._windows: dict[int, dict] = {}

    def load(self) -> dict | None:
        """The saved state when it is this run's (same key); its windows are taken over."""
        try:
            with open(self.path, "rb") as fh:
                state = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            return None
        return state if state.get("key") == self.key else None

    def keep_windows(self, saved: dict[int, dict], indices) -> None:
        """Take over the saved windows of the chunks `indices` (the ones to do)."""
        with self._lock:
            self._windows = {i: saved[i] for i in indices if i in saved}

    def has_window(self, index: int) -> bool:
        with self._lock:
            return index in self._windows

    def window(self, index: int) -> Detections:
        with self._lock:
            return _window_from_state(self._windows[index])

    @property
    def any_windows(self) -> bool:
        with self._lock:
            return bool(self._windows)

    def chunk_done(self, index: int, failed: bool, window: Detections) -> None:
        """A failed chunk keeps its detections (within MAX_KEPT_WINDOWS); a finished one drops them."""
        with self._lock:
            if failed and (index in self._windows or len(self._windows) < MAX_KEPT_WINDOWS):
                self._windows[index] = _window_state(window)  # a retry needs no detection
            else:
                self._windows.pop(index, None)

    def save(self, det: Detections, cuts: list[int], keep_from: int) -> None:
        """Forget detections before `keep_from` (no chunk to do needs them) and write the state."""
        det.forget_before(keep_from)
        with self._lock:
            windows = dict(self._windows)
        faces = det.faces[max(0, keep_from - det.first_frame):]
        state = {"key": self.key, "first_frame": det.n_frames - len(faces), "faces": faces,
                 "n_frames": det.n_frames, "cuts": list(cuts), "width": det.width, "height": det.height,
                 "windows": windows}
        write_bytes_atomic(self.path, pickle.dumps(state))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class SpanState:
    """A span's stand-in for `Checkpoint` (syncnet.cluster): nothing on disk, no failed windows
    kept; detection starts at `start` with nothing found before it, exactly as a resumed run
    continues (the shot detector sees frame start - 1 first).  Shot cuts before `start` are
    unknown to it, so a cut the one-pass run drops (fewer than MIN_SCENE_LEN frames after a
    cut before `start`) is kept here: README, "On a cluster"."""

    any_windows = False

    def __init__(self, start: int):
        self.start = start

    def load(self) -> dict:
        return {"first_frame": self.start, "faces": [], "n_frames": self.start, "cuts": [], "width": 0,
                "height": 0, "windows": {}, "span": True}

    def keep_windows(self, saved: dict, indices) -> None:
        pass

    def has_window(self, index: int) -> bool:
        return False

    def chunk_done(self, index: int, failed: bool, window: Detections) -> None:
        pass

    def save(self, det: Detections, cuts: list[int], keep_from: int) -> None:
        det.forget_before(keep_from)  # memory stays flat over a long span

    def remove(self) -> None:
        pass
