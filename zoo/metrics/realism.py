"""Realism metrics: FID, FVD, Inception Score, CMM-Net's Delta-IS, and SSIM.

* **Fréchet distance** between Gaussians fitted to features of generated and real samples:
  ``||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 sqrt(S_g S_r))``, in float64 with ``scipy.linalg.sqrtm``
  and pytorch-fid's fallback (add ``eps * I`` to both covariances if the root is not finite;
  pytorch-fid ``fid_score.calculate_frechet_distance``). Covariances are unbiased (``np.cov``).
  - **FID**: features = InceptionV3 pool3 (2048-d) with pytorch-fid's weights and input
    handling, as the REACT challenge's ``python -m pytorch_fid`` (B23 README).
  - **FVD**: features = I3D Kinetics-400 logits averaged over time, videos resized to 224 and
    scaled to [-1, 1] (RF ``metric/FVD/frechet_video_distance.py``).
* **Inception Score** (Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` over the 1008-way
  softmax of the unbiased Inception logits, computed on ``splits`` consecutive chunks; returns
  the mean and (population) std over chunks, as the original TF code and torch-fidelity do.
* **Delta-IS** (CMM-Net, Wang et al. CVPR 2018 Table 1): ``|IS(generated) - IS(real)|``; the paper
  reports it because a higher IS alone does not mean more realistic faces.
* **SSIM** (Wang et al. 2004) of each generated frame against its real counterpart, averaged:
  Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03, ``data_range`` explicit (255 for uint8).

Metric classes keep DDP-safe states (sums of features and outer products for the Fréchet
distances, as torchmetrics' FID; concatenated logits for IS) and have functional twins. The
feature network is built lazily on first use from the published weights (see
:mod:`zoo.metrics.feature_nets`) or injected as ``feature_extractor``; it is deliberately **not**
a registered submodule, so a metric attached to a LightningModule never puts ~100 MB of
Inception weights into its checkpoints. It follows the input's device on each update.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch
from einops import rearrange
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.utilities import dim_zero_cat

from zoo.metrics.feature_nets import FeatureNetName, build_feature_net

__all__ = [
    "gaussian_statistics",
    "frechet_distance",
    "frechet_distance_from_features",
    "frechet_inception_distance",
    "frechet_video_distance",
    "inception_score_from_logits",
    "inception_score",
    "delta_inception_score",
    "structural_similarity",
    "FrechetInceptionDistance",
    "FrechetVideoDistance",
    "InceptionScore",
    "DeltaInceptionScore",
    "StructuralSimilarity",
]

SSIM_KERNEL_SIZE = 11
SSIM_SIGMA = 1.5

# --------------------------------------------------------------------------------------------
# Fréchet distance
# --------------------------------------------------------------------------------------------


def gaussian_statistics(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``) of features (N, D), float64."""
    feats = _as_float64(features, "features")
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"features: expected (N >= 2, D), got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64.

    ``sqrtm(sigma1 @ sigma2)`` by scipy; if it is not finite (singular product), ``eps * I`` is
    added to both covariances (pytorch-fid). A complex root with a non-negligible imaginary
    diagonal (> 1e-3) means the covariances are not PSD: a ValueError, never a silent number.
    """
    mu1, mu2 = np.atleast_1d(_as_float64(mu1, "mu1")), np.atleast_1d(_as_float64(mu2, "mu2"))
    sigma1, sigma2 = np.atleast_2d(_as_float64(sigma1, "sigma1")), np.atleast_2d(_as_float64(sigma2, "sigma2"))
    dim = mu1.shape[0]
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"frechet_distance: shapes disagree: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(dim) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            worst = np.max(np.abs(covmean.imag))
            raise ValueError(f"frechet_distance: sqrtm has imaginary component {worst:.3g}; covariances are not PSD")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(fake_features, real_features, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D)."""
    return frechet_distance(*gaussian_statistics(fake_features), *gaussian_statistics(real_features), eps=eps)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        # scipy warns on (near-)singular input; the finite check above handles that case.
        warnings.simplefilter("ignore")
        return scipy.linalg.sqrtm(matrix)


def _as_float64(value, name: str) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().double().numpy()
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return array


# --------------------------------------------------------------------------------------------
# Feature networks held outside the module tree
# --------------------------------------------------------------------------------------------


class _NetHolder:
    """A plain object, so nn.Module.__setattr__ does not register the net as a submodule."""

    def __init__(self, net: nn.Module | None) -> None:
        self.net = net


class _FeatureNetMixin:
    """Lazy, unregistered feature network shared by the feature-based metrics."""

    _net_name: FeatureNetName

    def _init_feature_net(self, feature_extractor: nn.Module | None, weights: str | os.PathLike | None, batch_size: int) -> None:
        if feature_extractor is not None and not isinstance(feature_extractor, nn.Module):
            raise ValueError(f"feature_extractor: expected an nn.Module, got {type(feature_extractor).__name__}")
        if batch_size < 1:
            raise ValueError(f"feature_batch_size: expected >= 1, got {batch_size}")
        self._holder = _NetHolder(feature_extractor)
        self._weights = weights
        self._feature_batch_size = batch_size

    @property
    def feature_extractor(self) -> nn.Module:
        if self._holder.net is None:
            self._holder.net = build_feature_net(self._net_name, self._weights)
        return self._holder.net

    def extract_features(self, inputs: Tensor) -> Tensor:
        """Run the (frozen, eval-mode) feature network in chunks; float64 (N, D) on the input's device."""
        net = self.feature_extractor
        param = next(iter(net.parameters()), None)
        if param is not None and param.device != inputs.device:
            net.to(inputs.device)
        net.eval()
        with torch.no_grad():
            chunks = [net(chunk) for chunk in inputs.split(self._feature_batch_size)]
        features = torch.cat(chunks).double()
        if features.ndim != 2 or features.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"{type(net).__name__}: feature network must return (N, D) features, got {tuple(features.shape)} for N={inputs.shape[0]}"
            )
        return features


def _check_uint8(x: Tensor, name: str, layout: str) -> None:
    ndim = len(layout.split())
    if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.ndim != ndim or x.shape[-3] != 3:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected uint8 RGB tensor ({layout}) in 0..255, got {got}")


# --------------------------------------------------------------------------------------------
# FID / FVD
# --------------------------------------------------------------------------------------------


class _FrechetMetric(_FeatureNetMixin, Metric):
    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    _layout: str
    _default_num_features: int

    def __init__(
        self,
        feature_extractor: nn.Module | None = None,
        weights: str | os.PathLike | None = None,
        num_features: int | None = None,
        reset_real_features: bool = True,
        feature_batch_size: int = 32,
        eps: float = 1e-6,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._init_feature_net(feature_extractor, weights, feature_batch_size)
        if num_features is None:
            num_features = getattr(feature_extractor, "num_features", None) if feature_extractor is not None else None
            num_features = int(num_features) if num_features is not None else self._default_num_features
        if num_features < 1:
            raise ValueError(f"num_features: expected >= 1, got {num_features}")
        self.num_features = num_features
        self.reset_real_features = reset_real_features
        self.eps = eps
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, samples: Tensor, real: bool) -> None:
        """Add uint8 samples (images or videos, see the class) to the real or generated set."""
        _check_uint8(samples, "samples", self._layout)
        self.update_features(self.extract_features(samples), real)

    def update_features(self, features: Tensor, real: bool) -> None:
        """Add precomputed features (N, num_features), e.g. cached real-set features."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"features: expected (N, {self.num_features}), got {tuple(features.shape)}")
        side = "real" if real else "fake"
        f = features.double()
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(dim=0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + f.shape[0])

    def _statistics(self, side: str) -> tuple[np.ndarray, np.ndarray]:
        n = int(getattr(self, f"{side}_count"))
        total = getattr(self, f"{side}_sum").cpu().numpy()
        outer = getattr(self, f"{side}_outer").cpu().numpy()
        mu = total / n
        # Unbiased covariance from running sums: (sum x x^T - n mu mu^T) / (n - 1).
        return mu, (outer - n * np.outer(mu, mu)) / (n - 1)

    def compute(self) -> Tensor:
        n_real, n_fake = int(self.real_count), int(self.fake_count)
        if n_real < 2 or n_fake < 2:
            raise ValueError(f"{type(self).__name__}: needs >= 2 real and >= 2 generated samples, got {n_real} real, {n_fake} generated")
        value = frechet_distance(*self._statistics("fake"), *self._statistics("real"), eps=self.eps)
        return torch.tensor(value, dtype=torch.float64)

    def reset(self) -> None:
        # Like torchmetrics' FID: the real-set statistics can be kept across epochs.
        if not self.reset_real_features:
            kept = {k: getattr(self, k).clone() for k in ("real_sum", "real_outer", "real_count")}
            super().reset()
            for k, v in kept.items():
                setattr(self, k, v)
        else:
            super().reset()


class FrechetInceptionDistance(_FrechetMetric):
    """FID over uint8 RGB images (N, 3, H, W); ``update(images, real=...)``.

    Default network: pytorch-fid's InceptionV3 (``pt_inception-2015-12-05-6726825d.pth``), pool3.
    """

    _net_name = "fid"
    _layout = "N 3 H W"
    _default_num_features = 2048


class FrechetVideoDistance(_FrechetMetric):
    """FVD over uint8 RGB videos (N, T, 3, H, W), T >= 9; ``update(videos, real=...)``.

    Default network: I3D ``rgb_imagenet.pt``, 400 logits averaged over time (RF FVD).
    """

    _net_name = "fvd"
    _layout = "N T 3 H W"
    _default_num_features = 400

    def __init__(self, *args, feature_batch_size: int = 4, **kwargs) -> None:
        super().__init__(*args, feature_batch_size=feature_batch_size, **kwargs)


def _functional_frechet(metric: _FrechetMetric, fake: Tensor, real: Tensor) -> float:
    metric.update(fake, real=False)
    metric.update(real, real=True)
    return float(metric.compute())


def frechet_inception_distance(
    fake_images: Tensor,
    real_images: Tensor,
    feature_extractor: nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    feature_batch_size: int = 32,
) -> float:
    """FID between two sets of uint8 images (N, 3, H, W)."""
    metric = FrechetInceptionDistance(feature_extractor, weights, feature_batch_size=feature_batch_size)
    return _functional_frechet(metric.to(fake_images.device), fake_images, real_images)


def frechet_video_distance(
    fake_videos: Tensor,
    real_videos: Tensor,
    feature_extractor: nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    feature_batch_size: int = 4,
) -> float:
    """FVD between two sets of uint8 videos (N, T, 3, H, W)."""
    metric = FrechetVideoDistance(feature_extractor, weights, feature_batch_size=feature_batch_size)
    return _functional_frechet(metric.to(fake_videos.device), fake_videos, real_videos)


# --------------------------------------------------------------------------------------------
# Inception Score and Delta-IS
# --------------------------------------------------------------------------------------------


def inception_score_from_logits(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS mean and std over ``splits`` consecutive chunks of logits (N, C), float64.

    Chunk ``k`` is rows ``k*N//splits : (k+1)*N//splits`` (Salimans et al.'s TF code), no shuffle.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits: expected (N, C >= 2), got {tuple(logits.shape)}")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"splits: need 1 <= splits <= N, got splits={splits}, N={n}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits: contains NaN or inf")
    log_p = torch.log_softmax(logits.double(), dim=1)
    p = log_p.exp()
    scores = []
    for k in range(splits):
        part_p, part_log_p = p[k * n // splits:(k + 1) * n // splits], log_p[k * n // splits:(k + 1) * n // splits]
        log_marginal = part_p.mean(dim=0).clamp_min(torch.finfo(torch.float64).tiny).log()
        kl = (part_p * (part_log_p - log_marginal)).sum(dim=1).mean()
        scores.append(kl.exp())
    scores_t = torch.stack(scores)
    return float(scores_t.mean()), float(scores_t.std(correction=0)) if splits > 1 else 0.0


class InceptionScore(_FeatureNetMixin, Metric):
    """IS over uint8 RGB images (N, 3, H, W); ``compute()`` returns (mean, std) tensors.

    Default network: torch-fidelity's InceptionV3 (``weights-inception-2015-12-05-6726825d.pth``),
    1008 unbiased logits, TF1 resize. Logits are kept (concatenated across ranks under DDP)
    because the score is not a sum over samples.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    _net_name = "is"

    def __init__(
        self,
        splits: int = 10,
        feature_extractor: nn.Module | None = None,
        weights: str | os.PathLike | None = None,
        feature_batch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if splits < 1:
            raise ValueError(f"splits: expected >= 1, got {splits}")
        self.splits = splits
        self._init_feature_net(feature_extractor, weights, feature_batch_size)
        self.add_state("logits", [], dist_reduce_fx="cat")

    def update(self, images: Tensor) -> None:
        _check_uint8(images, "images", "N 3 H W")
        self.logits.append(self.extract_features(images))

    def compute(self) -> tuple[Tensor, Tensor]:
        if not self.logits:
            raise ValueError("InceptionScore: no images were added")
        mean, std = inception_score_from_logits(dim_zero_cat(self.logits), self.splits)
        return torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)


class DeltaInceptionScore(_FeatureNetMixin, Metric):
    """CMM-Net's Delta-IS = |IS(generated) - IS(real)|; ``update(images, real=...)``.

    ``compute()`` returns ``{"IS": ..., "IS_real": ..., "delta_IS": ...}`` (means over splits).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    _net_name = "is"

    def __init__(
        self,
        splits: int = 10,
        feature_extractor: nn.Module | None = None,
        weights: str | os.PathLike | None = None,
        feature_batch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if splits < 1:
            raise ValueError(f"splits: expected >= 1, got {splits}")
        self.splits = splits
        self._init_feature_net(feature_extractor, weights, feature_batch_size)
        self.add_state("fake_logits", [], dist_reduce_fx="cat")
        self.add_state("real_logits", [], dist_reduce_fx="cat")

    def update(self, images: Tensor, real: bool) -> None:
        _check_uint8(images, "images", "N 3 H W")
        (self.real_logits if real else self.fake_logits).append(self.extract_features(images))

    def compute(self) -> dict[str, Tensor]:
        if not self.fake_logits or not self.real_logits:
            raise ValueError("DeltaInceptionScore: needs both generated and real images")
        fake, _ = inception_score_from_logits(dim_zero_cat(self.fake_logits), self.splits)
        real, _ = inception_score_from_logits(dim_zero_cat(self.real_logits), self.splits)
        as_t: Callable[[float], Tensor] = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return {"IS": as_t(fake), "IS_real": as_t(real), "delta_IS": as_t(abs(fake - real))}


def inception_score(
    images: Tensor,
    splits: int = 10,
    feature_extractor: nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    feature_batch_size: int = 32,
) -> tuple[float, float]:
    """IS (mean, std) of uint8 images (N, 3, H, W)."""
    metric = InceptionScore(splits, feature_extractor, weights, feature_batch_size).to(images.device)
    metric.update(images)
    mean, std = metric.compute()
    return float(mean), float(std)


def delta_inception_score(
    fake_images: Tensor,
    real_images: Tensor,
    splits: int = 10,
    feature_extractor: nn.Module | None = None,
    weights: str | os.PathLike | None = None,
    feature_batch_size: int = 32,
) -> dict[str, float]:
    """CMM-Net's Delta-IS of uint8 images; ``{"IS", "IS_real", "delta_IS"}``."""
    metric = DeltaInceptionScore(splits, feature_extractor, weights, feature_batch_size).to(fake_images.device)
    metric.update(fake_images, real=False)
    metric.update(real_images, real=True)
    return {k: float(v) for k, v in metric.compute().items()}


# --------------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------------


def _frames(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.ndim not in (4, 5) or x.shape[-3] != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected RGB images (N, 3, H, W) or videos (N, T, 3, H, W), got {got}")
    return rearrange(x, "n t c h w -> (n t) c h w") if x.ndim == 5 else x


def structural_similarity(preds: Tensor, target: Tensor, data_range: float = 255.0, reduction: str = "mean") -> Tensor:
    """SSIM of each generated frame against its real counterpart (Gaussian 11x11, sigma 1.5).

    ``preds``/``target``: uint8 or float, (N, 3, H, W) or (N, T, 3, H, W), same shape, H, W >= 11.
    ``data_range``: the value range of the pixels (255 for uint8). ``reduction``: "mean" or
    "none" (one value per frame, float64).
    """
    p, t = _frames(preds, "preds"), _frames(target, "target")
    if preds.shape != target.shape:
        raise ValueError(f"preds and target: shapes differ, {tuple(preds.shape)} vs {tuple(target.shape)}")
    if min(p.shape[-2:]) < SSIM_KERNEL_SIZE:
        raise ValueError(f"preds: frames must be at least {SSIM_KERNEL_SIZE}x{SSIM_KERNEL_SIZE} for SSIM, got {tuple(p.shape[-2:])}")
    if data_range <= 0:
        raise ValueError(f"data_range: expected > 0, got {data_range}")
    if p.dtype == torch.uint8 and data_range != 255.0:
        raise ValueError(f"data_range: uint8 frames span 0..255, got data_range={data_range}")
    p, t = p.double(), t.double()
    if torch.maximum(p.max(), t.max()) - torch.minimum(p.min(), t.min()) > data_range:
        raise ValueError(f"data_range={data_range} is smaller than the range of the pixel values")
    values = structural_similarity_index_measure(
        p, t, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE, data_range=data_range, reduction="none"
    )
    if reduction == "none":
        return values
    if reduction == "mean":
        return values.mean()
    raise ValueError(f"reduction: expected 'mean' or 'none', got {reduction!r}")


class StructuralSimilarity(Metric):
    """Mean per-frame SSIM over everything added; ``update(preds, target)``, see
    :func:`structural_similarity`. Sum/count states, DDP-safe."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, data_range: float = 255.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_range = data_range
        self.add_state("ssim_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        values = structural_similarity(preds, target, self.data_range, reduction="none")
        self.ssim_sum += values.sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError("StructuralSimilarity: no frames were added")
        return self.ssim_sum / self.count
