"""CMM-Net's AU-curve distance (Wang et al., "Every Smile is Unique", CVPR 2018, Sec. 4.3, Table 3).

The paper measures an AU intensity (cheek raiser AU6; the issue adds lip-corner puller AU12)
over every generated test sequence, smooths it with a 5-frame window, averages the curves over
the test set, and reports the *cumulative distance* to the same curve of the original sequences:

    c_g(t) = mean_n smooth_5(a_n(t)),   c_r(t) likewise,   D = sum_t |c_g(t) - c_r(t)|

The paper does not state the window's alignment, its edge handling, or the norm; here it is a
centred moving average with edge frames replicated (curve length unchanged) and an L1 sum over
frames, which has the paper's scale (distances of ~2 on the 0..5 scale for T = 32). Smoothing and
averaging are linear, so their order does not matter. Intensities come from
:mod:`datamodules.features.au_rules` (blendshapes or landmarks) or any other estimator, the same on both
sides.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor
from torchmetrics import Metric

from datamodules.features.au_rules import (
    BLENDSHAPE_AU_RULES,
    LANDMARK_AU_RULES,
    au_from_blendshapes,
    au_from_landmarks,
)

__all__ = ["AU_CURVE_WINDOW", "smooth_au_curve", "au_curve", "au_curve_distance", "AUCurveDistance"]

AU_CURVE_WINDOW = 5  # CMM-Net Sec. 4.3: "smooth it with a 5-frames long window"
CMMNET_SEQUENCE_LENGTH = 32  # CMM-Net Sec. 4.1: T = 32 frames
AUSource = Literal["intensities", "blendshapes", "landmarks"]


def _as_tensor(x, name: str) -> Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64)) if isinstance(x, np.ndarray) else x
    if not isinstance(t, Tensor):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return t.double()


def smooth_au_curve(intensity, window: int = AU_CURVE_WINDOW) -> Tensor:
    """Centred moving average over the time axis of (..., T), edges replicated; float64."""
    x = _as_tensor(intensity, "intensity")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window: expected an odd number >= 1, got {window}")
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"intensity: expected (..., T) with T >= 1, got shape {tuple(x.shape)}")
    lead = x.shape[:-1]
    flat = rearrange(x, "... t -> (...) 1 t") if lead else x.reshape(1, 1, -1)
    padded = F.pad(flat, (window // 2, window // 2), mode="replicate")
    smoothed = F.avg_pool1d(padded, kernel_size=window, stride=1)
    return smoothed.reshape(*lead, x.shape[-1])


def au_curve(intensities, window: int = AU_CURVE_WINDOW) -> Tensor:
    """Average smoothed AU curve (T, A) of sequences (N, T, A)."""
    x = _as_tensor(intensities, "intensities")
    if x.ndim != 3 or x.shape[0] < 1:
        raise ValueError(f"intensities: expected (N, T, A), got shape {tuple(x.shape)}")
    return rearrange(smooth_au_curve(rearrange(x, "n t a -> n a t"), window).mean(dim=0), "a t -> t a")


def au_curve_distance(generated, real, window: int = AU_CURVE_WINDOW) -> Tensor:
    """CMM-Net Table 3: ``sum_t |c_g(t) - c_r(t)|`` per AU, (A,), for intensities (N, T, A) and (M, T, A)."""
    g, r = au_curve(generated, window), au_curve(real, window)
    if g.shape != r.shape:
        raise ValueError(f"generated and real: need the same (T, A), got {tuple(g.shape)} vs {tuple(r.shape)}")
    return (g - r).abs().sum(dim=0)


class AUCurveDistance(Metric):
    """AU-curve distance accumulated over batches (sum states, DDP-safe).

    ``update(generated, real)`` with, per ``source``: intensities (N, T, A); blendshapes
    (N, T, 52); or landmarks (N, T, 68, 2) (AU rules relative to each sequence's first frame).
    All sequences have ``num_frames`` frames (CMM-Net: 32). ``compute()`` returns
    ``{au_name: distance}``; :meth:`curves` returns the two average curves for plotting.
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_frames: int = CMMNET_SEQUENCE_LENGTH,
        au_names: tuple[str, ...] | list[str] = ("AU6", "AU12"),
        source: AUSource = "intensities",
        window: int = AU_CURVE_WINDOW,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if source not in ("intensities", "blendshapes", "landmarks"):
            raise ValueError(f"source: expected 'intensities', 'blendshapes' or 'landmarks', got {source!r}")
        rules = {"blendshapes": BLENDSHAPE_AU_RULES, "landmarks": LANDMARK_AU_RULES}.get(source)
        au_names = tuple(au_names)
        if not au_names or (rules is not None and any(a not in rules for a in au_names)):
            raise ValueError(f"au_names: expected a non-empty subset of {list(rules) if rules else 'names'}, got {au_names}")
        if num_frames < 1:
            raise ValueError(f"num_frames: expected >= 1, got {num_frames}")
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window: expected an odd number >= 1, got {window}")
        self.num_frames, self.au_names, self.source, self.window = num_frames, au_names, source, window
        shape = (num_frames, len(au_names))
        for side in ("generated", "real"):
            self.add_state(f"{side}_sum", torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def intensities(self, sequences, name: str) -> Tensor:
        """(N, T, A) intensities from the configured source."""
        if self.source == "blendshapes":
            out = au_from_blendshapes(sequences, self.au_names)
        elif self.source == "landmarks":
            out = au_from_landmarks(sequences, "first", self.au_names)
        else:
            out = sequences
        out = _as_tensor(out, name)
        expected = (self.num_frames, len(self.au_names))
        if out.ndim != 3 or tuple(out.shape[1:]) != expected:
            raise ValueError(f"{name}: expected {self.source} for (N, {expected[0]}) sequences giving (N, {expected[0]}, {expected[1]}) intensities, got {tuple(out.shape)}")
        return out

    def update(self, generated, real) -> None:
        for side, value in (("generated", generated), ("real", real)):
            x = self.intensities(value, side)
            smoothed = smooth_au_curve(rearrange(x, "n t a -> n a t"), self.window)
            total = getattr(self, f"{side}_sum")
            setattr(self, f"{side}_sum", total + rearrange(smoothed.sum(dim=0), "a t -> t a").to(total.device))
            setattr(self, f"{side}_count", getattr(self, f"{side}_count") + x.shape[0])

    def curves(self) -> tuple[Tensor, Tensor]:
        """Average smoothed curves (T, A) of generated and real sequences."""
        if int(self.generated_count) == 0 or int(self.real_count) == 0:
            raise ValueError("AUCurveDistance: needs generated and real sequences")
        return self.generated_sum / self.generated_count, self.real_sum / self.real_count

    def compute(self) -> dict[str, Tensor]:
        generated, real = self.curves()
        distance = (generated - real).abs().sum(dim=0)
        return {name: distance[i] for i, name in enumerate(self.au_names)}
