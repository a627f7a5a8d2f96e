"""syncnet.files: the one temporary-name-then-rename writer every output goes through."""
from __future__ import annotations

import pytest

from syncnet.files import atomic_output, part_path, write_bytes_atomic


def _left(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_output_renames_when_the_block_succeeds(tmp_path):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"old")
    with atomic_output(dst) as tmp:
        assert tmp.parent == dst.parent and tmp.name.startswith(".out.") and tmp.name.endswith(".part.mp4")
        assert not tmp.exists()
        tmp.write_bytes(b"new")
        assert dst.read_bytes() == b"old"  # nothing is replaced before the block ends
    assert dst.read_bytes() == b"new" and _left(tmp_path) == ["out.mp4"]


def test_a_failed_block_leaves_no_temporary_and_the_old_file_intact(tmp_path):
    dst = tmp_path / "out.wav"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="encoder died"), atomic_output(dst) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert dst.read_bytes() == b"old" and _left(tmp_path) == ["out.wav"]


def test_a_failed_rename_leaves_no_temporary(tmp_path):
    dst = tmp_path / "taken"
    (dst / "inside").mkdir(parents=True)  # a non-empty folder: the rename onto it fails
    with pytest.raises(OSError), atomic_output(dst) as tmp:
        tmp.write_bytes(b"data")
    assert _left(tmp_path) == ["taken"] and _left(dst) == ["inside"]


def test_suffix_and_a_temporary_named_beforehand(tmp_path):
    with atomic_output(tmp_path / "audio", suffix=".wav") as tmp:
        assert tmp.name.startswith(".audio.") and tmp.name.endswith(".part.wav")
        tmp.write_bytes(b"x")
    named = part_path(tmp_path / "v.avi")
    with atomic_output(tmp_path / "v.avi", tmp=named) as tmp:
        assert tmp == named
        tmp.write_bytes(b"y")
    assert _left(tmp_path) == ["audio", "v.avi"]


def test_write_bytes_atomic_keeps_the_old_file_when_writing_fails(tmp_path):
    dst = tmp_path / "summary.json"
    write_bytes_atomic(dst, b"{}")
    with pytest.raises(TypeError):
        write_bytes_atomic(dst, "not bytes")  # type: ignore[arg-type]
    assert dst.read_bytes() == b"{}" and _left(tmp_path) == ["summary.json"]
