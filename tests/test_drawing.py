"""Sketches and landmark images: exact pixels along the polylines, 1-px width, the oval mask,
the binary 64x64 CMM-Net raster, batching and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.features.drawing import (
    POLYLINE_GROUPS,
    draw_landmarks,
    landmark_image,
    oval_mask,
    sketch,
)
from datamodules.features.rig import NUM_IDENTITY_MODES, FaceRig


def parked(x: float = 50.0, y: float = 50.0) -> np.ndarray:
    """68 points all on one pixel: every polyline degenerates to that single pixel."""
    return np.tile([x, y], (68, 1)).astype(np.float64)


def test_groups_cover_every_landmark_once_in_ibug_order():
    covered = [i for name, idx, _ in POLYLINE_GROUPS if name != "lower_nose" for i in idx] + [31, 32, 33, 34, 35]
    assert sorted(covered) == list(range(68))
    closed = {name for name, _, is_closed in POLYLINE_GROUPS if is_closed}
    assert closed == {"lower_nose", "right_eye", "left_eye", "outer_lips", "inner_lips"}


def test_pixels_are_set_exactly_along_a_horizontal_and_a_vertical_polyline():
    points = parked()
    points[0:17] = np.stack([np.arange(10, 27), np.full(17, 5.0)], axis=1)  # jaw: y = 5, x = 10..26
    points[17:22] = np.stack([np.full(5, 40.0), np.arange(20, 25)], axis=1)  # right brow: x = 40, y = 20..24
    image = draw_landmarks(points, 64)
    expected = np.zeros((64, 64), dtype=np.uint8)
    expected[5, 10:27] = 255
    expected[20:25, 40] = 255
    expected[50, 50] = 255  # every other group collapses onto the parked pixel
    np.testing.assert_array_equal(image, expected)


def test_a_closed_loop_joins_its_last_point_to_its_first():
    points = parked()
    # right eye as a 6-point open "U": closing it draws the top edge y = 10 from x = 10 to 20
    points[36:42] = [(10, 10), (10, 14), (10, 18), (20, 18), (20, 14), (20, 10)]
    image = draw_landmarks(points, 32)
    assert image[10, 10:21].all() and image[18, 10:21].all()


def test_sketch_lines_are_one_pixel_wide():
    points = parked(62.0, 62.0)  # outside the columns checked
    points[0:17] = np.stack([np.linspace(5, 60, 17), np.linspace(3, 40, 17)], axis=1)  # a shallow diagonal
    image = draw_landmarks(points, 64)
    columns = image[:, 5:61] > 0
    # 8-connected 1-px line with |slope| < 1: exactly one pixel per column
    np.testing.assert_array_equal(columns.sum(axis=0), np.ones(56, dtype=int))


def test_sketch_of_a_face_is_binary_white_on_black_and_masked_by_the_oval():
    face = FaceRig.landmarks_2d(np.zeros(58), image_size=128)
    unmasked = draw_landmarks(face, 128)
    masked = sketch(face, 128)
    assert set(np.unique(masked)) == {0, 255}
    np.testing.assert_array_equal(masked, unmasked)  # the default oval holds the whole face
    corners = face.copy()
    corners[0] = (0, 0)
    corners[16] = (127, 0)
    assert draw_landmarks(corners, 128)[:8, :8].any()
    cut = sketch(corners, 128)
    mask = oval_mask(128)
    assert not cut[~mask].any()
    np.testing.assert_array_equal(cut[mask], draw_landmarks(corners, 128)[mask])


def test_oval_mask_geometry():
    mask = oval_mask(100, centre=(0.5, 0.5), axes=(0.4, 0.3))
    assert mask.dtype == bool and mask.shape == (100, 100)
    assert mask[50, 50] and mask[50, 10] and not mask[50, 5] and mask[22, 50] and not mask[17, 50]
    assert abs(mask.sum() - np.pi * 40 * 30) < 0.02 * np.pi * 40 * 30


def test_default_oval_holds_the_rig_face_at_plausible_poses():
    rng = np.random.default_rng(0)
    states = np.zeros((200, 58))
    states[:, :52] = rng.uniform(0, 1, (200, 52))
    states[:, 52:55] = rng.uniform(-0.35, 0.35, (200, 3))
    identity = np.clip(rng.normal(0, 1, (200, NUM_IDENTITY_MODES)), -2, 2)
    points = np.round(FaceRig.landmarks_2d(states, identity, 256)).astype(int)
    assert oval_mask(256)[points[..., 1], points[..., 0]].all()


def test_landmark_image_is_binary_64_and_rescales_from_the_source_frame():
    face = FaceRig.landmarks_2d(np.zeros(58), image_size=256)
    image = landmark_image(face, source_size=256)
    assert image.shape == (64, 64) and image.dtype == np.uint8
    assert set(np.unique(image)) == {0, 1}
    np.testing.assert_array_equal(image, draw_landmarks((face + 0.5) / 4 - 0.5, 64) // 255)
    already = landmark_image((face + 0.5) / 4 - 0.5)
    np.testing.assert_array_equal(already, image)
    with pytest.raises(ValueError, match="source_size"):
        landmark_image(face * 3)


def test_sequences_match_frame_by_frame_and_torch_input_is_accepted():
    states = np.zeros((3, 58))
    states[:, 25] = (0.0, 0.5, 1.0)  # jawOpen
    points = FaceRig.landmarks_2d(states, image_size=96)
    stack = draw_landmarks(points, 96, antialias=True)
    assert stack.shape == (3, 96, 96)
    for t in range(3):
        np.testing.assert_array_equal(stack[t], draw_landmarks(points[t], 96, antialias=True))
    assert len(np.unique(stack)) > 2  # anti-aliasing gives grey levels
    np.testing.assert_array_equal(draw_landmarks(torch.tensor(points), 96), draw_landmarks(points, 96))
    assert not np.array_equal(stack[0], stack[2])
    np.testing.assert_array_equal(landmark_image(points, source_size=96).shape, (3, 64, 64))


def test_thickness_and_value():
    points = parked()
    points[0:17] = np.stack([np.arange(10, 27), np.full(17, 20.0)], axis=1)
    thick = draw_landmarks(points, 64, thickness=3, value=7)
    assert set(np.unique(thick)) == {0, 7}
    assert thick[19:22, 15].all() and not thick[17, 15] and not thick[23, 15]


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="points"):
        draw_landmarks(np.zeros((67, 2)), 64)
    with pytest.raises(ValueError, match="NaN"):
        draw_landmarks(np.full((68, 2), np.nan), 64)
    with pytest.raises(ValueError, match="image_size"):
        draw_landmarks(parked(), 0)
    with pytest.raises(ValueError, match="thickness"):
        draw_landmarks(parked(), 64, thickness=0)
    with pytest.raises(ValueError, match="oval_mask"):
        draw_landmarks(parked(), 64, oval_mask=np.ones((32, 32), dtype=bool))
