"""CMM-Net training-step time and peak memory per phase, at demo and paper sizes.

    python benchmarks/cmmnet_step.py --size demo --json out/cmmnet_demo.json
    python benchmarks/cmmnet_step.py --size paper --device cuda --json out/cmmnet_paper.json

A step = the module's own ``training_step`` (manual optimisation: forward, losses, backward and
optimiser step(s)) on one fixed random batch of T = 32 64x64 frames, for each phase of the
schedule (vae, clstm, multimode, translation). Paper size: the widths of zoo/cmmnet.yaml
(64-channel VAE / U-Net / PatchGAN, LSTM 256, batch 16, all T frames in translation); demo
size: zoo/demo/cmmnet.yaml (quarter widths, LSTM 128, batch 8, 4 frames per translation step).
``--recurrent-loss latent`` times the clstm / multimode steps of ``recurrent_loss: latent`` (the
demo's since session 8: the LSTMs regress the frozen encoder's embeddings, no decoding; with
best-of-K on, as in the demo); ``pixels`` (default) the paper's Eq. 1. ``--decoder-neutral-landmarks``
times the landmark decoder that also reads the neutral landmark image (the demo's since session 12),
``--translator-label`` the translator that also reads the smile class (the demo's since session 14).
Memory: peak RSS of the process (``resource.getrusage``) and, on CUDA, peak allocated memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch

from zoo.cmmnet import CMMNet

PRESETS = {
    "demo": {"model": dict(base_channels=16, translator_channels=16, discriminator_channels=16, lstm_hidden=128,
                           label_dim=8, translation_frames=4), "batch": 8},
    "paper": {"model": dict(base_channels=64, translator_channels=64, discriminator_channels=64, lstm_hidden=256,
                            label_dim=16, translation_frames=None), "batch": 16},
}
PHASES = ("vae", "clstm", "multimode", "translation")
FRAMES = 32


def _batch(size: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    video = torch.rand(size, FRAMES, 3, 64, 64, generator=g) * 2 - 1
    marks = (torch.rand(size, FRAMES, 1, 64, 64, generator=g) > 0.93).float()
    batch = {"video": video, "neutral": video[:, 0].clone(), "landmark_images": marks,
             "label": torch.arange(size) % 2}
    return {k: v.to(device) for k, v in batch.items()}


def measure(size: str, phase: str, steps: int, warmup: int, device: torch.device, batch_size: int | None,
            recurrent_loss: str = "pixels", decoder_neutral_landmarks: bool = False,
            translator_label: bool = False) -> dict:
    preset = PRESETS[size]
    latent = dict(recurrent_loss="latent", vae_weight=0.0, best_of_k_weight=1.0) if recurrent_loss == "latent" else {}
    model = CMMNet(phases=[phase], phase_epochs=[1], **preset["model"], **latent,
                   decoder_neutral_landmarks=decoder_neutral_landmarks, translator_label=translator_label).to(device)
    batch = _batch(batch_size or preset["batch"], device)
    trainer = L.Trainer(accelerator="cuda" if device.type == "cuda" else "cpu", devices=1, logger=False,
                               enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                               max_steps=(warmup + steps) * (2 if phase == "translation" else 1),
                          limit_val_batches=0)  # max_steps counts optimiser steps: G and D per translation batch
    times: list[float] = []

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    trainer.callbacks.append(Timer())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    loader = torch.utils.data.DataLoader([batch] * (warmup + steps), batch_size=None)
    trainer.fit(model, loader)
    timed = times[warmup:]
    return {
        "size": size, "phase": phase, "recurrent_loss": recurrent_loss,
        "decoder_neutral_landmarks": decoder_neutral_landmarks, "translator_label": translator_label, "batch": int(batch["video"].shape[0]), "frames": FRAMES,
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_s_median": statistics.median(timed), "step_s_min": min(timed), "steps": len(timed),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(PRESETS), default="demo")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--batch", type=int, default=None, help="override the preset batch size")
    parser.add_argument("--recurrent-loss", choices=("pixels", "latent"), default="pixels",
                        help="the clstm / multimode steps' loss (module option recurrent_loss; default pixels)")
    parser.add_argument("--decoder-neutral-landmarks", action="store_true",
                        help="the landmark decoder also reads the neutral landmark image (module option)")
    parser.add_argument("--translator-label", action="store_true",
                        help="the translator also reads the smile class (module option)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machines)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.steps < 1 or args.warmup < 0:
        raise SystemExit("--steps must be >= 1 and --warmup >= 0")
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = [measure(args.size, phase, args.steps, args.warmup, device, args.batch, args.recurrent_loss,
                    args.decoder_neutral_landmarks, args.translator_label)
            for phase in args.phases]
    for row in rows:
        loss = f" ({row['recurrent_loss']})" if row["phase"] in ("clstm", "multimode") else ""
        if row["decoder_neutral_landmarks"] and row["phase"] != "translation":
            loss += " +neutral"
        if row["translator_label"] and row["phase"] == "translation":
            loss += " +label"
        print(f"{row['size']:>5} {row['phase'] + loss:<20} batch {row['batch']:>2} x T {row['frames']}: "
              f"{row['step_s_median'] * 1000:8.1f} ms/step (min {row['step_s_min'] * 1000:.1f}), "
              f"peak RSS {row['peak_rss_mb']:.0f} MB"
              + (f", CUDA peak {row['cuda_peak_mb']:.0f} MB" if row["cuda_peak_mb"] is not None else ""))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {"benchmark": "cmmnet_step", "torch": torch.__version__, "python": sys.version.split()[0],
                  "machine": platform.machine(), "threads": torch.get_num_threads(), "device": str(device),
                  "rows": rows}
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
