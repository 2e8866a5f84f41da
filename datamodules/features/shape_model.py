"""A 2-D point distribution model (PDM) of the 68 landmarks: DyadGAN's face-shape parameters.

Interactive GAN (arXiv 1801.09092, Sec. 3.2) describes each face by a PDM,
``x_i = s R (X_i + phi_i q) + t``: rigid parameters (scale s, rotation R, translation t) and
non-rigid ones q (PCA modes). Real recordings come with 2-D landmarks only (dlib / MediaPipe),
so the model here is the classic 2-D active-shape-model PDM (notes D.4 "custom 2-D PDM", F.7):

1. every shape is centred and scaled to unit norm;
2. generalised Procrustes analysis aligns all shapes to their mean by a similarity transform,
   re-estimating the mean until it stops moving;
3. PCA of the aligned shapes keeps ``num_modes`` modes (or enough for ``variance``).

Parameters of one frame, ``(..., 4 + k)``: ``[log_scale, angle, tx, ty, b_1..b_k]``. The rigid
part maps the model frame to pixels: ``points = exp(log_scale) * R(angle) @ (mean + P b) + t``
with ``angle`` counter-clockwise in the usual maths sense on (x right, y down) pixels, i.e.
clockwise on screen. In-plane head roll lives in ``angle``; 2-D out-of-plane motion (nods,
shakes) appears in the non-rigid modes, as in any 2-D PDM.

Flattened shapes use OpenFace's block order ``[x_0..x_67, y_0..y_67]`` (notes D.4), never
interleaved. ``save``/``load`` use an ``.npz`` written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from einops import rearrange

from datamodules.features.face_state import NUM_LANDMARKS
from datamodules.features.io import atomic_path

__all__ = ["PointDistributionModel", "procrustes_align", "NUM_RIGID"]

NUM_RIGID = 4  # log_scale, angle, tx, ty
FORMAT_VERSION = 1


def _flatten(points: np.ndarray) -> np.ndarray:
    return rearrange(points, "... n c -> ... (c n)")


def _unflatten(vectors: np.ndarray) -> np.ndarray:
    return rearrange(vectors, "... (c n) -> ... n c", c=2)


def _check_points(points, name: str = "points") -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim < 2 or points.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"{name}: expected pixel landmarks (..., {NUM_LANDMARKS}, 2), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError(f"{name}: contains NaN or infinite coordinates")
    return points


def procrustes_align(points: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity from ``points`` (..., N, 2) onto a centred ``reference`` (N, 2).

    Returns ``(aligned, scale, angle, translation)`` such that ``points = scale * R(angle) @ aligned
    + translation`` exactly. Closed form (Umeyama without reflection, in 2-D complex numbers): for
    centred p and reference r the best ``c`` in ``r ≈ c p`` is ``sum(conj(p) r) / sum(|p|^2)``.
    """
    centre = points.mean(axis=-2, keepdims=True)
    p = points - centre
    pc = p[..., 0] + 1j * p[..., 1]
    rc = reference[..., 0] + 1j * reference[..., 1]
    norm = np.sum(np.abs(pc) ** 2, axis=-1)
    if np.any(norm <= 1e-12):
        raise ValueError("points: a shape has all its landmarks at one point (degenerate face)")
    c = np.sum(np.conj(pc) * rc, axis=-1) / norm  # reference ≈ c * p
    aligned_c = c[..., None] * pc
    aligned = np.stack([aligned_c.real, aligned_c.imag], axis=-1)
    inverse = 1.0 / c  # p ≈ inverse * aligned
    return aligned, np.abs(inverse), np.angle(inverse), centre[..., 0, :]


@dataclass
class PointDistributionModel:
    """Mean shape (68, 2) of unit norm, modes (136, k) orthonormal, eigenvalues (k,) of the
    aligned training shapes, and the training mean/std of every parameter (for standardising)."""

    mean: np.ndarray
    modes: np.ndarray
    eigenvalues: np.ndarray
    param_mean: np.ndarray
    param_std: np.ndarray

    def __post_init__(self) -> None:
        k = self.modes.shape[1] if self.modes.ndim == 2 else -1
        if self.mean.shape != (NUM_LANDMARKS, 2) or self.modes.shape != (2 * NUM_LANDMARKS, k) or k < 1:
            raise ValueError(f"PointDistributionModel: mean {self.mean.shape} / modes {self.modes.shape} "
                             f"must be (68, 2) / (136, k >= 1)")
        p = NUM_RIGID + k
        if self.eigenvalues.shape != (k,) or self.param_mean.shape != (p,) or self.param_std.shape != (p,):
            raise ValueError(f"PointDistributionModel: eigenvalues {self.eigenvalues.shape}, param_mean "
                             f"{self.param_mean.shape}, param_std {self.param_std.shape} must be ({k},), ({p},), ({p},)")

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, points, num_modes: int | None = None, variance: float = 0.98, max_iter: int = 100,
            tol: float = 1e-10) -> PointDistributionModel:
        """Fit on training landmarks (N, 68, 2) in pixels: GPA then PCA (see the module docstring).

        ``num_modes`` fixes k (DyadGAN used OpenFace's 34); None keeps the fewest modes that
        explain ``variance`` of the aligned-shape variance.
        """
        points = _check_points(points).reshape(-1, NUM_LANDMARKS, 2)
        if len(points) < 2:
            raise ValueError(f"points: need at least 2 shapes to fit a shape model, got {len(points)}")
        if num_modes is not None and not 1 <= num_modes <= 2 * NUM_LANDMARKS - NUM_RIGID:
            raise ValueError(f"num_modes: expected 1..{2 * NUM_LANDMARKS - NUM_RIGID}, got {num_modes}")
        if not 0.0 < variance <= 1.0:
            raise ValueError(f"variance: expected a fraction in (0, 1], got {variance}")
        centred = points - points.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(centred, axis=(1, 2), keepdims=True)
        if np.any(norms <= 1e-12):
            raise ValueError("points: a shape has all its landmarks at one point (degenerate face)")
        # Generalised Procrustes: the first shape fixes the orientation of the mean.
        mean = centred[0] / norms[0]
        for _ in range(max_iter):
            aligned, *_ = procrustes_align(centred, mean)
            new_mean = aligned.mean(axis=0)
            new_mean, *_ = procrustes_align(new_mean, mean)  # keep the reference orientation
            new_mean /= np.linalg.norm(new_mean)
            moved = np.sum((new_mean - mean) ** 2)
            mean = new_mean
            if moved < tol:
                break
        aligned, *_ = procrustes_align(centred, mean)
        # Tangent-space projection: scale each aligned shape onto the plane x . mean = 1.
        flat = _flatten(aligned)
        mean_flat = _flatten(mean)
        flat = flat / (flat @ mean_flat)[:, None]
        deviations = flat - mean_flat
        _, singular, vt = np.linalg.svd(deviations, full_matrices=False)
        eigenvalues = singular**2 / max(len(points) - 1, 1)
        if num_modes is None:
            explained = np.cumsum(eigenvalues) / max(eigenvalues.sum(), 1e-300)
            num_modes = int(min(np.searchsorted(explained, variance) + 1, len(eigenvalues)))
        num_modes = min(num_modes, len(eigenvalues))
        modes = vt[:num_modes].T
        # Sign convention so a refit gives the same modes: largest-magnitude entry positive.
        signs = np.sign(modes[np.argmax(np.abs(modes), axis=0), np.arange(num_modes)])
        modes = modes * signs
        model = cls(mean, modes, eigenvalues[:num_modes],
                    np.zeros(NUM_RIGID + num_modes), np.ones(NUM_RIGID + num_modes))
        params = model.encode(points, standardise=False)
        std = params.std(axis=0)
        model.param_mean = params.mean(axis=0)
        model.param_std = np.where(std > 1e-8, std, 1.0)
        return model

    # -- parameters <-> points -------------------------------------------------------------------

    @property
    def num_modes(self) -> int:
        return self.modes.shape[1]

    @property
    def num_params(self) -> int:
        return NUM_RIGID + self.num_modes

    def encode(self, points, standardise: bool = False) -> np.ndarray:
        """Shape parameters (..., 4 + k) of pixel landmarks (..., 68, 2)."""
        points = _check_points(points)
        aligned, scale, angle, translation = procrustes_align(points, self.mean)
        flat = _flatten(aligned)
        flat = flat / (flat @ _flatten(self.mean))[..., None]  # tangent space, as in fit
        b = (flat - _flatten(self.mean)) @ self.modes
        # The tangent projection rescaled the shape by (x . mean); fold that into the scale.
        tangent_scale = np.linalg.norm(_flatten(aligned), axis=-1) / np.linalg.norm(flat, axis=-1)
        params = np.concatenate([np.log(scale * tangent_scale)[..., None], angle[..., None], translation, b], axis=-1)
        return self.standardise(params) if standardise else params

    def decode(self, params, standardised: bool = False, clamp: bool = False) -> np.ndarray:
        """Pixel landmarks (..., 68, 2) of shape parameters (..., 4 + k).

        ``clamp`` limits each non-rigid parameter to ``±3 sqrt(eigenvalue)`` (ASM practice,
        notes F.7), for parameters that come from a generator rather than from a real face.
        """
        params = np.asarray(params, dtype=np.float64)
        if params.ndim < 1 or params.shape[-1] != self.num_params:
            raise ValueError(f"params: expected (..., {self.num_params}) shape parameters, got shape {params.shape}")
        if not np.isfinite(params).all():
            raise ValueError("params: contains NaN or inf")
        if standardised:
            params = self.destandardise(params)
        b = params[..., NUM_RIGID:]
        if clamp:
            limit = 3.0 * np.sqrt(self.eigenvalues)
            b = np.clip(b, -limit, limit)
        local = _unflatten(_flatten(self.mean) + b @ self.modes.T)
        rotation = np.exp(params[..., 0] + 1j * params[..., 1])
        lc = rotation[..., None] * (local[..., 0] + 1j * local[..., 1])
        return np.stack([lc.real, lc.imag], axis=-1) + params[..., None, 2:4]

    def standardise(self, params) -> np.ndarray:
        """(params - training mean) / training std, per parameter."""
        return (np.asarray(params, dtype=np.float64) - self.param_mean) / self.param_std

    def destandardise(self, params) -> np.ndarray:
        return np.asarray(params, dtype=np.float64) * self.param_std + self.param_mean

    # -- files -------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write an ``.npz`` atomically (never a half-written file)."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, version=np.array(FORMAT_VERSION), mean=self.mean, modes=self.modes,
                     eigenvalues=self.eigenvalues, param_mean=self.param_mean, param_std=self.param_std)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PointDistributionModel:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: shape model not found (expected an .npz written by PointDistributionModel.save)")
        with np.load(path, allow_pickle=False) as data:
            missing = {"version", "mean", "modes", "eigenvalues", "param_mean", "param_std"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: not a facezoo shape model (missing {sorted(missing)})")
            if int(data["version"]) != FORMAT_VERSION:
                raise ValueError(f"{path}: shape model format {int(data['version'])}, expected {FORMAT_VERSION}")
            return cls(*(np.asarray(data[k], dtype=np.float64)
                         for k in ("mean", "modes", "eigenvalues", "param_mean", "param_std")))
