"""torchmetrics ``Metric`` classes over :func:`zoo.metrics.react.score`, so training callbacks,
``facezoo score`` and the benchmark share one implementation.

States are the raw tensors (predictions, listeners, speakers, sample indices), each a list state
with ``dist_reduce_fx="cat"``, so DDP sync concatenates every rank's samples. ``compute`` drops
duplicate indices (DistributedSampler pads the last batch by repeating samples), orders the
samples by index and restricts the split's neighbour matrix to the seen indices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from zoo.metrics.react import DEFAULT_METRICS, _metric_list, _protocol, score

__all__ = [
    "FRCMetric",
    "FRDMetric",
    "FRDvsMetric",
    "FRVarMetric",
    "REACTMetrics",
    "SMSEMetric",
    "TLCCMetric",
    "score_samples",
]


def score_samples(predictions: torch.Tensor, listeners: torch.Tensor, speakers: torch.Tensor,
                  indices: torch.Tensor, neighbours, *, protocol: str = "facezoo",
                  metrics: Sequence[str] | None = None, **score_kwargs) -> dict[str, float]:
    """Score samples gathered in any order: keep the first occurrence of each index, sort by
    index, and cut the split's (N_split, N_split) neighbour matrix down to the seen indices."""
    names = _metric_list(metrics)
    indices = indices.reshape(-1).to(torch.int64).cpu()
    if indices.numel() != predictions.shape[0]:
        raise ValueError(f"indices: expected one index per sample ({predictions.shape[0]}), got {indices.numel()}")
    unique, first = np.unique(indices.numpy(), return_index=True)
    order = torch.from_numpy(first)
    sub = None
    if any(m in names for m in ("FRC", "FRD")):
        if neighbours is None:
            raise ValueError("neighbours: FRC and FRD need the split's neighbour matrix")
        full = np.asarray(neighbours.cpu() if isinstance(neighbours, torch.Tensor) else neighbours)
        if full.ndim != 2 or full.shape[0] != full.shape[1]:
            raise ValueError(f"neighbours: expected a square (N, N) matrix, got shape {full.shape}")
        if unique.size and (unique[0] < 0 or unique[-1] >= full.shape[0]):
            raise ValueError(f"indices: sample indices must lie in 0..{full.shape[0] - 1} (the neighbour "
                             f"matrix's size), got {unique[0]}..{unique[-1]}")
        sub = full[np.ix_(unique, unique)]
    return score(predictions[order], listeners[order] if listeners is not None else None,
                 speakers[order] if speakers is not None else None, sub, protocol=protocol,
                 metrics=names, **score_kwargs)


class REACTMetrics(Metric):
    """All requested REACT metrics at once; ``compute`` returns ``{name: tensor}``.

    Args:
        neighbours: the split's (N, N) neighbour matrix, indexed by sample index; may instead be
            passed to ``update`` (the latest one is used).
        protocol: ``"facezoo"`` (default) or ``"react2023"``.
        metrics: names from :data:`zoo.metrics.react.METRIC_NAMES`; default the six REACT metrics.
        score_kwargs: forwarded to :func:`zoo.metrics.react.score` (``feature_space``, ``backend``...).
    """

    is_differentiable = False
    full_state_update = False

    def __init__(self, neighbours=None, protocol: str = "facezoo", metrics: Sequence[str] | None = None,
                 score_kwargs: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        _protocol(protocol)
        self.protocol = protocol
        self.metric_names = _metric_list(metrics if metrics is not None else DEFAULT_METRICS)
        self.neighbours = None if neighbours is None else np.asarray(neighbours)
        self.score_kwargs = dict(score_kwargs or {})
        self.score_kwargs.setdefault("progress", False)
        for name in ("predictions", "listeners", "speakers", "indices"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, predictions: torch.Tensor, listeners: torch.Tensor, speakers: torch.Tensor,
               indices: torch.Tensor, neighbours=None) -> None:
        """predictions (B, K, T, D); listeners, speakers (B, T, D); indices (B,) sample indices."""
        if predictions.ndim != 4:
            raise ValueError(f"predictions: expected (B, K, T, D), got shape {tuple(predictions.shape)}")
        b, _, t, d = predictions.shape
        for name, value in (("listeners", listeners), ("speakers", speakers)):
            if tuple(value.shape) != (b, t, d):
                raise ValueError(f"{name}: expected shape {(b, t, d)} to match predictions, got {tuple(value.shape)}")
        if indices.reshape(-1).shape[0] != b:
            raise ValueError(f"indices: expected {b} sample indices, got shape {tuple(indices.shape)}")
        if neighbours is not None:
            self.neighbours = np.asarray(neighbours.cpu() if isinstance(neighbours, torch.Tensor) else neighbours)
        self.predictions.append(predictions.detach().float())
        self.listeners.append(listeners.detach().float())
        self.speakers.append(speakers.detach().float())
        self.indices.append(indices.detach().reshape(-1).long())

    def compute(self) -> dict[str, torch.Tensor]:
        if not self.indices:
            raise ValueError("REACTMetrics.compute: no samples were given to update()")
        values = score_samples(dim_zero_cat(self.predictions), dim_zero_cat(self.listeners),
                               dim_zero_cat(self.speakers), dim_zero_cat(self.indices), self.neighbours,
                               protocol=self.protocol, metrics=self.metric_names, **self.score_kwargs)
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}


class _SingleREACTMetric(REACTMetrics):
    name = ""

    def __init__(self, neighbours=None, protocol: str = "facezoo", score_kwargs: dict | None = None,
                 **kwargs) -> None:
        super().__init__(neighbours, protocol, [self.name], score_kwargs, **kwargs)

    def compute(self) -> torch.Tensor:  # type: ignore[override]
        return super().compute()[self.name]


class FRCMetric(_SingleREACTMetric):
    """FRC (FRCorr), higher is better."""

    name = "FRC"
    higher_is_better = True


class FRDMetric(_SingleREACTMetric):
    """FRD (FRDist), lower is better."""

    name = "FRD"
    higher_is_better = False


class SMSEMetric(_SingleREACTMetric):
    """S-MSE (FRDiv), higher is better."""

    name = "S-MSE"
    higher_is_better = True


class FRVarMetric(_SingleREACTMetric):
    """FRVar, higher is better."""

    name = "FRVar"
    higher_is_better = True


class FRDvsMetric(_SingleREACTMetric):
    """FRDvs, higher is better."""

    name = "FRDvs"
    higher_is_better = True


class TLCCMetric(_SingleREACTMetric):
    """TLCC (FRSyn, frames), lower is better."""

    name = "TLCC"
    higher_is_better = False
