"""Where the long job writes: OUTPUT_DIR's folders and each chunk's files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..chunking import Chunk
from ..layout import Layout

SUMMARY = "processing_summary.json"


@dataclass
class Paths:
    out: Path

    @property
    def chunks(self) -> Path:
        return self.out / "chunks"

    @property
    def audio(self) -> Path:
        return self.out / "audio"

    @property
    def data(self) -> Path:
        return self.out / "syncnet_data"

    @property
    def summary(self) -> Path:
        return self.out / SUMMARY

    @property
    def checkpoint(self) -> Path:
        return self.data / ".detection_state.pckl"

    @property
    def filtered_chunks(self) -> Path:
        return self.out / "filtered_chunks"

    @property
    def filtered_audio(self) -> Path:
        return self.out / "filtered_audio"

    def chunk_file(self, c: Chunk) -> Path:
        return self.chunks / f"{c.name}.mp4"

    def chunk_wav(self, c: Chunk) -> Path:
        return self.audio / f"{c.name}.wav"

    def layout(self, c: Chunk) -> Layout:
        return Layout(self.data, c.name)

    def chunk_files(self, c: Chunk, visualise: bool) -> dict:
        """A chunk record's `files`."""
        lay = self.layout(c)
        return {"chunk": str(self.chunk_file(c)), "audio": str(self.chunk_wav(c)), "pyavi": str(lay.avi_dir),
                "pycrop": str(lay.crop_dir), "pywork": str(lay.work_dir), "offsets": str(lay.work("offsets.txt")),
                "video_out": str(lay.video_out) if visualise else None}


def frame_range(chunk: Chunk, frame_rate: int) -> tuple[int, int]:
    """The chunk's frames on the source's 25 fps grid: [a, b)."""
    return int(round(chunk.start * frame_rate)), int(round(chunk.end * frame_rate))
