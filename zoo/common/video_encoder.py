"""ReactFace's speaker video encoder: a 3D-conv stack, spatial mean pool, Linear (RF ``model/video_encoder.py``).

Layer plan (RF ``ConvBlock``, C = ``feature_dim``, stem = C/4 by default), each conv followed by
instance norm and ReLU::

    conv1 3->stem  k(5,7,7) s(1,2,2)     224 -> 112
    maxpool        k(1,3,3) s(1,2,2)     112 -> 55
    conv2 stem->C  k(5,7,7) s(1,2,2)      55 -> 28
    conv3 C->C     k(3,3,3) s(1,2,2)      28 -> 14
    conv4 C->C     k(3,3,3) s1, residual  14 -> 14
    conv5 C->C     k(3,3,3) s(1,2,2)      14 -> 7
    mean over H, W; Linear(C, C)         -> (B, T, C)

Differences from RF, on purpose:

* ``causal=True`` pads time only on the past side (k_t - 1 zero frames before the clip), so
  output frame t depends on input frames <= t and a streaming encoder can be exact. RF pads
  both sides ("same"), so each output sees ~7 future frames.
* In causal mode instance norm takes its statistics at frame t over frames <= t (cumulative)
  instead of over the whole (T, H, W) clip as RF's ``InstanceNorm3d`` does: clip-level
  statistics leak the future into every frame. Non-causal mode keeps RF's ``InstanceNorm3d``.
* RF resizes conv2's output to 28x28 when it is not (a 224-input assumption); the spatial mean
  pool makes the output independent of the resolution anyway, so any H, W >= 32 is accepted
  and nothing is resized.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

__all__ = [
    "VideoEncoder", "CausalInstanceNorm3d", "ConvNormReLU3d", "MIN_FRAME_SIZE", "check_video",
    "causal_moments", "normalise_relu", "frame_max_pool",
]

MIN_FRAME_SIZE = 32


Moments = tuple[torch.Tensor, torch.Tensor, int]  # running (sum, sum of squares) per (B, C), frames seen


def causal_moments(
    y: torch.Tensor, eps: float, past: Moments | None = None
) -> tuple[torch.Tensor, torch.Tensor, Moments]:
    """Per (B, C, t) mean and 1/std of a (B, C, T, H, W) tensor over frames <= t and all H, W,
    in float32 (under bf16 autocast the conv output is bf16), continuing the running sums ``past``
    of earlier frames (streaming). Returns (mean, scale, the running sums after the last frame)."""
    area = y.shape[-2] * y.shape[-1]
    flat = y.flatten(-2)
    sums = flat.sum(dim=-1, dtype=torch.float32)
    flat32 = flat.float()
    squares = torch.linalg.vecdot(flat32, flat32)  # one fused pass instead of square() then sum()
    seen = 0
    csum, csq = sums.cumsum(dim=-1), squares.cumsum(dim=-1)
    if past is not None:
        csum, csq, seen = csum + past[0][..., None], csq + past[1][..., None], past[2]
    count = torch.arange(seen + 1, seen + y.shape[2] + 1, device=y.device, dtype=torch.float32) * area
    mean = csum / count
    scale = torch.rsqrt((csq / count - mean.square()).clamp_min(0.0) + eps)
    return mean, scale, (csum[..., -1], csq[..., -1], seen + y.shape[2])


def normalise_relu(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor, relu: bool = True) -> torch.Tensor:
    """``relu((y - mean) * scale)`` per (B, C, t), computed in float32 as y*scale - mean*scale
    (one fused pass), returned in y's dtype."""
    shift = (-mean * scale)[..., None, None]
    out = torch.addcmul(shift, y, scale[..., None, None])  # float32 (type promotion)
    return (out.relu_() if relu else out).to(y.dtype)


def frame_max_pool(x: torch.Tensor) -> torch.Tensor:
    """RF's ``MaxPool3d((1, 3, 3), stride (1, 2, 2))`` (no padding) on (B, C, T, H, W).

    Without autograd it is computed as two separable 3-tap strided maxima (bit-identical,
    about 4x faster on CPU than PyTorch's max_pool3d kernel); with autograd it is max_pool3d,
    whose gradient goes to one element on ties."""
    if x.requires_grad:
        return F.max_pool3d(x, kernel_size=(1, 3, 3), stride=(1, 2, 2))
    for dim in (-1, -2):
        n = (x.shape[dim] - 3) // 2 + 1
        taps = [x.narrow(dim, i, 2 * n - 1)[(slice(None),) * (x.ndim + dim) + (slice(None, None, 2),)]
                for i in range(3)]
        x = torch.maximum(torch.maximum(taps[0], taps[1]), taps[2])
    return x


class CausalInstanceNorm3d(nn.Module):
    """Instance norm of a (B, C, T, H, W) tensor whose statistics at frame t cover frames <= t
    (and all of H, W): RF's ``InstanceNorm3d`` (no affine) restricted to the past.

    Per-frame statistics would be simpler but degenerate where the last stages are 1x1 (a
    32x32 input), where they would zero every feature.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, scale, _ = causal_moments(x, self.eps)
        return normalise_relu(x, mean, scale, relu=False)


class ConvNormReLU3d(nn.Module):
    """Conv3d (no bias, as RF) + instance norm + ReLU, with causal or centred temporal padding."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
        spatial_stride: int, causal: bool,
    ) -> None:
        super().__init__()
        kt, kh, kw = kernel
        self.causal = causal
        self.time_pad = kt - 1 if causal else 0
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel, stride=(1, spatial_stride, spatial_stride),
            padding=(0 if causal else kt // 2, kh // 2, kw // 2), bias=False,
        )
        self.norm = CausalInstanceNorm3d() if causal else nn.InstanceNorm3d(out_channels)

    def forward(self, x: torch.Tensor, *, pool: bool = False) -> torch.Tensor:
        """``pool=True`` appends :func:`frame_max_pool`. In causal mode it is applied to the conv
        output before normalise + ReLU (both monotone per channel and frame, so the max commutes
        with them exactly): the elementwise work runs on a 4x smaller tensor."""
        if self.time_pad:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, 0))  # zeros before the first frame only
        return self.normalise(self.conv(x), pool=pool)[0]

    def normalise(self, y: torch.Tensor, *, pool: bool = False, past: Moments | None = None
                  ) -> tuple[torch.Tensor, Moments | None]:
        """norm + ReLU (+ pool) of the conv output, and the running sums after its last frame.
        ``past``: the running sums of the frames before ``y`` (streaming; causal mode only)."""
        if not self.causal:
            if past is not None:
                raise ValueError("running statistics need a causal block (clip-level instance norm)")
            out = F.relu(self.norm(y))
            return (frame_max_pool(out) if pool else out), None
        mean, scale, moments = causal_moments(y, self.norm.eps, past)
        return normalise_relu(frame_max_pool(y) if pool else y, mean, scale), moments


class VideoEncoder(nn.Module):
    """(B, T, 3, H, W) frames in [-1, 1] -> (B, T, feature_dim) per-frame speaker features."""

    def __init__(
        self,
        feature_dim: int = 128,
        *,
        stem_channels: int | None = None,
        causal: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if feature_dim < 1:
            raise ValueError(f"feature_dim must be >= 1, got {feature_dim}")
        stem = stem_channels if stem_channels is not None else max(feature_dim // 4, 1)
        if stem < 1:
            raise ValueError(f"stem_channels must be >= 1, got {stem}")
        self.feature_dim, self.causal, self.in_channels = feature_dim, causal, in_channels
        self.conv1 = ConvNormReLU3d(in_channels, stem, (5, 7, 7), 2, causal)
        self.conv2 = ConvNormReLU3d(stem, feature_dim, (5, 7, 7), 2, causal)
        self.conv3 = ConvNormReLU3d(feature_dim, feature_dim, (3, 3, 3), 2, causal)
        self.conv4 = ConvNormReLU3d(feature_dim, feature_dim, (3, 3, 3), 1, causal)
        self.conv5 = ConvNormReLU3d(feature_dim, feature_dim, (3, 3, 3), 2, causal)
        self.fc = nn.Linear(feature_dim, feature_dim)

    @property
    def receptive_field(self) -> int:
        """Frames of input each output frame sees (past only when causal; centred otherwise)."""
        return 1 + (5 - 1) * 2 + (3 - 1) * 3

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        check_video(video, self.in_channels, name="video")
        x = rearrange(video, "b t c h w -> b c t h w")
        x = self.conv1(x, pool=True)
        x = self.conv3(self.conv2(x))
        x = x + self.conv4(x)  # RF: x + relu(in4(conv4(x)))
        x = self.conv5(x)
        x = x.mean(dim=(-2, -1))
        return self.fc(rearrange(x, "b c t -> b t c"))


def check_video(video: torch.Tensor, channels: int = 3, *, name: str = "speaker_video") -> None:
    """Shape, dtype and [-1, 1] range check with a message that says what was expected."""
    if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != channels:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"{name} must be a (batch, time, {channels}, H, W) tensor, got {shape}")
    if not video.is_floating_point():
        raise ValueError(
            f"{name} must be floating point in [-1, 1] (uint8 frames need (x / 127.5) - 1), "
            f"got dtype {video.dtype}"
        )
    h, w = video.shape[-2:]
    if min(h, w) < MIN_FRAME_SIZE:
        raise ValueError(f"{name} frames must be at least {MIN_FRAME_SIZE}x{MIN_FRAME_SIZE}, got {h}x{w}")
    if video.shape[1] < 1:
        raise ValueError(f"{name} has no frames (time dimension is 0)")
    lo, hi = torch.aminmax(video.detach())
    if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(
            f"{name} must be normalised to [-1, 1] (RF: Normalize(mean 0.5, std 0.5)), "
            f"got values in [{float(lo):.3g}, {float(hi):.3g}]"
        )
