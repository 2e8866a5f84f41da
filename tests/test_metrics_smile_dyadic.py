"""CMM-Net AU-curve distance and DyadGAN sequence metrics against hand-computed references."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from datamodules.features.face_state import BLENDSHAPE_INDEX, EXPRESSION_DIM
from zoo.metrics.dyadic import (
    SampleDiversity,
    SequenceJerk,
    SequenceMSE,
    best_of_k_mse,
    mean_jerk,
    sample_diversity,
    sequence_mse,
)
from zoo.metrics.smile import AUCurveDistance, au_curve, au_curve_distance, smooth_au_curve


def _face_templates():
    # The synthetic iBUG faces of test_au_rules.py, loaded by path so this works whether or not
    # tests/ is a package.
    spec = importlib.util.spec_from_file_location("_au_rule_faces", Path(__file__).with_name("test_au_rules.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.neutral_face(), module.smiling_face()


# ---------------------------------------------------------------- AU curves


def test_smoothing_is_centred_five_frame_mean_with_replicated_edges():
    x = torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 10.0])
    # padded: 0 0 | 0 0 5 0 0 0 10 | 10 10
    expected = [1.0, 1.0, 1.0, 1.0, 3.0, 4.0, 6.0]
    np.testing.assert_allclose(smooth_au_curve(x).numpy(), expected)
    np.testing.assert_allclose(smooth_au_curve(np.array([1.0, 2, 3, 4, 5, 6]), window=3).numpy(),
                               [4 / 3, 2, 3, 4, 5, 17 / 3])
    with pytest.raises(ValueError, match="odd"):
        smooth_au_curve(x, window=4)


def test_au_curve_distance_hand_example():
    real = np.zeros((2, 6, 2))
    real[0, :, 0] = [0, 1, 2, 3, 4, 5]
    real[1, :, 0] = [0, 1, 2, 3, 4, 5]
    generated = real.copy()
    generated[..., 0] += 0.5  # AU6 curve shifted by 0.5 on all 6 frames -> distance 3
    generated[0, :, 1] = 2.0  # AU12: one of two sequences at 2, the other at 0 -> mean curve 1
    distance = au_curve_distance(generated, real)
    np.testing.assert_allclose(distance.numpy(), [3.0, 6.0])
    assert au_curve(real).shape == (6, 2)


def test_au_curve_metric_accumulates_like_the_functional():
    rng = np.random.default_rng(0)
    gen, real = rng.uniform(0, 5, (7, 32, 2)), rng.uniform(0, 5, (5, 32, 2))
    metric = AUCurveDistance(num_frames=32)
    metric.update(torch.from_numpy(gen[:3]), torch.from_numpy(real[:2]))
    metric.update(torch.from_numpy(gen[3:]), torch.from_numpy(real[2:]))
    out = metric.compute()
    expected = au_curve_distance(gen, real).numpy()
    assert set(out) == {"AU6", "AU12"}
    np.testing.assert_allclose([float(out["AU6"]), float(out["AU12"])], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="32"):
        metric.update(torch.zeros(2, 31, 2), torch.zeros(2, 31, 2))


def test_au_curve_metric_from_blendshapes_and_landmarks():
    smile = np.zeros((1, 4, EXPRESSION_DIM))
    smile[0, :, BLENDSHAPE_INDEX["mouthSmileLeft"]] = smile[0, :, BLENDSHAPE_INDEX["mouthSmileRight"]] = 0.4
    metric = AUCurveDistance(num_frames=4, au_names=("AU12",), source="blendshapes")
    metric.update(smile, np.zeros((1, 4, EXPRESSION_DIM)))
    assert float(metric.compute()["AU12"]) == pytest.approx(4 * 5 * 0.4)

    neutral, smiling = _face_templates()
    generated = np.stack([neutral, neutral, smiling, smiling])[None]  # smile from frame 2
    real = np.stack([neutral] * 4)[None]
    lm = AUCurveDistance(num_frames=4, au_names=("AU12",), source="landmarks")
    lm.update(generated, real)
    au12 = 5 * (2 / 3 + 0.5) / 2
    # [0, 0, a, a] padded to [0, 0 | 0, 0, a, a | a, a], 5-frame means: [a/5, 2a/5, 3a/5, 4a/5]
    assert float(lm.compute()["AU12"]) == pytest.approx(au12 * (1 + 2 + 3 + 4) / 5, rel=1e-9)
    with pytest.raises(ValueError, match="au_names"):
        AUCurveDistance(au_names=("AU45",), source="landmarks")


# ---------------------------------------------------------------- DyadGAN sequence metrics


def test_mse_and_best_of_k_hand_values():
    target = torch.zeros(1, 2, 2)
    samples = torch.stack([torch.full((2, 2), 1.0), torch.full((2, 2), 3.0)])[None]  # (1, 2, 2, 2)
    assert float(sequence_mse(samples, target)) == pytest.approx((1 + 9) / 2)
    assert float(best_of_k_mse(samples, target)) == pytest.approx(1.0)
    assert float(sequence_mse(samples[:, 0], target)) == pytest.approx(1.0)  # (B, T, P) = one sample
    with pytest.raises(ValueError, match="differ"):
        sequence_mse(samples, torch.zeros(1, 3, 2))


def test_jerk_of_polynomials():
    t = torch.arange(10, dtype=torch.float64)
    quadratic = torch.stack([t**2, 3 * t + 1], dim=-1)
    assert float(mean_jerk(quadratic)) == pytest.approx(0.0, abs=1e-9)
    cubic = torch.stack([t**3, 2 * t**3], dim=-1)  # third difference = 6 and 12
    assert float(mean_jerk(cubic)) == pytest.approx(6 * np.sqrt(5))
    assert float(mean_jerk(cubic, fps=2.0)) == pytest.approx(6 * np.sqrt(5) * 8)
    with pytest.raises(ValueError, match="T >= 4"):
        mean_jerk(cubic[:3])


def test_diversity_hand_value_and_brute_force():
    x = torch.zeros(3, 2)
    samples = torch.stack([x, x + 0.5])[None]  # K = 2, every element differs by 0.5
    # sum_{i != j} ||x_i - x_j||^2 = 2 * 6 * 0.25 = 3; / (K (K-1) T P) = 3 / 12 = 0.25
    assert float(sample_diversity(samples)) == pytest.approx(0.25)

    rng = torch.Generator().manual_seed(0)
    s = torch.randn(3, 4, 5, 6, generator=rng, dtype=torch.float64) + 100.0
    brute = torch.stack([
        sum(((s[b, i] - s[b, j]) ** 2).sum() for i in range(4) for j in range(4)) / (4 * 3 * 5 * 6)
        for b in range(3)
    ]).mean()
    assert float(sample_diversity(s)) == pytest.approx(float(brute), rel=1e-10)
    with pytest.raises(ValueError, match="K >= 2"):
        sample_diversity(s[:, :1])


def test_dyadic_metric_classes_accumulate_like_functionals():
    g = torch.Generator().manual_seed(1)
    samples, target = torch.randn(6, 3, 8, 4, generator=g), torch.randn(6, 8, 4, generator=g)
    mse, min_mse, jerk, div = SequenceMSE(), SequenceMSE(best_of_k=True), SequenceJerk(), SampleDiversity()
    for lo, hi in ((0, 2), (2, 6)):
        mse.update(samples[lo:hi], target[lo:hi])
        min_mse.update(samples[lo:hi], target[lo:hi])
        jerk.update(samples[lo:hi])
        div.update(samples[lo:hi])
    assert float(mse.compute()) == pytest.approx(float(sequence_mse(samples, target)), rel=1e-6)
    assert float(min_mse.compute()) == pytest.approx(float(best_of_k_mse(samples, target)), rel=1e-6)
    assert float(jerk.compute()) == pytest.approx(float(mean_jerk(samples)), rel=1e-6)
    assert float(div.compute()) == pytest.approx(float(sample_diversity(samples)), rel=1e-6)
    with pytest.raises(ValueError, match="no sequences"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics: compute before update
        SequenceMSE().compute()
