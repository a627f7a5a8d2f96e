"""tools/reference_bias.py: the measurement behind docs/parity.md runs, and our side of it is exact."""
from __future__ import annotations

import importlib.util
from fractions import Fraction

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("reference_bias", REPO / "tools" / "reference_bias.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001)])
def test_flash_and_beep_measured_on_both_paths(tool, tmp_path, fps):
    row = tool.measure(fps, tmp_path / "m")
    ours, ref = row["ours"], row["reference"]
    assert ours["flash_frame"] == row["true_frame"] == 50
    # Our sound starts where the source's does: the beep within a millisecond of the flash frame's time.
    assert abs(ours["beep_ms"] - row["flash_time_ms"]) < 1.0
    # The reference's path is measured, not assumed: it found both events.
    assert ref["flash_frame"] is not None and ref["beep_ms"] is not None
    assert "| source fps |" in tool.table([row])
