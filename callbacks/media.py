"""Log generated videos and image grids to every attached logger and to files.

Module interface: ``media_samples(batch) -> dict[str, np.ndarray]``, each value uint8 RGB,
either a video (T, H, W, 3) or an image (H, W, 3) (e.g. a sample grid). On the first
``num_batches`` validation batches of every ``every_n_epochs``-th epoch (rank zero only) each
entry is

* always written to ``<out_dir>/epoch=<e>/<name>.mp4`` or ``.png`` (default ``out_dir``:
  ``<trainer.log_dir>/media``), atomically (temp file, then ``os.replace``);
* logged to a ``WandbLogger`` as ``wandb.Video`` (from the mp4 file) / ``wandb.Image``;
* logged to a ``TensorBoardLogger`` with ``add_video`` ((1, T, C, H, W) uint8; TensorBoard
  encodes a GIF with ``moviepy``; without moviepy the frames are logged as one image strip
  instead) / ``add_image`` (HWC).

Entries are checked before anything is written; a wrong dtype or shape raises ``ValueError``
naming the key.

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.media.SampleMediaCallback
          init_args: {every_n_epochs: 5, num_batches: 1, fps: 25}
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from einops import rearrange
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from callbacks.realism import _require_method
from datamodules.features.io import atomic_path, write_video

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
STRIP_FRAMES = 8  # frames in the TensorBoard fallback strip when moviepy is missing


def check_media(samples: Any) -> dict[str, np.ndarray]:
    """Validate ``media_samples`` output: names usable as file names, uint8 (T, H, W, 3) videos
    or (H, W, 3) images. Returns the dict unchanged."""
    if not isinstance(samples, dict) or not samples:
        raise ValueError(f"media_samples(batch): expected a non-empty dict name -> uint8 array, got {type(samples).__name__}")
    for name, value in samples.items():
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise ValueError(f"media_samples(batch): key {name!r} is not a safe file name (letters, digits, _ . -)")
        if not isinstance(value, np.ndarray):
            raise ValueError(f"media_samples(batch)[{name!r}]: expected a numpy array, got {type(value).__name__}")
        if value.dtype != np.uint8:
            raise ValueError(f"media_samples(batch)[{name!r}]: expected dtype uint8 (0..255), got {value.dtype}")
        if value.ndim not in (3, 4) or value.shape[-1] != 3 or min(value.shape) < 1:
            raise ValueError(
                f"media_samples(batch)[{name!r}]: expected a video (T, H, W, 3) or an image (H, W, 3), got shape {value.shape}"
            )
    return samples


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB uint8 (H, W, 3) image as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
            raise RuntimeError(f"{path}: OpenCV could not write the PNG")
    return path


def frame_strip(video: np.ndarray, max_frames: int = STRIP_FRAMES) -> np.ndarray:
    """Up to ``max_frames`` evenly spaced frames of (T, H, W, 3), side by side: (H, n*W, 3)."""
    idx = np.unique(np.linspace(0, video.shape[0] - 1, num=min(max_frames, video.shape[0])).round().astype(int))
    return rearrange(video[idx], "n h w c -> h (n w) c")


class SampleMediaCallback(pl.Callback):
    """Write and log ``media_samples`` outputs; see the module docstring.

    Args:
        every_n_epochs: run on validation epochs where ``(epoch + 1) % every_n_epochs == 0``.
        num_batches: first validation batches (of dataloader 0) to take samples from; with more
            than one, names get a ``_b<i>`` suffix.
        fps: frame rate of the written mp4 files and TensorBoard videos.
        out_dir: folder for the files; default ``<trainer.log_dir>/media``.
    """

    def __init__(self, every_n_epochs: int = 1, num_batches: int = 1, fps: float = 25.0, out_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs: expected >= 1, got {every_n_epochs}")
        if num_batches < 1:
            raise ValueError(f"num_batches: expected >= 1, got {num_batches}")
        if fps <= 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.every_n_epochs, self.num_batches, self.fps = every_n_epochs, num_batches, fps
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.written: list[Path] = []  # files written in the last logged epoch
        self._warned_moviepy = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _require_method(pl_module, "media_samples", "SampleMediaCallback")

    def media_dir(self, trainer: pl.Trainer) -> Path:
        root = self.out_dir if self.out_dir is not None else Path(trainer.log_dir or trainer.default_root_dir) / "media"
        return root / f"epoch={trainer.current_epoch}"

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.written = [] if self._runs_now(trainer) else self.written

    def _runs_now(self, trainer: pl.Trainer) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if dataloader_idx != 0 or batch_idx >= self.num_batches or not self._runs_now(trainer) or not trainer.is_global_zero:
            return
        with torch.no_grad():
            samples = check_media(pl_module.media_samples(batch))
        suffix = f"_b{batch_idx}" if self.num_batches > 1 else ""
        for name, value in samples.items():
            self.log_sample(trainer, f"{name}{suffix}", value)

    def log_sample(self, trainer: pl.Trainer, name: str, value: np.ndarray) -> Path:
        """Write one checked sample to its file and log it to every attached logger."""
        is_video = value.ndim == 4
        path = self.media_dir(trainer) / f"{name}.{'mp4' if is_video else 'png'}"
        if is_video:
            write_video(path, value, fps=self.fps)
        else:
            write_png(path, value)
        self.written.append(path)
        key, step = f"media/{name}", trainer.global_step
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                if is_video:
                    logger.log_video(key, videos=[str(path)], step=step, caption=[name])
                else:
                    logger.log_image(key, images=[value], step=step, caption=[name])
            elif isinstance(logger, TensorBoardLogger):
                self._log_tensorboard(logger, key, value, step)
        return path

    def _log_tensorboard(self, logger: TensorBoardLogger, key: str, value: np.ndarray, step: int) -> None:
        writer = logger.experiment
        if value.ndim == 3:
            writer.add_image(key, value, global_step=step, dataformats="HWC")
        elif importlib.util.find_spec("moviepy") is not None:
            writer.add_video(key, torch.from_numpy(rearrange(value, "t h w c -> 1 t c h w").copy()), global_step=step, fps=self.fps)
        else:
            if not self._warned_moviepy:
                rank_zero_warn("SampleMediaCallback: TensorBoard videos need `moviepy`; logging frame strips instead.")
                self._warned_moviepy = True
            writer.add_image(f"{key}_frames", frame_strip(value), global_step=step, dataformats="HWC")
