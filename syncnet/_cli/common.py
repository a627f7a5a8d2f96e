"""Shared plumbing of the top-level scripts: logging, and errors mapped to exit codes.

Scripts stay thin: they build an argparse parser, then hand a function to `run_main`,
which turns our exceptions into one line on stderr (a traceback only with -v).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..allocator import in_use, keep_freed_memory, preload_and_reexec
from ..errors import ConflictingOutput, InputError, SyncNetError
from ..layout import Layout, is_plain_name

log = logging.getLogger("syncnet")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other bad input.

    argparse's own error path prints the whole usage first: for process_long_video.py
    that is a dozen lines, and a script calling ours would have to dig the reason out.
    `--help` still shows the usage.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# argparse `type=` functions: a number is checked where it is parsed, so NaN, inf and
# out-of-range values stop before any work (NaN compares false with everything and
# would slip through `<= 0` checks into endless loops).
def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _checked(kind: type, ok: Callable[[float], bool], rule: str, name: str) -> Callable[[str], float | int]:
    """An argparse `type=` that parses a finite `kind` and refuses values for which `ok` is false."""
    def parse(text: str) -> float | int:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return value
    parse.__name__ = name
    return parse


finite_float = _checked(float, lambda v: True, "", "finite_float")
positive_float = _checked(float, lambda v: v > 0, "must be positive", "positive_float")
non_negative_float = _checked(float, lambda v: v >= 0, "must not be negative", "non_negative_float")
positive_int = _checked(int, lambda v: v > 0, "must be a positive integer", "positive_int")
non_negative_int = _checked(int, lambda v: v >= 0, "must not be negative", "non_negative_int")


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An integer in [lo, hi]."""
    return _checked(int, lambda v: lo <= v <= hi, f"must be between {lo} and {hi}", f"integer in [{lo}, {hi}]")


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    """A finite number in [lo, hi]."""
    return _checked(float, lambda v: lo <= v <= hi, f"must be between {lo:g} and {hi:g}",
                    f"number in [{lo:g}, {hi:g}]")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details and show tracebacks on errors")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s" if verbose else "%(message)s",
    )


def layout(data_dir: str, reference: str) -> Layout:
    """The reference layout of --data_dir and --reference (a plain name, said in the flag's words)."""
    if not is_plain_name(reference):
        raise InputError(f"--reference must be a plain name (got {reference!r})")
    return Layout(Path(data_dir), reference)


def error_line(exc: SyncNetError, on_conflict: str | None) -> str:
    """The one stderr line for `exc`: the library's words, plus how to proceed with this tool's flags."""
    if on_conflict and isinstance(exc, ConflictingOutput):
        return f"{exc}; {on_conflict}"
    return str(exc)


def run_main(main: Callable[[argparse.Namespace], int | None], args: argparse.Namespace,
             prog: str | None = None, keep_memory: bool = True, on_conflict: str | None = None,
             preload: bool = False) -> None:
    """Run `main(args)` and exit: 0 ok, 1 failures, 2 bad input, 130 interrupted.

    `preload`: first re-execute the command with jemalloc preloaded where it is installed
    (syncnet/allocator.py); only for the process's own command line (an `entry(argv)`
    called with argv runs inside its caller's process, which must not be replaced).
    `keep_memory`: where glibc's malloc serves, whether freed memory is kept for reuse by
    default (15-20% less CPU for the networks, a higher peak RSS).  `on_conflict`:
    appended to a ConflictingOutput (an output folder holding other results), e.g.
    "rerun with --force to redo them".
    """
    if preload:
        preload_and_reexec()
    verbose = bool(getattr(args, "verbose", False))
    setup_logging(verbose)
    keep_freed_memory(default=keep_memory)
    log.debug("memory allocator: %s", in_use())
    prog = prog or os.path.basename(sys.argv[0]) or "syncnet"
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        # Warnings during a run ("no face tracks found in ...") go through tqdm.write,
        # above the progress bars instead of through them.
        with logging_redirect_tqdm():
            code = main(args) or 0
    except SyncNetError as exc:
        if verbose:
            log.exception("failed")
        print(f"{prog}: error: {error_line(exc, on_conflict)}", file=sys.stderr)
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


def rebuild_report_command(out: str | os.PathLike) -> str:
    return f"python video_utils.py report {out}"


def try_report(make: Callable[[], object], out: str | os.PathLike) -> str | None:
    """Run `make` (write a report); None, or why it could not be written.  A report that
    cannot be written costs a warning saying how to make it later, not the run's results."""
    try:
        make()
    except OSError as exc:
        logging.getLogger("syncnet").warning("report not written: %s; once fixed: %s", exc,
                                             rebuild_report_command(out))
        return str(exc.strerror or exc)
    return None


def quiet_matplotlib(verbose: bool) -> None:
    """matplotlib's font-cache notice and missing-glyph warnings (non-Latin file names in the
    title) are not the run's business: errors only, or warnings with -v (not its debug log)."""
    for name in ("matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose else logging.ERROR)
