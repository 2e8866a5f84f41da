"""A linear 3D face rig over the 68 iBUG landmarks, driven by the 58-d face state.

    local  = mean (68, 3) + identity_basis · identity + expression_basis · expression
    posed  = R(pitch, yaw, roll) · (local − pivot) + pivot + translation
    pixels = pinhole projection of ``posed`` for a square image

This is the same form as OpenFace's point distribution model (mean + linear modes, Euler
rotation, projection; notes D.4) but with *named* modes: each expression mode is one
MediaPipe/ARKit blendshape channel, written by hand as a displacement field of the
landmarks it moves, and each identity mode is one anthropometric degree of freedom.
The rig is a frozen constant of the project (no randomness): sketches, landmark images and
rendered frames of the embedded world are all functions of the face state through it.

Conventions
-----------
* Landmarks: iBUG-68 order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59,
  inner lips 60-67). "Right" eye/brow (36-41, 17-21) is the subject's right, image left.
* Local coordinates: units are face widths (jaw point 0 to jaw point 16 of the mean face),
  origin between the eyes, x towards image right (subject's left), y down, z towards the camera.
* Blendshape sides follow ARKit: ``...Left`` acts on the subject's left (+x, iBUG 22-26, 42-47).
* Expression coefficients are in [0, 1] (1 = the full ARKit action); identity coefficients are
  in standard deviations of :data:`IDENTITY_MODES` (0 = the mean face).
* Rotation (radians), applied about :data:`PIVOT` (near the atlanto-occipital joint, so a nod
  swings the chin more than the brow) as ``R = Rz(roll) · Ry(yaw) · Rx(pitch)``:
  positive pitch = chin down (nod down), positive yaw = face turns to image right (the nose tip
  moves to +x), positive roll = head tilts clockwise on screen (+x rotates towards +y).
* Translation (face widths) is added after rotation; +z moves the head towards the camera.
* Projection: pinhole camera on the z axis at :data:`CAMERA_DISTANCE` face widths in front of
  the origin, looking at −z; focal length chosen so the mean face is :data:`FACE_WIDTH_FRACTION`
  of the image wide at z = 0, with the origin (between the eyes) at :data:`ORIGIN_FRACTION` of
  the image. Pixel (x, y) with (0, 0) the centre of the top-left pixel.

All functions take numpy arrays or torch tensors (differentiable, any device) batched over any
leading dimensions and return the same kind.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch

from datamodules.features.face_state import (
    BLENDSHAPE_INDEX,
    BLENDSHAPE_NAMES,
    EXPRESSION,
    EXPRESSION_DIM,
    FACE_STATE_DIM,
    NUM_LANDMARKS,
    ROTATION,
    TRANSLATION,
)

Array = Union[np.ndarray, torch.Tensor]

RIG_VERSION = "facezoo-rig-1"

CAMERA_DISTANCE = 6.0  # face widths: about 0.8 m for a 13 cm face, a webcam / interview set-up
FACE_WIDTH_FRACTION = 0.42
ORIGIN_FRACTION = (0.5, 0.42)
PIVOT = np.array([0.0, 0.3, -0.5])
PIVOT.setflags(write=False)

# iBUG-68 left/right mirror permutation: MIRROR[i] is the landmark that i becomes when mirrored.
MIRROR = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)

# Designed mean shape (x, y, z). The subject's right half and the midline are written out; the
# subject's left half is their mirror image (x -> -x) and is filled in below.
_RIGHT_AND_MIDLINE: dict[int, tuple[float, float, float]] = {
    # jaw: lower half of a superellipse (exponent 2.5, half-width 0.5, depth 0.85), resampled
    # to equal arc length; depth falls off towards the ears
    0: (-0.500, -0.030, -0.440), 1: (-0.498, 0.110, -0.437), 2: (-0.487, 0.249, -0.422),
    3: (-0.464, 0.387, -0.391), 4: (-0.424, 0.521, -0.338), 5: (-0.360, 0.645, -0.260),
    6: (-0.264, 0.746, -0.159), 7: (-0.139, 0.806, -0.057), 8: (0.000, 0.820, 0.000),
    # right brow, outer (17) to inner (21)
    17: (-0.400, -0.130, -0.170), 18: (-0.330, -0.185, -0.090), 19: (-0.250, -0.200, -0.040),
    20: (-0.165, -0.190, -0.010), 21: (-0.085, -0.165, 0.000),
    # nose bridge (27 nasion .. 30 tip) and lower nose (31 right ala .. 33 columella)
    27: (0.000, -0.010, 0.040), 28: (0.000, 0.085, 0.080), 29: (0.000, 0.180, 0.130),
    30: (0.000, 0.270, 0.190), 31: (-0.110, 0.315, 0.060), 32: (-0.055, 0.330, 0.090),
    33: (0.000, 0.340, 0.110),
    # right eye: outer corner 36, upper lid 37-38, inner corner 39, lower lid 40-41
    36: (-0.355, 0.010, -0.060), 37: (-0.295, -0.035, -0.020), 38: (-0.200, -0.040, -0.005),
    39: (-0.125, 0.010, -0.010), 40: (-0.200, 0.035, -0.010), 41: (-0.290, 0.035, -0.030),
    # outer lips: right corner 48, upper 49-51, lower 57-59
    48: (-0.190, 0.495, -0.030), 49: (-0.125, 0.460, 0.040), 50: (-0.050, 0.440, 0.080),
    51: (0.000, 0.447, 0.090), 57: (0.000, 0.565, 0.070), 58: (-0.055, 0.560, 0.060),
    59: (-0.125, 0.535, 0.030),
    # inner lips: right corner 60, upper 61-62, lower 66-67 (closed mouth: a 7 mm-ish gap)
    60: (-0.165, 0.495, -0.010), 61: (-0.055, 0.485, 0.060), 62: (0.000, 0.487, 0.070),
    66: (0.000, 0.494, 0.070), 67: (-0.055, 0.492, 0.060),
}


def _mirror_fill(right: dict[int, tuple[float, float, float]]) -> np.ndarray:
    shape = np.full((NUM_LANDMARKS, 3), np.nan)
    for i, p in right.items():
        shape[i] = p
        shape[MIRROR[i]] = (-p[0], p[1], p[2])
    assert not np.isnan(shape).any(), "mean shape: a landmark has neither itself nor its mirror defined"
    return shape


MEAN_SHAPE = _mirror_fill(_RIGHT_AND_MIDLINE)
MEAN_SHAPE.setflags(write=False)

Displacements = dict[int, tuple[float, float, float]]


def _field(displacements: Displacements) -> np.ndarray:
    field = np.zeros((NUM_LANDMARKS, 3))
    for i, d in displacements.items():
        field[i] += d
    return field


def _mirrored(field: np.ndarray) -> np.ndarray:
    """The same action on the other side of the face: swap landmarks, flip x."""
    out = np.zeros_like(field)
    out[MIRROR] = field
    out[:, 0] *= -1.0
    return out


def _symmetric(right_and_midline: Displacements) -> np.ndarray:
    """A bilateral action written for the subject's right half and the midline."""
    right = _field(right_and_midline)
    left = _mirrored(right)
    on_midline = MIRROR == np.arange(NUM_LANDMARKS)
    left[on_midline] = 0.0
    return right + left


def _weights_below(y_from: float, y_to: float, index: np.ndarray) -> np.ndarray:
    """0 above ``y_from``, 1 at ``y_to`` and below (mean-shape y), linear in between."""
    return np.clip((MEAN_SHAPE[index, 1] - y_from) / (y_to - y_from), 0.0, 1.0)


JAW = np.arange(0, 17)
OUTER_UPPER_LIP = np.array([49, 50, 51, 52, 53])
OUTER_LOWER_LIP = np.array([55, 56, 57, 58, 59])
INNER_UPPER_LIP = np.array([61, 62, 63])
INNER_LOWER_LIP = np.array([65, 66, 67])
MOUTH = np.arange(48, 68)
RIGHT_EYE, LEFT_EYE = np.arange(36, 42), np.arange(42, 48)
RIGHT_BROW, LEFT_BROW = np.arange(17, 22), np.arange(22, 27)


def _jaw_open() -> np.ndarray:
    # The mandible swings down about the ear: jaw points move with their height, the lower lip
    # rides on the mandible, the lip corners follow half-way and pull in a little.
    field = np.zeros((NUM_LANDMARKS, 3))
    w = _weights_below(0.1, 0.82, JAW) ** 1.3
    field[JAW, 1] = 0.25 * w
    field[JAW, 2] = -0.06 * w
    field[np.r_[OUTER_LOWER_LIP, INNER_LOWER_LIP], 1] = 0.21
    field[np.r_[OUTER_LOWER_LIP, INNER_LOWER_LIP], 2] = -0.04
    field[[48, 60], 0], field[[54, 64], 0] = 0.02, -0.02
    field[[48, 54, 60, 64], 1] = 0.09
    field[INNER_UPPER_LIP, 1] = -0.005
    return field


def _jaw_left() -> np.ndarray:
    # Lateral mandible shift towards the subject's left (+x): more at the chin than at the ear.
    field = np.zeros((NUM_LANDMARKS, 3))
    field[JAW, 0] = 0.06 * _weights_below(0.25, 0.82, JAW)
    field[np.r_[OUTER_LOWER_LIP, INNER_LOWER_LIP], 0] = 0.05
    field[[48, 54, 60, 64], 0] = 0.025
    return field


def _mouth_left() -> np.ndarray:
    field = np.zeros((NUM_LANDMARKS, 3))
    field[MOUTH, 0] = 0.05
    field[[54, 64], 0] = 0.06
    field[[48, 60], 0] = 0.04
    return field


# One displacement field per blendshape channel, for coefficient 1. The ``...Left`` channels are
# written out and their ``...Right`` twins are mirror images. Channels that move no landmark
# (``_neutral``, ``eyeLook*``) stay zero; the renderer reads the gaze channels itself.
_LEFT_ACTIONS: dict[str, np.ndarray] = {
    "browDownLeft": _field({22: (-0.012, 0.045, 0.0), 23: (-0.008, 0.045, 0.0), 24: (0.0, 0.040, 0.0),
                            25: (0.0, 0.030, 0.0), 26: (0.0, 0.020, 0.0)}),
    "browOuterUpLeft": _field({24: (0.0, -0.025, 0.0), 25: (0.0, -0.050, 0.0), 26: (0.0, -0.050, 0.0)}),
    "cheekSquintLeft": _field({46: (0.0, -0.015, 0.0), 47: (0.0, -0.015, 0.0), 45: (0.0, -0.008, 0.0),
                               13: (0.0, -0.010, 0.0), 14: (0.0, -0.010, 0.0)}),
    # lids meet on a line 1/5 of the way up from the lower lid (the upper lid does the work)
    "eyeBlinkLeft": _field({43: (0.0, 0.060, 0.0), 44: (0.0, 0.055, 0.0), 46: (0.0, -0.015, 0.0),
                            47: (0.0, -0.015, 0.0)}),
    "eyeSquintLeft": _field({46: (0.0, -0.020, 0.0), 47: (0.0, -0.020, 0.0), 43: (0.0, 0.012, 0.0),
                             44: (0.0, 0.012, 0.0), 45: (-0.005, -0.005, 0.0)}),
    "eyeWideLeft": _field({43: (0.0, -0.025, 0.0), 44: (0.0, -0.022, 0.0), 46: (0.0, 0.006, 0.0),
                           47: (0.0, 0.006, 0.0)}),
    "jawLeft": _jaw_left(),
    "mouthDimpleLeft": _field({54: (0.015, 0.0, -0.020), 64: (0.012, 0.0, -0.020), 53: (0.006, 0.0, 0.0),
                               55: (0.006, 0.0, 0.0)}),
    "mouthFrownLeft": _field({54: (0.005, 0.045, 0.0), 64: (0.004, 0.040, 0.0), 55: (0.0, 0.020, 0.0),
                              53: (0.0, 0.020, 0.0), 65: (0.0, 0.015, 0.0), 63: (0.0, 0.012, 0.0),
                              56: (0.0, 0.005, 0.0)}),
    "mouthLeft": _mouth_left(),
    "mouthLowerDownLeft": _field({55: (0.0, 0.040, 0.0), 56: (0.0, 0.050, 0.0), 57: (0.0, 0.025, 0.0),
                                  65: (0.0, 0.040, 0.0), 66: (0.0, 0.020, 0.0), 54: (0.0, 0.010, 0.0),
                                  64: (0.0, 0.010, 0.0)}),
    "mouthPressLeft": _field({52: (0.0, 0.010, 0.0), 53: (0.0, 0.010, 0.0), 55: (0.0, -0.012, 0.0),
                              56: (0.0, -0.012, 0.0), 51: (0.0, 0.005, 0.0), 57: (0.0, -0.006, 0.0)}),
    # corners up and out, the cheek pushes the lower lid up and the nasal ala out (AU12 + AU6 look)
    "mouthSmileLeft": _field({54: (0.045, -0.060, -0.020), 64: (0.040, -0.055, -0.020),
                              53: (0.020, -0.025, 0.0), 55: (0.025, -0.035, 0.0), 63: (0.015, -0.030, 0.0),
                              65: (0.020, -0.018, 0.0), 62: (0.0, -0.012, 0.0), 52: (0.005, -0.008, 0.0), 56: (0.010, -0.015, 0.0),
                              57: (0.0, -0.005, 0.0), 46: (0.0, -0.008, 0.0), 47: (0.0, -0.008, 0.0),
                              35: (0.008, -0.005, 0.0), 12: (0.008, -0.005, 0.0), 13: (0.008, -0.005, 0.0)}),
    "mouthStretchLeft": _field({54: (0.045, 0.020, 0.0), 64: (0.040, 0.018, 0.0), 55: (0.020, 0.020, 0.0),
                                65: (0.015, 0.015, 0.0), 53: (0.015, 0.005, 0.0), 56: (0.005, 0.010, 0.0)}),
    "mouthUpperUpLeft": _field({52: (0.0, -0.030, 0.0), 53: (0.0, -0.025, 0.0), 51: (0.0, -0.015, 0.0),
                                63: (0.0, -0.035, 0.0), 62: (0.0, -0.018, 0.0)}),
    "noseSneerLeft": _field({34: (0.0, -0.015, 0.0), 35: (0.005, -0.025, 0.0), 22: (0.0, 0.015, 0.0),
                             23: (0.0, 0.010, 0.0), 52: (0.0, -0.008, 0.0), 53: (0.0, -0.008, 0.0),
                             47: (0.0, -0.006, 0.0)}),
}

_SYMMETRIC_ACTIONS: dict[str, np.ndarray] = {
    "browInnerUp": _symmetric({21: (0.0, -0.060, 0.0), 20: (0.0, -0.045, 0.0), 19: (0.0, -0.025, 0.0),
                               18: (0.0, -0.010, 0.0)}),
    "cheekPuff": _symmetric({2: (-0.020, 0.0, 0.0), 3: (-0.035, 0.0, 0.0), 4: (-0.035, 0.0, 0.0),
                             5: (-0.030, 0.0, 0.0), 6: (-0.015, 0.0, 0.0), 48: (0.010, 0.0, 0.020),
                             49: (0.0, 0.0, 0.020), 59: (0.0, 0.0, 0.020)}),
    # forward thrust of the mandible: seen from the front mostly as depth, slightly as a longer chin
    "jawForward": _symmetric({5: (0.0, 0.005, 0.030), 6: (0.0, 0.008, 0.045), 7: (0.0, 0.010, 0.050),
                              8: (0.0, 0.010, 0.050), 55: (0.0, 0.0, 0.040), 56: (0.0, 0.0, 0.040),
                              57: (0.0, 0.0, 0.040), 65: (0.0, 0.0, 0.040), 66: (0.0, 0.0, 0.040)}),
    "jawOpen": _jaw_open(),
    # lips close against an open jaw (ARKit mouthClose): undoes jawOpen on the lips only
    "mouthClose": _symmetric({55: (0.0, -0.19, 0.0), 56: (0.0, -0.19, 0.0), 57: (0.0, -0.19, 0.0),
                              65: (0.0, -0.19, 0.0), 66: (0.0, -0.19, 0.0), 48: (0.0, -0.07, 0.0),
                              60: (0.0, -0.07, 0.0), 49: (0.0, 0.02, 0.0), 50: (0.0, 0.02, 0.0),
                              51: (0.0, 0.02, 0.0), 61: (0.0, 0.02, 0.0), 62: (0.0, 0.02, 0.0)}),
    "mouthFunnel": _symmetric({48: (0.045, 0.0, 0.0), 60: (0.045, 0.0, 0.0), 49: (0.020, -0.020, 0.040),
                               50: (0.005, -0.025, 0.050), 51: (0.0, -0.025, 0.050), 59: (0.020, 0.020, 0.040),
                               58: (0.005, 0.025, 0.050), 57: (0.0, 0.025, 0.050), 61: (0.020, -0.030, 0.040),
                               62: (0.0, -0.030, 0.040), 67: (0.020, 0.030, 0.040), 66: (0.0, 0.030, 0.040)}),
    "mouthPucker": _symmetric({48: (0.060, 0.0, 0.040), 60: (0.065, 0.0, 0.040), 49: (0.035, 0.005, 0.050),
                               59: (0.035, -0.005, 0.050), 50: (0.012, 0.0, 0.050), 58: (0.012, 0.0, 0.050),
                               61: (0.030, 0.0, 0.040), 67: (0.030, 0.0, 0.040), 51: (0.0, 0.0, 0.050),
                               57: (0.0, 0.0, 0.050), 62: (0.0, 0.0, 0.050), 66: (0.0, 0.0, 0.050)}),
    "mouthRollLower": _symmetric({55: (0.0, -0.030, -0.020), 56: (0.0, -0.030, -0.020),
                                  57: (0.0, -0.035, -0.020), 65: (0.0, -0.005, 0.0), 66: (0.0, -0.005, 0.0)}),
    "mouthRollUpper": _symmetric({49: (0.0, 0.020, -0.020), 50: (0.0, 0.020, -0.020), 51: (0.0, 0.025, -0.020),
                                  61: (0.0, 0.003, 0.0), 62: (0.0, 0.003, 0.0)}),
    "mouthShrugLower": _symmetric({55: (0.0, -0.020, 0.020), 56: (0.0, -0.020, 0.020), 57: (0.0, -0.025, 0.020),
                                   65: (0.0, -0.008, 0.0), 66: (0.0, -0.008, 0.0), 7: (0.0, -0.012, 0.0),
                                   8: (0.0, -0.015, 0.0)}),
    "mouthShrugUpper": _symmetric({49: (0.0, -0.012, 0.0), 50: (0.0, -0.015, 0.0), 51: (0.0, -0.015, 0.0),
                                   61: (0.0, -0.008, 0.0), 62: (0.0, -0.008, 0.0)}),
}


def _expression_basis() -> np.ndarray:
    basis = np.zeros((EXPRESSION_DIM, NUM_LANDMARKS, 3))
    for name, field in _LEFT_ACTIONS.items():
        basis[BLENDSHAPE_INDEX[name]] = field
        basis[BLENDSHAPE_INDEX[name.replace("Left", "Right")]] = _mirrored(field)
    for name, field in _SYMMETRIC_ACTIONS.items():
        basis[BLENDSHAPE_INDEX[name]] = field
    return basis


EXPRESSION_BASIS = _expression_basis()
EXPRESSION_BASIS.setflags(write=False)
INERT_CHANNELS: tuple[str, ...] = tuple(
    name for i, name in enumerate(BLENDSHAPE_NAMES) if not EXPRESSION_BASIS[i].any()
)

IDENTITY_MODES: tuple[str, ...] = (
    "face_width", "jaw_length", "chin_width", "eye_spacing", "eye_size",
    "nose_length", "nose_width", "mouth_width", "brow_height", "lip_thickness",
)
NUM_IDENTITY_MODES = len(IDENTITY_MODES)


def _identity_basis() -> np.ndarray:
    # One standard deviation of each mode, from rough adult anthropometric spreads (a few mm of
    # a ~13 cm face width); sign: positive = wider / longer / bigger / higher / thicker.
    m = MEAN_SHAPE
    basis = np.zeros((NUM_IDENTITY_MODES, NUM_LANDMARKS, 3))
    mode = {name: basis[i] for i, name in enumerate(IDENTITY_MODES)}
    mode["face_width"][JAW, 0] = 0.06 * m[JAW, 0]
    mode["face_width"][np.r_[RIGHT_BROW, LEFT_BROW][[0, 9]], 0] = 0.04 * m[[17, 26], 0]
    lower = _weights_below(0.2, 0.82, JAW)
    mode["jaw_length"][JAW, 1] = 0.05 * lower
    mode["jaw_length"][MOUTH, 1] = 0.015
    mode["chin_width"][JAW, 0] = 0.05 * np.sign(m[JAW, 0]) * _weights_below(0.3, 0.75, JAW) * (np.abs(m[JAW, 0]) > 0.05)
    side = np.sign(m[:, 0])
    eyes = np.r_[RIGHT_EYE, LEFT_EYE]
    mode["eye_spacing"][eyes, 0] = 0.018 * side[eyes]
    mode["eye_spacing"][np.r_[RIGHT_BROW, LEFT_BROW], 0] = 0.01 * side[np.r_[RIGHT_BROW, LEFT_BROW]]
    for eye in (RIGHT_EYE, LEFT_EYE):
        centre = m[eye, :2].mean(axis=0)
        mode["eye_size"][eye, :2] = 0.09 * (m[eye, :2] - centre)
    mode["nose_length"][[28, 29, 30], 1] = (0.01, 0.02, 0.035)
    mode["nose_length"][np.arange(31, 36), 1] = 0.035
    mode["nose_length"][30, 2] = 0.015
    mode["nose_width"][[31, 32, 34, 35], 0] = (-0.025, -0.012, 0.012, 0.025)
    mode["mouth_width"][MOUTH, 0] = 0.1 * m[MOUTH, 0]
    mode["brow_height"][np.r_[RIGHT_BROW, LEFT_BROW], 1] = -0.025
    mode["lip_thickness"][OUTER_UPPER_LIP, 1] = -0.012
    mode["lip_thickness"][OUTER_LOWER_LIP, 1] = 0.015
    return basis


IDENTITY_BASIS = _identity_basis()
IDENTITY_BASIS.setflags(write=False)


# ----------------------------------------------------------------------------------------------
# numpy / torch plumbing


def _is_torch(x: Array) -> bool:
    return isinstance(x, torch.Tensor)


def _as_float(x: Array, name: str) -> Array:
    if _is_torch(x):
        return x if x.is_floating_point() else x.float()
    if not isinstance(x, np.ndarray) and not np.isscalar(x) and not isinstance(x, (list, tuple)):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name}: expected numbers, got dtype {x.dtype}")
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


_TORCH_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _const(c: np.ndarray, like: Array) -> Array:
    """A rig constant in the dtype/device (torch) or dtype (numpy) of ``like``."""
    if _is_torch(like):
        if c.flags.writeable:  # a temporary: no caching (its id may be reused)
            return torch.tensor(c, dtype=like.dtype, device=like.device)
        key = (id(c), like.dtype, like.device)  # frozen module constants live forever
        cached = _TORCH_CONSTANTS.get(key)
        if cached is None:
            cached = _TORCH_CONSTANTS[key] = torch.tensor(np.array(c), dtype=like.dtype, device=like.device)
        return cached
    return c.astype(like.dtype, copy=False)


def _stack(items: list[Array], axis: int) -> Array:
    return torch.stack(items, dim=axis) if _is_torch(items[0]) else np.stack(items, axis=axis)


def _einsum(spec: str, *ops: Array) -> Array:
    return torch.einsum(spec, *ops) if _is_torch(ops[0]) else np.einsum(spec, *ops)


def _check_last(x: Array, size: int, name: str, what: str) -> None:
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape (..., {size}) ({what}), got {tuple(x.shape)}")


def _check_points(x: Array, dim: int, name: str) -> None:
    if x.ndim < 2 or x.shape[-1] != dim:
        raise ValueError(f"{name}: expected shape (..., N, {dim}), got {tuple(x.shape)}")


def _check_image_size(image_size: int) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"image_size: expected a positive int (pixels), got {image_size!r}")
    return int(image_size)


def rotation_matrix(rotation: Array) -> Array:
    """``R = Rz(roll) · Ry(yaw) · Rx(pitch)`` for (..., 3) (pitch, yaw, roll) in radians -> (..., 3, 3)."""
    rotation = _as_float(rotation, "rotation")
    _check_last(rotation, 3, "rotation", "pitch, yaw, roll in radians")
    lib = torch if _is_torch(rotation) else np
    c, s = lib.cos(rotation), lib.sin(rotation)
    cp, cy, cr = c[..., 0], c[..., 1], c[..., 2]
    sp, sy, sr = s[..., 0], s[..., 1], s[..., 2]
    # Rx = [[1,0,0],[0,c,s],[0,-s,c]] (chin down for +pitch), Ry = [[c,0,s],[0,1,0],[-s,0,c]]
    # (nose to +x for +yaw), Rz = [[c,-s,0],[s,c,0],[0,0,1]] (clockwise on screen for +roll)
    row0 = _stack([cr * cy, -cr * sy * sp - sr * cp, cr * sy * cp - sr * sp], -1)
    row1 = _stack([sr * cy, -sr * sy * sp + cr * cp, sr * sy * cp + cr * sp], -1)
    row2 = _stack([-sy, -cy * sp, cy * cp], -1)
    return _stack([row0, row1, row2], -2)


class FaceRig:
    """The project's frozen linear face rig (see the module docstring for every convention).

    Stateless: all methods are static so ``FaceRig.landmarks_2d(...)`` and
    ``FaceRig().landmarks_2d(...)`` both work.
    """

    version = RIG_VERSION
    mean_shape = MEAN_SHAPE
    expression_basis = EXPRESSION_BASIS
    identity_basis = IDENTITY_BASIS
    identity_modes = IDENTITY_MODES
    num_identity_modes = NUM_IDENTITY_MODES

    @staticmethod
    def local_shape(expression: Array, identity: Array | None = None) -> Array:
        """Unposed 3D landmarks (..., 68, 3) from expression (..., 52) and identity (..., n_id)."""
        expression = _as_float(expression, "expression")
        _check_last(expression, EXPRESSION_DIM, "expression", "blendshape coefficients")
        shape = _const(MEAN_SHAPE, expression) + _einsum(
            "...k,kpc->...pc", expression, _const(EXPRESSION_BASIS, expression)
        )
        if identity is not None:
            identity = _as_float(identity, "identity")
            if _is_torch(identity) != _is_torch(expression):
                raise ValueError("identity: must be the same kind (numpy or torch) as the face state")
            _check_last(identity, NUM_IDENTITY_MODES, "identity", f"coefficients of {IDENTITY_MODES}")
            shape = shape + _einsum("...k,kpc->...pc", identity, _const(IDENTITY_BASIS, identity))
        return shape

    @staticmethod
    def pose_points(points: Array, rotation: Array, translation: Array) -> Array:
        """Apply head pose to head-attached local points (..., N, 3): rotate about PIVOT, translate."""
        points = _as_float(points, "points")
        _check_points(points, 3, "points")
        rotation, translation = _as_float(rotation, "rotation"), _as_float(translation, "translation")
        _check_last(translation, 3, "translation", "x, y, z in face widths")
        pivot = _const(PIVOT, points)
        # (..., N, 3) @ R^T: a batched matmul, fast in numpy and torch alike
        rotated = (points - pivot) @ rotation_matrix(rotation).swapaxes(-1, -2)
        return rotated + pivot + translation[..., None, :]

    @staticmethod
    def landmarks_3d(face_state: Array, identity: Array | None = None) -> Array:
        """Posed 3D landmarks (..., 68, 3) in face widths from face state (..., 58)."""
        face_state = _as_float(face_state, "face_state")
        _check_last(face_state, FACE_STATE_DIM, "face_state", "52 expression + 3 rotation + 3 translation")
        local = FaceRig.local_shape(face_state[..., EXPRESSION], identity)
        return FaceRig.pose_points(local, face_state[..., ROTATION], face_state[..., TRANSLATION])

    @staticmethod
    def project(points: Array, image_size: int) -> Array:
        """Pinhole projection of posed points (..., N, 3) to pixel (x, y) (..., N, 2) of a square image."""
        image_size = _check_image_size(image_size)
        points = _as_float(points, "points")
        _check_points(points, 3, "points")
        focal = FACE_WIDTH_FRACTION * image_size * CAMERA_DISTANCE
        depth = CAMERA_DISTANCE - points[..., 2:3]
        if (depth <= 0.05 * CAMERA_DISTANCE).any():
            raise ValueError(f"points: some lie at or behind the camera plane (z >= {0.95 * CAMERA_DISTANCE:.2f} face widths)")
        centre = _const(np.array([ORIGIN_FRACTION[0], ORIGIN_FRACTION[1]]) * image_size - 0.5, points)
        return centre + focal * points[..., :2] / depth

    @staticmethod
    def landmarks_2d(face_state: Array, identity: Array | None = None, image_size: int = 256) -> Array:
        """Pixel landmarks (..., 68, 2) of face state (..., 58) in an ``image_size`` square image."""
        return FaceRig.project(FaceRig.landmarks_3d(face_state, identity), image_size)
