"""The frozen 478 -> 68 table against the mesh topology that ships with the mediapipe package."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.features.face_state import NUM_LANDMARKS
from datamodules.features.mediapipe_to_ibug import (
    IBUG_FROM_MEDIAPIPE,
    MAPPING_MATRIX,
    mediapipe_points_for_ibug,
    mediapipe_to_ibug,
)
from datamodules.features.rig import MIRROR

conn = pytest.importorskip("mediapipe.tasks.python.vision.face_landmarker").FaceLandmarksConnections


def _path(connections, start: int, stop: int) -> list[int]:
    """The vertex sequence from ``start`` to ``stop`` along a connection list (a chain)."""
    edges = [(c.start, c.end) for c in connections]
    path = [start]
    while path[-1] != stop:
        nxt = [b for a, b in edges if a == path[-1]] + [a for a, b in edges if b == path[-1]]
        nxt = [v for v in nxt if v not in path]
        assert nxt, f"chain broken at {path[-1]}"
        path.append(nxt[0])
    return path


def _two_paths(connections, a: int, b: int) -> tuple[list[int], list[int]]:
    """The two chains from corner ``a`` to corner ``b`` of a closed contour (e.g. upper, lower lip)."""
    first = _path(connections, a, b)
    used = set(zip(first, first[1:])) | set(zip(first[1:], first))
    second = _path([c for c in connections if (c.start, c.end) not in used], a, b)
    return first, second


def _mesh_mirror() -> dict[int, int]:
    """MediaPipe's left/right vertex mirror, seeded by the package's paired part contours and
    grown through the tesselation (a vertex's mirror is the unique common neighbour of the
    mirrors of its mapped neighbours)."""
    mirror: dict[int, int] = {}

    def pair(a: list[int], b: list[int]) -> None:
        assert len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            mirror[u], mirror[v] = v, u

    oval = [(c.start, c.end) for c in conn.FACE_LANDMARKS_FACE_OVAL]
    ring = [oval[0][0]] + [e for _, e in oval]  # 10 ... 10
    half = len(ring) // 2
    pair(ring[: half + 1], ring[::-1][: half + 1])  # 10 and 152 are their own mirrors
    pair(_path(conn.FACE_LANDMARKS_RIGHT_EYE, 33, 133), _path(conn.FACE_LANDMARKS_LEFT_EYE, 263, 362))
    pair([c.start for c in conn.FACE_LANDMARKS_RIGHT_EYEBROW], [c.start for c in conn.FACE_LANDMARKS_LEFT_EYEBROW])
    for corner_a, corner_b in ((61, 291), (78, 308)):
        for half_loop in _two_paths(conn.FACE_LANDMARKS_LIPS, corner_a, corner_b):
            pair(half_loop, half_loop[::-1])
    neighbours: dict[int, set[int]] = {}
    for c in conn.FACE_LANDMARKS_TESSELATION:
        neighbours.setdefault(c.start, set()).add(c.end)
        neighbours.setdefault(c.end, set()).add(c.start)
    changed = True
    while changed:
        changed = False
        for v, near in neighbours.items():
            if v in mirror:
                continue
            known = [mirror[n] for n in near if n in mirror]
            if len(known) < 2:
                continue
            candidates = set.intersection(*(neighbours[m] for m in known)) - set(mirror)
            candidates |= {v} & set.intersection(*(neighbours[m] for m in known))
            if len(candidates) == 1:
                (w,) = candidates
                mirror[v], mirror[w] = w, v
                changed = True
    return mirror


def test_table_is_a_row_stochastic_map_onto_mesh_vertices():
    assert MAPPING_MATRIX.shape == (NUM_LANDMARKS, 478)
    np.testing.assert_allclose(MAPPING_MATRIX.sum(axis=1), 1.0)
    used = np.flatnonzero(MAPPING_MATRIX.any(axis=0))
    assert used.max() < 468  # no iris points: the table works on the 468-point mesh too
    # every iBUG point owns a vertex no other point uses, so the map has full row rank
    assert np.linalg.matrix_rank(MAPPING_MATRIX) == NUM_LANDMARKS


def test_jaw_runs_along_the_face_oval_from_right_ear_through_chin_to_left_ear():
    oval = [(c.start, c.end) for c in conn.FACE_LANDMARKS_FACE_OVAL]
    ring = [oval[0][0]] + [e for _, e in oval][:-1]
    position = {v: i for i, v in enumerate(ring)}
    jaw_positions = [np.mean([position[v] for v in IBUG_FROM_MEDIAPIPE[i]]) for i in range(17)]
    assert all(v in position for i in range(17) for v in IBUG_FROM_MEDIAPIPE[i])
    steps = np.diff(jaw_positions)
    assert (steps < 0).all() or (steps > 0).all(), jaw_positions  # monotone along the contour
    assert IBUG_FROM_MEDIAPIPE[8] == (152,)  # menton: the oval's bottom vertex


@pytest.mark.parametrize("ibug, contour, corners", [
    (range(36, 42), "FACE_LANDMARKS_RIGHT_EYE", (33, 133)),
    (range(42, 48), "FACE_LANDMARKS_LEFT_EYE", (362, 263)),
    (range(48, 60), "FACE_LANDMARKS_LIPS", (61, 291)),
    (range(60, 68), "FACE_LANDMARKS_LIPS", (78, 308)),
])
def test_eye_and_lip_loops_follow_the_mesh_contour_in_order(ibug, contour, corners):
    vertices = [IBUG_FROM_MEDIAPIPE[i][0] for i in ibug]
    assert all(len(IBUG_FROM_MEDIAPIPE[i]) == 1 for i in ibug)
    first, second = _two_paths(getattr(conn, contour), *corners)
    loop = first + second[::-1][1:-1]  # corner -> one lid/lip -> other corner -> back
    where = [loop.index(v) for v in vertices]
    # cyclic order: rotate so the first iBUG point is at 0, then positions increase (either way round)
    rotated = [(w - where[0]) % len(loop) for w in where]
    reverse = [(where[0] - w) % len(loop) for w in where]
    assert rotated == sorted(rotated) or reverse == sorted(reverse), (vertices, loop)


def test_mirror_pairs_map_to_mesh_mirror_pairs_except_the_documented_jaw_pair():
    mirror = _mesh_mirror()
    asymmetric = []
    for i in range(NUM_LANDMARKS):
        mirrored = tuple(sorted(mirror[v] for v in IBUG_FROM_MEDIAPIPE[i]))
        if mirrored != tuple(sorted(IBUG_FROM_MEDIAPIPE[MIRROR[i]])):
            asymmetric.append(i)
    assert asymmetric == [3, 13]


def test_inverse_reproduces_given_68_points_and_torch_matches_numpy():
    rng = np.random.default_rng(0)
    ibug = rng.normal(size=(2, 3, NUM_LANDMARKS, 2))
    mesh = mediapipe_points_for_ibug(ibug)
    assert mesh.shape == (2, 3, 478, 2)
    np.testing.assert_allclose(mediapipe_to_ibug(mesh), ibug, atol=1e-10)
    np.testing.assert_allclose(mediapipe_to_ibug(torch.from_numpy(mesh)).numpy(), ibug, atol=1e-10)
    # a point averaged from two vertices: iBUG 27 is the mid-point of 168 and 6
    np.testing.assert_allclose(mediapipe_to_ibug(mesh)[..., 27, :], (mesh[..., 168, :] + mesh[..., 6, :]) / 2)


def test_nan_frames_stay_nan_and_bad_shapes_are_rejected():
    mesh = np.full((2, 478, 3), np.nan)
    mesh[0] = 0.5
    out = mediapipe_to_ibug(mesh)
    assert np.isnan(out[1]).all() and np.allclose(out[0], 0.5)
    with pytest.raises(ValueError, match="478"):
        mediapipe_to_ibug(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="68"):
        mediapipe_points_for_ibug(np.zeros((67, 2)))
