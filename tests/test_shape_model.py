"""Point distribution model: Procrustes + PCA round trips, rigid parameters, files, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from datamodules.features.rig import FaceRig
from datamodules.features.shape_model import NUM_RIGID, PointDistributionModel, procrustes_align


def _faces(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    states = np.zeros((n, 58))
    states[:, :52] = rng.uniform(0, 0.6, (n, 52))
    states[:, 52:55] = rng.normal(0, 0.08, (n, 3))
    states[:, 55:] = rng.normal(0, 0.02, (n, 3))
    return FaceRig.landmarks_2d(states, None, 128)


def test_full_model_reconstructs_every_training_shape_exactly():
    points = _faces()
    model = PointDistributionModel.fit(points, num_modes=2 * 68 - NUM_RIGID)
    assert np.abs(model.decode(model.encode(points)) - points).max() < 1e-8


def test_rigid_parameters_follow_a_known_similarity_transform():
    points = _faces(50)
    model = PointDistributionModel.fit(points, num_modes=10)
    base = model.encode(points[0])
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = model.encode(scale * points[0] @ rot.T + shift)
    assert moved[0] == pytest.approx(base[0] + np.log(scale), abs=1e-9)
    assert moved[1] == pytest.approx(base[1] + angle, abs=1e-9)
    np.testing.assert_allclose(moved[NUM_RIGID:], base[NUM_RIGID:], atol=1e-9)  # shape is pose-free


def test_procrustes_recovers_the_transform():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(68, 2))
    reference -= reference.mean(0)
    c = 2.0 * np.exp(0.5j)
    moved_c = (reference[:, 0] + 1j * reference[:, 1]) * c + (3 + 4j)
    moved = np.stack([moved_c.real, moved_c.imag], -1)
    aligned, scale, angle, translation = procrustes_align(moved, reference)
    np.testing.assert_allclose(aligned, reference, atol=1e-12)
    assert (scale, angle) == (pytest.approx(2.0), pytest.approx(0.5))
    np.testing.assert_allclose(translation, [3, 4], atol=1e-12)


def test_variance_picks_modes_and_standardised_parameters_are_unit_scale(tmp_path):
    points = _faces()
    model = PointDistributionModel.fit(points, variance=0.9)
    explained = model.eigenvalues.sum()
    assert 1 <= model.num_modes < 40 and np.all(np.diff(model.eigenvalues) <= 0) and explained > 0
    params = model.encode(points, standardise=True)
    np.testing.assert_allclose(params.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(params.std(0), 1, atol=1e-9)
    np.testing.assert_allclose(model.decode(params, standardised=True), model.decode(model.encode(points)))
    loaded = PointDistributionModel.load(model.save(tmp_path / "pdm.npz"))
    np.testing.assert_array_equal(loaded.modes, model.modes)
    assert [p.name for p in tmp_path.iterdir()] == ["pdm.npz"]  # no temp files left


def test_clamp_limits_non_rigid_parameters_to_three_sigma():
    model = PointDistributionModel.fit(_faces(), num_modes=5)
    params = np.zeros(model.num_params)
    params[NUM_RIGID] = 100.0
    clamped = model.decode(params, clamp=True)
    limit = params.copy()
    limit[NUM_RIGID] = 3 * np.sqrt(model.eigenvalues[0])
    np.testing.assert_allclose(clamped, model.decode(limit))


def test_bad_input_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="points"):
        PointDistributionModel.fit(np.zeros((10, 5, 2)))
    with pytest.raises(ValueError, match="degenerate"):
        PointDistributionModel.fit(np.zeros((10, 68, 2)))
    model = PointDistributionModel.fit(_faces(20), num_modes=3)
    with pytest.raises(ValueError, match="params"):
        model.decode(np.zeros(5))
    with pytest.raises(FileNotFoundError, match="shape model"):
        PointDistributionModel.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a facezoo shape model"):
        PointDistributionModel.load(tmp_path / "other.npz")
