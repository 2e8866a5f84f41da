"""DyadGAN / Interactive-GAN evaluation of generated shape-parameter sequences.

Nojavanasghari, Huang & Khan (arXiv 1801.09092, Sec. 4.4, Table 2) score the C-LSTM by the
**MSE** of generated shape parameters against the ground truth (0.101 with overlap, 0.183
without) and discuss, without a number, **temporal smoothness** (the C-LSTM shows "sudden jumps")
and **diversity** (the affect-shape dictionary "generates a different sequence each time").
Those two are made measurable here:

* ``MSE``: mean over samples, frames and parameters of ``(x - y)^2``; with K samples per input the
  mean over samples, and ``minMSE`` the best of K (mean over inputs of the smallest per-sample
  MSE), the usual protocol for stochastic generators.
* ``jerk``: mean over frames of ``||x[t+3] - 3x[t+2] + 3x[t+1] - x[t]||_2`` (third finite
  difference, parameter units per frame^3, times fps^3 if ``fps`` is given). Jumps show up as
  large jerk; report it next to the ground truth's jerk.
* ``diversity``: mean pairwise squared distance between the K samples of one input, per element:
  ``sum_{i != j} ||x_i - x_j||^2 / (K (K-1) T P)``, averaged over inputs (for i.i.d. samples with
  per-element variance s^2 its expectation is 2 s^2).

Shapes: samples (B, K, T, P) or (B, T, P) (K = 1); targets (B, T, P).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor
from torchmetrics import Metric

__all__ = [
    "sequence_mse",
    "best_of_k_mse",
    "mean_jerk",
    "sample_diversity",
    "SequenceMSE",
    "SequenceJerk",
    "SampleDiversity",
]


def _samples(samples: Tensor, name: str = "samples") -> Tensor:
    if not isinstance(samples, Tensor) or samples.ndim not in (3, 4) or not samples.is_floating_point():
        got = f"{samples.dtype} {tuple(samples.shape)}" if isinstance(samples, Tensor) else type(samples).__name__
        raise ValueError(f"{name}: expected float sequences (B, K, T, P) or (B, T, P), got {got}")
    if not torch.isfinite(samples).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return samples if samples.ndim == 4 else samples[:, None]


def _paired(samples: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    s = _samples(samples)
    if not isinstance(target, Tensor) or target.ndim != 3 or not target.is_floating_point():
        got = f"{target.dtype} {tuple(target.shape)}" if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target: expected float sequences (B, T, P), got {got}")
    if (s.shape[0], *s.shape[2:]) != tuple(target.shape):
        raise ValueError(f"samples {tuple(samples.shape)} and target {tuple(target.shape)}: (B, T, P) differ")
    return s.double(), target.double()


def _per_sample_mse(samples: Tensor, target: Tensor) -> Tensor:
    s, t = _paired(samples, target)
    return (s - t[:, None]).square().mean(dim=(2, 3))  # (B, K)


def sequence_mse(samples: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over all samples, frames and parameters (float64 scalar)."""
    return _per_sample_mse(samples, target).mean()


def best_of_k_mse(samples: Tensor, target: Tensor) -> Tensor:
    """Mean over inputs of the smallest per-sample MSE among the K samples."""
    return _per_sample_mse(samples, target).amin(dim=1).mean()


def _jerk_norms(sequences: Tensor, fps: float | None) -> Tensor:
    if not isinstance(sequences, Tensor) or sequences.ndim < 2 or not sequences.is_floating_point():
        raise ValueError(f"sequences: expected float (..., T, P), got {getattr(sequences, 'shape', type(sequences).__name__)}")
    if sequences.shape[-2] < 4:
        raise ValueError(f"sequences: jerk needs T >= 4 frames, got T={sequences.shape[-2]}")
    if fps is not None and fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    third = torch.diff(sequences.double(), n=3, dim=-2)
    norms = third.norm(dim=-1)
    return norms * fps**3 if fps is not None else norms


def mean_jerk(sequences: Tensor, fps: float | None = None) -> Tensor:
    """Mean L2 norm of the third finite difference over frames, for (..., T, P) sequences."""
    return _jerk_norms(sequences, fps).mean()


def _per_input_diversity(samples: Tensor) -> Tensor:
    s = _samples(samples).double()
    k = s.shape[1]
    if k < 2:
        raise ValueError(f"samples: diversity needs K >= 2 samples per input, got K={k}")
    flat = rearrange(s, "b k t p -> b k (t p)")
    # sum_{i,j} ||x_i - x_j||^2 = 2 K sum_i ||x_i - mean||^2: exact, O(K) memory, and centring
    # first avoids cancellation when the parameters have a large common offset.
    centred = flat - flat.mean(dim=1, keepdim=True)
    pair_sum = 2 * k * centred.square().sum(dim=(1, 2))
    return pair_sum / (k * (k - 1) * flat.shape[-1])


def sample_diversity(samples: Tensor) -> Tensor:
    """Mean pairwise squared distance per element among K samples, averaged over inputs."""
    return _per_input_diversity(samples).mean()


class SequenceMSE(Metric):
    """``MSE`` (``best_of_k=False``) or ``minMSE`` (``best_of_k=True``) over batches; sum states."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, best_of_k: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.best_of_k = best_of_k
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, samples: Tensor, target: Tensor) -> None:
        per = _per_sample_mse(samples, target)
        values = per.amin(dim=1) if self.best_of_k else per.flatten()
        # Every per-sample MSE averages the same T*P elements, so averaging them is exact.
        self.total += values.sum().to(self.total.device)
        self.count += values.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError("SequenceMSE: no sequences were added")
        return self.total / self.count


class SequenceJerk(Metric):
    """Mean jerk of (..., T, P) sequences over batches; sum states."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, fps: float | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if fps is not None and fps <= 0:
            raise ValueError(f"fps: expected > 0, got {fps}")
        self.fps = fps
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, sequences: Tensor) -> None:
        norms = _jerk_norms(sequences, self.fps)
        self.total += norms.sum().to(self.total.device)
        self.count += norms.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError("SequenceJerk: no sequences were added")
        return self.total / self.count


class SampleDiversity(Metric):
    """Mean per-input sample diversity over batches (samples (B, K >= 2, T, P)); sum states."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, samples: Tensor) -> None:
        per = _per_input_diversity(samples)
        self.total += per.sum().to(self.total.device)
        self.count += per.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError("SampleDiversity: no samples were added")
        return self.total / self.count
