"""Log the REACT metrics (FRC, FRD, S-MSE, FRVar, FRDvs, TLCC) of generated reactions.

Module interface: ``generate_from_batch(batch, num_samples=K) -> Tensor (B, K, T, 58)``, in the
normalised space of ``batch["listener_3dmm"]``. Batches carry ``listener_3dmm``,
``speaker_3dmm`` (B, T, 58) and ``index`` (B,) long, the sample's position in the split's mirrored
list. The split's neighbour matrix comes from ``trainer.datamodule.neighbour_matrix(split)`` and is
cut down to the samples seen. Per batch only generation runs; scoring happens once at epoch end
on global rank zero (after ``pl_module.all_gather``), and the values are broadcast so every rank
logs the same ``<stage>/FRC`` etc. (``ModelCheckpoint`` may monitor them).

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.react_metrics.REACTMetricsCallback
          init_args: {num_samples: 10, every_n_epochs: 5, max_batches: 20, protocol: facezoo}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from zoo.metrics.react import PROTOCOLS, _metric_list
from zoo.metrics.react_torchmetrics import score_samples

__all__ = ["REACTMetricsCallback"]

_SPLIT = {"val": "val", "test": "test"}


def generate_samples(model, batch: Mapping[str, Any], num_samples: int, who: str) -> dict[str, Tensor]:
    """``model.generate_from_batch(batch, num_samples)`` checked, with the batch's ground truth:
    predictions (B, K, T, 58), listeners and speakers (B, T, 58) in float32 and indices (B,), on the
    CPU. ``who`` names the caller in errors (the callback, the benchmark)."""
    if not hasattr(model, "generate_from_batch"):
        raise ValueError(f"{type(model).__name__} has no generate_from_batch(batch, num_samples); {who} needs it")
    for key in ("listener_3dmm", "speaker_3dmm", "index"):
        if key not in batch:
            raise ValueError(f"batch: {who} needs batch[{key!r}] (REACTDataModule provides it)")
    preds = model.generate_from_batch(batch, num_samples=num_samples)
    listeners = batch["listener_3dmm"]
    b, t, d = listeners.shape
    if tuple(preds.shape) != (b, num_samples, t, d):
        raise ValueError(f"{type(model).__name__}.generate_from_batch: expected shape {(b, num_samples, t, d)}, "
                         f"got {tuple(preds.shape)}")
    return {"predictions": preds.detach().float().cpu(), "listeners": listeners.detach().float().cpu(),
            "speakers": batch["speaker_3dmm"].detach().float().cpu(),
            "indices": batch["index"].detach().reshape(-1).long().cpu()}


class REACTMetricsCallback(pl.Callback):
    """Generate ``num_samples`` reactions per validation (or test) sample and log REACT metrics.

    Args:
        num_samples: K reactions per speaker (the challenge uses 10).
        every_n_epochs: score every n-th epoch (validation only; test always scores).
        max_batches: score at most this many batches per epoch (None = all), bounding memory:
            predictions are kept on CPU as (N, K, T, D) float32.
        protocol: ``"facezoo"`` or ``"react2023"`` (``docs/metrics.md``).
        metrics: subset of the REACT metric names; default the six.
        stage: ``"val"``, ``"test"`` or ``"both"``; logged as ``val/FRC`` or ``test/FRC``.
        score_kwargs: forwarded to :func:`zoo.metrics.react.score` (``feature_space``, ``backend``...).
    """

    def __init__(self, num_samples: int = 10, every_n_epochs: int = 1, max_batches: int | None = None,
                 protocol: str = "facezoo", metrics: Sequence[str] | None = None, stage: str = "val",
                 score_kwargs: dict | None = None) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs: expected >= 1, got {every_n_epochs}")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches: expected None or >= 1, got {max_batches}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, got {protocol!r}")
        if stage not in ("val", "test", "both"):
            raise ValueError(f"stage: expected 'val', 'test' or 'both', got {stage!r}")
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.max_batches = max_batches
        self.protocol = protocol
        self.metrics = _metric_list(metrics)
        self.stage = stage
        self.score_kwargs = dict(score_kwargs or {})
        self.score_kwargs.setdefault("progress", False)
        self._buffers: dict[str, list[Tensor]] = {}
        self._active = False

    # ------------------------------------------------------------------ schedule
    def _wants(self, stage: str, trainer: pl.Trainer) -> bool:
        if self.stage not in (stage, "both") or trainer.sanity_checking:
            return False
        return stage == "test" or (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _start(self, stage: str, trainer: pl.Trainer) -> None:
        self._active = self._wants(stage, trainer)
        self._buffers = {k: [] for k in ("predictions", "listeners", "speakers", "indices")}

    @torch.no_grad()
    def _collect(self, pl_module: pl.LightningModule, batch: Mapping[str, Any], batch_idx: int,
                 dataloader_idx: int) -> None:
        if not self._active or dataloader_idx != 0:
            return
        if self.max_batches is not None and batch_idx >= self.max_batches:
            return
        for key, value in generate_samples(pl_module, batch, self.num_samples, "REACTMetricsCallback").items():
            self._buffers[key].append(value)

    # ------------------------------------------------------------------ gather + score
    def _gather(self, pl_module: pl.LightningModule, local: Tensor) -> Tensor:
        """All ranks' rows of ``local`` (rows may differ per rank): pad to the longest, gather, trim."""
        if pl_module.trainer.world_size == 1:
            return local
        device = pl_module.device
        count = torch.tensor([local.shape[0]], device=device)
        counts = pl_module.all_gather(count).reshape(-1).tolist()
        longest = max(counts)
        padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
        padded[: local.shape[0]] = local.to(device)
        gathered = pl_module.all_gather(padded)  # (world, longest, ...)
        return torch.cat([gathered[r, :c] for r, c in enumerate(counts)]).cpu()

    def _finish(self, stage: str, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._active:
            return
        self._active = False
        buffers, self._buffers = self._buffers, {}
        if not buffers.get("indices"):
            return
        data = {k: self._gather(pl_module, torch.cat(v)) for k, v in buffers.items()}
        values = torch.full((len(self.metrics),), math.nan, dtype=torch.float64)
        if trainer.is_global_zero:
            neighbours = None
            if any(m in self.metrics for m in ("FRC", "FRD")):
                datamodule = trainer.datamodule
                if datamodule is None or not hasattr(datamodule, "neighbour_matrix"):
                    raise ValueError("REACTMetricsCallback: FRC/FRD need trainer.datamodule.neighbour_matrix(split)")
                neighbours = datamodule.neighbour_matrix(_SPLIT[stage])
            scores = score_samples(data["predictions"], data["listeners"], data["speakers"], data["indices"],
                                   neighbours, protocol=self.protocol, metrics=self.metrics, **self.score_kwargs)
            values = torch.tensor([scores[m] for m in self.metrics], dtype=torch.float64)
        values = trainer.strategy.broadcast(values, src=0)
        for name, value in zip(self.metrics, values.tolist(), strict=True):
            pl_module.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, sync_dist=False)

    # ------------------------------------------------------------------ hooks
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start("val", trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(pl_module, batch, batch_idx, dataloader_idx)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish("val", trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start("test", trainer)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._collect(pl_module, batch, batch_idx, dataloader_idx)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._finish("test", trainer, pl_module)
