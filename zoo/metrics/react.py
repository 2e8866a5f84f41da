"""The REACT challenge metrics: FRC, FRD, S-MSE, FRVar, FRDvs, TLCC, and ReactFace's Div_c, Div_f.

Inputs, in the role-swapped sample order of a split (notes §9.1):

* ``predictions`` (N, K, T, D): K generated reactions per speaker;
* ``listeners`` (N, T, D): the real listener reactions;
* ``speakers`` (N, T, D): the real speaker behaviour;
* ``neighbours`` (N, N): ``M[k, j]`` true when listener j's real reaction is an appropriate
  reaction to speaker k (the organisers' ``neighbour_emotion_<split>.npy``).

Two protocols (``docs/metrics.md`` gives every formula):

* ``"react2023"`` reproduces the challenge code (B23 = reactmultimodalchallenge/baseline_react2023
  ``metric/*.py``, the ``_mp`` functions ``evaluate.py`` calls), quirks included: FRC and FRD are
  *sums* over the K samples; CCC uses a NaN-to-0 Pearson and ``+1e-8``; TLCC scores only the first
  sample and returns 49 frames whenever a channel is constant in a lag window; S-MSE is 0 for
  K = 1; inputs are rounded to float32 first, as B23 does.
* ``"facezoo"``: the corrected protocol. FRC and FRD are *means* over the K samples; CCC of a
  channel that is the same constant in both sequences is 1 (CCC(x, x) = 1 for every x); every
  speaker's real listener counts as an appropriate reaction (the diagonal of M is set); TLCC uses
  all K samples and leaves channels that are constant in a lag window out of that lag's mean;
  undefined values (S-MSE with K = 1) are NaN instead of 0.

Feature space: with D = 25 (the REACT emotion vector) FRD sums per-block DTWs with B23's weights
1/15 (AUs), 1 (valence/arousal), 1/8 (expressions); any other D (e.g. 58-d face state, as ReactFace
scores) uses one DTW over all channels (RF ``metric/FRD.py``). ``feature_space`` makes it explicit.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from datamodules.features.face_state import EMOTION_AU, EMOTION_DIM, EMOTION_EXPR, EMOTION_VA
from zoo.metrics.dtw import PRECISIONS, Block, min_block_dtw

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_NAMES",
    "PROTOCOLS",
    "ReactProtocol",
    "div_c",
    "div_f",
    "emotion_blocks",
    "feature_blocks",
    "frc",
    "frd",
    "fr_dvs",
    "fr_var",
    "s_mse",
    "score",
    "tlcc",
    "validate_inputs",
]


@dataclass(frozen=True)
class ReactProtocol:
    """What distinguishes the challenge code's numbers from the corrected ones."""

    name: str
    sum_over_samples: bool  # FRC, FRD: sum over K (B23 ``_func`` accumulates) instead of mean
    ccc_epsilon: float  # added to the CCC denominator (B23 ``metric/FRC.py``: 1e-8)
    constant_ccc_is_one: bool  # CCC of two identical constants: 1 (facezoo) or 0 (B23)
    include_self_neighbour: bool  # the speaker's own listener is always appropriate
    tlcc_first_sample_only: bool  # B23 ``metric/TLCC.py::_func`` returns inside its loop
    tlcc_nan_is_argmax: bool  # a NaN lag correlation wins argmax (B23) vs constant channels left out
    single_sample_smse_is_zero: bool  # B23 ``metric/S_MSE.py`` returns 0.0 for K = 1
    round_to_float32: bool  # B23 casts to float32 (``.astype(np.float32)``, ``.float()``)


PROTOCOLS: dict[str, ReactProtocol] = {
    "react2023": ReactProtocol("react2023", True, 1e-8, False, False, True, True, True, True),
    "facezoo": ReactProtocol("facezoo", False, 0.0, True, True, False, False, False, False),
}

DEFAULT_METRICS: tuple[str, ...] = ("FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC")
METRIC_NAMES: tuple[str, ...] = DEFAULT_METRICS + ("Div_c", "Div_f")
_NEEDS = {"FRC": ("listeners", "neighbours"), "FRD": ("listeners", "neighbours"), "TLCC": ("speakers",)}
TLCC_MAX_LAG = 49  # B23 metric/TLCC.py: seconds=2, fps=25 -> lags -49..49


def _protocol(protocol: str | ReactProtocol) -> ReactProtocol:
    if isinstance(protocol, ReactProtocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {sorted(PROTOCOLS)}, got {protocol!r}")
    return PROTOCOLS[protocol]


def emotion_blocks() -> list[Block]:
    """B23 ``metric/FRD.py``: AUs x 1/15, valence/arousal x 1, expressions x 1/8."""
    return [(EMOTION_AU.start, EMOTION_AU.stop, 1 / 15), (EMOTION_VA.start, EMOTION_VA.stop, 1.0),
            (EMOTION_EXPR.start, EMOTION_EXPR.stop, 1 / 8)]


def feature_blocks(dim: int, feature_space: str = "auto") -> list[Block]:
    """DTW blocks for FRD. ``"emotion"``: the challenge's weighted blocks (needs D = 25);
    ``"plain"``: one DTW over all channels (RF ``metric/FRD.py``); ``"auto"``: emotion iff D = 25."""
    if feature_space not in ("auto", "emotion", "plain"):
        raise ValueError(f"feature_space: expected 'auto', 'emotion' or 'plain', got {feature_space!r}")
    if feature_space == "emotion" and dim != EMOTION_DIM:
        raise ValueError(f"feature_space='emotion' needs the {EMOTION_DIM}-d REACT emotion vector, got D={dim}")
    if feature_space == "emotion" or (feature_space == "auto" and dim == EMOTION_DIM):
        return emotion_blocks()
    return [(0, dim, 1.0)]


# --------------------------------------------------------------------------- validation


def _tensor(name: str, value, ndim: int) -> torch.Tensor:
    if value is None:
        raise ValueError(f"{name}: required by the requested metrics but not given")
    if isinstance(value, np.ndarray):
        if value.dtype == object or not (np.issubdtype(value.dtype, np.number) or value.dtype == np.bool_):
            raise ValueError(f"{name}: expected a numeric array, got dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(value.shape)}")
    if value.is_complex():
        raise ValueError(f"{name}: expected real values, got dtype {value.dtype}")
    return value


def _series(name: str, value, ndim: int) -> torch.Tensor:
    value = _tensor(name, value, ndim)
    if not value.dtype.is_floating_point:
        value = value.to(torch.float64)
    if any(s == 0 for s in value.shape):
        raise ValueError(f"{name}: empty array, shape {tuple(value.shape)}")
    bad = ~torch.isfinite(value)
    if bool(bad.any()):
        where = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"{name}: contains NaN or inf (first at index {where})")
    return value


def validate_inputs(predictions, listeners=None, speakers=None, neighbours=None, *,
                    metrics: Iterable[str] | None = None):
    """Check shapes, dtypes and values; return torch tensors ``(P, L, S, M)`` (None where not
    given). Raises ValueError naming the input and what was expected."""
    names = _metric_list(metrics)
    needed = {arg for m in names for arg in _NEEDS.get(m, ())}
    preds = _series("predictions", predictions, 4)
    n, _, t, d = preds.shape
    given = {"listeners": listeners, "speakers": speakers}
    out: dict[str, torch.Tensor | None] = {}
    for key, value in given.items():
        if value is None and key not in needed:
            out[key] = None
            continue
        v = _series(key, value, 3)
        if tuple(v.shape) != (n, t, d):
            raise ValueError(f"{key}: expected shape (N, T, D) = {(n, t, d)} to match predictions "
                             f"(N, K, T, D) = {tuple(preds.shape)}, got {tuple(v.shape)}")
        out[key] = v
    m = None
    if neighbours is not None or "neighbours" in needed:
        m = _tensor("neighbours", neighbours, 2)
        if tuple(m.shape) != (n, n):
            raise ValueError(f"neighbours: expected an (N, N) = {(n, n)} matrix for N = {n} predictions, "
                             f"got shape {tuple(m.shape)}")
        if m.dtype != torch.bool:
            if m.dtype.is_floating_point and not bool(torch.isfinite(m).all()):
                raise ValueError("neighbours: contains NaN or inf")
            if not bool(((m == 0) | (m == 1)).all()):
                raise ValueError("neighbours: expected a binary matrix (bool, or 0/1 values)")
            m = m == 1
    return preds, out["listeners"], out["speakers"], m


def _metric_list(metrics: Iterable[str] | None) -> list[str]:
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    names = list(metrics)
    lookup = {m.lower(): m for m in METRIC_NAMES}
    out = []
    for name in names:
        key = str(name).lower()
        if key not in lookup:
            raise ValueError(f"metrics: unknown metric {name!r}; expected some of {list(METRIC_NAMES)}")
        if lookup[key] not in out:
            out.append(lookup[key])
    if not out:
        raise ValueError("metrics: expected at least one metric name")
    return out


def _prepare(x: torch.Tensor, proto: ReactProtocol) -> torch.Tensor:
    if proto.round_to_float32:
        x = x.to(torch.float32)
    return x.to(torch.float64)


def _neighbour_lists(m: torch.Tensor, proto: ReactProtocol) -> list[np.ndarray]:
    m = m.detach().cpu().numpy().astype(bool, copy=True)
    if proto.include_self_neighbour:
        np.fill_diagonal(m, True)
    empty = np.flatnonzero(~m.any(axis=1))
    if empty.size:
        raise ValueError(f"neighbours: rows {empty[:10].tolist()} have no appropriate reaction; the "
                         f"{proto.name} protocol needs at least one per speaker (B23 fails on max([]))")
    return [np.flatnonzero(row) for row in m]


def _reduce_samples(per_sample: torch.Tensor, proto: ReactProtocol) -> float:
    """(N, K) -> mean over speakers of the sum (react2023) or mean (facezoo) over samples."""
    per_speaker = per_sample.sum(1) if proto.sum_over_samples else per_sample.mean(1)
    return float(per_speaker.mean())


# --------------------------------------------------------------------------- appropriateness


def _constant_mask(x: torch.Tensor, dim: int) -> torch.Tensor:
    """True where a channel never changes along ``dim`` (exact, no tolerance)."""
    return (x.amax(dim) == x.amin(dim))


def frc(predictions, listeners, neighbours, protocol: str | ReactProtocol = "react2023") -> float:
    """FRC (FRCorr, appropriateness, higher is better), B23 ``metric/FRC.py::compute_FRC_mp``:
    ``mean_k agg_i max_{j in M[k]} mean_d CCC_d(L[j], P[k, i])``, agg = sum (react2023) or mean."""
    proto = _protocol(protocol)
    preds, lis, _, m = validate_inputs(predictions, listeners, None, neighbours, metrics=["FRC"])
    preds, lis = _prepare(preds, proto), _prepare(lis, proto)
    nbrs = _neighbour_lists(m, proto)

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # constant channels get exactly zero deviations (their float mean may differ by an ulp)
        mean = x.mean(-2, keepdim=True)
        dev = torch.where(_constant_mask(x, -2).unsqueeze(-2), torch.zeros_like(x), x - mean)
        return mean.squeeze(-2), dev, dev.square().mean(-2)  # np.var: ddof 0

    p_mean, p_dev, p_var = stats(preds)  # (N, K, D), (N, K, T, D), (N, K, D)
    l_mean, l_dev, l_var = stats(lis)  # (N, D), (N, T, D), (N, D)
    t = preds.shape[2]
    best = torch.empty(preds.shape[:2], dtype=torch.float64, device=preds.device)
    for k, js in enumerate(nbrs):
        jj = torch.as_tensor(js, device=preds.device)
        cov = torch.einsum("itd,jtd->ijd", p_dev[k], l_dev[jj]) / t  # (K, J, D)
        var_p, var_l = p_var[k][:, None], l_var[jj][None]
        mean_gap = (p_mean[k][:, None] - l_mean[jj][None]).square()
        denom = var_p + var_l + mean_gap
        if proto.constant_ccc_is_one:
            # CCC = 2 cov / (var_p + var_l + gap^2); 0/0 only for the same constant twice -> 1
            ccc = torch.where(denom > 0, 2 * cov / denom.clamp_min(torch.finfo(denom.dtype).tiny),
                              torch.ones_like(denom))
        else:
            # B23: rho from a NaN-to-0, clipped corrcoef; numerator 2 rho sd_true sd_pred; + 1e-8
            sd = (var_p * var_l).sqrt()
            rho = torch.where(sd > 0, cov / sd.clamp_min(torch.finfo(sd.dtype).tiny), torch.zeros_like(sd))
            ccc = 2 * rho.clamp(-1, 1) * sd / (denom + proto.ccc_epsilon)
        best[k] = ccc.mean(-1).amax(1)
    return _reduce_samples(best, proto)


def frd(predictions, listeners, neighbours, protocol: str | ReactProtocol = "react2023", *,
        feature_space: str = "auto", backend: str = "auto", progress: bool | None = None,
        memory_budget_bytes: int = 1 << 30, precision: str = "float64") -> float:
    """FRD (FRDist, appropriateness, lower is better), B23 ``metric/FRD.py::compute_FRD_mp``:
    ``mean_k agg_i min_{j in M[k]} sum_b w_b DTW(P[k, i, :, b], L[j, :, b])``.

    ``precision="float64"`` (default) and ``"mixed"`` reproduce tslearn's float64 DTW (the
    challenge's numbers, to ~1e-15 relative; mixed searches in float32 and recomputes the minimum in
    float64: 0.98-1.1x the speed of float64 on CPU, by data); ``"float32"`` is ~1.4x faster with ~1e-7
    relative error
    (< 1e-5 on realistic inputs; see ``zoo.metrics.dtw.min_block_dtw``). The minimum over
    neighbours uses exact lower-bound pruning (``min_block_dtw``): same value, most DTWs skipped."""
    proto = _protocol(protocol)
    preds, lis, _, m = validate_inputs(predictions, listeners, None, neighbours, metrics=["FRD"])
    preds, lis = _prepare(preds, proto), _prepare(lis, proto)
    n, k, t, d = preds.shape
    blocks = feature_blocks(d, feature_space)
    nbrs = _neighbour_lists(m, proto)
    # query (k, i) -> the neighbours of speaker k; all queries index one listener set
    counts = np.repeat([len(js) for js in nbrs], k)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    candidates = np.concatenate([js for js in nbrs for _ in range(k)])
    bar = _progress_bar(n * k, "FRD", progress)
    try:
        dist = min_block_dtw(preds.reshape(n * k, t, d), lis, offsets, candidates, blocks, backend=backend,
                             memory_budget_bytes=memory_budget_bytes, precision=precision,
                             progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    return _reduce_samples(dist.reshape(n, k), proto)


# --------------------------------------------------------------------------- diversity


def s_mse(predictions, protocol: str | ReactProtocol = "react2023") -> float:
    """S-MSE (= FRDiv, diversity among the K reactions to one speaker, higher is better), B23
    ``metric/S_MSE.py``: ``mean_k sum_{i,i'} ||P[k,i] - P[k,i']||^2 / (K (K-1) T D)``, computed as
    the identical ``2 x mean over (k, t, d) of the unbiased variance over the K samples``."""
    proto = _protocol(protocol)
    preds = _prepare(validate_inputs(predictions, metrics=["S-MSE"])[0], proto)
    if preds.shape[1] == 1:
        return 0.0 if proto.single_sample_smse_is_zero else math.nan
    return float(2 * preds.var(1, correction=1).mean())


def fr_dvs(predictions, protocol: str | ReactProtocol = "react2023") -> float:
    """FRDvs (diversity across speakers, higher is better), B23 ``metric/FRDvs.py``:
    ``sum_i sum_{k,k'} ||P[k,i] - P[k',i]||^2 / (N (N-1) K T D)`` = 2 x mean unbiased variance
    over the N speakers. NaN for N = 1 (B23 divides 0 by 0)."""
    proto = _protocol(protocol)
    preds = _prepare(validate_inputs(predictions, metrics=["FRDvs"])[0], proto)
    if preds.shape[0] == 1:
        return math.nan
    return float(2 * preds.var(0, correction=1).mean())


def fr_var(predictions, protocol: str | ReactProtocol = "react2023") -> float:
    """FRVar (variation over time, higher is better), B23 ``metric/FRVar.py``: mean over
    (N, K, D) of the unbiased variance over T. NaN for T = 1."""
    proto = _protocol(protocol)
    preds = _prepare(validate_inputs(predictions, metrics=["FRVar"])[0], proto)
    if preds.shape[2] == 1:
        return math.nan
    return float(preds.var(2, correction=1).mean())


def div_c(predictions, protocol: str | ReactProtocol = "react2023") -> float:
    """ReactFace's inter-condition diversity Div_c. The paper (Sec. 5.1) defers its definition to
    the supplement; RF ``evaluate_metric.py`` reports the three diversity columns as FRDvs, FRVar and
    FRDiv, so Div_c is FRDvs (diversity across speakers = conditions)."""
    return fr_dvs(predictions, protocol)


def div_f(predictions, protocol: str | ReactProtocol = "react2023") -> float:
    """ReactFace's inter-frame diversity Div_f = FRVar (RF ``evaluate_metric.py``, see
    :func:`div_c`). Note FRVar = half the mean squared distance between two frames of a sequence."""
    return fr_var(predictions, protocol)


# --------------------------------------------------------------------------- synchrony


def _window_sums(prefix: torch.Tensor, start: torch.Tensor, stop: torch.Tensor) -> torch.Tensor:
    """prefix (B, T+1, D); start/stop (L,) -> sums over [start, stop) for every lag (B, L, D)."""
    return prefix[:, stop] - prefix[:, start]


def _lag_correlations(x: torch.Tensor, y: torch.Tensor, max_lag: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pearson r of x[t + lag] with y[t] over the valid t, for lag = -max_lag..max_lag (B23
    ``metric/TLCC.py::shift``), per channel: (B, 2 max_lag + 1, D); plus a mask of (lag, channel)
    windows where x or y is constant (exactly), where the correlation is undefined."""
    b, t, d = x.shape
    lags = torch.arange(-max_lag, max_lag + 1, device=x.device)
    # centre on the whole-series mean first so the window sums below cancel little
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    x_start, x_stop = lags.clamp_min(0), t + lags.clamp_max(0)
    y_start, y_stop = (-lags).clamp_min(0), t - lags.clamp_min(0)
    n = (t - lags.abs()).to(x.dtype)[None, :, None]

    def prefix(v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(v.cumsum(1), (0, 0, 1, 0))

    sx, sy = _window_sums(prefix(x), x_start, x_stop), _window_sums(prefix(y), y_start, y_stop)
    sxx = _window_sums(prefix(x.square()), x_start, x_stop)
    syy = _window_sums(prefix(y.square()), y_start, y_stop)
    # cross-correlation sum_t x[t + lag] y[t] for all lags at once, by FFT (no wrap-around: n >= T + L)
    size = 1 << math.ceil(math.log2(t + max_lag + 1))
    fx = torch.fft.rfft(x, size, dim=1)
    fy = torch.fft.rfft(y, size, dim=1)
    full = torch.fft.irfft(fx * fy.conj(), size, dim=1)  # index lag mod size
    sxy = full[:, lags % size]
    cov = sxy - sx * sy / n
    var_x = (sxx - sx.square() / n).clamp_min(0)
    var_y = (syy - sy.square() / n).clamp_min(0)

    def changes(v: torch.Tensor) -> torch.Tensor:
        # changes[:, u] = number of t in 1..u with v[t] != v[t-1]
        step = (v[:, 1:] != v[:, :-1]).to(torch.int64)
        return torch.nn.functional.pad(step.cumsum(1), (0, 0, 1, 0))

    cx, cy = changes(x), changes(y)
    const_x = (cx[:, x_stop - 1] - cx[:, x_start]) == 0
    const_y = (cy[:, y_stop - 1] - cy[:, y_start]) == 0
    undefined = const_x | const_y
    denom = (var_x * var_y).sqrt()
    r = torch.where(undefined | (denom == 0), torch.full_like(cov, math.nan), cov / denom).clamp(-1, 1)
    return r, undefined


def tlcc(predictions, speakers, protocol: str | ReactProtocol = "react2023", *,
         max_lag: int = TLCC_MAX_LAG, chunk_size: int = 256) -> float:
    """TLCC (FRSyn, synchrony in frames, lower is better), B23 ``metric/TLCC.py``: per (speaker,
    sample), ``r(lag) = mean_d pearson(shift(p_d, s_d, lag))`` for lag = -max_lag..max_lag, and
    ``|max_lag - argmax_lag r|`` (index of the peak, counted from the most negative lag), averaged.

    react2023: first sample only; a lag whose mean contains a NaN (a channel constant in that
    window) wins argmax, as torch.argmax does, so a constant channel gives 49. facezoo: all
    samples; constant (lag, channel) windows are left out of that lag's mean, lags with no defined
    channel are skipped, and a (speaker, sample) with no defined lag is left out (NaN if all are)."""
    proto = _protocol(protocol)
    preds, _, spk, _ = validate_inputs(predictions, None, speakers, None, metrics=["TLCC"])
    preds, spk = _prepare(preds, proto), _prepare(spk, proto)
    n, k, t, d = preds.shape
    if not 0 <= max_lag < t - 1:
        raise ValueError(f"max_lag: TLCC with lags up to {max_lag} needs T >= max_lag + 2 frames, got T = {t}")
    if proto.tlcc_first_sample_only:
        preds = preds[:, :1]
        k = 1
    offsets = []
    for s in range(0, n, max(1, chunk_size // k)):
        e = min(n, s + max(1, chunk_size // k))
        x = preds[s:e].reshape(-1, t, d)
        y = spk[s:e].repeat_interleave(k, 0)
        r, undefined = _lag_correlations(x, y, max_lag)
        if proto.tlcc_nan_is_argmax:
            mean_r = r.mean(-1)  # any NaN channel -> NaN for the lag
            is_nan = torch.isnan(mean_r)
            first_nan = torch.where(is_nan.any(1), is_nan.to(torch.int64).argmax(1), -1)
            peak = torch.where(first_nan >= 0, first_nan, torch.nan_to_num(mean_r, nan=-math.inf).argmax(1))
            offsets.append((max_lag - peak).abs().to(torch.float64))
        else:
            defined = (~undefined).sum(-1)
            mean_r = torch.where(defined > 0, torch.nan_to_num(r, nan=0.0).sum(-1) / defined.clamp_min(1),
                                 torch.full_like(r[..., 0], -math.inf))
            peak = mean_r.argmax(1)
            off = (max_lag - peak).abs().to(torch.float64)
            offsets.append(torch.where((defined > 0).any(1), off, torch.full_like(off, math.nan)))
    values = torch.cat(offsets)
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else math.nan


# --------------------------------------------------------------------------- score


def _progress_bar(total: int, desc: str, progress: bool | None):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="query", file=sys.stderr, leave=False)


def score(predictions, listeners=None, speakers=None, neighbours=None, protocol: str = "react2023",
          metrics: Sequence[str] | None = None, *, feature_space: str = "auto", backend: str = "auto",
          progress: bool | None = None, memory_budget_bytes: int = 1 << 30,
          tlcc_max_lag: int = TLCC_MAX_LAG, precision: str = "float64") -> dict[str, float]:
    """Score predictions with the REACT metrics -> ``{name: value}`` in ``metrics`` order.

    ``metrics``: subset of :data:`METRIC_NAMES` (case-insensitive); default
    :data:`DEFAULT_METRICS` (FRC, FRD, S-MSE, FRVar, FRDvs, TLCC). Inputs a metric does not need may
    be None (e.g. only predictions for the diversity metrics). numpy arrays or torch tensors; the
    work runs on the predictions' device. ``progress``: tqdm bar on stderr for FRD (None = only
    when stderr is a terminal). ``precision``: FRD's DTW arithmetic, ``"float64"`` (default) or
    ``"mixed"`` (both the challenge's numbers exactly; see :func:`frd` for when mixed is faster) or
    ``"float32"`` (~1.4x faster than float64, ~1e-7 relative error)."""
    proto = _protocol(protocol)
    names = _metric_list(metrics)
    preds, lis, spk, m = validate_inputs(predictions, listeners, speakers, neighbours, metrics=names)
    if m is not None and any(name in names for name in ("FRC", "FRD")):
        _neighbour_lists(m, proto)  # fail before any heavy work
    if "TLCC" in names and not 0 <= tlcc_max_lag < preds.shape[2] - 1:
        raise ValueError(f"TLCC: lags up to {tlcc_max_lag} need T >= {tlcc_max_lag + 2} frames, "
                         f"got T = {preds.shape[2]}")
    feature_blocks(preds.shape[-1], feature_space)
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    compute: dict[str, Callable[[], float]] = {
        "FRC": lambda: frc(preds, lis, m, proto),
        "FRD": lambda: frd(preds, lis, m, proto, feature_space=feature_space, backend=backend,
                           progress=progress, memory_budget_bytes=memory_budget_bytes, precision=precision),
        "S-MSE": lambda: s_mse(preds, proto),
        "FRVar": lambda: fr_var(preds, proto),
        "FRDvs": lambda: fr_dvs(preds, proto),
        "TLCC": lambda: tlcc(preds, spk, proto, max_lag=tlcc_max_lag),
        "Div_c": lambda: div_c(preds, proto),
        "Div_f": lambda: div_f(preds, proto),
    }
    return {name: compute[name]() for name in names}
