"""What both jobs share about an earlier run in the same output folder: the parameters
its results depend on, and whether its summary is reused, redone or refused."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import ConflictingOutput
from ..options import FaceOptions

log = logging.getLogger(__name__)


def face_parameters(opts: FaceOptions) -> dict:
    """The face pipeline's settings in a summary's `parameters` (the reference's flags)."""
    return {"facedet_scale": opts.facedet_scale, "crop_scale": opts.crop_scale, "min_track": opts.min_track,
            "frame_rate": opts.frame_rate, "num_failed_det": opts.num_failed_det,
            "min_face_size": opts.min_face_size, "conf_th": opts.conf_th}


def previous_summary(path: Path, parameters: dict, schema_version: int, force: bool, what: str,
                     same_input: Callable[[dict], bool] = lambda old: True,
                     upgrades: Mapping[int, Callable[[dict], dict]] | None = None) -> dict | None:
    """The summary at `path` when its finished records can be reused, else None.

    Same parameters and input, same schema: reused.  An older schema that `upgrades` holds
    (its version -> a function returning the summary in this schema): upgraded, reused.
    Another schema: a warning, redone.  Other parameters or input: ConflictingOutput, or
    with `force` a warning and redone.  `what`: what is redone, for the warnings ("chunk", "file").
    """
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s is unreadable; starting over", path)
        return None
    if not isinstance(old, dict):
        log.warning("%s is unreadable; starting over", path)
        return None
    old_params = old.get("parameters") or {}
    same_in, same_params = same_input(old), old_params == parameters
    if same_in and same_params and not force:
        version = old.get("schema_version")
        upgrade = (upgrades or {}).get(version) if isinstance(version, int) else None
        if version != schema_version and upgrade is not None:
            try:
                return upgrade(old)
            except (KeyError, TypeError, ValueError, AttributeError):
                log.warning("%s (schema %s) could not be read as schema %s; redoing every %s", path, version,
                            schema_version, what)
                return None
        if version != schema_version:
            log.warning("%s was written by another version of this program (schema %s, now %s); "
                        "redoing every %s", path, old.get("schema_version"), schema_version, what)
            return None
        return old
    if not force:
        if not same_in:
            raise ConflictingOutput(f"{path.parent} holds results made with another input")
        # Both sides' keys: a parameter recorded only away from its default (detect_every,
        # reference_decode, ...) is missing on one side when it is turned off.
        changed = ", ".join(f"{k}: {old_params.get(k, 'default')} -> {parameters.get(k, 'default')}"
                            for k in dict.fromkeys([*parameters, *old_params])
                            if old_params.get(k) != parameters.get(k))
        raise ConflictingOutput(f"{path.parent} holds results made with other parameters ({changed})")
    log.warning("forced: redoing every %s in %s", what, path.parent)
    return None
