"""Realism metrics (FID, FVD, IS, Delta-IS, SSIM) on validation or test outputs, logged per epoch.

The LightningModule provides the samples; the callback owns the metrics and the feature
networks, which are built lazily on first use from the published weights (see
``zoo.metrics.feature_nets``) and are never attached to the module, so checkpoints stay small
(DESIGN "Metrics, callbacks, logging"; conventions note Sec. 4.3).

Module interface:

* ``image_pairs(batch) -> (generated, real)``: uint8 (N, 3, H, W) each, frame ``i`` of both
  showing the same moment (needed by SSIM; FID/IS only use the two sets).
* ``video_pairs(batch) -> (generated, real)``: uint8 (N, T, 3, H, W), only for ``"fvd"``.

YAML::

    trainer:
      callbacks:
        - class_path: callbacks.realism.RealismCallback
          init_args: {metrics: [fid, ssim], every_n_epochs: 5, max_batches: 50,
                      feature_weights: {fid: /data/weights/pt_inception-2015-12-05-6726825d.pth}}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from zoo.metrics.feature_nets import FEATURE_NET_WEIGHTS, build_feature_net
from zoo.metrics.realism import (
    DeltaInceptionScore,
    FrechetInceptionDistance,
    FrechetVideoDistance,
    InceptionScore,
    StructuralSimilarity,
)

Stage = Literal["val", "test"]
REALISM_METRICS = ("fid", "fvd", "is", "delta_is", "ssim")
# Which feature network each metric needs ("ssim" needs none).
_NET_OF = {"fid": "fid", "fvd": "fvd", "is": "is", "delta_is": "is"}


class EpochSchedule:
    """Shared bookkeeping of the metric callbacks: which epochs run, how many batches."""

    def __init__(self, every_n_epochs: int, max_batches: int | None, stage: str) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs: expected >= 1, got {every_n_epochs}")
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches: expected >= 1 or None, got {max_batches}")
        if stage not in ("val", "test"):
            raise ValueError(f"stage: expected 'val' or 'test', got {stage!r}")
        self.every_n_epochs, self.max_batches, self.stage = every_n_epochs, max_batches, stage
        self.batches_seen = 0

    def runs_now(self, trainer: pl.Trainer) -> bool:
        if trainer.sanity_checking:
            return False
        # Test runs once, whatever the epoch; validation follows Lightning's own
        # check_val_every_n_epoch convention ((epoch + 1) % n == 0).
        return self.stage == "test" or (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def take_batch(self, trainer: pl.Trainer) -> bool:
        if not self.runs_now(trainer) or (self.max_batches is not None and self.batches_seen >= self.max_batches):
            return False
        self.batches_seen += 1
        return True


def _require_method(pl_module: pl.LightningModule, name: str, purpose: str) -> None:
    if not callable(getattr(pl_module, name, None)):
        raise TypeError(f"{type(pl_module).__name__} has no method {name}(batch) needed for {purpose}")


def _check_pair(pair: Any, method: str, layout: str) -> tuple[Tensor, Tensor]:
    ndim = len(layout.split())
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{method}(batch): expected a (generated, real) pair, got {type(pair).__name__}")
    fake, real = pair
    for name, x in (("generated", fake), ("real", real)):
        if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.ndim != ndim or x.shape[-3] != 3:
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{method}(batch): {name} must be uint8 ({layout}), got {got}")
    if fake.shape != real.shape:
        raise ValueError(f"{method}(batch): generated {tuple(fake.shape)} and real {tuple(real.shape)} differ in shape")
    return fake, real


class RealismCallback(pl.Callback):
    """Accumulate realism metrics over (up to ``max_batches``) validation/test batches and log
    ``<stage>/FID``, ``<stage>/FVD``, ``<stage>/IS`` (+ ``IS_std``), ``<stage>/delta_IS``
    (+ ``IS_real``), ``<stage>/SSIM`` at the end of the epoch.

    Args:
        metrics: any of "fid", "fvd", "is", "delta_is", "ssim".
        every_n_epochs: run on validation epochs where ``(epoch + 1) % every_n_epochs == 0``.
        max_batches: batches per epoch to evaluate (None: all). FID needs >= 2 samples per set;
            for stable FID use thousands of images (pytorch-fid recommends >= 2048).
        feature_weights: optional weight file per network, ``{"fid"|"is"|"fvd": path}``;
            otherwise the usual search (env var, ``$FACEZOO_HOME/weights``, torch hub cache).
        stage: "val" or "test".
        is_splits: chunks for IS / Delta-IS (10 as Salimans et al.; must not exceed the sample count).
        feature_batch_size: chunk size when running the feature networks.
        feature_extractors: prebuilt networks ``{"fid"|"is"|"fvd": module}`` instead of weight
            files (tests, custom encoders).
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("fid", "ssim"),
        every_n_epochs: int = 1,
        max_batches: int | None = None,
        feature_weights: dict[str, str | os.PathLike] | None = None,
        stage: Stage = "val",
        is_splits: int = 10,
        feature_batch_size: int = 32,
        feature_extractors: dict[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        metrics = tuple(dict.fromkeys(metrics))
        unknown = [m for m in metrics if m not in REALISM_METRICS]
        if not metrics or unknown:
            raise ValueError(f"metrics: expected a non-empty subset of {REALISM_METRICS}, got unknown {unknown or 'empty'}")
        for arg, given in (("feature_weights", feature_weights), ("feature_extractors", feature_extractors)):
            bad = sorted(set(given or {}) - set(FEATURE_NET_WEIGHTS))
            if bad:
                raise ValueError(f"{arg}: keys must be among {sorted(FEATURE_NET_WEIGHTS)}, got {bad}")
        if is_splits < 1:
            raise ValueError(f"is_splits: expected >= 1, got {is_splits}")
        self.metrics = metrics
        self.schedule = EpochSchedule(every_n_epochs, max_batches, stage)
        self.feature_weights = dict(feature_weights or {})
        self.is_splits = is_splits
        self.feature_batch_size = feature_batch_size
        # Plain dicts of modules: a Callback is not an nn.Module, so nothing here is ever part of
        # the LightningModule's state_dict or checkpoint.
        self._nets: dict[str, nn.Module] = dict(feature_extractors or {})
        self._metrics: dict[str, Any] = {}

    # -- construction -----------------------------------------------------------------------

    def _net(self, family: str) -> nn.Module:
        if family not in self._nets:
            self._nets[family] = build_feature_net(family, self.feature_weights.get(family))
        return self._nets[family]

    def _metric(self, name: str, device: torch.device):
        if name not in self._metrics:
            kw = {"feature_batch_size": self.feature_batch_size}
            if name == "fid":
                metric = FrechetInceptionDistance(self._net("fid"), **kw)
            elif name == "fvd":
                metric = FrechetVideoDistance(self._net("fvd"), feature_batch_size=max(1, self.feature_batch_size // 8))
            elif name == "is":
                metric = InceptionScore(self.is_splits, self._net("is"), **kw)
            elif name == "delta_is":
                metric = DeltaInceptionScore(self.is_splits, self._net("is"), **kw)
            else:
                metric = StructuralSimilarity(data_range=255.0)
            self._metrics[name] = metric
        return self._metrics[name].to(device)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if any(m != "fvd" for m in self.metrics):
            _require_method(pl_module, "image_pairs", f"RealismCallback metrics {self.metrics}")
        if "fvd" in self.metrics:
            _require_method(pl_module, "video_pairs", "RealismCallback metric 'fvd'")

    # -- accumulation -------------------------------------------------------------------------

    def _update(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any) -> None:
        if not self.schedule.take_batch(trainer):
            return
        device = pl_module.device
        with torch.no_grad():
            if any(m != "fvd" for m in self.metrics):
                fake, real = _check_pair(pl_module.image_pairs(batch), "image_pairs", "N 3 H W")
                for name in self.metrics:
                    if name == "ssim":
                        self._metric(name, device).update(fake, real)
                    elif name == "is":
                        self._metric(name, device).update(fake)
                    elif name in ("fid", "delta_is"):
                        metric = self._metric(name, device)
                        metric.update(fake, real=False)
                        metric.update(real, real=True)
            if "fvd" in self.metrics:
                fake_v, real_v = _check_pair(pl_module.video_pairs(batch), "video_pairs", "N T 3 H W")
                metric = self._metric("fvd", device)
                metric.update(fake_v, real=False)
                metric.update(real_v, real=True)

    def _finish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        stage = self.schedule.stage
        seen, self.schedule.batches_seen = self.schedule.batches_seen, 0
        if seen == 0 or not self._metrics:
            return
        values: dict[str, float] = {}
        for name, metric in self._metrics.items():
            try:
                result = metric.compute()
            except ValueError as err:  # e.g. fewer samples than the metric needs
                rank_zero_warn(f"RealismCallback: {name} not logged at epoch {trainer.current_epoch}: {err}")
                metric.reset()
                continue
            if name == "is":
                values["IS"], values["IS_std"] = float(result[0]), float(result[1])
            elif name == "delta_is":
                values["delta_IS"], values["IS_real"] = float(result["delta_IS"]), float(result["IS_real"])
                values.setdefault("IS", float(result["IS"]))
            else:
                values[name.upper()] = float(result)
            metric.reset()
        for key, value in values.items():
            # Already globally reduced by the metric's own sync, hence sync_dist=False.
            pl_module.log(f"{stage}/{key}", value, on_step=False, on_epoch=True, sync_dist=False)

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
