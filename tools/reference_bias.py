#!/usr/bin/env python3
"""How far the reference's own conversion moves picture and sound apart, on this FFmpeg.

  python tools/reference_bias.py [--fps 25 30000/1001 30] [--json out.json]

For each frame rate it makes a flash-and-beep clip (H.264 + AAC in MP4, a white
frame and a 1 kHz beep starting at the same instant, near 2 s), then:
- runs the reference's first steps exactly (`ffmpeg -i IN -qscale:v 2 -async 1 -r 25
  video.avi`, its JPEG dump of that AVI, and its 16 kHz sound taken from that AVI) and
  finds the flash frame among the JPEGs (what its S3FD sees), in video.avi as OpenCV
  reads it (what its shot detection sees) and the beep in that sound;
- decodes the same clip the way this project does (`syncnet.media`: frames on the
  25 fps grid from t=0, sound from t=0 of the file) and finds them again.
It prints a table of flash frames, beep onsets and the picture's lag behind the sound
for both paths.  The numbers depend on the FFmpeg build (its AVI muxer, MP3 encoder
delay and frame-rate conversion), which is why this is a script to rerun, not a
constant in the code: see docs/parity.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from syncnet import media  # noqa: E402
from syncnet.media import reference  # noqa: E402
from syncnet.wav import read_wav  # noqa: E402

FLASH_AT = 2.0  # seconds: the flash is the source frame nearest this instant
SECONDS = 4.0
GRID = 25  # the analysis frame rate (the reference's -r 25)
RATE = 16000  # the analysis sample rate


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   stdin=subprocess.DEVNULL)


def make_clip(path: Path, fps: Fraction) -> float:
    """A grey clip with one white frame and a 100 ms beep starting at that frame's time.

    Returns the flash instant (the time of the white source frame)."""
    k = round(FLASH_AT * fps)
    t = float(k / fps)
    video = (f"color=c=0x282828:s=160x120:r={fps}:d={SECONDS},"
             f"drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='eq(n\\,{k})'")
    # aevalsrc is exact to the sample (a volume filter's `enable` acts on whole audio frames).
    audio = f"aevalsrc='0.5*sin(2*PI*1000*(t-{t:.6f}))*gte(t\\,{t:.6f})*lt(t\\,{t + 0.1:.6f})':s=48000:d={SECONDS}"
    ffmpeg("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-c:v", "libx264", "-preset", "ultrafast",
           "-crf", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-shortest", str(path))
    return t


def flash_index(frames) -> int | None:
    """Index of the first frame whose picture is (nearly) white."""
    for i, f in enumerate(frames):
        if f.mean() > 200:
            return i
    return None


def beep_onset_ms(audio: np.ndarray, rate: int) -> float | None:
    loud = np.flatnonzero(np.abs(audio.astype(np.float64)) > 0.1 * 32767)
    return 1000.0 * loud[0] / rate if len(loud) else None


def reference_path(src: Path, work: Path) -> tuple[int | None, float | None, int | None]:
    """The reference's run_pipeline.py conversion, command for command (syncnet.media.reference):
    the flash among its JPEG frames (what S3FD sees), the beep in its sound, and the flash in
    video.avi as OpenCV reads it (what its shot detection sees)."""
    avi = reference.convert_like_reference(src, work / "video.avi")
    frames = np.concatenate(list(reference.iter_jpeg_frames(avi, work, qscale=reference.PIPELINE_JPEG_QSCALE)))
    wav = reference.extract_sound_like_reference(avi, work / "audio.wav", async_=False)
    _, sound = read_wav(wav)
    scene_frames = np.concatenate(list(reference.iter_capture_frames(avi)))
    return flash_index(frames), beep_onset_ms(sound, RATE), flash_index(scene_frames)


def our_path(src: Path) -> tuple[int | None, float | None]:
    frames = media.read_frames(src, fps=GRID)
    return flash_index(frames), beep_onset_ms(media.read_audio(src, RATE), RATE)


def measure(fps: Fraction, work: Path) -> dict:
    work.mkdir(parents=True)
    src = work / "source.mp4"
    t = make_clip(src, fps)
    ref_frame, ref_beep, ref_scene_frame = reference_path(src, work)
    our_frame, our_beep = our_path(src)

    def lag(frame, beep):  # picture behind sound, ms (positive: the picture is late)
        return None if frame is None or beep is None else round(1000.0 * frame / GRID - beep, 1)

    return {"fps": str(fps), "flash_time_ms": round(1000 * t, 1), "true_frame": round(t * GRID),
            "reference": {"flash_frame": ref_frame, "beep_ms": ref_beep, "picture_lag_ms": lag(ref_frame, ref_beep),
                          "shot_detection_flash_frame": ref_scene_frame},
            "ours": {"flash_frame": our_frame, "beep_ms": our_beep, "picture_lag_ms": lag(our_frame, our_beep)}}


def ffmpeg_version() -> str:
    out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0]


def table(rows: list[dict]) -> str:
    head = ("| source fps | true frame | flash frame, reference | flash frame, ours | beep, reference | "
            "beep, ours | picture behind sound, reference | picture behind sound, ours | "
            "flash frame, reference's shot detection |")
    lines = [head, "|" + " --- |" * 9]
    for r in rows:
        ref, ours = r["reference"], r["ours"]
        lines.append(f"| {r['fps']} | {r['true_frame']} | {ref['flash_frame']} | {ours['flash_frame']} | "
                     f"{ref['beep_ms']:.1f} ms | {ours['beep_ms']:.1f} ms | {ref['picture_lag_ms']:+.1f} ms | "
                     f"{ours['picture_lag_ms']:+.1f} ms | {ref['shot_detection_flash_frame']} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fps", nargs="+", default=["25", "30000/1001", "30"], help="source frame rates")
    p.add_argument("--json", default=None, help="also write the measurements here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="refbias-") as tmp:
        rows = [measure(Fraction(f), Path(tmp) / f"fps{i}") for i, f in enumerate(args.fps)]
    version = ffmpeg_version()
    print(version)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"ffmpeg": version, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
