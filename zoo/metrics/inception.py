"""InceptionV3 of the TensorFlow 2015-12-05 graph, as used for FID and the Inception Score.

One architecture serves both published PyTorch conversions of that graph; their state dicts
have the same keys (``Conv2d_1a_3x3.conv.weight`` ... ``Mixed_7c.branch_pool.bn.*``,
``fc.weight`` (1008, 2048), ``fc.bias``), so either loads with ``load_state_dict(strict=True)``:

* ``pt_inception-2015-12-05-6726825d.pth`` (mseitzer/pytorch-fid, ``fid_inception_v3``): the FID
  network of record. The REACT challenge's FID is ``python -m pytorch_fid`` on it (B23 README).
* ``weights-inception-2015-12-05-6726825d.pth`` (toshas/torch-fidelity, also torchmetrics'
  default): the Inception Score network of record.

The two differ in input handling, which changes the numbers, so each preprocessing is kept:

* ``"pytorch-fid"``: ``x/255``, ``F.interpolate(299, bilinear, align_corners=False)``, ``2x-1``
  (pytorch-fid ``src/pytorch_fid/inception.py`` ``InceptionV3.forward``).
* ``"torch-fidelity"``: TF1 ``resize_bilinear`` (no half-pixel offset) on 0..255 values, then
  ``(x-128)/128`` (torch-fidelity ``feature_extractor_inceptionv3.py``).

Outputs: ``"pool3"`` (N, 2048) for FID; ``"logits_unbiased"`` (N, 1008) = ``pool3 @ fc.weight.T``
for the IS, as in Salimans et al.'s TF code (``softmax/logits/MatMul`` without the bias) and
torch-fidelity's ``logits_unbiased``; ``"logits"`` adds the bias.

Blocks A/C/E use TF's average pooling (padding not counted) and ``Mixed_7c`` a max pool in its
pool branch: the quirks of the 2015 graph that pytorch-fid's ``FIDInception*`` patches reproduce.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

Preprocessing = Literal["pytorch-fid", "torch-fidelity"]
InceptionOutput = Literal["pool3", "logits_unbiased", "logits"]

INCEPTION_INPUT_SIZE = 299
NUM_INCEPTION_CLASSES = 1008  # the 2015-12-05 graph has 1008 outputs (1000 classes + 8 unused)


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3, TF's value) + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's SAME average pool divides by the number of real (unpadded) inputs.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], dim=1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (``Mixed_6a``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = layer(b7d)
        return torch.cat([self.branch1x1(x), b7, b7d, self.branch_pool(_tf_avg_pool(x))], dim=1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (``Mixed_7a``)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """Expanded-filter-bank block; ``pool="max"`` is the 2015 graph's ``Mixed_7c`` (pytorch-fid
    ``FIDInceptionE_2``: "likely an error" in that graph, kept for comparable numbers)."""

    def __init__(self, in_channels: int, pool: Literal["avg", "max"]) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], dim=1)
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, b3d, self.branch_pool(pooled)], dim=1)


def resize_bilinear_tf1(images: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)``: output pixel ``i`` samples input
    coordinate ``i * in/out`` (no half-pixel offset), neighbours clamped at the last row/column.

    torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` reproduces this; the IS of
    record depends on it. ``images``: float (N, C, H, W)."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"resize_bilinear_tf1: expected float images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    _, _, height, width = images.shape

    def axis(in_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(size, dtype=torch.float64, device=images.device) * (in_size / size)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=in_size - 1)
        return lo, hi, (src - lo).to(images.dtype)

    y_lo, y_hi, dy = axis(height)
    x_lo, x_hi, dx = axis(width)
    top = images[:, :, y_lo]
    bottom = images[:, :, y_hi]
    rows = top + (bottom - top) * dy.view(1, 1, -1, 1)
    left, right = rows[..., x_lo], rows[..., x_hi]
    return left + (right - left) * dx.view(1, 1, 1, -1)


class InceptionV3(nn.Module):
    """The 2015-12-05 InceptionV3 graph, taking uint8 RGB images (N, 3, H, W) of any size.

    Key names match both published conversions (module docstring), so
    ``load_state_dict(torch.load(file, weights_only=True), strict=True)`` works for either.
    """

    def __init__(self, output: InceptionOutput = "pool3", preprocessing: Preprocessing = "pytorch-fid") -> None:
        super().__init__()
        if output not in ("pool3", "logits_unbiased", "logits"):
            raise ValueError(f"output must be 'pool3', 'logits_unbiased' or 'logits', got {output!r}")
        if preprocessing not in ("pytorch-fid", "torch-fidelity"):
            raise ValueError(f"preprocessing must be 'pytorch-fid' or 'torch-fidelity', got {preprocessing!r}")
        self.output = output
        self.preprocessing = preprocessing
        self.num_features = 2048 if output == "pool3" else NUM_INCEPTION_CLASSES

        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, NUM_INCEPTION_CLASSES)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) in 0..255 -> float (N, 3, 299, 299) in the graph's input range."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"InceptionV3: expected uint8 RGB images (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        x = images.to(self.fc.weight.dtype)
        if self.preprocessing == "pytorch-fid":
            x = F.interpolate(x / 255.0, size=(INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE), mode="bilinear", align_corners=False)
            return 2.0 * x - 1.0
        x = resize_bilinear_tf1(x, INCEPTION_INPUT_SIZE)
        return (x - 128.0) / 128.0

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed input -> 2048-d global average pool (pytorch-fid block 3)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return rearrange(F.adaptive_avg_pool2d(x, 1), "n c 1 1 -> n c")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.pool3(self.preprocess(images))
        if self.output == "pool3":
            return features
        logits = features @ self.fc.weight.T
        return logits if self.output == "logits_unbiased" else logits + self.fc.bias
