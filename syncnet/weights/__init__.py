"""Where the published weights live, and loading them strictly.

The published files are plain state dicts (`syncnet_v2.model`, `sfd_face.pth`).
Loading checks every key and shape so that a wrong file gets one clear line,
never a stack trace from deep inside torch, and never a half-loaded model.

This module sits below the networks (syncnet.model, detectors): they load their files
through it, so it never imports them; `download` checks a file against the empty
network its caller passes.  The `download|ensure|where` command is syncnet._cli.weights
(`python -m syncnet.weights` runs it through __main__.py).
"""
from __future__ import annotations

import http.client
import os
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..errors import WeightsError
from ..files import part_path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True)
class WeightSpec:
    """One published weights file: its name, where the reference keeps it, where it comes from."""

    name: str
    filename: str
    env: str
    reference_path: str  # relative to the repository (and to the working directory)
    url: str
    kind: str = "weights"  # what the file is, in messages

    @property
    def title(self) -> str:
        return f"{self.name} {self.kind}".strip()

    def fetch_hint(self) -> str:
        return (f"get {self.filename} with 'bash download_model.sh' (or from {self.url}) "
                f"and put it at {self.reference_path}, or set {self.env}=PATH")


SYNCNET = WeightSpec(
    name="SyncNet", filename="syncnet_v2.model", env="SYNCNET_MODEL",
    reference_path="data/syncnet_v2.model",
    url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
)
S3FD = WeightSpec(
    name="S3FD", filename="sfd_face.pth", env="S3FD_MODEL",
    reference_path="detectors/s3fd/weights/sfd_face.pth",
    url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
)
# Not weights, but fetched beside them by the reference's download script: the video its
# README's demo result was measured on (`python -m syncnet.weights demo`, syncnet.demo).
EXAMPLE = WeightSpec(
    name="example video", filename="example.avi", env="SYNCNET_EXAMPLE",
    reference_path="data/example.avi",
    url="http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/example.avi", kind="",
)


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def read_state_dict(path: str | Path, spec: WeightSpec) -> dict[str, torch.Tensor]:
    """Read a plain state dict safely (weights_only), or raise WeightsError naming the file."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"{spec.name} weights not found at {path}: {spec.fetch_hint()}")
    if not path.is_file():
        raise WeightsError(f"{spec.name} weights path {path} is not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for bad files
        raise WeightsError(f"{path} is not a readable {spec.name} weights file: {_what_is_wrong(path)}; "
                           f"{spec.fetch_hint()}") from exc
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} is not a {spec.name} weights file (expected a plain state dict of tensors)")
    return dict(obj)


def _what_is_wrong(path: Path) -> str:
    """Why torch could not read `path`, in words, from how the file starts.

    torch's own messages are paragraphs (or a bare number read by its legacy
    unpickler); a user needs to know whether to fetch the file again or fix a path.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    size = path.stat().st_size
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return f"it starts like a torch file but is incomplete or damaged ({size} bytes; truncated download?)"
    text = head.decode("utf-8", "replace")
    if all(c.isprintable() or c.isspace() for c in text):
        return f"it is a text file, not torch weights (it starts {text.strip()[:30]!r})"
    return "it is not a torch file (its first bytes are those of another format or random data)"


def resolve_all(wanted: list[tuple[WeightSpec, str | Path | None]]) -> list[Path]:
    """`resolve_weights` for several files, naming every missing one in one error.

    A script needing both networks should not make the user fix one file, rerun, and
    only then learn about the other.
    """
    found: list[Path] = []
    problems: list[WeightsError] = []
    for spec, explicit in wanted:
        try:
            found.append(resolve_weights(spec, explicit))
        except WeightsError as exc:
            problems.append(exc)
    if len(problems) == 1 or any(not hasattr(p, "short") for p in problems):
        raise problems[0]
    if problems:
        raise WeightsError("weights not found: " + " and ".join(p.short for p in problems) + ": get them with "
                           "'bash download_model.sh' or 'python -m syncnet.weights ensure' (README, Weights)")
    return found


def load_weights_into(module: torch.nn.Module, path: str | Path, spec: WeightSpec) -> torch.nn.Module:
    """Load a published state dict into `module`, accepting files with or without
    batch-norm `num_batches_tracked` counters, and naming every mismatch."""
    state = {k: v for k, v in read_state_dict(path, spec).items() if not _is_counter(k)}
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items() if not _is_counter(k)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"{path} does not hold {spec.name} weights: {'; '.join(parts)}")
    bad = [f"{k} {tuple(state[k].shape)} != {expected[k]}" for k in expected
           if tuple(state[k].shape) != expected[k]]
    if bad:
        raise WeightsError(f"{path} does not hold {spec.name} weights: shape mismatch "
                           f"for {len(bad)} tensors (e.g. {bad[0]})")
    module.load_state_dict(state, strict=False)
    return module


def cache_dir() -> Path:
    """The per-user place for downloaded weights: $XDG_CACHE_HOME/syncnet or ~/.cache/syncnet."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syncnet"


def default_place(spec: WeightSpec) -> Path:
    """Where a download goes unless told: the reference's place in a checkout of the repository,
    the user cache in an installed copy (never into site-packages)."""
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / spec.reference_path
    return cache_dir() / spec.filename


def search_paths(spec: WeightSpec) -> list[Path]:
    """Where `resolve_weights` looks after an explicit path and the environment variable, in order."""
    return [Path.cwd() / spec.reference_path, REPO_ROOT / spec.reference_path, cache_dir() / spec.filename]


def resolve_weights(spec: WeightSpec, explicit: str | Path | None = None) -> Path:
    """The weights file to use: an explicit path, else $ENV, else the reference's place
    (relative to the working directory, then to the repository), else the user cache.

    An explicit path or a set environment variable must name an existing file: a typo
    there is an error, not a silent fall-back to another file.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise _not_found(spec, f"at {path} (given explicitly)")
        return path
    env = os.environ.get(spec.env)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise _not_found(spec, f"at {path} (from {spec.env})")
        return path
    for path in search_paths(spec):
        if path.is_file():
            return path
    raise _not_found(spec, f"in {spec.reference_path} or {cache_dir()}", f" ({spec.filename})")


def _not_found(spec: WeightSpec, where: str, what: str = "") -> WeightsError:
    exc = WeightsError(f"{spec.title}{what} not found {where}: {spec.fetch_hint()}")
    exc.short = f"{spec.name} ({spec.filename}) {where}"
    return exc


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip().splitlines()
    return text[0][:160] if text else type(exc).__name__


def download(spec: WeightSpec, dest: str | Path | None = None, *,
             network: Callable[[], torch.nn.Module] | None = None, check: Callable[[Path], None] | None = None,
             timeout: float = 60.0, progress: bool = True) -> Path:
    """Fetch `spec.url` to `dest` (default: `default_place(spec)`).

    Bytes go to a hidden `.part` file beside `dest`, which becomes `dest` only once complete and verified
    to load into `network()` (an empty network of `spec`'s kind: every key and shape), or, for a file
    that is not weights (the example video), to pass `check(path)`, which raises WeightsError; on any
    failure it is removed and WeightsError says what to fetch by hand and where to put it.
    The caller names the network because this module sits below the networks' modules.
    """
    if network is None and check is None:
        raise ValueError("download needs a network or a check to verify the file against")
    dest = Path(dest).expanduser().absolute() if dest is not None else default_place(spec)
    part = part_path(dest)  # unique to this process: two downloads never write one file
    by_hand = f"download {spec.url} yourself and put it at {dest} (or set {spec.env}=PATH)"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(spec.url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length") if resp.headers is not None else None
            total = int(length) if length and length.isdigit() else None
            got = 0
            with open(part, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                              desc=spec.filename, disable=not progress, leave=False) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        if total is not None and got != total:
            raise WeightsError(f"download of {spec.title} from {spec.url} stopped after {got} of "
                               f"{total} bytes: {by_hand}")
        try:
            if network is not None:
                load_weights_into(network(), part, spec)
            if check is not None:
                check(part)
        except WeightsError as exc:
            raise WeightsError(f"downloaded file from {spec.url} is not usable ({exc}): {by_hand}") from exc
        os.replace(part, dest)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, (OSError, ValueError, http.client.HTTPException)):  # URLError, timeouts: OSError
            raise WeightsError(f"could not download {spec.title} from {spec.url} ({_reason(exc)}): "
                               f"{by_hand}") from exc
        raise
    return dest
