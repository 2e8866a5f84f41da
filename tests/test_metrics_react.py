"""REACT metrics against straightforward numpy re-implementations of the challenge code (B23 =
reactmultimodalchallenge/baseline_react2023 ``metric/*.py``) and hand-computed cases."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw as tslearn_dtw

from zoo.metrics import react
from zoo.metrics.react import score

# ----------------------------------------------------------------------- B23 references (loops)


def _b23_corr(a: np.ndarray, b: np.ndarray) -> float:
    """B23 metric/FRC.py::corrcoef: Pearson with nan_to_num and clipping."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.cov(a, b)
        sd = np.sqrt(np.diag(c))
        c = c / sd[:, None] / sd[None, :]
    return float(np.clip(np.nan_to_num(c), -1, 1)[0, 1])


def _b23_ccc(y_true: np.ndarray, y_pred: np.ndarray, eps: float = 1e-8) -> float:
    out = []
    for d in range(y_true.shape[1]):
        a, b = y_true[:, d], y_pred[:, d]
        cor = _b23_corr(a, b)
        num = 2 * cor * np.std(a) * np.std(b)
        den = np.var(a) + np.var(b) + (np.mean(a) - np.mean(b)) ** 2
        out.append(num / (den + eps))
    return float(np.mean(out))


def _b23_frc(pred, lis, m):
    per = []
    for k in range(pred.shape[0]):
        js = np.argwhere(m[k] == 1).reshape(-1)
        per.append(sum(max(_b23_ccc(lis[j], pred[k, i]) for j in js) for i in range(pred.shape[1])))
    return float(np.mean(per))


def _b23_frd(pred, lis, m):
    per = []
    for k in range(pred.shape[0]):
        js = np.argwhere(m[k] == 1).reshape(-1)
        total = 0.0
        for i in range(pred.shape[1]):
            total += min(
                sum(w * tslearn_dtw(pred[k, i].astype(np.float32)[:, s:e], lis[j].astype(np.float32)[:, s:e])
                    for s, e, w in [(0, 15, 1 / 15), (15, 17, 1), (17, 25, 1 / 8)])
                for j in js)
        per.append(total)
    return float(np.mean(per))


def _b23_tlcc_one(p: np.ndarray, s: np.ndarray, max_lag: int = 49) -> float:
    rs = []
    for lag in range(-max_lag, max_lag + 1):
        vals = []
        for d in range(p.shape[1]):
            x, y = p[:, d], s[:, d]
            if lag > 0:
                x, y = x[lag:], y[:-lag]
            elif lag < 0:
                x, y = x[:lag], y[-lag:]
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")
                vals.append(np.corrcoef(x, y)[0, 1])
        rs.append(np.mean(vals))
    return float(abs(max_lag - int(torch.argmax(torch.tensor(rs, dtype=torch.float64)))))


def _b23_tlcc(pred, spk, first_only=True):
    out = []
    for k in range(pred.shape[0]):
        for i in range(1 if first_only else pred.shape[1]):
            out.append(_b23_tlcc_one(pred[k, i], spk[k]))
    return float(np.mean(out))


def _b23_s_mse(pred):
    t = torch.from_numpy(pred)
    total = 0.0
    for b in range(t.shape[0]):
        item = t[b].reshape(t.shape[1], -1)
        total += float(torch.cdist(item, item).pow(2).sum()) / (t.shape[1] * (t.shape[1] - 1) * item.shape[1])
    return total / t.shape[0]


def _b23_frdvs(pred):
    t = torch.from_numpy(pred).reshape(pred.shape[0], pred.shape[1], -1).transpose(0, 1)
    dist = torch.cdist(t, t).pow(2).sum() / (pred.shape[0] * (pred.shape[0] - 1) * pred.shape[1])
    return float(dist / t.shape[-1])


# ----------------------------------------------------------------------- fixtures


def _emotion_data(rng, n=6, k=3, t=60, d=25):
    """Emotion-like data: binary AUs (some all-zero), V/A in [-1, 1], expression probabilities."""
    def seq(shape):
        x = np.empty(shape)
        x[..., :15] = (rng.random(shape[:-1] + (15,)) < 0.3).astype(float)
        x[..., 3] = 0.0  # an AU that never fires: a constant channel everywhere
        x[..., 15:17] = np.tanh(np.cumsum(rng.normal(0, 0.2, shape[:-1] + (2,)), axis=-2))
        logits = rng.normal(size=shape[:-1] + (8,))
        x[..., 17:] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return x.astype(np.float32).astype(np.float64)

    pred, lis, spk = seq((n, k, t, d)), seq((n, t, d)), seq((n, t, d))
    m = rng.random((n, n)) < 0.4
    m[np.arange(n), (np.arange(n) + 1) % n] = True  # every row has a neighbour
    return pred, lis, spk, m


@pytest.fixture(scope="module")
def data():
    return _emotion_data(np.random.default_rng(0))


# ----------------------------------------------------------------------- react2023 == B23


def test_frc_matches_b23(data):
    pred, lis, _, m = data
    assert react.frc(pred, lis, m, "react2023") == pytest.approx(_b23_frc(pred, lis, m), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_frd_matches_b23_with_tslearn(backend):
    from zoo.metrics.dtw import available_backends

    if backend not in available_backends():
        pytest.skip(f"{backend} is not installed")
    pred, lis, _, m = _emotion_data(np.random.default_rng(1), n=4, k=2, t=40)
    expected = _b23_frd(pred, lis, m)
    got = react.frd(pred, lis, m, "react2023", backend=backend, progress=False)
    assert got == pytest.approx(expected, rel=1e-12)
    # facezoo: the mean over samples instead of the sum, the own listener added to the neighbours
    m_self = m | np.eye(4, dtype=bool)
    expected_mean = _b23_frd(pred, lis, m_self) / 2
    assert react.frd(pred, lis, m, "facezoo", backend=backend, progress=False) == pytest.approx(expected_mean, rel=1e-12)


def test_tlcc_matches_b23_first_sample_and_constant_channel_gives_49(data):
    pred, _, spk, _ = data
    got = react.tlcc(pred, spk, "react2023")
    assert got == pytest.approx(_b23_tlcc(pred, spk, first_only=True), abs=1e-12)
    # AU 3 is constant in every prediction: every r(lag) is NaN -> argmax 0 -> offset 49
    assert got == 49.0


def test_tlcc_react2023_on_varying_channels_matches_b23():
    rng = np.random.default_rng(3)
    base = np.cumsum(rng.normal(size=(4, 130, 3)), axis=1)
    spk = base
    pred = np.stack([np.roll(base, 5, axis=1) + 0.1 * rng.normal(size=base.shape) for _ in range(2)], 1)
    got = react.tlcc(pred, spk, "react2023")
    assert got == pytest.approx(_b23_tlcc(pred, spk, first_only=True), abs=1e-12)
    assert got == 5.0  # the predictions lag the speaker by 5 frames
    # facezoo averages all samples: here every sample lags by 5 too
    assert react.tlcc(pred, spk, "facezoo") == 5.0


def test_diversity_matches_b23(data):
    pred = data[0]
    assert react.s_mse(pred) == pytest.approx(_b23_s_mse(pred), rel=1e-9)
    assert react.fr_dvs(pred) == pytest.approx(_b23_frdvs(pred), rel=1e-9)
    assert react.fr_var(pred) == pytest.approx(float(torch.from_numpy(pred).var(2).mean()), rel=1e-12)


# ----------------------------------------------------------------------- hand-computed cases


def test_uniform_noise_sanity_values():
    # Random U(0,1) baseline (notes §4.3): FRVar = 1/12, S-MSE = FRDvs = 1/6
    pred = torch.rand(40, 10, 300, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = score(pred, metrics=["S-MSE", "FRVar", "FRDvs", "Div_c", "Div_f"])
    assert out["FRVar"] == pytest.approx(1 / 12, rel=0.01)
    assert out["S-MSE"] == pytest.approx(1 / 6, rel=0.01)
    assert out["FRDvs"] == pytest.approx(1 / 6, rel=0.01)
    assert out["Div_c"] == out["FRDvs"] and out["Div_f"] == out["FRVar"]


def test_tiny_hand_computed_diversity():
    # N=2, K=2, T=2, D=1: speaker 0 samples [0,0] and [2,2]; speaker 1 samples [1,3] and [1,3]
    pred = np.array([[[[0.0], [0.0]], [[2.0], [2.0]]], [[[1.0], [3.0]], [[1.0], [3.0]]]])
    # S-MSE: speaker 0: pairs (i,i') both orders: 2 * 8 / (2*1*2) = 4; speaker 1: 0 -> mean 2
    assert react.s_mse(pred) == pytest.approx(2.0)
    # FRDvs: sample 0: ||[0,0]-[1,3]||^2 = 10, sample 1: ||[2,2]-[1,3]||^2 = 2 -> 2*(10+2)/(2*1*2*2) = 3
    assert react.fr_dvs(pred) == pytest.approx(3.0)
    # FRVar: var([0,0])=0, var([2,2])=0, var([1,3])=2 twice -> 4/4 = 1
    assert react.fr_var(pred) == pytest.approx(1.0)


def test_frc_hand_computed_and_protocol_differences():
    t = np.arange(6, dtype=float)
    lis = np.stack([np.stack([t, np.zeros(6)], 1), np.stack([-t, np.zeros(6)], 1)])  # (2, 6, 2)
    pred = lis[:, None].repeat(2, axis=1)  # perfect predictions, K = 2
    m = np.eye(2, dtype=bool)
    # react2023: channel 0 CCC = 2 var / (2 var + 1e-8) ~ 1, constant channel 1 -> 0; mean 0.5;
    # summed over K = 2 samples -> ~1.0
    var = np.var(t)
    expected = 2 * (0.5 * 2 * var / (2 * var + 1e-8))
    assert react.frc(pred, lis, m, "react2023") == pytest.approx(expected, rel=1e-12)
    # facezoo: CCC(x, x) = 1 on both channels, mean over K -> exactly 1
    assert react.frc(pred, lis, m, "facezoo") == pytest.approx(1.0, abs=1e-12)
    # the other listener only: channel 0 is t vs -t, cov = -var, means 2.5 vs -2.5:
    # CCC = -2 var / (2 var + 5^2); channel 1 constant -> 0; summed over K = 2
    m_swap = ~np.eye(2, dtype=bool)
    expected_swap = 2 * 0.5 * (-2 * var / (2 * var + 25 + 1e-8))
    assert react.frc(pred, lis, m_swap, "react2023") == pytest.approx(expected_swap, rel=1e-12)
    # facezoo adds the diagonal: the perfect match wins the max
    assert react.frc(pred, lis, m_swap, "facezoo") == pytest.approx(1.0)


def test_frd_hand_computed_plain_and_identical():
    lis = np.zeros((2, 4, 3))
    lis[1] += 1.0
    pred = lis[:, None].repeat(3, axis=1)
    m = np.eye(2, dtype=bool)
    assert react.frd(pred, lis, m, "react2023", progress=False) == 0.0
    # speaker 0 may only use listener 1: every frame costs ||(1,1,1)||^2 = 3 along the 4-step path
    m01 = np.array([[False, True], [False, True]])
    per_sample = math.sqrt(4 * 3)
    got = react.frd(pred, lis, m01, "react2023", progress=False)
    assert got == pytest.approx((3 * per_sample + 0) / 2)  # sum over K=3, mean over 2 speakers
    assert react.frd(pred, lis, m01, "facezoo", progress=False) == 0.0  # self-neighbour added


def test_frd_emotion_blocks_are_weighted():
    lis = np.zeros((1, 3, 25))
    pred = np.zeros((1, 1, 3, 25))
    pred[..., 0] = 1.0  # an AU block channel: block DTW sqrt(3) weighted 1/15
    pred[..., 15] = 2.0  # a V/A channel: sqrt(3 * 4) weighted 1
    pred[..., 20] = 3.0  # an expression channel: sqrt(3 * 9) weighted 1/8
    expected = math.sqrt(3) / 15 + math.sqrt(12) + math.sqrt(27) / 8
    assert react.frd(pred, lis, np.ones((1, 1)), progress=False) == pytest.approx(expected, rel=1e-12)
    plain = math.sqrt(3 * (1 + 4 + 9))
    assert react.frd(pred, lis, np.ones((1, 1)), feature_space="plain", progress=False) == pytest.approx(plain)
    with pytest.raises(ValueError, match="emotion"):
        react.frd(pred[..., :24], lis[..., :24], np.ones((1, 1)), feature_space="emotion")


def test_single_sample_edge_cases():
    pred = np.random.default_rng(0).random((3, 1, 20, 4))
    assert react.s_mse(pred, "react2023") == 0.0
    assert math.isnan(react.s_mse(pred, "facezoo"))
    assert math.isnan(react.fr_dvs(pred[:1]))
    assert math.isnan(react.fr_var(pred[:, :, :1]))


def test_tlcc_facezoo_excludes_constant_channels():
    rng = np.random.default_rng(5)
    spk = np.cumsum(rng.normal(size=(3, 120, 2)), axis=1)
    pred = np.roll(spk, 3, axis=1)[:, None].repeat(2, axis=1).copy()
    spk_c = np.concatenate([spk, np.zeros((3, 120, 1))], axis=2)  # a constant speaker channel
    pred_c = np.concatenate([pred, rng.normal(size=(3, 2, 120, 1))], axis=3)
    assert react.tlcc(pred_c, spk_c, "react2023") == 49.0
    assert react.tlcc(pred_c, spk_c, "facezoo") == react.tlcc(pred, spk, "facezoo") == 3.0
    # all channels constant: nothing defined -> NaN under facezoo, 49 under react2023
    flat = np.zeros((3, 2, 120, 2))
    assert math.isnan(react.tlcc(flat, spk, "facezoo"))
    assert react.tlcc(flat, spk, "react2023") == 49.0


def test_score_subset_order_and_torch_inputs(data):
    pred, lis, spk, m = data
    out = score(torch.from_numpy(pred), torch.from_numpy(lis), torch.from_numpy(spk), torch.from_numpy(m),
                metrics=["tlcc", "S-MSE"], progress=False)
    assert list(out) == ["TLCC", "S-MSE"]
    full = score(pred, lis, spk, m, progress=False)
    assert list(full) == list(react.DEFAULT_METRICS)
    assert all(isinstance(v, float) for v in full.values())


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, lis, s, m: (p[0], lis, s, m), "predictions: expected 4 dimensions"),
        (lambda p, lis, s, m: (p, lis[:, :-1], s, m), "listeners: expected shape"),
        (lambda p, lis, s, m: (p, lis, s[:-1], m), "speakers: expected shape"),
        (lambda p, lis, s, m: (p, lis, s, m[:-1]), r"neighbours: expected an \(N, N\)"),
        (lambda p, lis, s, m: (p, lis, s, m * 2.0), "neighbours: expected a binary"),
        (lambda p, lis, s, m: (np.where(p > 0.9, np.nan, p), lis, s, m), "predictions: contains NaN"),
        (lambda p, lis, s, m: (p, np.where(lis > 0.5, np.inf, lis), s, m), "listeners: contains NaN or inf"),
        (lambda p, lis, s, m: (p.astype(str), lis, s, m), "predictions: expected a numeric array"),
    ],
)
def test_bad_inputs_are_rejected(data, change, message):
    pred, lis, spk, m = change(*data)
    with pytest.raises(ValueError, match=message):
        score(pred, lis, spk, m, progress=False)


def test_bad_protocol_metric_and_empty_neighbour_rows(data):
    pred, lis, spk, m = data
    with pytest.raises(ValueError, match="protocol"):
        score(pred, lis, spk, m, protocol="react2099")
    with pytest.raises(ValueError, match="unknown metric"):
        score(pred, lis, spk, m, metrics=["FID"])
    empty = m.copy()
    empty[2] = False
    with pytest.raises(ValueError, match=r"rows \[2\] have no appropriate reaction"):
        score(pred, lis, spk, empty, metrics=["FRC"], protocol="react2023")
    # facezoo counts the speaker's own listener, so the row is fine there
    assert math.isfinite(score(pred, lis, spk, empty, metrics=["FRC"], protocol="facezoo")["FRC"])
    with pytest.raises(ValueError, match="listeners: required"):
        score(pred, None, spk, m, metrics=["FRD"])
    with pytest.raises(ValueError, match="TLCC"):
        score(pred[:, :, :30], metrics=["TLCC"], speakers=spk[:, :30])
