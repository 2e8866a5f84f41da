"""ReactFace training losses (paper Sec. 4.2 and 4.4, Eq. 5-7, 12-13), functional.

Face-state distances follow RF ``model/losses.py``: the 52 expression and 6 pose channels are
averaged separately and pose is weighted (RF x10); ``kind`` is smooth L1 (the paper's "L_1 denotes
the smooth L1 loss", Eq. 5), ``l1`` or ``mse``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from datamodules.features.face_state import EXPRESSION, POSE

__all__ = [
    "LOSS_KINDS",
    "face_state_distance",
    "appropriate_reconstruction_loss",
    "diversity_loss",
    "kl_loss",
    "smooth_loss",
]

LOSS_KINDS = ("smooth_l1", "l1", "mse")


def _elementwise(prediction: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "smooth_l1":
        return F.smooth_l1_loss(prediction, target, reduction="none")
    if kind == "l1":
        return (prediction - target).abs()
    if kind == "mse":
        return (prediction - target).square()
    raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {kind!r}")


def face_state_distance(
    prediction: torch.Tensor, target: torch.Tensor, *, pose_weight: float = 10.0, kind: str = "smooth_l1"
) -> torch.Tensor:
    """Per-sequence ``mean_{t,d} L(exp) + pose_weight * mean_{t,d} L(pose)`` of (..., T, 58) -> (...)."""
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    err = _elementwise(prediction.float(), target.float(), kind)
    return err[..., EXPRESSION].mean(dim=(-2, -1)) + pose_weight * err[..., POSE].mean(dim=(-2, -1))


def appropriate_reconstruction_loss(
    prediction: torch.Tensor,
    candidates: torch.Tensor,
    mask: torch.Tensor,
    *,
    pose_weight: float = 10.0,
    kind: str = "smooth_l1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5: mean over the batch of the minimum distance to the appropriate reactions.

    prediction (B, T, 58); candidates (B, N, T, 58); mask (B, N) bool, True where a candidate
    exists (RF fills empty neighbour slots with 1e5 so they never win; here they are masked).
    Returns (loss, index of the closest candidate (B,)). The minimum is over whole face states,
    as Eq. 5 (RF takes the expression and pose minima independently).
    """
    if candidates.ndim != 4 or candidates.shape[0] != prediction.shape[0] or candidates.shape[2:] != prediction.shape[1:]:
        raise ValueError(f"candidates must be (B, N, T, 58) matching prediction {tuple(prediction.shape)}, "
                         f"got {tuple(candidates.shape)}")
    if mask.shape != candidates.shape[:2]:
        raise ValueError(f"mask must be (B, N) = {tuple(candidates.shape[:2])}, got {tuple(mask.shape)}")
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every sample needs at least one appropriate reaction (a row of mask is all False)")
    distance = face_state_distance(prediction[:, None].expand_as(candidates), candidates,
                                   pose_weight=pose_weight, kind=kind)
    distance = distance.masked_fill(~mask.bool(), float("inf"))
    best, index = distance.min(dim=1)
    return best.mean(), index


def diversity_loss(samples: torch.Tensor, sigma: float = 100.0) -> torch.Tensor:
    """Eq. 6 (DLow's energy, Yuan & Kitani): mean over the batch of
    ``1/(M(M-1)) sum_{i != j} exp(-||R_i - R_j||^2 / sigma)``, R flattened over (T, 58).

    samples (B, M, T, 58) with M >= 2; sigma = sigma_d (RF ``DivLoss``: 100 on the squared norm).
    """
    if samples.ndim != 4 or samples.shape[1] < 2:
        raise ValueError(f"samples must be (B, M >= 2, T, 58), got {tuple(samples.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma_d must be > 0, got {sigma}")
    flat = rearrange(samples.float(), "b m t d -> b m (t d)")
    squared = (flat[:, :, None] - flat[:, None]).square().sum(-1)  # (B, M, M), exact (no cdist shortcut)
    m = samples.shape[1]
    off_diagonal = ~torch.eye(m, dtype=torch.bool, device=samples.device)
    energy = torch.exp(-squared / sigma)[:, off_diagonal]
    return energy.sum(-1).div(m * (m - 1)).mean()


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Eq. 7: KL(N(mu, sigma^2) || N(0, I)), averaged over elements (RF ``VAELoss``)."""
    mu, logvar = mu.float(), logvar.float()
    return (0.5 * (logvar.exp() + mu.square() - 1.0 - logvar)).mean()


def smooth_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``1/(T-2) sum_t |a_t - a^_t|`` with a_t = (r_t - r_{t-1}) - (r_{t-1} - r_{t-2}),
    |.| the mean absolute value over the 58 channels, averaged over the batch. (B, T, 58), T >= 3.
    (RF ``SmoothLoss`` instead penalises the prediction's own acceleration.)"""
    if prediction.shape != target.shape or prediction.ndim != 3:
        raise ValueError(f"prediction and target must both be (B, T, 58), got {tuple(prediction.shape)} "
                         f"and {tuple(target.shape)}")
    if prediction.shape[1] < 3:
        raise ValueError(f"the smoothness loss needs T >= 3 frames, got {prediction.shape[1]}")

    def acceleration(x: torch.Tensor) -> torch.Tensor:
        return x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]

    return (acceleration(target.float()) - acceleration(prediction.float())).abs().mean()
