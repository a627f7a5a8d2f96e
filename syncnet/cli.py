"""Shared plumbing of the top-level scripts: logging, and errors mapped to exit codes.

Scripts stay thin: they build an argparse parser, then hand a function to `run_main`,
which turns our exceptions into one line on stderr (a traceback only with -v).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from .allocator import keep_freed_memory
from .errors import SyncNetError

log = logging.getLogger("syncnet")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details and show tracebacks on errors")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s" if verbose else "%(message)s",
    )


def run_main(main: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
             prog: str | None = None, keep_memory: bool = True) -> None:
    """Run `main(args)` and exit: 0 ok, 1 failures, 2 bad input, 130 interrupted.

    `keep_memory`: whether freed memory is kept for reuse by default (15-20% less CPU
    for the networks, a higher peak RSS; see syncnet/allocator.py).
    """
    verbose = bool(getattr(args, "verbose", False))
    setup_logging(verbose)
    keep_freed_memory(default=keep_memory)
    prog = prog or os.path.basename(sys.argv[0]) or "syncnet"
    try:
        code = main(args) or 0
    except SyncNetError as exc:
        if verbose:
            log.exception("failed")
        print(f"{prog}: error: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if verbose:
            raise
        print(f"{prog}: unexpected error: {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        code = 1
    sys.exit(code)


def add_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="network arithmetic: fp32 (default, the reference's), bf16 (CPU with AMX/AVX512-BF16 "
                             "or GPU), fp16 (CUDA); faster, and changes results slightly (README, Speed)")


def add_detect_every(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detect_every", type=int, default=1,
                        help="run S3FD on every n-th frame only, holding its boxes in between (default 1: every "
                             "frame; faster, changes results slightly, see README, Speed)")


def load_models(device: str | None, s3fd_path: str | None = None, syncnet_path: str | None = None,
                need_syncnet: bool = True, precision: str = "fp32"):
    """The detector and SyncNet, loaded once per process (weights resolved as documented)."""
    from detectors import S3FD

    from .model import default_device, load_syncnet
    from .weights import S3FD as S3FD_WEIGHTS
    from .weights import SYNCNET, resolve_weights

    device = device or default_device()
    s3fd_file = resolve_weights(S3FD_WEIGHTS, s3fd_path)
    syncnet_file = resolve_weights(SYNCNET, syncnet_path) if need_syncnet else None
    detector = S3FD(weights=s3fd_file, device=device, precision=precision)
    model = load_syncnet(syncnet_file, device=device, precision=precision) if need_syncnet else None
    return detector, model
