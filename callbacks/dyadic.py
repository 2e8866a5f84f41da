"""DyadGAN-style evaluation of generated shape-parameter sequences: accuracy, smoothness, diversity.

Module interface: ``generate_sequences(batch, num_samples) -> Tensor (B, K, T, P)`` (K =
``num_samples``), compared with ``batch[target_key]`` (B, T, P). Logged at the end of the epoch
(definitions in ``zoo.metrics.dyadic``):

* ``<stage>/MSE``: mean over samples (Interactive-GAN Table 2's measure);
* ``<stage>/minMSE``: best of K;
* ``<stage>/jerk`` and ``<stage>/jerk_real``: mean third-difference norm of generated and
  ground-truth sequences (smoothness; compare the two);
* ``<stage>/diversity``: mean pairwise squared distance among the K samples (if K >= 2).

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.dyadic.DyadicMetricsCallback
          init_args: {num_samples: 5, every_n_epochs: 1, max_batches: 20}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from callbacks.realism import EpochSchedule, Stage, _require_method
from zoo.metrics.dyadic import SampleDiversity, SequenceJerk, SequenceMSE


class DyadicMetricsCallback(pl.Callback):
    """Log MSE / minMSE / jerk / jerk_real / diversity of ``generate_sequences`` outputs.

    Args:
        num_samples: K samples per input (>= 2 for diversity).
        every_n_epochs, max_batches, stage: as in :class:`callbacks.realism.RealismCallback`.
        target_key: batch entry with the ground-truth sequences (B, T, P).
        fps: if given, jerk is reported per second^3 instead of per frame^3.
    """

    def __init__(
        self,
        num_samples: int = 10,
        every_n_epochs: int = 1,
        max_batches: int | None = None,
        stage: Stage = "val",
        target_key: str = "target_shape",
        fps: float | None = None,
    ) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        self.num_samples = num_samples
        self.schedule = EpochSchedule(every_n_epochs, max_batches, stage)
        self.target_key = target_key
        self.fps = fps
        self._metrics: dict[str, Any] = {
            "MSE": SequenceMSE(best_of_k=False),
            "minMSE": SequenceMSE(best_of_k=True),
            "jerk": SequenceJerk(fps=fps),
            "jerk_real": SequenceJerk(fps=fps),
        }
        if num_samples >= 2:
            self._metrics["diversity"] = SampleDiversity()
        self._updated = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        _require_method(pl_module, "generate_sequences", "DyadicMetricsCallback")

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        if not self.schedule.take_batch(trainer):
            return
        if not isinstance(batch, Mapping) or self.target_key not in batch:
            keys = list(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ValueError(f"DyadicMetricsCallback: batch has no {self.target_key!r} entry (got {keys})")
        target: Tensor = batch[self.target_key]
        with torch.no_grad():
            samples = pl_module.generate_sequences(batch, self.num_samples)
        expected = (target.shape[0], self.num_samples, *target.shape[1:]) if isinstance(target, Tensor) else None
        if not isinstance(samples, Tensor) or tuple(samples.shape) != expected:
            got = tuple(samples.shape) if isinstance(samples, Tensor) else type(samples).__name__
            raise ValueError(f"generate_sequences(batch, {self.num_samples}): expected (B, K, T, P) = {expected}, got {got}")
        device = pl_module.device
        for name, metric in self._metrics.items():
            metric.to(device)
            if name in ("MSE", "minMSE"):
                metric.update(samples, target)
            elif name == "jerk":
                metric.update(samples)
            elif name == "jerk_real":
                metric.update(target)
            else:
                metric.update(samples)
        self._updated = True

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.schedule.batches_seen = 0
        if not self._updated:
            return
        self._updated = False
        for name, metric in self._metrics.items():
            value = float(metric.compute())
            metric.reset()
            pl_module.log(f"{self.schedule.stage}/{name}", value, on_step=False, on_epoch=True, sync_dist=False)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.schedule.stage == "val":
            self._update(trainer, pl_module, batch)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.schedule.stage == "val":
            self._finish(trainer, pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.schedule.stage == "test":
            self._update(trainer, pl_module, batch)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        if self.schedule.stage == "test":
            self._finish(trainer, pl_module)
