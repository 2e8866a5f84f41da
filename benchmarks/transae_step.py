"""Trans-AE training-step time and peak memory, at CPU-demo and paper sizes.

    python benchmarks/transae_step.py --size demo --json out/transae_demo.json
    python benchmarks/transae_step.py --size paper --steps 2 --warmup 1 --json out/transae_paper.json

A step = forward + loss + backward + AdamW step on one fixed random batch (the module's own
``training_step``). Paper size: 224x224 video, feature_dim 128, the wav2vec2-base
architecture with random weights (no download), T = 256 frames (RF crops), batch 1 by default.
Memory: peak RSS of the process (``resource.getrusage``; includes Python, torch and the model),
plus the RSS just before the timed steps, and CUDA peak allocated memory when run on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time

import torch

from zoo.transae import TransAE

DEMO_WAV2VEC2 = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
    "conv_dim": [32] * 7, "num_conv_pos_embeddings": 32, "num_conv_pos_embedding_groups": 4,
}
# Wav2Vec2Config() defaults are the wav2vec2-base architecture (768-d, 12 layers, 512-ch CNN)
PAPER_WAV2VEC2: dict = {}

PRESETS = {
    "demo": {"image_size": 64, "feature_dim": 64, "frames": 128, "batch": 4, "audio_config": DEMO_WAV2VEC2},
    "paper": {"image_size": 224, "feature_dim": 128, "frames": 256, "batch": 1, "audio_config": PAPER_WAV2VEC2},
}


def rss_mib() -> float:
    """Current resident set size (Linux /proc), MiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def make_batch(batch: int, frames: int, size: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    out = {
        "speaker_video": torch.rand(batch, frames, 3, size, size, generator=g) * 2 - 1,
        "speaker_audio": torch.randn(batch, frames * 640, generator=g),
        "speaker_3dmm": torch.randn(batch, frames, 58, generator=g) * 0.1,
        "listener_3dmm": torch.randn(batch, frames, 58, generator=g) * 0.1,
        "index": torch.arange(batch),
    }
    return {k: v.to(device) for k, v in out.items()}


def run(size: str, *, frames: int | None, batch: int | None, image_size: int | None, steps: int,
        warmup: int, precision: str, device: str) -> dict:
    preset = dict(PRESETS[size])
    frames = frames or preset["frames"]
    batch = batch or preset["batch"]
    image_size = image_size or preset["image_size"]
    dev = torch.device(device)
    torch.manual_seed(0)
    model = TransAE(
        feature_dim=preset["feature_dim"], audio_pretrained=None, audio_config=preset["audio_config"],
    ).to(dev)
    model.log = lambda *a, **k: None  # no Trainer: logging is not part of the step cost
    model.log_dict = lambda *a, **k: None
    optimizer = model.configure_optimizers()
    data = make_batch(batch, frames, image_size, dev)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = model.training_step(data, 0)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    model.train()
    rss_before = rss_mib()
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    for _ in range(steps):
        start = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - start)
    result = {
        "size": size, "device": str(dev), "precision": precision, "threads": torch.get_num_threads(),
        "batch": batch, "frames": frames, "image_size": image_size,
        "feature_dim": preset["feature_dim"],
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "steps": steps, "warmup": warmup,
        "step_s_mean": statistics.fmean(times), "step_s_median": statistics.median(times),
        "step_s_min": min(times), "frames_per_s": batch * frames / statistics.median(times),
        "rss_before_steps_mib": rss_before, "peak_rss_mib": peak_rss_mib(),
        "loss_first": losses[0], "loss_last": losses[-1],
    }
    if dev.type == "cuda":
        result["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--frames", type=int, help="T (default: preset)")
    parser.add_argument("--batch", type=int, help="batch size (default: preset)")
    parser.add_argument("--image-size", type=int, help="frame size (default: preset)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precision", choices=("32", "bf16-mixed"), default="32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.size, frames=args.frames, batch=args.batch, image_size=args.image_size,
                 steps=args.steps, warmup=args.warmup, precision=args.precision, device=args.device)
    result.update(torch=torch.__version__, python=platform.python_version(),
                  cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count())
    for key, value in result.items():
        print(f"{key:>24}: {value:.4g}" if isinstance(value, float) else f"{key:>24}: {value}")
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
            json.dump(result, f, indent=2)
        os.replace(f.name, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
