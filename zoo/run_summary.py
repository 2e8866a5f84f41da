"""What ``fit`` prints at the end: where the checkpoint, the logs and a rendered sample are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer


def render_validation_sample(model: LightningModule, datamodule: LightningDataModule, out: Path) -> Path | None:
    """Render the first validation sample as an mp4: speaker | real listener | generated listener.

    Needs a REACT-style model (``generate_from_batch``) and data (``face_mean``); returns None
    for other methods, which render their own samples.
    """
    from zoo.render import render_sketch_video, save_video, tile_videos

    if not hasattr(model, "generate_from_batch") or not hasattr(datamodule, "face_mean"):
        return None
    batch = next(iter(datamodule.val_dataloader()))
    batch = {k: v[:1].to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}
    model.eval()
    with torch.no_grad():
        generated = model.generate_from_batch(batch, num_samples=1)[0, 0].float().cpu().numpy()
    mean = np.asarray(datamodule.face_mean, dtype=np.float32)
    speaker = batch["speaker_3dmm"][0].float().cpu().numpy() + mean
    listener = batch["listener_3dmm"][0].float().cpu().numpy() + mean
    videos = [render_sketch_video(x, image_size=192) for x in (speaker, listener, generated + mean)]
    frames = tile_videos(videos, labels=["speaker", "real listener", f"{type(model).__name__}"])
    return save_video(out, frames, fps=25)


def print_run_summary(trainer: Trainer, model: LightningModule, datamodule: LightningDataModule | None,
                      log_dir: str | None) -> None:
    """Print the summary (rank zero only; ``log_dir`` is ``trainer.log_dir``, read on every rank)."""
    log_dir = Path(log_dir) if log_dir else None
    callback = trainer.checkpoint_callback
    checkpoint = None
    if callback is not None:
        checkpoint = getattr(callback, "best_model_path", "") or getattr(callback, "last_model_path", "")
    sample = None
    if datamodule is not None and log_dir is not None:
        sample = render_validation_sample(model, datamodule, log_dir / "samples" / "validation_sample.mp4")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/loss"))}
    print("\n" + "=" * 72)
    print(f"facezoo: finished fitting {type(model).__name__}")
    if metrics:
        print("  metrics:    " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    print(f"  checkpoint: {checkpoint or '(none saved)'}")
    print(f"  logs:       {log_dir or '(no logger)'}")
    if sample is not None:
        print(f"  sample:     {sample}")
    print("=" * 72)
