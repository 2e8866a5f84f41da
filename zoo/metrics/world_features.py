"""FID_world: a Fréchet distance in the feature space of a small face network trained on real faces
of the data at hand — an offline stand-in for FID, **not** FID.

FID needs pytorch-fid's ImageNet InceptionV3 weights (:mod:`zoo.metrics.feature_nets`), which
cannot always be fetched (air-gapped nodes, this project's CI). FID_world keeps FID's recipe
(Gaussian fit to features of generated and of real images, Fréchet distance between the two,
:func:`zoo.metrics.realism.frechet_distance_from_features`) but swaps the feature network for
:class:`WorldFaceNet`, a 4-to-6-block CNN trained, with a fixed seed, to tell the people apart
(identity classification) and to locate their 68 landmarks (regression) on the *real* training
faces. Its features (global average pool of the last convolution, like Inception's pool3) are
therefore sensitive to what makes these faces these faces: identity/appearance and geometry.

Not comparable to published FIDs: a different network, trained on a few thousand faces of one
dataset, with its own feature scale. Compare FID_world only between models evaluated on the same
data with the same network (same settings and training data = same cache key), as
``benchmarks/dyadgan_eval.py`` does for the two-stage model and the one-stage baseline.

The trained network is cached under ``$FACEZOO_HOME/cache/world_features`` keyed by a hash of the
training arrays and the settings, written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from datamodules.features.face_state import NUM_LANDMARKS
from datamodules.features.io import atomic_path
from datamodules.home import facezoo_home
from zoo.metrics.realism import frechet_distance_from_features

__all__ = [
    "WorldFaceNet",
    "train_world_face_net",
    "cached_world_face_net",
    "load_world_face_net",
    "extract_world_features",
    "world_fid",
    "WORLD_FEATURES_VERSION",
]

WORLD_FEATURES_VERSION = 1


def _uint8_nchw(images, name: str = "images") -> Tensor:
    """uint8 RGB (N, 3, S, S) from a tensor or array in (N, 3, S, S) or (N, S, S, 3)."""
    x = torch.as_tensor(images) if not isinstance(images, Tensor) else images
    if x.dtype != torch.uint8 or x.ndim != 4 or 3 not in (x.shape[1], x.shape[-1]):
        raise ValueError(f"{name}: expected uint8 RGB images (N, 3, S, S) or (N, S, S, 3), got {x.dtype} {tuple(x.shape)}")
    return x if x.shape[1] == 3 else rearrange(x, "n h w c -> n c h w")


class WorldFaceNet(nn.Module):
    """uint8 RGB faces (N, 3, S, S) -> features (N, ``num_features``).

    Conv3x3-BatchNorm-ReLU blocks, stride 2, from S down to 4x4 (widths ``width * min(2^i, 4)``),
    then a global average pool: the features. Two heads train them: identity logits and the 68
    landmarks (standardised x, y). Inputs of another size are resized bilinearly to S first.
    """

    def __init__(self, image_size: int = 64, num_identities: int = 2, width: int = 16) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size: expected a power of two >= 8, got {image_size}")
        if num_identities < 1 or width < 1:
            raise ValueError(f"num_identities, width: expected >= 1, got {num_identities}, {width}")
        self.image_size, self.num_identities, self.width = image_size, num_identities, width
        blocks, channels = [], 3
        for i in range(int(math.log2(image_size // 4))):
            out = width * min(2**i, 4)
            blocks += [nn.Conv2d(channels, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True),
                       nn.Conv2d(out, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
            channels = out
        self.body = nn.Sequential(*blocks)
        self.num_features = channels
        self.identity_head = nn.Linear(channels, num_identities)
        self.landmark_head = nn.Sequential(nn.Linear(channels, 256), nn.ReLU(True), nn.Linear(256, NUM_LANDMARKS * 2))
        # landmark standardisation of the training set (x, y per point), saved with the weights
        self.register_buffer("landmark_mean", torch.zeros(NUM_LANDMARKS * 2))
        self.register_buffer("landmark_std", torch.ones(NUM_LANDMARKS * 2))

    def config(self) -> dict:
        return {"image_size": self.image_size, "num_identities": self.num_identities, "width": self.width}

    def _prepare(self, images: Tensor) -> Tensor:
        x = _uint8_nchw(images).to(self.landmark_mean.device).float().div(127.5).sub(1.0)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    def pooled(self, x: Tensor) -> Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, images: Tensor) -> Tensor:
        """Features (N, num_features) of uint8 images, float32."""
        return self.pooled(self._prepare(images))

    def predict(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(identity logits (N, I), landmarks (N, 68, 2) in the training images' pixels)."""
        features = self(images)
        landmarks = self.landmark_head(features) * self.landmark_std + self.landmark_mean
        return self.identity_head(features), rearrange(landmarks, "n (k c) -> n k c", c=2)


def _check_training_data(faces, identities, landmarks) -> tuple[Tensor, Tensor, Tensor]:
    images = _uint8_nchw(faces, "faces")
    n, size = images.shape[0], images.shape[-1]
    if images.shape[-2] != size:
        raise ValueError(f"faces: expected square images, got {tuple(images.shape)}")
    ids = torch.as_tensor(np.asarray(identities)).long()
    points = torch.as_tensor(np.asarray(landmarks, dtype=np.float32))
    if ids.shape != (n,) or (ids < 0).any():
        raise ValueError(f"identities: expected ({n},) non-negative ints, got {tuple(ids.shape)}")
    if points.shape != (n, NUM_LANDMARKS, 2) or not torch.isfinite(points).all():
        raise ValueError(f"landmarks: expected finite ({n}, {NUM_LANDMARKS}, 2) pixel coordinates, got {tuple(points.shape)}")
    if n < 16:
        raise ValueError(f"faces: need at least 16 training faces, got {n}")
    return images, ids, points


def train_world_face_net(faces, identities, landmarks, *, steps: int = 400, batch_size: int = 64, lr: float = 2e-3,
                         width: int = 16, seed: int = 0) -> WorldFaceNet:
    """Train :class:`WorldFaceNet` on real faces: uint8 (N, S, S, 3) or (N, 3, S, S), identity
    labels (N,) and pixel landmarks (N, 68, 2). Deterministic for a given seed (own generator,
    the global RNG is left untouched); returns the network in eval mode, gradients off.

    Loss: cross-entropy of the identity (when there are >= 2 people) + MSE of the standardised
    landmarks; Adam with a cosine learning-rate decay over ``steps``.
    """
    images, ids, points = _check_training_data(faces, identities, landmarks)
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"steps, batch_size, lr: expected positive values, got {steps}, {batch_size}, {lr}")
    flat = rearrange(points, "n k c -> n (k c)")
    num_identities = int(ids.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = WorldFaceNet(images.shape[-1], max(num_identities, 1), width)
    net.landmark_mean.copy_(flat.mean(dim=0))
    net.landmark_std.copy_(flat.std(dim=0).clamp_min(1e-3))
    target = (flat - net.landmark_mean) / net.landmark_std
    net.train()
    with torch.enable_grad():  # callers may be inside torch.no_grad() (evaluation code)
        _fit(net, images, ids, target, num_identities, steps, batch_size, lr, seed)
    return net.eval().requires_grad_(False)


def _fit(net: WorldFaceNet, images: Tensor, ids: Tensor, target: Tensor, num_identities: int, steps: int,
         batch_size: int, lr: float, seed: int) -> None:
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    order = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, len(images))
    permutation, position = torch.randperm(len(images), generator=order), 0
    for _ in range(steps):
        if position + batch_size > len(images):
            permutation, position = torch.randperm(len(images), generator=order), 0
        rows = permutation[position:position + batch_size]
        position += batch_size
        features = net.pooled(net._prepare(images[rows]))
        loss = F.mse_loss(net.landmark_head(features), target[rows])
        if num_identities > 1:
            loss = loss + F.cross_entropy(net.identity_head(features), ids[rows])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()


def _digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a.numpy() if isinstance(a, Tensor) else np.asarray(a))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    return facezoo_home() / "cache" / "world_features"


def cached_world_face_net(faces, identities, landmarks, *, cache_dir: str | os.PathLike | None = None,
                          **settings) -> WorldFaceNet:
    """:func:`train_world_face_net` once per (training arrays, settings), cached on disk.

    The file ``world-face-net-<key>.pt`` holds the state dict and the constructor settings; it is
    written to a temporary name then renamed, and loaded with ``weights_only=True``.
    """
    images, ids, points = _check_training_data(faces, identities, landmarks)
    unknown = set(settings) - {"steps", "batch_size", "lr", "width", "seed"}
    if unknown:
        raise ValueError(f"cached_world_face_net: unknown settings {sorted(unknown)}")
    key = hashlib.sha1(json.dumps({"version": WORLD_FEATURES_VERSION, "torch": torch.__version__.split("+")[0],
                                   "data": _digest(images, ids, points), **settings},
                                  sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / f"world-face-net-{key}.pt"
    if path.is_file():
        return load_world_face_net(path)
    net = train_world_face_net(images, ids, points, **settings)
    with atomic_path(path) as tmp:
        torch.save({"config": net.config(), "state_dict": net.state_dict()}, tmp)
    return net


def load_world_face_net(path: str | os.PathLike) -> WorldFaceNet:
    """A :class:`WorldFaceNet` saved by :func:`cached_world_face_net`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: world face network file not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"config", "state_dict"} <= set(state):
        raise ValueError(f"{path}: not a world face network file (expected 'config' and 'state_dict')")
    net = WorldFaceNet(**state["config"])
    net.load_state_dict(state["state_dict"], strict=True)
    return net.eval().requires_grad_(False)


@torch.no_grad()
def extract_world_features(net: nn.Module, images, batch_size: int = 256) -> Tensor:
    """Features (N, D) float64 of uint8 images, in chunks, with the network in eval mode."""
    x = _uint8_nchw(images)
    net.eval()
    return torch.cat([net(chunk).double().cpu() for chunk in x.split(batch_size)])


def world_fid(net: nn.Module, fake_images, real_images, batch_size: int = 256) -> float:
    """FID_world: Fréchet distance between Gaussians fitted to ``net``'s features of the generated
    and the real uint8 images. Not FID (see the module docstring)."""
    return frechet_distance_from_features(extract_world_features(net, fake_images, batch_size),
                                          extract_world_features(net, real_images, batch_size))
