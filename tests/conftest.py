"""Shared fixtures: the parity cases and real clips in ../shared, stand-in weights."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
PARITY = SHARED / "parity"
MEDIA = SHARED / "media"

sys.path.insert(0, str(REPO))


def pytest_sessionstart(session) -> None:
    """Under CI a missing ../shared must fail the run: every parity test would skip, and pass."""
    if os.environ.get("CI") == "true" and not (PARITY.is_dir() and MEDIA.is_dir()):
        pytest.exit(f"CI: {SHARED} (parity cases and media) is missing; the parity tests cannot run without it",
                    returncode=3)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One count of skipped tests, by reason, so a run that skips quietly is seen; and how many
    summaries the session-end schema check found."""
    counts = config.stash.get(_VALIDATED, None)
    if counts is not None:
        terminalreporter.write_line("summary schemas: checked " + ", ".join(
            f"{n} {name}" for name, n in counts.items()) + " written by this session's tests")
    reasons: Counter[str] = Counter()
    for rep in terminalreporter.stats.get("skipped", []):
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        reasons[reason.removeprefix("Skipped: ")] += 1
    total = sum(reasons.values())
    terminalreporter.write_line(f"skipped tests: {total}")
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"  {n} x {reason}")


def hold(gate: Path, at: str, after: int | None = None) -> dict[str, str]:
    """The environment that makes a run of tests/doubled.py hold at `at` (`record`, `saved`
    or `detect`; `after` chunks recorded, for the first two) while `gate` exists: creates
    `gate` and returns the variables.  The run creates `held(gate)` once it holds."""
    gate.touch()
    env = {"SYNCNET_TEST_HOLD": str(gate), "SYNCNET_TEST_HOLD_AT": at}
    if after is not None:
        env["SYNCNET_TEST_HOLD_AFTER"] = str(after)
    return env


def held(gate: Path) -> Path:
    """The file a run made to `hold` at `gate` creates when it holds."""
    return Path(f"{gate}.held")


def _make_weights(kind: str, out: Path, seed: int = 0, face_bias: float = 0.0) -> Path:
    if not (PARITY / "make_weights.py").exists():
        pytest.skip("../shared/parity is not present")
    cmd = [sys.executable, str(PARITY / "make_weights.py"), kind, str(out), "--seed", str(seed)]
    if face_bias:
        cmd += ["--face-bias", str(face_bias)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def syncnet_weights(tmp_path_factory) -> Path:
    """Stand-in SyncNet weights, seed 0 (the parity case's)."""
    return _make_weights("syncnet", tmp_path_factory.mktemp("w") / "syncnet_seed0.model")


@pytest.fixture(scope="session")
def s3fd_weights(tmp_path_factory) -> Path:
    """Stand-in S3FD weights, seed 0, no face bias (the parity case's)."""
    return _make_weights("s3fd", tmp_path_factory.mktemp("w") / "s3fd_seed0.pth")


@pytest.fixture(scope="session")
def s3fd_face_weights(tmp_path_factory) -> Path:
    """Stand-in S3FD weights with face bias 1.0: fires on ~2 boxes a frame on clip a."""
    return _make_weights("s3fd", tmp_path_factory.mktemp("w") / "s3fd_bias1.pth", face_bias=1.0)


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY.exists():
        pytest.skip("../shared/parity is not present")
    return PARITY / "cases"


@pytest.fixture(scope="session")
def media_dir() -> Path:
    if not MEDIA.exists():
        pytest.skip("../shared/media is not present")
    return MEDIA


_VALIDATED = pytest.StashKey[dict]()


@pytest.fixture(scope="session", autouse=True)
def _every_summary_matches_its_schema(tmp_path_factory, request):
    """At the end of the session, every processing_summary.json, batch_processing_summary.json and
    dataset_summary.json that any test left under pytest's temporary folder must match its schema (schemas/).

    A failure is an error at the teardown of the session's last test, naming each file and
    what is wrong in it.  Summaries are found only while their folders exist, i.e. under
    pytest's default tmp_path retention (all).
    """
    yield
    from tests.schemas import check_tree

    counts, problems = check_tree(tmp_path_factory.getbasetemp())
    request.config.stash[_VALIDATED] = counts
    if problems:
        pytest.fail(f"{len(problems)} summaries written by the tests do not match their schema:\n"
                    + "\n".join(problems), pytrace=False)
