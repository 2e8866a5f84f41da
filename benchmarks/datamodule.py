"""Throughput of REACTDataModule training crops (clips/s, frames/s) with a cold and a warm cache.

Cold: the first epoch from a fresh cache directory (at most ``--batches`` batches), so every clip is
decoded, resized, resampled and written once. Warm: ``--batches`` batches (cycling epochs) after every
training clip is cached, so reads are memory-mapped npy crops.

    python benchmarks/datamodule.py --root /data/react --image-size 224 --batches 20 --json out.json
    python benchmarks/datamodule.py --sessions 4 --image-size 64 --num-workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

from datamodules.features.io import atomic_path
from datamodules.react import REACTDataModule


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--root", help="a REACT copy (B23 or ReactFace layout)")
    source.add_argument("--sessions", type=int, help="use the embedded world with this many sessions")
    parser.add_argument("--seed", type=int, default=0, help="embedded world seed")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--clip-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--num-neighbours", type=int, default=0)
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--listener-video", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def make_module(args: argparse.Namespace, cache_dir: str) -> REACTDataModule:
    return REACTDataModule(
        root=args.root,
        world=None if args.root else {"sessions": args.sessions, "seed": args.seed},
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        clip_length=args.clip_length,
        eval_clip_length=args.clip_length,  # the val split is only set up, never read here
        image_size=args.image_size,
        load_audio=not args.no_audio,
        load_listener_video=args.listener_video,
        num_neighbours=args.num_neighbours,
        cache_dir=cache_dir,
    )


def time_batches(dm: REACTDataModule, batches: int, cycle: bool) -> dict[str, float]:
    """Time up to ``batches`` training batches, loader start included; ``cycle`` repeats epochs."""
    loader = dm.train_dataloader()
    epochs = itertools.chain.from_iterable(itertools.repeat(loader)) if cycle else iter(loader)
    clips = frames = 0
    begin = time.perf_counter()
    for batch in itertools.islice(epochs, batches):
        clips += batch["speaker_3dmm"].shape[0]
        frames += batch["speaker_3dmm"].shape[0] * batch["speaker_3dmm"].shape[1]
    seconds = time.perf_counter() - begin
    return {"seconds": seconds, "clips": clips, "clips_per_s": clips / seconds, "frames_per_s": frames / seconds}


def cache_bytes(cache_dir: str) -> int:
    return sum(p.stat().st_size for p in Path(cache_dir).rglob("*.npy"))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cache_dir = tempfile.mkdtemp(prefix="facezoo-react-bench-")
    try:
        dm = make_module(args, cache_dir)
        dm.prepare_data()
        begin = time.perf_counter()
        dm.setup("fit")  # includes the training-split mean face
        setup_seconds = time.perf_counter() - begin
        cold = time_batches(dm, args.batches, cycle=False)
        for _ in dm.train_dataloader():  # cache every training clip the cold pass did not reach
            pass
        warm_dm = make_module(args, cache_dir)  # a fresh module, as in a new run reusing the cache
        warm_dm.setup("fit")
        warm = time_batches(warm_dm, args.batches, cycle=True)
        result = {
            "root": str(dm.data_root),
            "train_samples": len(dm.datasets["train"]),
            "image_size": args.image_size,
            "clip_length": args.clip_length,
            "batch_size": args.batch_size,
            "batches": args.batches,
            "num_workers": args.num_workers,
            "load_audio": not args.no_audio,
            "listener_video": args.listener_video,
            "num_neighbours": args.num_neighbours,
            "setup_seconds": setup_seconds,
            "cold": cold,
            "warm": warm,
            "cache_megabytes": cache_bytes(cache_dir) / 2**20,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        }
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    print(f"REACT DataModule throughput: {result['root']} ({result['train_samples']} training samples), "
          f"{args.clip_length} frames at {args.image_size}px, batch {args.batch_size}, {args.num_workers} workers")
    print(f"  setup (file checks + mean face): {setup_seconds:.2f} s")
    for name in ("cold", "warm"):
        r = result[name]
        print(f"  {name} cache: {r['clips_per_s']:8.2f} clips/s  {r['frames_per_s']:9.0f} frames/s  ({r['clips']} clips in {r['seconds']:.2f} s)")
    print(f"  cache size: {result['cache_megabytes']:.1f} MiB")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
