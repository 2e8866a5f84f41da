"""zoo.metrics.dtw against tslearn.metrics.dtw (the function the REACT challenge code calls)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw as tslearn_dtw

from zoo.metrics.dtw import _lanes_for, available_backends, block_dtw, dtw, min_block_dtw

BACKENDS = ["numba", "torch"]
EMOTION_BLOCKS = [(0, 15, 1 / 15), (15, 17, 1.0), (17, 25, 1 / 8)]


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param not in available_backends():
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.mark.parametrize(("t1", "t2", "d"), [(1, 1, 3), (1, 6, 2), (6, 1, 2), (9, 9, 1), (17, 11, 4), (40, 47, 25),
                                             (70, 70, 3)])
def test_matches_tslearn_float64(backend, t1, t2, d):
    rng = np.random.default_rng(t1 * 100 + t2)
    x, y = rng.normal(size=(9, t1, d)), rng.normal(size=(9, t2, d))  # 9 pairs: one partial lane group
    expected = np.array([tslearn_dtw(a, b) for a, b in zip(x, y, strict=True)])
    got = dtw(torch.from_numpy(x), torch.from_numpy(y), backend=backend).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_matches_tslearn_float32_inputs(backend):
    rng = np.random.default_rng(7)
    x, y = rng.random((5, 30, 25), dtype=np.float32), rng.random((5, 30, 25), dtype=np.float32)
    expected = np.array([tslearn_dtw(a, b) for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(dtw(x, y, backend=backend).numpy(), expected, rtol=1e-12)
    # computing in float32 on the torch backend stays within float32 rounding
    if backend == "torch":
        got32 = dtw(x, y, backend="torch", dtype=torch.float32).numpy()
        np.testing.assert_allclose(got32, expected, rtol=2e-5)


def test_hand_computed_and_identical_sequences(backend):
    # tslearn's docstring examples: [1,2,3] vs [1,2,2,3] -> 0, vs [1,2,2,3,4] -> 1
    a = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    assert float(dtw(a, torch.tensor([[1.0], [2.0], [2.0], [3.0]]), backend=backend)) == 0.0
    assert float(dtw(a, torch.tensor([[1.0], [2.0], [2.0], [3.0], [4.0]]), backend=backend)) == 1.0
    x = torch.rand(4, 25, 6, dtype=torch.float64)
    assert torch.equal(dtw(x, x, backend=backend), torch.zeros(4, dtype=torch.float64))
    # one frame each: the Euclidean distance
    p, q = torch.tensor([[[0.0, 3.0]]]), torch.tensor([[[4.0, 0.0]]])
    assert float(dtw(p, q, backend=backend)[0]) == 5.0


def test_block_dtw_is_a_weighted_sum_of_per_block_dtws(backend):
    rng = np.random.default_rng(3)
    x, y = rng.random((3, 20, 25)), rng.random((3, 24, 25))
    expected = [sum(w * tslearn_dtw(a[:, s:e], b[:, s:e]) for s, e, w in EMOTION_BLOCKS) for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(block_dtw(x, y, EMOTION_BLOCKS, backend=backend).numpy(), expected, rtol=1e-13)


def test_min_block_dtw_equals_brute_force_despite_early_abandoning(backend):
    rng = np.random.default_rng(11)
    queries, refs = rng.random((13, 35, 25)), rng.random((10, 35, 25))
    refs[3] = queries[5]  # an exact match: distance 0 must win for query 5
    counts = rng.integers(1, 11, size=13)
    counts[5] = 10
    offsets = np.concatenate([[0], np.cumsum(counts)])
    cands = np.concatenate([rng.permutation(10)[:c] for c in counts])
    cands[offsets[5]:offsets[6]] = np.arange(10)
    expected = [min(sum(w * tslearn_dtw(queries[q][:, s:e], refs[c][:, s:e]) for s, e, w in EMOTION_BLOCKS)
                    for c in cands[offsets[q]:offsets[q + 1]]) for q in range(13)]
    seen = []
    got = min_block_dtw(queries, refs, offsets, cands, EMOTION_BLOCKS, backend=backend,
                        memory_budget_bytes=1 << 20, progress=seen.append).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert got[5] == 0.0
    assert sum(seen) == 13


def test_backends_agree_and_chunking_does_not_change_results():
    x, y = torch.rand(11, 33, 4, dtype=torch.float64), torch.rand(11, 29, 4, dtype=torch.float64)
    whole = dtw(x, y, backend="torch")
    tiny = dtw(x, y, backend="torch", memory_budget_bytes=1)  # one pair per chunk
    assert torch.equal(whole, tiny)
    if "numba" in available_backends():
        torch.testing.assert_close(dtw(x, y, backend="numba"), whole, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": torch.rand(2, 5), "y": torch.rand(2, 5, 3)}, "x: expected a 3-d array"),
        ({"x": torch.rand(2, 5, 3), "y": torch.rand(3, 5, 3)}, "same number of pairs"),
        ({"x": torch.rand(2, 5, 3), "y": torch.rand(2, 5, 4)}, "same number of channels"),
        ({"x": torch.full((1, 5, 3), math.nan), "y": torch.rand(1, 5, 3)}, "x: contains NaN"),
        ({"x": torch.rand(1, 0, 3), "y": torch.rand(1, 5, 3)}, "at least one frame"),
        ({"x": torch.rand(1, 5, 3), "y": torch.rand(1, 5, 3), "blocks": [(0, 2, 1.0)]}, "in no block"),
        ({"x": torch.rand(1, 5, 3), "y": torch.rand(1, 5, 3), "blocks": [(0, 2, 1.0), (1, 3, 1.0)]}, "overlaps"),
        ({"x": torch.rand(1, 5, 3), "y": torch.rand(1, 5, 3), "blocks": [(0, 3, -1.0)]}, "weight"),
        ({"x": torch.rand(1, 5, 3), "y": torch.rand(1, 5, 3), "backend": "cuda"}, "backend"),
    ],
)
def test_bad_inputs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        block_dtw(**kwargs)


def test_min_block_dtw_bad_csr():
    q, r = torch.rand(2, 5, 3), torch.rand(3, 5, 3)
    with pytest.raises(ValueError, match="offsets"):
        min_block_dtw(q, r, [0, 1], [0])
    with pytest.raises(ValueError, match="no candidate"):
        min_block_dtw(q, r, [0, 0, 1], [0])
    with pytest.raises(ValueError, match="indices must lie"):
        min_block_dtw(q, r, [0, 1, 2], [0, 3])


def test_min_block_dtw_tiles_lane_groups_and_unequal_lengths(backend):
    # T1 = 45 and T2 = 70 are not multiples of the numba kernel's 16-row bands and 32-column tiles; 19
    # candidates = two full lane groups and a partial one; channel blocks of 5, 2 and 6 exercise
    # both the four-channel pass and the remainder
    rng = np.random.default_rng(5)
    blocks = [(0, 5, 0.3), (5, 7, 1.0), (7, 13, 0.5)]
    queries, refs = rng.normal(size=(3, 45, 13)), rng.normal(size=(19, 70, 13))
    offsets, cands = np.array([0, 19, 38, 57]), np.concatenate([rng.permutation(19) for _ in range(3)])
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in blocks) for r in refs] for q in queries])
    got = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend).numpy()
    np.testing.assert_allclose(got, every.min(1), rtol=1e-13)
    # the visiting order (and so what is abandoned when) never changes the minimum
    reordered = min_block_dtw(queries, refs, offsets, cands[::-1].copy(), blocks, backend=backend).numpy()
    np.testing.assert_allclose(reordered, got, rtol=1e-13)


def test_min_block_dtw_single_candidate_and_one_frame(backend):
    rng = np.random.default_rng(9)
    queries, refs = rng.random((2, 1, 4)), rng.random((3, 6, 4))
    got = min_block_dtw(queries, refs, [0, 1, 2], [2, 0], backend=backend).numpy()
    expected = [tslearn_dtw(queries[0], refs[2]), tslearn_dtw(queries[1], refs[0])]
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def _emotion_like(rng, shape):
    """REACT emotion vectors (datamodules.features.face_state): 0/1 AUs, valence/arousal in [-1, 1],
    expression probabilities; rounded to float32 as B23 does."""
    x = np.empty(shape + (25,))
    x[..., :15] = rng.random(shape + (15,)) < 0.2
    x[..., 15:17] = np.tanh(np.cumsum(rng.normal(0, 0.1, shape + (2,)), axis=-2))
    logits = np.cumsum(rng.normal(0, 0.3, shape + (8,)), axis=-2)
    x[..., 17:] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return x.astype(np.float32).astype(np.float64)


def _face_state_like(rng, shape):
    """58-d face states: 52 expression coefficients in [0, 1], rotation in radians, translation."""
    x = np.empty(shape + (58,))
    x[..., :52] = 1 / (1 + np.exp(-np.cumsum(rng.normal(0, 0.2, shape + (52,)), axis=-2) + 2))
    x[..., 52:55] = 0.3 * np.tanh(np.cumsum(rng.normal(0, 0.05, shape + (3,)), axis=-2))
    x[..., 55:58] = np.cumsum(rng.normal(0, 0.01, shape + (3,)), axis=-2) + [0.0, 0.0, 2.0]
    return x.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize(("make", "blocks"), [(_emotion_like, EMOTION_BLOCKS), (_face_state_like, None)])
def test_min_block_dtw_float32_precision_within_1e5_of_tslearn(backend, make, blocks):
    # realistic lengths matter: the float32 error grows with the path length (T1 + T2 terms)
    rng = np.random.default_rng(21)
    t = 300
    queries, refs = make(rng, (4, t)), make(rng, (9, t))
    blocks_ = blocks or [(0, queries.shape[-1], 1.0)]
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in blocks_) for r in refs]
                      for q in queries])
    offsets, cands = np.arange(0, 4 * 9 + 1, 9), np.tile(np.arange(9), 4)
    got64 = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend).numpy()
    got32 = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend, precision="float32")
    assert got32.dtype == torch.float64  # ``dtype`` is the output type, ``precision`` the arithmetic
    np.testing.assert_allclose(got64, every.min(1), rtol=1e-13)
    rel = np.abs(got32.numpy() - every.min(1)) / every.min(1)
    assert rel.max() < 1e-5
    assert rel.max() > 0  # float32 arithmetic really ran (float64 would agree to ~1e-16)


def test_min_block_dtw_float32_keeps_exact_zero_and_the_minimum(backend):
    rng = np.random.default_rng(4)
    queries, refs = _emotion_like(rng, (5, 40)), _emotion_like(rng, (20, 40))
    refs[7] = queries[2]
    # 20 candidates per query (two full groups of 8 lanes and a partial one) and 16 must give the
    # same minima
    offsets, cands = np.arange(0, 5 * 20 + 1, 20), np.tile(rng.permutation(20), 5)
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in EMOTION_BLOCKS) for r in refs]
                      for q in queries])
    got = min_block_dtw(queries, refs, offsets, cands, EMOTION_BLOCKS, backend=backend, precision="float32").numpy()
    assert got[2] == 0.0
    np.testing.assert_allclose(got, every.min(1), rtol=1e-5)
    assert _lanes_for(torch.float32) == 8 and _lanes_for(torch.float64) == 4
    keep = np.tile(rng.permutation(16), (5, 1))  # references 0..15, the exact match 7 included
    every16 = every[:, :16].min(1)
    got16 = min_block_dtw(queries, refs, np.arange(0, 5 * 16 + 1, 16), keep.reshape(-1), EMOTION_BLOCKS,
                          backend=backend, precision="float32").numpy()
    assert got16[2] == 0.0
    np.testing.assert_allclose(got16, every16, rtol=1e-5)


def test_min_block_dtw_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        min_block_dtw(torch.rand(1, 5, 3), torch.rand(2, 5, 3), [0, 1], [0], precision="float16")


def test_score_precision_float32_agrees_and_bad_precision_is_rejected():
    from zoo.metrics.react import score

    rng = np.random.default_rng(8)
    pred, lis = _emotion_like(rng, (4, 2, 60)), _emotion_like(rng, (4, 60))
    m = np.eye(4, dtype=bool) | np.roll(np.eye(4, dtype=bool), 1, axis=1)
    exact = score(pred, lis, neighbours=m, metrics=["FRD"], progress=False)["FRD"]
    fast = score(pred, lis, neighbours=m, metrics=["FRD"], progress=False, precision="float32")["FRD"]
    assert fast == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match="precision"):
        score(pred, lis, neighbours=m, metrics=["FRD"], precision="half")


def test_min_block_dtw_pruning_never_changes_the_minimum(backend):
    # constant sequences make the envelope bounds exact (DTW^2 = max(T1, T2) * gap^2 = the bound),
    # so candidates tie with their bounds and with each other; the minimum must still be tslearn's
    rng = np.random.default_rng(17)
    blocks = [(0, 3, 0.5), (3, 4, 1.0), (4, 6, 0.0)]  # a weight-0 block is never needed
    refs = rng.normal(size=(14, 31, 6))
    refs[:4] = rng.normal(size=(4, 1, 6)).repeat(31, axis=1)  # constant references
    refs[4] = refs[2]  # an exact tie
    queries = rng.normal(size=(5, 23, 6))
    queries[0] = refs[2, :1].repeat(23, axis=0)  # constant query equal to references 2 and 4: 0
    queries[1] = refs[1, :1].repeat(23, axis=0) + 0.25  # constant: tight bounds against refs 0..4
    queries[2] = refs[7, :23] + rng.normal(0, 1e-3, size=(23, 6))  # one clearly nearest reference
    offsets, cands = np.arange(0, 5 * 14 + 1, 14), np.tile(rng.permutation(14), 5)
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in blocks) for r in refs] for q in queries])
    got = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend).numpy()
    np.testing.assert_allclose(got, every.min(1), rtol=1e-13, atol=1e-15)
    assert got[0] == 0.0
    exhaustive = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend, prune=False).numpy()
    np.testing.assert_allclose(got, exhaustive, rtol=1e-14, atol=0)
    got32 = min_block_dtw(queries, refs, offsets, cands, blocks, backend=backend, precision="float32").numpy()
    np.testing.assert_allclose(got32, every.min(1), rtol=1e-5, atol=1e-6)


def test_min_block_dtw_many_near_ties_on_emotion_data(backend):
    # samples that are noisy copies of one listener: the bounds prune most candidates, and the
    # few that survive are close in value; every query must still find tslearn's minimum
    rng = np.random.default_rng(23)
    refs = _emotion_like(rng, (12, 60))
    queries = np.clip(refs[rng.integers(0, 12, size=6)] + rng.normal(0, 0.05, size=(6, 60, 25)), 0, 1)
    offsets, cands = np.arange(0, 6 * 12 + 1, 12), np.tile(np.arange(12), 6)
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in EMOTION_BLOCKS) for r in refs]
                      for q in queries])
    got = min_block_dtw(queries, refs, offsets, cands, EMOTION_BLOCKS, backend=backend).numpy()
    np.testing.assert_allclose(got, every.min(1), rtol=1e-13)


# --------------------------------------------------------------------------- precision="mixed"


def _all_modes(queries, refs, offsets, cands, blocks, **kwargs):
    return {p: min_block_dtw(queries, refs, offsets, cands, blocks, precision=p, **kwargs).numpy()
            for p in ("float64", "mixed")}


def _assert_mixed_is_float64(got):
    # the float64 search and the float64 recomputation run the same per-lane arithmetic: equal bit
    # for bit here; 1e-13 relative is the contract (lane groups of different widths could in
    # principle contract a multiply-add differently)
    np.testing.assert_allclose(got["mixed"], got["float64"], rtol=1e-13, atol=0)
    assert np.array_equal(got["mixed"], got["float64"])


def test_mixed_equals_float64_on_random_and_emotion_data(backend):
    rng = np.random.default_rng(31)
    # float64 normal data (not float32 numbers: the input-rounding term of the bound is active),
    # and emotion-like float32 data (0/1 action units: float32 is exact on that block and reused)
    for make, blocks in ((lambda shape: rng.normal(size=shape + (13,)), [(0, 5, 0.3), (5, 7, 1.0), (7, 13, 0.5)]),
                         (lambda shape: _emotion_like(rng, shape), EMOTION_BLOCKS)):
        queries, refs = make((7, 90)), make((15, 80))
        counts = rng.integers(1, 16, size=7)
        counts[0] = 1  # a single-neighbour row
        offsets = np.concatenate([[0], np.cumsum(counts)])
        cands = np.concatenate([rng.permutation(15)[:c] for c in counts])
        got = _all_modes(queries, refs, offsets, cands, blocks, backend=backend)
        _assert_mixed_is_float64(got)
        every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in blocks) for r in refs]
                          for q in queries])
        expected = [every[q, cands[offsets[q]:offsets[q + 1]]].min() for q in range(7)]
        np.testing.assert_allclose(got["mixed"], expected, rtol=1e-13)


def test_mixed_equals_float64_on_ties_constants_and_near_neighbours(backend):
    rng = np.random.default_rng(37)
    blocks = [(0, 3, 0.5), (3, 4, 1.0), (4, 6, 0.0)]
    refs = rng.normal(size=(12, 40, 6))
    refs[:3] = rng.normal(size=(3, 1, 6)).repeat(40, axis=1)  # constant references
    refs[3] = refs[2]  # exact ties
    refs[5] = refs[6] + 1e-9  # a near tie far below float32's resolution
    queries = np.stack([refs[2, :33], refs[1, :33] + 0.25, refs[6, :33] + rng.normal(0, 1e-3, size=(33, 6)),
                        refs[9, :33] + rng.normal(0, 0.05, size=(33, 6)), np.zeros((33, 6))])
    offsets, cands = np.arange(0, 5 * 12 + 1, 12), np.tile(rng.permutation(12), 5)
    got = _all_modes(queries, refs, offsets, cands, blocks, backend=backend)
    _assert_mixed_is_float64(got)
    assert got["mixed"][0] == 0.0
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in blocks) for r in refs]
                      for q in queries])
    np.testing.assert_allclose(got["mixed"], every.min(1), rtol=1e-13, atol=1e-15)
    # one frame against one frame, and without pruning
    _assert_mixed_is_float64(_all_modes(queries[:, :1], refs[:, :1], offsets, cands, blocks, backend=backend))
    _assert_mixed_is_float64(_all_modes(queries, refs, offsets, cands, blocks, backend=backend, prune=False))


def test_mixed_recomputes_few_candidates_and_reuses_exact_blocks(monkeypatch):
    if "numba" not in available_backends():
        pytest.skip("numba is not installed")
    dtw_module = importlib.import_module("zoo.metrics.dtw")  # the module (zoo.metrics.dtw is also a function)

    calls = []
    original = dtw_module._QuerySearch.__call__

    def spy(self, queries, offsets, candidates, out, known=None):
        calls.append((self.r.dtype, len(candidates), None if known is None else known.copy()))
        return original(self, queries, offsets, candidates, out, known)

    monkeypatch.setattr(dtw_module._QuerySearch, "__call__", spy)
    rng = np.random.default_rng(41)
    queries, refs = _emotion_like(rng, (6, 120)), _emotion_like(rng, (16, 120))
    offsets, cands = np.arange(0, 6 * 16 + 1, 16), np.tile(np.arange(16), 6)
    min_block_dtw(queries, refs, offsets, cands, EMOTION_BLOCKS, precision="mixed")
    searched = sum(n for dtype, n, known in calls if dtype == np.float32)
    recomputed = [(n, known) for dtype, n, known in calls if dtype == np.float64]
    assert searched == 96
    assert 6 <= sum(n for n, _ in recomputed) <= 12  # the minimum of each query, and rare near ties
    # the 0/1 action units (block 0) are exact in float32: their D is passed on, not recomputed
    assert all((known[:, 0] >= 0).all() and (known[:, 1:] < 0).all() for _, known in recomputed)


def test_float32_exact_grid_decides_exactness_by_hand():
    dtw_module = importlib.import_module("zoo.metrics.dtw")

    # 0/1 data, T1 + T2 - 1 = 1499 cells, 15 channels: sums up to 1499 * 15 * 4 < 2^24 on the grid 2^-3
    assert dtw_module._float32_exact_grid(1.0, 1499, 15) == 3
    assert dtw_module._float32_exact_grid(0.0, 1499, 15) == 0
    assert dtw_module._float32_exact_grid(1e4, 1499, 15) is None  # (2e4)^2 * 1499 * 15 > 2^24
    assert dtw_module._on_grid(np.array([0.0, 1.0, 0.5, -0.125]), 3)
    assert not dtw_module._on_grid(np.array([0.0, 0.1]), 3)
    # where the grid says exact, float32 and float64 DTWs agree bit for bit
    rng = np.random.default_rng(43)
    x, y = (rng.random((3, 200, 15)) < 0.3).astype(np.float64), (rng.random((5, 170, 15)) < 0.3).astype(np.float64)
    offsets, cands = np.arange(0, 3 * 5 + 1, 5), np.tile(np.arange(5), 3)
    got32 = min_block_dtw(x, y, offsets, cands, precision="float32").numpy()
    assert np.array_equal(got32, min_block_dtw(x, y, offsets, cands, precision="float64").numpy())


def test_mixed_falls_back_to_float64_where_float32_would_overflow(backend):
    rng = np.random.default_rng(47)
    queries, refs = rng.normal(size=(3, 20, 4)) * 1e20, rng.normal(size=(6, 20, 4)) * 1e20
    offsets, cands = np.arange(0, 3 * 6 + 1, 6), np.tile(np.arange(6), 3)
    got = _all_modes(queries, refs, offsets, cands, None, backend=backend)
    _assert_mixed_is_float64(got)
    assert np.isfinite(got["mixed"]).all()


def test_score_and_the_cli_accept_every_precision(tmp_path):
    import argparse
    import json

    from zoo.metrics import cli
    from zoo.metrics.dtw import PRECISIONS
    from zoo.metrics.react import score

    rng = np.random.default_rng(53)
    pred, lis = _emotion_like(rng, (4, 2, 60)), _emotion_like(rng, (4, 60))
    m = np.eye(4, dtype=bool) | np.roll(np.eye(4, dtype=bool), 1, axis=1)
    by_precision = {p: score(pred, lis, neighbours=m, metrics=["FRD"], progress=False, precision=p)["FRD"]
                    for p in PRECISIONS}
    assert score(pred, lis, neighbours=m, metrics=["FRD"], progress=False)["FRD"] == by_precision["float64"]
    assert by_precision["mixed"] == pytest.approx(by_precision["float64"], rel=1e-13)
    np.save(tmp_path / "p.npy", pred.astype(np.float32))
    np.save(tmp_path / "l.npy", lis.astype(np.float32))
    np.save(tmp_path / "m.npy", m)
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    files = ["--predictions", str(tmp_path / "p.npy"), "--listeners", str(tmp_path / "l.npy"), "--neighbours",
             str(tmp_path / "m.npy"), "--metrics", "FRD", "--no-progress"]
    assert parser.parse_args(files + ["--json", "x"]).precision == "float64"
    for p in PRECISIONS:
        assert cli.run(parser.parse_args(files + ["--precision", p, "--json", str(tmp_path / f"{p}.json")])) == 0
        assert json.loads((tmp_path / f"{p}.json").read_text())["FRD"] == pytest.approx(by_precision[p], rel=1e-12)
    with pytest.raises(SystemExit):
        parser.parse_args(files + ["--precision", "float16", "--json", "x"])


@pytest.mark.parametrize(("t1", "t2"), [(16, 5), (17, 3), (3, 40), (32, 33), (1, 16), (16, 1)])
def test_min_block_dtw_band_edges(backend, t1, t2):
    # the anti-diagonal sweep of a 16-row band: bands shorter than the band height, references
    # shorter than it (no step with all rows), and exact multiples of the band and tile sizes
    rng = np.random.default_rng(t1 * 7 + t2)
    queries, refs = rng.normal(size=(2, t1, 3)), rng.normal(size=(6, t2, 3))
    offsets, cands = np.array([0, 6, 11]), np.array([0, 1, 2, 3, 4, 5, 5, 3, 1, 0, 2])
    every = np.array([[tslearn_dtw(q, r) for r in refs] for q in queries])
    expected = [every[0].min(), every[1, [5, 3, 1, 0, 2]].min()]
    got = min_block_dtw(queries, refs, offsets, cands, backend=backend).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    for precision in ("mixed", "float32"):
        got_p = min_block_dtw(queries, refs, offsets, cands, backend=backend, precision=precision).numpy()
        np.testing.assert_allclose(got_p, expected, rtol=1e-13 if precision == "mixed" else 1e-5)


def test_bit_masks_by_hand():
    dtw_module = importlib.import_module("zoo.metrics.dtw")
    series = np.array([[[1, 0, 1, 0.5, 0.25], [0, 0, 0, 1, 1]]])  # (1 series, 2 frames, 5 channels)
    blocks = [(0, 3, 1.0), (3, 5, 1.0)]
    assert dtw_module._is_binary(series[..., :3]) and not dtw_module._is_binary(series[..., 3:])
    masks = dtw_module._bit_masks(series, blocks, np.array([True, False]))
    assert masks.dtype == np.uint64 and masks.shape == (1, 2, 2)
    assert masks[0, 0].tolist() == [0b101, 0] and masks[0, 1].tolist() == [0, 0]
    assert dtw_module._bit_masks(series, blocks, np.array([False, False])).shape == (1, 2, 0)


@pytest.mark.parametrize("precision", ["float64", "mixed", "float32"])
def test_binary_action_units_take_the_popcount_path_and_match_tslearn(monkeypatch, precision):
    if "numba" not in available_backends():
        pytest.skip("numba is not installed")
    dtw_module = importlib.import_module("zoo.metrics.dtw")
    used = []
    original = dtw_module._bit_masks

    def spy(series, blocks, binary):
        used.append((series.shape[0], binary.copy()))
        return original(series, blocks, binary)

    monkeypatch.setattr(dtw_module, "_bit_masks", spy)
    rng = np.random.default_rng(43)
    queries, refs = _emotion_like(rng, (4, 90)), _emotion_like(rng, (7, 90))
    offsets, cands = np.arange(0, 4 * 7 + 1, 7), np.tile(np.arange(7), 4)
    every = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in EMOTION_BLOCKS) for r in refs]
                      for q in queries])
    got = min_block_dtw(queries, refs, offsets, cands, EMOTION_BLOCKS, precision=precision).numpy()
    np.testing.assert_allclose(got, every.min(1), rtol=1e-13 if precision != "float32" else 1e-5)
    # the 0/1 action units went through the bit masks (the 7 references' at set-up, the queries' per call)
    binary_calls = {n == 7 for n, b in used if b.tolist() == [True, False, False]}
    assert binary_calls == {True, False}  # (queries go in chunks of fewer than 7)
    # queries whose action units are probabilities (a network's outputs) fall back to the channel sums
    used.clear()
    soft = queries.copy()
    soft[..., :15] = rng.random(soft[..., :15].shape)
    every_soft = np.array([[sum(w * tslearn_dtw(q[:, s:e], r[:, s:e]) for s, e, w in EMOTION_BLOCKS) for r in refs]
                           for q in soft])
    got_soft = min_block_dtw(soft, refs, offsets, cands, EMOTION_BLOCKS, precision=precision).numpy()
    np.testing.assert_allclose(got_soft, every_soft.min(1), rtol=1e-13 if precision != "float32" else 1e-5)
    assert [n for n, b in used if n != 7] and not any(b.any() for n, b in used if n != 7)


def test_block_order_puts_the_expensive_blocks_last():
    dtw_module = importlib.import_module("zoo.metrics.dtw")
    blocks = [(s, e, w) for s, e, w in EMOTION_BLOCKS]
    # valence/arousal (2 channels, weight 1) first; 0/1 action units are one popcount, so before the
    # 8 expressions; summed action units (15 channels) last
    assert dtw_module._block_order(blocks, np.array([True, False, False])).tolist() == [1, 0, 2]
    assert dtw_module._block_order(blocks).tolist() == [1, 2, 0]
    assert dtw_module._block_order([(0, 4, 1.0)]).tolist() == [0]
