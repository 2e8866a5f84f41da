"""Sinusoidal and periodic positional encodings, batch-first (B, T, C).

* :func:`sinusoidal_table` is Eq. 4 of ReactFace (Vaswani et al.'s sinusoid): even channels
  ``sin(t / 10000^(2i/d))``, odd channels ``cos(t / 10000^(2i/d))``.
* :class:`PeriodicPositionalEncoding` is FaceFormer's PPE as used by ReactFace's SpeakFormer
  (RF ``model/utils.py::PeriodicPositionalEncoding``): the same sinusoid over ``period``
  positions, tiled, so position ``t`` is encoded as ``t mod period``.

Unlike RF, tables are computed for the requested length on the fly (no ``max_seq_len`` cap;
RF inherits FaceFormer's fixed 751/5000-row tables, FaceFormer issue #48).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_table", "SinusoidalPositionalEncoding", "PeriodicPositionalEncoding"]


def sinusoidal_table(
    positions: torch.Tensor, dim: int, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Eq. 4 for integer or real ``positions`` (any shape) -> ``positions.shape + (dim,)``.

    Computed in float32 (float64 for positions beyond 2**24) and cast to ``dtype`` at the end.
    """
    if dim <= 0 or dim % 2:
        raise ValueError(f"dim must be a positive even number, got {dim}")
    work = torch.float64 if positions.numel() and positions.abs().max() > 2**24 else torch.float32
    pos = positions.to(work).unsqueeze(-1)
    inv_freq = torch.exp(
        torch.arange(0, dim, 2, dtype=work, device=positions.device) * (-math.log(10000.0) / dim)
    )
    angles = pos * inv_freq
    table = torch.stack((angles.sin(), angles.cos()), dim=-1)  # (..., dim/2, 2): interleave
    return table.flatten(-2).to(dtype)


class SinusoidalPositionalEncoding(nn.Module):
    """``x + PE(offset + t)`` with Eq. 4; ``offset`` lets a window keep its global time index
    (RF ``Decoder`` takes the last W rows of a full-length table)."""

    def __init__(self, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"dim must be a positive even number, got {dim}")
        self.dim = dim
        self.dropout = nn.Dropout(dropout)

    def table(self, length: int, *, offset: int = 0, device=None, dtype=torch.float32) -> torch.Tensor:
        positions = torch.arange(offset, offset + length, device=device)
        return sinusoidal_table(positions, self.dim, dtype=dtype)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_btc(x, self.dim)
        return self.dropout(x + self.table(x.shape[1], offset=offset, device=x.device, dtype=x.dtype))


class PeriodicPositionalEncoding(nn.Module):
    """``x + PE(t mod period)``: FaceFormer/ReactFace PPE (RF ``model/utils.py``), dropout 0.1 in RF."""

    def __init__(self, dim: int, period: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim <= 0 or dim % 2:
            raise ValueError(f"dim must be a positive even number, got {dim}")
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.dim, self.period = dim, period
        self.dropout = nn.Dropout(dropout)

    def table(self, length: int, *, offset: int = 0, device=None, dtype=torch.float32) -> torch.Tensor:
        positions = torch.arange(offset, offset + length, device=device) % self.period
        return sinusoidal_table(positions, self.dim, dtype=dtype)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        _check_btc(x, self.dim)
        return self.dropout(x + self.table(x.shape[1], offset=offset, device=x.device, dtype=x.dtype))


def _check_btc(x: torch.Tensor, dim: int) -> None:
    if x.ndim != 3 or x.shape[-1] != dim:
        raise ValueError(f"expected a (batch, time, {dim}) tensor, got shape {tuple(x.shape)}")
