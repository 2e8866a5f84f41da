"""Posed vs spontaneous classifier on AU6/AU12 curves, for CMM-Net's class-consistency check.

The issue asks whether generated smiles keep the requested class; the paper has no such check
(notes F.10 suggests one). The classifier is deliberately small and transparent so that its
verdict is about the smile dynamics the literature separates the classes by (onset speed,
amplitude, Duchenne cheek raise; Dibeklioglu et al. ECCV 2012), not about image artefacts:

* input: AU intensity curves (N, T, A) (cheek raiser AU6 and lip-corner puller AU12, 0..5),
  from the same estimator on real and generated sequences;
* features: the curves smoothed over 5 frames (CMM-Net Sec. 4.3's window), flattened, plus
  their frame-to-frame differences (onset speed), standardised with the training statistics;
* model: L2-regularised logistic regression, fitted full-batch with L-BFGS (deterministic).

Report its accuracy on *real* test sequences next to the consistency of generated ones: the
latter means little when the former is near chance.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from zoo.metrics.smile import AU_CURVE_WINDOW, smooth_au_curve

__all__ = ["SmileClassifier", "roc_auc"]


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve of ``scores`` (N,) for ``labels`` (N,) in {0, 1} (1 = positive):
    P(score of a positive > score of a negative), ties counting one half (Mann-Whitney U / (n1 n0))."""
    scores, labels = torch.as_tensor(scores).double().flatten(), torch.as_tensor(labels).long().flatten()
    if scores.shape != labels.shape:
        raise ValueError(f"scores, labels: expected the same length, got {tuple(scores.shape)} and {tuple(labels.shape)}")
    positive, negative = scores[labels == 1], scores[labels == 0]
    if len(positive) == 0 or len(negative) == 0 or len(positive) + len(negative) != len(labels):
        raise ValueError(f"labels: expected both classes 0 and 1 and nothing else, got {labels.unique().tolist()}")
    above = (positive[:, None] > negative[None]).double().sum() + 0.5 * (positive[:, None] == negative[None]).double().sum()
    return float(above / (len(positive) * len(negative)))


class SmileClassifier(nn.Module):
    """Logistic regression on smoothed AU curves: ``forward`` gives the logit of "spontaneous"
    (label 1; 0 = posed, as :data:`datamodules.smile.SMILE_CLASSES`)."""

    def __init__(self, num_frames: int = 32, num_aus: int = 2, window: int = AU_CURVE_WINDOW,
                 l2: float = 1e-2) -> None:
        super().__init__()
        if num_frames < 2 or num_aus < 1:
            raise ValueError(f"num_frames, num_aus: expected >= 2 and >= 1, got {num_frames}, {num_aus}")
        if l2 < 0:
            raise ValueError(f"l2: expected >= 0, got {l2}")
        self.num_frames, self.num_aus, self.window, self.l2 = num_frames, num_aus, window, l2
        size = num_aus * (2 * num_frames - 1)
        self.linear = nn.Linear(size, 1)
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))
        self.fitted = False

    def _check(self, curves: Tensor, name: str = "curves") -> Tensor:
        if not isinstance(curves, Tensor) or curves.ndim != 3 or tuple(curves.shape[1:]) != (self.num_frames, self.num_aus):
            got = tuple(curves.shape) if isinstance(curves, Tensor) else type(curves).__name__
            raise ValueError(f"{name}: expected AU curves (N, {self.num_frames}, {self.num_aus}), got {got}")
        if not torch.isfinite(curves).all():
            raise ValueError(f"{name}: contains NaN or inf")
        return curves.float()

    def features(self, curves: Tensor) -> Tensor:
        """(N, T, A) -> (N, A * (2T - 1)): smoothed curves and their differences, not standardised."""
        x = self._check(curves)
        smooth = smooth_au_curve(rearrange(x, "n t a -> n a t"), self.window).float()
        return torch.cat([smooth.flatten(1), smooth.diff(dim=-1).flatten(1)], dim=1)

    def forward(self, curves: Tensor) -> Tensor:
        return self.linear((self.features(curves) - self.mean) / self.std).squeeze(-1)

    def fit(self, curves: Tensor, labels: Tensor, max_iter: int = 200) -> SmileClassifier:
        """Fit on real training sequences; both classes must be present."""
        x = self._check(curves)
        y = torch.as_tensor(labels)
        if y.shape != (len(x),) or not set(y.unique().tolist()) <= {0, 1}:
            raise ValueError(f"labels: expected ({len(x)},) values in {{0, 1}}, got {tuple(y.shape)} {y.unique().tolist()}")
        if len(y.unique()) < 2:
            raise ValueError("labels: the training sequences hold one class only; a classifier needs both")
        feats = self.features(x)
        self.mean.copy_(feats.mean(dim=0))
        self.std.copy_(feats.std(dim=0).clamp_min(1e-3))
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        z = (feats - self.mean) / self.std
        target = y.float()
        optimiser = torch.optim.LBFGS(self.linear.parameters(), lr=1.0, max_iter=max_iter,
                                      line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimiser.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(self.linear(z).squeeze(-1), target)
            loss = loss + self.l2 * self.linear.weight.square().sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimiser.step(closure)
        self.fitted = True
        return self

    @torch.no_grad()
    def predict(self, curves: Tensor) -> Tensor:
        """Class (N,) long: 1 spontaneous, 0 posed."""
        if not self.fitted:
            raise ValueError("SmileClassifier: call fit(...) on real training sequences first")
        return (self(curves) > 0).long()

    @torch.no_grad()
    def auc(self, curves: Tensor, labels: Tensor) -> float:
        """ROC AUC of the "spontaneous" logit for ``labels``: how well the classifier *ranks* the
        two classes, whatever its threshold (a generator whose smiles are all weaker than real
        ones can shift every logit one way and still keep the classes apart)."""
        if not self.fitted:
            raise ValueError("SmileClassifier: call fit(...) on real training sequences first")
        return roc_auc(self(curves), labels)

    def accuracy(self, curves: Tensor, labels: Tensor) -> float:
        """Fraction of sequences classified as ``labels``."""
        labels = torch.as_tensor(labels).long()
        return float((self.predict(curves) == labels).float().mean())
