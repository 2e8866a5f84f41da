"""Affect-shape dictionary (Interactive GAN, arXiv 1801.09092, Sec. 3.3) and its z sampler.

Fitting, on training frames (shape parameters z of the agent, the partner's affect before them):

1. **Affect clustering** (Sec. 3.3.1): k-means of z into 8 clusters. The paper names each cluster
   after an affective state without saying how; here cluster k gets the affect a maximising the
   total co-occurrence ``C[k, a]`` = number of its frames whose partner's dominant affect is a
   (Hungarian assignment, a one-to-one naming).
2. **Inter-affect clustering** (Sec. 3.3.2): Ward agglomerative clustering inside each affect
   cluster, cut into the largest number of sub-clusters (at most ``max_subclusters``; the paper
   found 3 to 9) whose every member count is at least ``min_cluster_size`` (the paper's "at
   least 100 videos"). An affect cluster smaller than ``min_cluster_size`` stays one sub-cluster.
   Linkage runs on at most ``max_linkage_points`` members; every member is then assigned to the
   nearest sub-cluster centroid and the size rule is checked on those full counts.

Sampling (Sec. 3.3.2, 4.3): for frame n with partner affect a, take the sub-cluster of a whose
centre is closest to the previous z, draw ``candidates`` members of it and keep the one closest
to the previous z; the step from the previous z is limited per parameter to ``step_limit``
("the possible variation between two adjacent frames" of the training data: a high quantile of
|z_t - z_{t-1}|). The first frame draws a sub-cluster of a in proportion to its size.

State lives in buffers, so a fitted dictionary travels in the model's checkpoint.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

__all__ = ["AffectShapeDictionary", "adjacent_step_limit"]


def adjacent_step_limit(sequences: list[np.ndarray], quantile: float = 0.95) -> np.ndarray:
    """Per-parameter ``quantile`` of |z_t - z_{t-1}| over training sequences (each (T, P))."""
    steps = [np.abs(np.diff(np.asarray(s, dtype=np.float64), axis=0)) for s in sequences if len(s) > 1]
    if not steps:
        raise ValueError("sequences: need at least one sequence of 2 or more frames")
    return np.quantile(np.concatenate(steps), quantile, axis=0).astype(np.float32)


class AffectShapeDictionary(nn.Module):
    """Affect -> sub-clusters of shape parameters, and the smooth z sampler over them."""

    _resizable = ("centres", "sub_affect", "sub_sizes", "members", "member_counts", "step_limit")

    def __init__(self, shape_dim: int, num_affects: int = 8, min_cluster_size: int = 100, max_subclusters: int = 9,
                 candidates: int = 8, max_members: int = 512, max_linkage_points: int = 2000) -> None:
        super().__init__()
        if min(shape_dim, num_affects, min_cluster_size, max_subclusters, candidates, max_members, max_linkage_points) < 1:
            raise ValueError("AffectShapeDictionary: all sizes must be >= 1")
        self.shape_dim, self.num_affects = shape_dim, num_affects
        self.min_cluster_size, self.max_subclusters = min_cluster_size, max_subclusters
        self.candidates, self.max_members, self.max_linkage_points = candidates, max_members, max_linkage_points
        self.register_buffer("centres", torch.zeros(0, shape_dim))  # (S, P)
        self.register_buffer("sub_affect", torch.zeros(0, dtype=torch.long))  # (S,)
        self.register_buffer("sub_sizes", torch.zeros(0, dtype=torch.long))  # (S,) training frames per sub-cluster
        self.register_buffer("members", torch.zeros(0, 0, shape_dim))  # (S, M, P) stored members (padded)
        self.register_buffer("member_counts", torch.zeros(0, dtype=torch.long))  # (S,) valid rows of members
        self.register_buffer("step_limit", torch.zeros(0))  # (P,)
        self.register_buffer("cluster_affect", torch.zeros(num_affects, dtype=torch.long))  # k-means cluster -> affect

    @property
    def fitted(self) -> bool:
        return self.centres.shape[0] > 0

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fitted dictionary's buffer sizes depend on the data: take them from the checkpoint.
        for name in self._resizable:
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, shapes, affect, step_limit, seed: int = 0) -> AffectShapeDictionary:
        """Fit on shapes (N, P), partner affect (N, A) (likelihoods or one-hot) and ``step_limit`` (P,)."""
        shapes = np.asarray(shapes, dtype=np.float64)
        affect = np.asarray(affect, dtype=np.float64)
        step_limit = np.asarray(step_limit, dtype=np.float64)
        if shapes.ndim != 2 or shapes.shape[1] != self.shape_dim:
            raise ValueError(f"shapes: expected (N, {self.shape_dim}), got {shapes.shape}")
        if affect.shape != (len(shapes), self.num_affects):
            raise ValueError(f"affect: expected ({len(shapes)}, {self.num_affects}), got {affect.shape}")
        if step_limit.shape != (self.shape_dim,) or not (step_limit > 0).all():
            raise ValueError(f"step_limit: expected ({self.shape_dim},) positive values, got {step_limit.shape}")
        if not (np.isfinite(shapes).all() and np.isfinite(affect).all()):
            raise ValueError("shapes/affect: contain NaN or inf")
        if len(shapes) < self.num_affects:
            raise ValueError(f"shapes: need at least {self.num_affects} frames, got {len(shapes)}")
        rng = np.random.default_rng(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # kmeans2 warns about empty clusters; checked below
            _, labels = kmeans2(shapes, self.num_affects, minit="++", seed=rng, iter=50)
        counts = np.bincount(labels, minlength=self.num_affects)
        if (counts == 0).any():
            raise ValueError(f"shapes: k-means left {int((counts == 0).sum())} of {self.num_affects} clusters empty "
                             "(too few distinct shapes)")
        contingency = np.zeros((self.num_affects, self.num_affects))
        np.add.at(contingency, (labels, affect.argmax(axis=1)), 1)
        clusters, names = linear_sum_assignment(-contingency)
        cluster_affect = np.empty(self.num_affects, dtype=np.int64)
        cluster_affect[clusters] = names

        centres, sub_affect, sizes, member_sets = [], [], [], []
        for cluster in range(self.num_affects):
            points = shapes[labels == cluster]
            for sub in self._subclusters(points, rng):
                centres.append(sub.mean(axis=0))
                sub_affect.append(cluster_affect[cluster])
                sizes.append(len(sub))
                keep = sub if len(sub) <= self.max_members else sub[rng.choice(len(sub), self.max_members, replace=False)]
                member_sets.append(keep)
        width = max(len(m) for m in member_sets)
        members = np.stack([np.concatenate([m, np.repeat(m[:1], width - len(m), axis=0)]) for m in member_sets])
        self.centres = torch.tensor(np.array(centres), dtype=torch.float32)
        self.sub_affect = torch.tensor(sub_affect, dtype=torch.long)
        self.sub_sizes = torch.tensor(sizes, dtype=torch.long)
        self.members = torch.tensor(members, dtype=torch.float32)
        self.member_counts = torch.tensor([len(m) for m in member_sets], dtype=torch.long)
        self.step_limit = torch.tensor(step_limit, dtype=torch.float32)
        self.cluster_affect = torch.tensor(cluster_affect, dtype=torch.long)
        return self

    def _subclusters(self, points: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        if len(points) < 2 * self.min_cluster_size:
            return [points]
        sample = points if len(points) <= self.max_linkage_points else points[
            rng.choice(len(points), self.max_linkage_points, replace=False)]
        tree = linkage(sample, method="ward")
        for k in range(min(self.max_subclusters, len(points) // self.min_cluster_size), 1, -1):
            cut = fcluster(tree, k, criterion="maxclust")
            ids = np.unique(cut)
            centroids = np.stack([sample[cut == i].mean(axis=0) for i in ids])
            nearest = ((points[:, None] - centroids[None]) ** 2).sum(-1).argmin(axis=1)
            groups = [points[nearest == j] for j in range(len(ids))]
            if min(len(g) for g in groups) >= self.min_cluster_size:
                return groups
        return [points]

    def subclusters_per_affect(self) -> list[int]:
        """Number of sub-clusters of each affect (paper: 3 to 9)."""
        return torch.bincount(self.sub_affect, minlength=self.num_affects).tolist()

    # -- sampling --------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, affect: Tensor, num_samples: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """z sequences (B, K, T, P) for per-frame partner affect (B, T, A) (or (T, A) -> (1, K, T, P))."""
        if not self.fitted:
            raise RuntimeError("AffectShapeDictionary: not fitted (call fit, or load a checkpoint of a trained model)")
        if affect.ndim == 2:
            affect = affect[None]
        if affect.ndim != 3 or affect.shape[-1] != self.num_affects:
            raise ValueError(f"affect: expected (B, T, {self.num_affects}), got {tuple(affect.shape)}")
        if num_samples < 1:
            raise ValueError(f"num_samples: expected >= 1, got {num_samples}")
        device = self.centres.device
        batch, frames = affect.shape[:2]
        labels = affect.to(device).argmax(dim=-1).repeat_interleave(num_samples, dim=0)  # (N, T)
        n = labels.shape[0]
        rows = torch.arange(n, device=device)

        def draw(sub: Tensor, previous: Tensor | None) -> Tensor:
            count = self.member_counts[sub]
            picks = (torch.rand(n, self.candidates, generator=generator, device=device) * count[:, None]).long()
            options = self.members[sub[:, None], picks]  # (N, C, P)
            if previous is None:
                return options[:, 0]
            best = (options - previous[:, None]).square().sum(-1).argmin(dim=1)
            chosen = options[rows, best]
            return previous + torch.maximum(torch.minimum(chosen - previous, self.step_limit), -self.step_limit)

        # first frame: a sub-cluster of the current affect in proportion to its training size
        weights = (self.sub_affect[None] == labels[:, :1]).float() * self.sub_sizes[None].float()
        z = draw(torch.multinomial(weights, 1, generator=generator).squeeze(1), None)
        out = [z]
        for t in range(1, frames):
            distance = torch.cdist(z[:, None], self.centres[None].expand(n, -1, -1)).squeeze(1)
            distance = distance.masked_fill(self.sub_affect[None] != labels[:, t:t + 1], float("inf"))
            z = draw(distance.argmin(dim=1), z)
            out.append(z)
        return torch.stack(out, dim=1).reshape(batch, num_samples, frames, self.shape_dim)
