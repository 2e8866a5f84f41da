"""Speed of the realism metrics' parts: Inception feature extraction (FID pool3 / IS logits),
I3D feature extraction (FVD), the 2048-d Fréchet distance (scipy sqrtm), SSIM, and the memory
of the float64 FID states.

Networks have random weights (the published files are not needed for timing); the numbers are
those of the real architectures at their real input sizes (299 and 224, after resizing).

    python benchmarks/realism_speed.py --images 16 --videos 1 --frames 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from datamodules.features.io import atomic_path
from zoo.metrics.i3d import InceptionI3d
from zoo.metrics.inception import InceptionV3
from zoo.metrics.realism import FrechetInceptionDistance, frechet_distance, structural_similarity


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16, help="images per Inception / SSIM timing")
    parser.add_argument("--image-size", type=int, default=128, help="input images (resized to 299 inside)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--videos", type=int, default=1, help="clips per I3D timing (0 to skip)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def timed(fn, repeats: int = 2) -> float:
    """Best of ``repeats`` wall-clock seconds after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, args.image_size, args.image_size), dtype=torch.uint8, generator=g).to(device)
    results: dict = {
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "images": args.images, "image_size": args.image_size, "batch_size": args.batch_size,
    }

    for output, prep in (("pool3", "pytorch-fid"), ("logits_unbiased", "torch-fidelity")):
        net = InceptionV3(output=output, preprocessing=prep).eval().to(device)

        def run(net=net):
            with torch.no_grad():
                for chunk in images.split(args.batch_size):
                    net(chunk)

        seconds = timed(run)
        results[f"inception_{output}_images_per_s"] = args.images / seconds
        print(f"InceptionV3 {output:15s} ({prep}): {args.images / seconds:8.2f} images/s")

    fid = FrechetInceptionDistance(num_features=2048)
    state_bytes = sum(t.numel() * t.element_size() for t in (fid.real_sum, fid.real_outer, fid.fake_sum, fid.fake_outer))
    results["fid_state_mib"] = state_bytes / 2**20
    print(f"FID metric states (float64, 2 x (2048 + 2048^2)): {state_bytes / 2**20:.1f} MiB")

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4096, 2048)), rng.normal(size=(4096, 2048)) * 1.1
    mu1, s1, mu2, s2 = a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    seconds = timed(lambda: frechet_distance(mu1, s1, mu2, s2), repeats=1)
    results["frechet_distance_2048_s"] = seconds
    print(f"Fréchet distance, D = 2048 (scipy sqrtm): {seconds:.2f} s")

    target = images.flip(-1)
    seconds = timed(lambda: structural_similarity(images, target))
    results["ssim_images_per_s"] = args.images / seconds
    print(f"SSIM (11x11 Gaussian, {args.image_size}px): {args.images / seconds:8.1f} images/s")

    if args.videos > 0:
        videos = torch.randint(0, 256, (args.videos, args.frames, 3, 112, 112), dtype=torch.uint8, generator=g).to(device)
        i3d = InceptionI3d(400).eval().to(device)

        def run_i3d():
            with torch.no_grad():
                for clip in videos.split(1):
                    i3d(clip)

        seconds = timed(run_i3d, repeats=1)
        results["i3d_frames_per_s"] = args.videos * args.frames / seconds
        results["frames"] = args.frames
        print(f"I3D ({args.frames}-frame clips, 224px): {args.videos * args.frames / seconds:8.2f} frames/s")

    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
