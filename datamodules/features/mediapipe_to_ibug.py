"""The frozen MediaPipe FaceMesh (478 points) -> iBUG-68 mapping used everywhere in the zoo.

There is no official correspondence and the public lists disagree on the jaw contour, the eye
corners and the nose base (notes D.2). The zoo uses **one** list, verbatim:

    PeizhiYan/Mediapipe_2_Dlib_Landmarks: mediapipe2dlib/mp2dlib.py (Sep. 2024)

Why this one:

* it is a packaged, dated module whose only content is the table (the other lists are
  by-products of AR filter demos, "MediaPipe 468 landmark to dlib 68 landmark maps", or appear
  in two inconsistent copies, the ``mediapipe_lm478_to_face_alignment_lm68`` variant);
* its eyes use the true canthi on both sides (33/133 and 362/263); the "maps" list uses 130 for
  the right outer corner but 263 (the mirror of 33) for the left, which skews every eye-based
  measure (inter-ocular distance, the eye alignment of crops, AU6);
* its nose base (75, 97, 2, 326, 305) spans the alae like iBUG 31-35, and its brows and lips
  agree with every other list;
* where no single mesh vertex sits at an iBUG point it averages two (jaw 3, 4, 12; nasion 27;
  nose bridge 28), which keeps the jaw points close to equally spaced.

Known property, kept to stay comparable with other users of the list: the jaw is **not**
exactly mirror-symmetric at iBUG 3 / 13. iBUG 3 is the mid-point of mesh 132 and 58, while
iBUG 13 is mesh 361 alone (the mirror of 132); every other iBUG mirror pair maps onto a
MediaPipe mirror pair (``tests/test_mediapipe_to_ibug.py`` checks both facts against the mesh
topology shipped with the ``mediapipe`` package). Point 13 therefore sits about half a mesh
edge higher on the jaw than the mirror image of point 3; jaw-asymmetry measures should skip the
pair (3, 13).

Metrics on mapped points are only comparable between data prepared with the same table, hence
:data:`MAPPING_VERSION`, which ``facezoo prepare`` writes into every ``meta.json``.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from datamodules.features.face_state import NUM_LANDMARKS

MAPPING_VERSION = "mp2dlib-peizhiyan-2024-09"
NUM_MESH_POINTS = 478  # 468 mesh vertices + 10 iris points (468-472 one iris, 473-477 the other)

# iBUG index -> the MediaPipe vertices whose mean is that point (mp2dlib.py, rows 1..68).
IBUG_FROM_MEDIAPIPE: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, subject's right ear -> chin (8) -> left ear
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30 (nasion -> tip), lower nose 31-35 (right ala -> left ala)
    (168, 6), (197, 195), (5,), (4,),
    (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41: outer corner, upper lid x2, inner corner, lower lid x2
    (33,), (160,), (158,), (133,), (153,), (144,),
    # left eye 42-47: inner corner, upper lid x2, outer corner, lower lid x2
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59: right corner, upper lip to the left corner (54), lower lip back
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)
assert len(IBUG_FROM_MEDIAPIPE) == NUM_LANDMARKS


def _mapping_matrix() -> np.ndarray:
    weights = np.zeros((NUM_LANDMARKS, NUM_MESH_POINTS))
    for i, sources in enumerate(IBUG_FROM_MEDIAPIPE):
        weights[i, list(sources)] = 1.0 / len(sources)
    return weights


MAPPING_MATRIX = _mapping_matrix()
"""(68, 478) row-stochastic matrix: ``ibug = MAPPING_MATRIX @ mediapipe``."""
MAPPING_MATRIX.setflags(write=False)

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def mediapipe_to_ibug(points: Array) -> Array:
    """iBUG-68 points (..., 68, D) from MediaPipe points (..., 478, D) (or the 468 without irises).

    Works for any coordinate dimension D (2-D pixels, normalised x/y/z); NaN rows (frames without
    a face) stay NaN. numpy in, numpy out; torch in, torch out (differentiable).
    """
    if points.ndim < 2 or points.shape[-2] not in (468, NUM_MESH_POINTS):
        raise ValueError(f"points: expected MediaPipe landmarks (..., 478, D) or (..., 468, D), got shape {tuple(points.shape)}")
    weights = MAPPING_MATRIX[:, : points.shape[-2]]
    if isinstance(points, torch.Tensor):
        w = torch.tensor(np.array(weights), dtype=points.dtype if points.is_floating_point() else torch.float32, device=points.device)
        return torch.einsum("ij,...jd->...id", w, points.to(w.dtype))
    points = np.asarray(points)
    dtype = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64
    return np.einsum("ij,...jd->...id", weights.astype(dtype), points.astype(dtype, copy=False))


def mediapipe_points_for_ibug(ibug: np.ndarray, fill: np.ndarray | None = None) -> np.ndarray:
    """A (..., 478, D) MediaPipe point set whose :func:`mediapipe_to_ibug` is exactly ``ibug`` (..., 68, D).

    The least-norm solution of the mapping restricted to the vertices the table uses (the table
    has full row rank: every iBUG point owns at least one vertex of its own), added to ``fill``
    (default: every vertex at the centroid of the 68 points). Vertices the table does not use
    keep ``fill``. Used to drive the pipeline from known 68-point geometry (the embedded world's
    rig), e.g. by :class:`~datamodules.features.mediapipe_landmarks.GroundTruthLandmarker`.
    """
    ibug = np.asarray(ibug, dtype=np.float64)
    if ibug.ndim < 2 or ibug.shape[-2] != NUM_LANDMARKS:
        raise ValueError(f"ibug: expected (..., {NUM_LANDMARKS}, D) points, got shape {ibug.shape}")
    if fill is None:
        fill = np.broadcast_to(ibug.mean(axis=-2, keepdims=True), (*ibug.shape[:-2], NUM_MESH_POINTS, ibug.shape[-1]))
    fill = np.array(fill, dtype=np.float64)
    if fill.shape != (*ibug.shape[:-2], NUM_MESH_POINTS, ibug.shape[-1]):
        raise ValueError(f"fill: expected shape {(*ibug.shape[:-2], NUM_MESH_POINTS, ibug.shape[-1])}, got {fill.shape}")
    used = np.flatnonzero(MAPPING_MATRIX.any(axis=0))
    residual = ibug - np.einsum("ij,...jd->...id", MAPPING_MATRIX, fill)
    solve = np.linalg.pinv(MAPPING_MATRIX[:, used])  # (n_used, 68)
    fill[..., used, :] += np.einsum("ij,...jd->...id", solve, residual)
    return fill
