#!/usr/bin/env python3
"""What the optional speed settings buy, and what they change.

  python bench/options.py --seconds 30 --device cpu --out options.json
  python bench/options.py --seconds 2 --known_seconds 4 --variants "detect_every 2"  (a smoke run)

For each variant (default; --detect_every 2 and 5; --precision bf16; bf16 with
--detect_every 2; fp16 too on CUDA) it measures:
- stand-in case: run_pipeline + run_syncnet (in one process, models preloaded) on the
  first SECONDS of the one-speaker workload with stand-in weights (S3FD --face-bias
  1.0): wall seconds, speed-up over the default, and per face track the change of
  offset and confidence against the default run (tracks matched by frame overlap);
- parity case: SyncNet on ../shared/parity/cases/syncnet_eval (the reference's own
  input) at the variant's precision: offset, confidence, largest distance change;
- known-offset case: clips whose picture runs k frames behind the sound
  (k = -5, 0, 7), through the whole pipeline with the test doubles (a fixed-box
  detector, a brightness/loudness SyncNet) and the variant's detect_every: the
  offset found.
Before each variant's timed run its networks run untimed on a batch of random input,
so that no variant (the default, first, is every speed-up's base) pays for kernel
selection and first allocations.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from syncnet.allocator import preload_and_reexec  # noqa: E402

if __name__ == "__main__":  # as the scripts do, before torch is imported: the scenarios run in this process
    preload_and_reexec()

import torch  # noqa: E402
from workload import SHARED, make_weights, make_workload, workdir  # noqa: E402

from syncnet import evaluate_sync, load_syncnet, media  # noqa: E402
from syncnet.allocator import in_use, keep_freed_memory  # noqa: E402
from syncnet.analysis import analyse_video  # noqa: E402
from syncnet.evaluate import embed_windows  # noqa: E402
from syncnet.layout import Layout  # noqa: E402
from syncnet.options import FaceOptions  # noqa: E402


def variants(device: str) -> list[dict]:
    out = [{"name": "default", "detect_every": 1, "precision": "fp32"},
           {"name": "detect_every 2", "detect_every": 2, "precision": "fp32"},
           {"name": "detect_every 5", "detect_every": 5, "precision": "fp32"},
           {"name": "bf16", "detect_every": 1, "precision": "bf16"},
           {"name": "bf16 + detect_every 2", "detect_every": 2, "precision": "bf16"}]
    if device.startswith("cuda"):
        out.append({"name": "fp16", "detect_every": 1, "precision": "fp16"})
    return out


def warm_up(detector, model, chunk: Path, opts: FaceOptions) -> None:
    """One detector batch of the chunk's frame size and one SyncNet batch, random input,
    through the code paths the run takes (same precision, layout, batch shapes)."""
    rng = np.random.default_rng(0)
    width, height = media.probe(chunk).display_size
    detector.detect_batch(rng.integers(0, 256, (opts.batch_size, height, width, 3), np.uint8),
                          conf_th=opts.conf_th, scale=opts.facedet_scale)
    frames = rng.integers(0, 256, (24, 224, 224, 3), np.uint8)
    embed_windows(model, frames, rng.integers(-3000, 3000, 24 * 640).astype(np.int16))


def standin_case(chunk: Path, work: Path, weights, device: str, v: dict, batch: int) -> dict:
    from detectors import S3FD

    detector = S3FD(weights[0], device=device, precision=v["precision"])
    model = load_syncnet(weights[1], device=device, precision=v["precision"])
    opts = FaceOptions(batch_size=batch, detect_every=v["detect_every"])
    t0 = time.perf_counter()
    warm_up(detector, model, chunk, opts)
    warm = time.perf_counter() - t0
    layout = Layout(work / "options_data", v["name"].replace(" ", "_").replace("+", "and"))
    t0 = time.perf_counter()
    result = analyse_video(chunk, layout, opts, detector=detector, model=model)
    wall = time.perf_counter() - t0
    tracks = [{"first": int(t.track["frame"][0]), "last": int(t.track["frame"][-1]),
               "x": float(np.mean(t.x)), "y": float(np.mean(t.y)),
               "offset": int(t.sync.offset), "confidence": float(t.sync.confidence)} for t in result.tracks]
    return {"wall_seconds": round(wall, 2), "warm_up_seconds": round(warm, 2), "tracks": tracks}


def compare(base: list[dict], other: list[dict]) -> dict:
    """Each default track against the variant's track at the same place (box centre within
    20 px) that shares most frames with it."""
    d_off, d_conf, unmatched = [], [], 0
    for t in base:
        best, overlap = None, 0
        for u in other:
            o = min(t["last"], u["last"]) - max(t["first"], u["first"]) + 1
            if o > overlap and abs(u["x"] - t["x"]) < 20 and abs(u["y"] - t["y"]) < 20:
                best, overlap = u, o
        if best is None:
            unmatched += 1
            continue
        d_off.append(abs(best["offset"] - t["offset"]))
        d_conf.append(abs(best["confidence"] - t["confidence"]))
    return {"tracks": len(other), "default_tracks": len(base), "unmatched": unmatched,
            "offsets_changed": int(sum(d > 0 for d in d_off)),
            "max_abs_offset_change": max(d_off, default=None),
            "max_abs_confidence_change": round(max(d_conf), 4) if d_conf else None,
            "mean_abs_confidence_change": round(float(np.mean(d_conf)), 4) if d_conf else None}


def parity_case(weights, device: str, precision: str) -> dict | None:
    from scipy.io import wavfile

    case = SHARED / "parity" / "cases" / "syncnet_eval"
    if not case.is_dir():
        return None
    expected = json.loads((case / "expected.json").read_text())
    frames = np.load(case / "frames.npz")["bgr"]
    _, audio = wavfile.read(case / "audio.wav")
    model = load_syncnet(weights[1], device=device, precision=precision)
    r = evaluate_sync(model, frames, audio, vshift=expected["vshift"], batch_size=expected["batch_size"])
    return {"offset": int(r.offset), "expected_offset": expected["offset"],
            "confidence": round(float(r.confidence), 4), "expected_confidence": round(expected["confidence"], 4),
            "max_abs_dist_change": float(np.abs(r.dists - np.load(case / "dists.npy")).max())}


def known_offset_case(work: Path, detect_every: int, seconds: float = 20.0) -> dict:
    from testkit.doubles import BrightnessLoudnessSyncNet, FixedBoxDetector, known_offset_clip

    found = {}
    for k in (-5, 0, 7):
        clip = work / f"known_{k}_{seconds:g}s.mp4"
        if not clip.exists():
            known_offset_clip(clip, seconds, k, fps=Fraction(25))
        detector = FixedBoxDetector()
        opts = FaceOptions(min_track=5, min_face_size=10, batch_size=16, detect_every=detect_every)
        result = analyse_video(clip, Layout(work / "known_data", f"k{k}_n{detect_every}"), opts,
                               detector=detector, model=BrightnessLoudnessSyncNet())
        found[str(k)] = {"offset": int(result.tracks[0].sync.offset),
                         "confidence": round(float(result.tracks[0].sync.confidence), 3),
                         "detector_frames": detector.frames, "frames": result.n_frames}
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the stand-in case (default 30)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--out", default="options.json")
    ap.add_argument("--workdir", default=None, help="keep the workload here (default: a temporary folder)")
    ap.add_argument("--variants", default=None,
                    help="comma-separated variant names to run (default: all; the default variant always runs, "
                         "first)")
    ap.add_argument("--known_seconds", type=float, default=20.0,
                    help="length of the known-offset clips (default 20)")
    args = ap.parse_args()
    keep_freed_memory()
    with workdir(args.workdir, "syncnet-options-") as work:
        return run(args, work)


def run(args: argparse.Namespace, work: Path) -> int:
    weights = make_weights(work)
    video = make_workload(work, max(args.seconds, 30.0) / 60)
    chunk = work / f"first_{args.seconds:g}s.mp4"
    if not chunk.exists():
        media.cut(video, chunk, 0.0, args.seconds)
    report = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "seconds": args.seconds, "known_seconds": args.known_seconds, "allocator": in_use(), "variants": []}
    wanted = None if args.variants is None else {n.strip() for n in args.variants.split(",")} | {"default"}
    chosen = [v for v in variants(args.device) if wanted is None or v["name"] in wanted]
    if wanted is not None and len(chosen) != len(wanted):
        sys.exit(f"options: unknown variant(s) {sorted(wanted - {v['name'] for v in chosen})}; "
                 f"known: {[v['name'] for v in variants(args.device)]}")
    base = None
    for v in chosen:
        row = dict(v)
        row["standin"] = standin_case(chunk, work, weights, args.device, v, args.batch_size)
        if base is None:
            base = row
        row["speedup"] = round(base["standin"]["wall_seconds"] / row["standin"]["wall_seconds"], 3)
        row["standin_change"] = compare(base["standin"]["tracks"], row["standin"]["tracks"])
        row["parity"] = parity_case(weights, args.device, v["precision"])
        row["known_offset"] = known_offset_case(work, v["detect_every"], args.known_seconds)
        report["variants"].append(row)
        c, p = row["standin_change"], row["parity"] or {}
        print(f"{v['name']:24} wall {row['standin']['wall_seconds']:7.1f} s  x{row['speedup']:<5}  "
              f"tracks {c['tracks']}/{c['default_tracks']}  offsets changed {c['offsets_changed']}  "
              f"max |dconf| {c['max_abs_confidence_change']}  parity offset {p.get('offset')} "
              f"(ref {p.get('expected_offset')}) max |ddist| {p.get('max_abs_dist_change', float('nan')):.2g}  "
              f"known offsets {[row['known_offset'][k]['offset'] for k in ('-5', '0', '7')]}", flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
