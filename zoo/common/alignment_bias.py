"""ReactFace's alignment-bias attention masks (paper Eq. 10-11), as float ``attn_mask`` tensors.

Paper Eq. 11 (1-indexed frames i and keys j, k keys per frame, period p)::

    B(i, j) = -floor((k*i - j) / (k*p))   for j <= k*i,   -inf otherwise

k = 1 is B^VIM (keys are speaker frames), k = 2 is B^MIM for wav2vec2 tokens (RF: 640 samples
per 25 fps frame / hop 320). In 1-indexed positions frame i owns keys k(i-1)+1 ... k*i, so
"j <= k*i" means "up to and including the frame's own last key". This module uses 0-indexed
positions, where frame f owns keys k*f ... k*f+k-1; the same rule reads::

    d = k*f + k - 1 - j;   B(f, j) = -floor(d / (k*p))  for d >= 0,   -inf for d < 0

so the frame's own k keys, and all keys of the p-1 frames before it, get bias 0 (for k = 1
this is exactly RF ``init_biased_mask``: ``-floor((i-j)/p)`` for j <= i).

Windowed masks (RF ``init_biased_mask2``): a window of W query frames aligned to the *last* W
frames of the keys, i.e. query i is frame ``num_keys/k - W + i``. With k = 1 this equals RF's
mask exactly. RF also applies the k = 1 mask to 2W audio tokens, which aligns query i to token
W+i, not to the frame's own tokens 2i, 2i+1 (so early queries see future audio); pass
``tokens_per_frame=2`` for the aligned version or ``tokens_per_frame=1`` to reproduce RF.

Per-head slopes (RF, after ALiBi, Press et al. 2022): head h multiplies the bias by
``2^(-8(h+1)/H)`` (2^-1 ... 2^-8 for 8 heads). Masks are added to the scaled scores
``QK^T/sqrt(d_k)`` by ``nn.MultiheadAttention`` (as in RF); Eq. 10 writes the bias inside
the scaling, a constant factor on the slope.

Bounded context (``context=C``, facezoo, for constant-cost streaming): keys of frames at least C
frames before the query frame are also -inf, so query frame f sees key frames f-C+1 ... f. A
model trained on C-frame crops (RF: 256) never sees more history than this anyway; with the
band in both the whole-clip and the streaming forward, the two agree exactly.

Shapes follow ``nn.MultiheadAttention``: (L, S) for one mask shared by all heads, (H, L, S)
per head, (B*H, L, S) per batch element and head (batch-major: row ``b*H + h``).
"""

from __future__ import annotations

import math

import torch
from einops import repeat

__all__ = [
    "alibi_slopes",
    "alignment_bias",
    "biased_causal_mask",
    "windowed_alignment_bias",
    "own_tokens_mask",
    "per_head",
    "expand_for_batch",
    "alignment_mask",
]


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi head slopes (Press et al.; RF ``init_biased_mask.get_slopes``): a geometric series
    starting at ``2^(-8/n)`` for n a power of two, interleaved for other head counts."""
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")

    def power_of_2(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_2(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]


def alignment_bias(
    num_queries: int,
    num_keys: int,
    period: int,
    *,
    tokens_per_frame: int = 1,
    query_offset: int = 0,
    context: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Eq. 11 (0-indexed, see module docstring) for query frames ``query_offset + i``: (L, S).

    ``tokens_per_frame`` = k keys per query frame (1 for VIM, 2 for wav2vec2 MIM);
    ``context`` = C masks key frames <= query frame - C (None: unbounded, as the paper).
    """
    _check_positive(num_queries=num_queries, num_keys=num_keys, period=period,
                    tokens_per_frame=tokens_per_frame)
    if query_offset < 0:
        raise ValueError(f"query_offset must be >= 0, got {query_offset}")
    k = tokens_per_frame
    frames = torch.arange(num_queries, device=device) + query_offset
    keys = torch.arange(num_keys, device=device)
    distance = (k * frames + k - 1)[:, None] - keys[None, :]
    bias = -torch.div(distance, k * period, rounding_mode="floor").to(dtype)
    blocked = distance < 0
    if context is not None:
        _check_positive(context=context)
        blocked = blocked | ((frames[:, None] - torch.div(keys, k, rounding_mode="floor")[None, :]) >= context)
    return bias.masked_fill(blocked, float("-inf"))


def biased_causal_mask(
    length: int, period: int, *, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """B^VIM over one sequence (self-attention): ``-floor((i-j)/p)`` for j <= i, else -inf. (L, L)."""
    return alignment_bias(length, length, period, device=device, dtype=dtype)


def windowed_alignment_bias(
    window: int,
    num_keys: int,
    period: int,
    *,
    tokens_per_frame: int = 1,
    context: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """W query frames aligned to the last W key frames (RF ``init_biased_mask2``): (W, S).

    ``num_keys`` must be a multiple of ``tokens_per_frame`` and cover at least ``window`` frames.
    """
    _check_positive(window=window, num_keys=num_keys, tokens_per_frame=tokens_per_frame)
    if num_keys % tokens_per_frame:
        raise ValueError(
            f"num_keys ({num_keys}) must be a multiple of tokens_per_frame ({tokens_per_frame})"
        )
    key_frames = num_keys // tokens_per_frame
    if key_frames < window:
        raise ValueError(f"the keys cover {key_frames} frames, fewer than window={window}")
    return alignment_bias(window, num_keys, period, tokens_per_frame=tokens_per_frame,
                          query_offset=key_frames - window, context=context, device=device,
                          dtype=dtype)


def own_tokens_mask(
    num_frames: int,
    num_keys: int,
    *,
    tokens_per_frame: int = 2,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Frame f attends only its own keys ``k*f ... k*f+k-1`` (RF ``enc_dec_mask``): 0 / -inf, (L, S)."""
    _check_positive(num_frames=num_frames, num_keys=num_keys, tokens_per_frame=tokens_per_frame)
    if num_keys < num_frames * tokens_per_frame:
        raise ValueError(
            f"num_keys={num_keys} is fewer than num_frames*tokens_per_frame="
            f"{num_frames * tokens_per_frame}: some frames would have no key to attend"
        )
    owner = torch.arange(num_keys, device=device) // tokens_per_frame
    own = owner[None, :] == torch.arange(num_frames, device=device)[:, None]
    return torch.zeros(own.shape, dtype=dtype, device=device).masked_fill(~own, float("-inf"))


def per_head(mask: torch.Tensor, num_heads: int, *, slopes: bool = True) -> torch.Tensor:
    """(L, S) -> (H, L, S), scaling the finite bias by the ALiBi slope of each head
    (``slopes=False``: the same bias for every head). -inf entries stay -inf."""
    if mask.ndim != 2:
        raise ValueError(f"expected an (L, S) mask, got shape {tuple(mask.shape)}")
    if not slopes:
        return repeat(mask, "l s -> h l s", h=num_heads).clone()
    slope = torch.tensor(alibi_slopes(num_heads), dtype=mask.dtype, device=mask.device)
    finite = torch.isfinite(mask)
    scaled = slope[:, None, None] * torch.where(finite, mask, torch.zeros_like(mask))
    return scaled.masked_fill(~finite, float("-inf"))


def expand_for_batch(mask: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(H, L, S) -> (B*H, L, S) in ``nn.MultiheadAttention``'s batch-major order."""
    if mask.ndim != 3:
        raise ValueError(f"expected an (H, L, S) mask, got shape {tuple(mask.shape)}")
    return repeat(mask, "h l s -> (b h) l s", b=batch_size)


def alignment_mask(
    num_queries: int,
    num_keys: int,
    period: int,
    *,
    num_heads: int,
    batch_size: int | None = None,
    head_slopes: bool = True,
    tokens_per_frame: int = 1,
    window: bool = False,
    context: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """One-call ``attn_mask``: Eq. 11 (or its windowed form), per-head slopes, batch expansion.

    Returns (L, S) when ``head_slopes`` is False (shared by heads and batch; MHA broadcasts it),
    otherwise (H, L, S), or (B*H, L, S) when ``batch_size`` is given.
    """
    if window:
        mask = windowed_alignment_bias(num_queries, num_keys, period, tokens_per_frame=tokens_per_frame,
                                       context=context, device=device, dtype=dtype)
    else:
        mask = alignment_bias(num_queries, num_keys, period, tokens_per_frame=tokens_per_frame,
                              context=context, device=device, dtype=dtype)
    if not head_slopes:
        return mask
    mask = per_head(mask, num_heads)
    return mask if batch_size is None else expand_for_batch(mask, batch_size)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
