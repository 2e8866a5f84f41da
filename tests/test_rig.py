"""The linear face rig: neutral = mean shape, blendshapes move the right landmarks the right way,
pose and projection conventions, numpy/torch agreement, batching and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.features.face_state import BLENDSHAPE_INDEX, BLENDSHAPE_NAMES, FACE_STATE_DIM
from datamodules.features.rig import (
    CAMERA_DISTANCE,
    EXPRESSION_BASIS,
    FACE_WIDTH_FRACTION,
    IDENTITY_MODES,
    INERT_CHANNELS,
    MEAN_SHAPE,
    MIRROR,
    NUM_IDENTITY_MODES,
    ORIGIN_FRACTION,
    PIVOT,
    RIG_VERSION,
    FaceRig,
    rotation_matrix,
)


def state(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0, t=(0.0, 0.0, 0.0), **blendshapes: float) -> np.ndarray:
    out = np.zeros(FACE_STATE_DIM)
    for name, value in blendshapes.items():
        out[BLENDSHAPE_INDEX[name]] = value
    out[52:55] = (pitch, yaw, roll)
    out[55:58] = t
    return out


def test_neutral_state_gives_the_mean_shape():
    assert RIG_VERSION
    np.testing.assert_allclose(FaceRig.landmarks_3d(state()), MEAN_SHAPE, atol=1e-12)
    # identity coefficients of zero are the mean face too
    np.testing.assert_allclose(FaceRig.landmarks_3d(state(), np.zeros(NUM_IDENTITY_MODES)), MEAN_SHAPE, atol=1e-12)


def test_mean_shape_is_a_symmetric_plausible_face():
    mirrored = MEAN_SHAPE[MIRROR] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, MEAN_SHAPE, atol=1e-12)
    y = MEAN_SHAPE[:, 1]
    assert y[17:27].max() < y[36:48].min()  # brows above eyes
    assert y[36:48].max() < y[30] < y[33] < y[48:68].min()  # eyes, nose tip, nose base, mouth
    assert y[57] < y[8]  # lower lip above the chin
    assert np.linalg.norm(MEAN_SHAPE[16] - MEAN_SHAPE[0]) == pytest.approx(1.0)  # the unit
    assert MEAN_SHAPE[36:42, 0].max() < 0 < MEAN_SHAPE[42:48, 0].min()  # right eye on image left
    assert MEAN_SHAPE[30, 2] == MEAN_SHAPE[:, 2].max()  # nose tip nearest the camera


def test_left_and_right_blendshapes_are_mirror_images():
    flip = np.array([-1.0, 1.0, 1.0])
    for name in BLENDSHAPE_NAMES:
        if name.endswith("Left"):
            left = EXPRESSION_BASIS[BLENDSHAPE_INDEX[name]]
            right = EXPRESSION_BASIS[BLENDSHAPE_INDEX[name[:-4] + "Right"]]
            np.testing.assert_allclose(right, left[MIRROR] * flip, atol=1e-12, err_msg=name)


def test_inert_channels_move_no_landmark_and_the_rest_do():
    assert set(INERT_CHANNELS) == {"_neutral"} | {n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook")}
    for name in BLENDSHAPE_NAMES:
        moved = np.abs(FaceRig.landmarks_3d(state(**{name: 1.0})) - MEAN_SHAPE).max()
        assert (moved < 1e-12) == (name in INERT_CHANNELS), name


@pytest.mark.parametrize("side, upper, lower", [("Left", (43, 44), (47, 46)), ("Right", (37, 38), (41, 40))])
def test_blink_closes_the_lids_of_that_eye_only(side, upper, lower):
    shape = FaceRig.landmarks_3d(state(**{f"eyeBlink{side}": 1.0}))
    open_gap = MEAN_SHAPE[list(lower), 1] - MEAN_SHAPE[list(upper), 1]
    assert (open_gap > 0.05).all()
    np.testing.assert_allclose(shape[list(lower), 1] - shape[list(upper), 1], 0.0, atol=1e-9)  # lid distance 0
    other = [37, 38, 40, 41] if side == "Left" else [43, 44, 46, 47]
    np.testing.assert_allclose(shape[other], MEAN_SHAPE[other])
    half = FaceRig.landmarks_3d(state(**{f"eyeBlink{side}": 0.5}))
    np.testing.assert_allclose(half[list(lower), 1] - half[list(upper), 1], 0.5 * open_gap, atol=1e-9)


def test_jaw_open_opens_the_mouth_and_drops_the_chin():
    gaps, chins = [], []
    for amount in (0.0, 0.3, 0.6, 1.0):
        points = FaceRig.landmarks_2d(state(jawOpen=amount))
        gaps.append(points[66, 1] - points[62, 1])
        chins.append(points[8, 1])
    assert np.all(np.diff(gaps) > 0) and np.all(np.diff(chins) > 0)
    assert gaps[-1] > 0.15 * FACE_WIDTH_FRACTION * 256  # a wide-open mouth, in pixels
    # mouthClose undoes the lip part of jawOpen
    closed = FaceRig.landmarks_2d(state(jawOpen=1.0, mouthClose=1.0))
    assert closed[66, 1] - closed[62, 1] < 0.1 * gaps[-1]


def test_smile_raises_and_widens_the_mouth_corners_and_frown_lowers_them():
    neutral = FaceRig.landmarks_2d(state())
    smile = FaceRig.landmarks_2d(state(mouthSmileLeft=1.0, mouthSmileRight=1.0))
    frown = FaceRig.landmarks_2d(state(mouthFrownLeft=1.0, mouthFrownRight=1.0))
    for corner in (48, 54):
        assert smile[corner, 1] < neutral[corner, 1] - 5  # pixels (y down)
        assert frown[corner, 1] > neutral[corner, 1] + 3
    assert smile[54, 0] - smile[48, 0] > neutral[54, 0] - neutral[48, 0] + 5
    # one-sided smile moves only the subject's left corner (image right)
    left = FaceRig.landmarks_2d(state(mouthSmileLeft=1.0))
    assert left[54, 1] < neutral[54, 1] - 5
    np.testing.assert_allclose(left[48], neutral[48])


def test_brow_channels():
    neutral = FaceRig.landmarks_3d(state())
    inner_up = FaceRig.landmarks_3d(state(browInnerUp=1.0))
    down = FaceRig.landmarks_3d(state(browDownLeft=1.0, browDownRight=1.0))
    assert (inner_up[[21, 22], 1] < neutral[[21, 22], 1] - 0.04).all()
    assert (down[17:27, 1] > neutral[17:27, 1]).all()


def test_rotation_matrix_conventions_by_hand():
    np.testing.assert_allclose(rotation_matrix(np.zeros(3)), np.eye(3), atol=1e-15)
    quarter = np.pi / 2
    # +yaw turns the face (+z) towards +x; +pitch tips +z down (+y); +roll turns +x to +y
    np.testing.assert_allclose(rotation_matrix(np.array([0, quarter, 0])) @ [0, 0, 1], [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix(np.array([quarter, 0, 0])) @ [0, 0, 1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(rotation_matrix(np.array([0, 0, quarter])) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    r = rotation_matrix(np.random.default_rng(0).normal(0, 1, (5, 3)))
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)


def test_projection_by_hand():
    size = 200
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    pixels = FaceRig.project(points, size)
    ox, oy = ORIGIN_FRACTION[0] * size - 0.5, ORIGIN_FRACTION[1] * size - 0.5
    focal = FACE_WIDTH_FRACTION * size * CAMERA_DISTANCE
    np.testing.assert_allclose(pixels[0], [ox, oy])
    np.testing.assert_allclose(pixels[1], [ox + FACE_WIDTH_FRACTION * size, oy])
    np.testing.assert_allclose(pixels[2], [ox, oy + focal / (CAMERA_DISTANCE - 1.0)])


def test_head_pose_moves_the_face_the_documented_way():
    neutral = FaceRig.landmarks_2d(state())
    yaw = FaceRig.landmarks_2d(state(yaw=0.4))
    assert yaw[30, 0] - neutral[30, 0] > 10  # nose tip to image right
    # the nose tip swings further than the ear-side jaw point (rotation about a pivot behind the face)
    assert abs(yaw[30, 0] - neutral[30, 0]) > abs(yaw[0, 0] - neutral[0, 0])
    pitch = FaceRig.landmarks_2d(state(pitch=0.3))
    assert pitch[8, 1] - neutral[8, 1] > 0 and pitch[27, 1] - neutral[27, 1] > 0  # nod down
    roll = FaceRig.landmarks_2d(state(roll=0.3))
    assert roll[45, 1] > neutral[45, 1] + 5 and roll[36, 1] < neutral[36, 1] - 5  # clockwise tilt
    shifted = FaceRig.landmarks_2d(state(t=(0.1, -0.05, 0.0)))
    focal = FACE_WIDTH_FRACTION * 256 * CAMERA_DISTANCE
    expected_shift = focal * np.array([0.1, -0.05]) / (CAMERA_DISTANCE - MEAN_SHAPE[:, 2:3])
    np.testing.assert_allclose(shifted - neutral, expected_shift, atol=1e-9)
    closer = FaceRig.landmarks_2d(state(t=(0.0, 0.0, 1.0)))
    assert closer[16, 0] - closer[0, 0] > neutral[16, 0] - neutral[0, 0]  # nearer = bigger
    assert np.allclose(PIVOT, [0.0, 0.3, -0.5])


def test_plausible_poses_and_expressions_stay_inside_the_image():
    rng = np.random.default_rng(0)
    states = np.zeros((500, FACE_STATE_DIM))
    states[:, :52] = rng.uniform(0.0, 1.0, (500, 52))
    states[:, 52:55] = rng.uniform(-0.6, 0.6, (500, 3))
    states[:, 55:58] = rng.uniform(-0.15, 0.15, (500, 3))
    identity = np.clip(rng.normal(0, 1, (500, NUM_IDENTITY_MODES)), -2.5, 2.5)
    for size in (64, 256):
        points = FaceRig.landmarks_2d(states, identity, size)
        assert points.min() >= 0 and points.max() <= size - 1


def test_identity_modes_change_the_named_measure():
    def measure(mode: str, coefficient: float) -> np.ndarray:
        identity = np.zeros(NUM_IDENTITY_MODES)
        identity[IDENTITY_MODES.index(mode)] = coefficient
        return FaceRig.landmarks_3d(state(), identity)

    for mode, quantity in {
        "face_width": lambda p: p[16, 0] - p[0, 0],
        "jaw_length": lambda p: p[8, 1],
        "eye_spacing": lambda p: p[42, 0] - p[39, 0],
        "eye_size": lambda p: p[45, 0] - p[42, 0],
        "nose_length": lambda p: p[33, 1],
        "nose_width": lambda p: p[35, 0] - p[31, 0],
        "mouth_width": lambda p: p[54, 0] - p[48, 0],
        "brow_height": lambda p: -p[19, 1],
        "lip_thickness": lambda p: p[57, 1] - p[51, 1],
        "chin_width": lambda p: p[11, 0] - p[5, 0],
    }.items():
        assert quantity(measure(mode, 1.0)) > quantity(measure(mode, 0.0)) > quantity(measure(mode, -1.0)), mode


def test_numpy_and_torch_agree_and_torch_is_differentiable():
    rng = np.random.default_rng(1)
    states = rng.uniform(-0.3, 0.8, (4, FACE_STATE_DIM))
    identity = rng.normal(0, 1, (4, NUM_IDENTITY_MODES))
    expected = FaceRig.landmarks_2d(states, identity, 128)
    tensor = torch.tensor(states, dtype=torch.float64, requires_grad=True)
    got = FaceRig.landmarks_2d(tensor, torch.tensor(identity), 128)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.detach().numpy(), expected, atol=1e-9)
    got.sum().backward()
    assert tensor.grad is not None and tensor.grad[:, BLENDSHAPE_INDEX["jawOpen"]].abs().sum() > 0
    got32 = FaceRig.landmarks_2d(torch.tensor(states, dtype=torch.float32), None, 128)
    assert got32.dtype == torch.float32
    np.testing.assert_allclose(got32.numpy(), FaceRig.landmarks_2d(states, None, 128), atol=1e-3)


def test_batched_shapes_and_broadcast_identity():
    states = np.zeros((2, 3, FACE_STATE_DIM))
    assert FaceRig.landmarks_3d(states).shape == (2, 3, 68, 3)
    assert FaceRig.landmarks_2d(states, image_size=64).shape == (2, 3, 68, 2)
    identity = np.zeros(NUM_IDENTITY_MODES)
    identity[0] = 1.0
    batched = FaceRig.landmarks_2d(np.zeros((5, FACE_STATE_DIM)), identity)  # one person, 5 frames
    np.testing.assert_allclose(batched, np.broadcast_to(FaceRig.landmarks_2d(np.zeros(FACE_STATE_DIM), identity), (5, 68, 2)))
    assert FaceRig.project(np.zeros((7, 3)), 32).shape == (7, 2)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="face_state"):
        FaceRig.landmarks_2d(np.zeros(57))
    with pytest.raises(ValueError, match="identity"):
        FaceRig.landmarks_3d(np.zeros(58), np.zeros(3))
    with pytest.raises(ValueError, match="image_size"):
        FaceRig.landmarks_2d(np.zeros(58), image_size=0)
    with pytest.raises(ValueError, match="points"):
        FaceRig.project(np.zeros((68, 2)), 64)
    with pytest.raises(ValueError, match="camera"):
        FaceRig.landmarks_2d(state(t=(0.0, 0.0, CAMERA_DISTANCE)))
    with pytest.raises(ValueError, match="same kind"):
        FaceRig.landmarks_3d(torch.zeros(58), np.zeros(NUM_IDENTITY_MODES))
