"""DyadGAN training-step time and peak memory (demo and paper sizes), and the affect-shape
dictionary sampler's frames per second (paper Table 1: "real time").

    python benchmarks/dyadgan_step.py --size demo --json out/dyadgan_demo.json
    python benchmarks/dyadgan_step.py --size paper --steps 2 --warmup 1 --json out/dyadgan_paper.json

A step = the module's own ``training_step`` on one fixed random batch: both C-LSTMs (MSE), then
per GAN one discriminator and two generator updates (stage 1 and stage 2, or the one-stage
baseline with ``--architecture one_stage``), run through a Lightning Trainer (manual optimisation
needs one). Sizes follow ``zoo/demo/dyadgan.yaml`` and ``zoo/dyadgan.yaml``. Memory: peak RSS of the
process, and CUDA peak allocated memory on a GPU. Sampler: dictionary fitted on random shape
vectors (8 affects x ~9 sub-clusters), then ``--sampler-frames`` frames x ``--sampler-samples``.
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

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from zoo.dyadgan import AffectShapeDictionary, DyadGAN

PRESETS = {
    "demo": dict(shape_dim=16, image_size=64, condition_dim=32, ngf=16, ndf=16, unet_ngf=16, patch_ndf=16,
                 lstm_hidden=64, lstm_layers=1, batch=16),
    "paper": dict(shape_dim=38, image_size=256, condition_dim=128, ngf=64, ndf=64, unet_ngf=64, patch_ndf=64,
                  lstm_hidden=256, lstm_layers=2, batch=32),
}


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class _FixedBatch(Dataset):
    def __init__(self, batch: dict, length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.batch


class _Timer(L.Callback):
    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self._start)


def make_batch(batch: int, history: int, horizon: int, shape_dim: int, size: int) -> dict:
    g = torch.Generator().manual_seed(0)
    frames = history + horizon
    return {"affect": torch.rand(batch, frames, 8, generator=g).softmax(-1),
            "shape": torch.randn(batch, frames, shape_dim, generator=g),
            "sketch": (torch.rand(batch, 1, size, size, generator=g) > 0.95).float() * 2 - 1,
            "face": torch.rand(batch, 3, size, size, generator=g) * 2 - 1}


def time_steps(args: argparse.Namespace) -> dict:
    preset = dict(PRESETS[args.size])
    batch_size = args.batch or preset.pop("batch")
    preset.pop("batch", None)
    model = DyadGAN(history=100, horizon=100, architecture=args.architecture, **preset)
    batch = make_batch(batch_size, 100, 100, preset["shape_dim"], preset["image_size"])
    # one item per step: the DataLoader's batch_size=None passes the fixed batch through unchanged
    loader = DataLoader(_FixedBatch(batch, args.warmup + args.steps), batch_size=None)
    timer = _Timer()
    with tempfile.TemporaryDirectory() as tmp:
        # max_epochs, not max_steps: under manual optimisation every optimizer.step() counts as a step
        trainer = L.Trainer(max_epochs=1, accelerator=args.accelerator, devices=1, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[timer], default_root_dir=tmp, precision=args.precision)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer.fit(model, loader)
    timed = timer.times[args.warmup:]
    return {
        "size": args.size, "architecture": args.architecture, "batch": batch_size, "image_size": preset["image_size"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_seconds_median": statistics.median(timed), "step_seconds_all": timed,
        "peak_rss_mib": peak_rss_mib(),
        "cuda_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
    }


def time_sampler(frames: int, samples: int, shape_dim: int) -> dict:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (72, shape_dim))
    shapes = np.concatenate([c + rng.normal(0, 0.3, (150, shape_dim)) for c in centres])
    affect = np.eye(8)[np.repeat(np.arange(72) % 8, 150)]
    dictionary = AffectShapeDictionary(shape_dim, min_cluster_size=100).fit(shapes, affect, np.full(shape_dim, 0.2))
    stream = torch.eye(8)[torch.from_numpy(rng.integers(0, 8, frames // 50 + 1)).repeat_interleave(50)[:frames]]
    dictionary.sample(stream[:10], samples)  # warm-up
    start = time.perf_counter()
    dictionary.sample(stream, samples)
    seconds = time.perf_counter() - start
    return {"sampler_frames": frames, "sampler_samples": samples, "sampler_seconds": seconds,
            "sampler_frames_per_second": frames * samples / seconds,
            "subclusters_per_affect": dictionary.subclusters_per_affect()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=tuple(PRESETS), default="demo")
    parser.add_argument("--architecture", choices=("two_stage", "one_stage"), default="two_stage")
    parser.add_argument("--batch", type=int, default=None, help="override the preset batch size")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--sampler-frames", type=int, default=400, help="paper test clips: 400 frames")
    parser.add_argument("--sampler-samples", type=int, default=10)
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), **time_steps(args),
              **time_sampler(args.sampler_frames, args.sampler_samples, PRESETS[args.size]["shape_dim"])}
    print(f"dyadgan {args.size} {args.architecture}: batch {result['batch']} at {result['image_size']} px, "
          f"{result['parameters'] / 1e6:.2f} M parameters, step {result['step_seconds_median']:.3f} s (median of "
          f"{args.steps}), peak RSS {result['peak_rss_mib']:.0f} MiB"
          + (f", CUDA peak {result['cuda_peak_mib']:.0f} MiB" if result["cuda_peak_mib"] is not None else ""))
    print(f"dictionary sampler: {result['sampler_frames_per_second']:.0f} frames/s "
          f"({args.sampler_samples} x {args.sampler_frames} frames), sub-clusters per affect {result['subclusters_per_affect']}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
