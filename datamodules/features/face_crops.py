"""Eye-aligned face crops and the landmarks, sketches and landmark images in the same crop.

Alignment follows CMM-Net Sec. 4.1 (horizontal with respect to the centre of the two eyes,
vertical along the line through the eye centre and the mouth) with the square of the FFHQ
alignment (NVlabs/ffhq-dataset ``download_ffhq.py``, ``recreate_aligned_images``), computed from
iBUG-68 points: with ``e`` the eye-centre mid-point, ``d`` the vector from the subject's right
eye centre to the left one, ``m`` the vector from ``e`` to the mouth-corner mid-point,

    x = d - rot90(m),  x <- x / |x| * max(2 |d|, 1.8 |m|) * scale,  y = rot90(x),
    centre = e + 0.1 m,  crop = the square centre +- x +- y,

so the crop turns with the eye line and the eye-mouth axis together. ``scale`` 1 is FFHQ's
framing (about 4 inter-ocular distances wide: whole face and some hair); smaller is tighter.
Sketches and landmark images are drawn from the landmarks mapped into the crop, so they line up
with the RGB crop pixel for pixel (notes F.6).
"""

from __future__ import annotations

import cv2
import numpy as np

from datamodules.features.drawing import landmark_image, sketch
from datamodules.features.face_state import NUM_LANDMARKS

_R_EYE, _L_EYE, _MOUTH_CORNERS = slice(36, 42), slice(42, 48), [48, 54]


def _rot90(v: np.ndarray) -> np.ndarray:
    # +90 degrees in image coordinates (y down): (x, y) -> (-y, x), right -> down
    return np.stack([-v[..., 1], v[..., 0]], axis=-1)


def crop_quads(landmarks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Corners (..., 4, 2) (top-left, bottom-left, bottom-right, top-right) of the aligned square
    for iBUG-68 pixel landmarks (..., 68, 2)."""
    p = np.asarray(landmarks, dtype=np.float64)
    if p.ndim < 2 or p.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks: expected (..., {NUM_LANDMARKS}, 2) pixel points, got {p.shape}")
    if not scale > 0:
        raise ValueError(f"scale: expected a positive factor, got {scale!r}")
    right_eye, left_eye = p[..., _R_EYE, :].mean(axis=-2), p[..., _L_EYE, :].mean(axis=-2)
    eye_centre = (right_eye + left_eye) / 2
    d = left_eye - right_eye
    m = p[..., _MOUTH_CORNERS, :].mean(axis=-2) - eye_centre
    x = d - _rot90(m)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norm < 1e-9).any():
        raise ValueError("landmarks: degenerate face (eye and mouth points coincide)")
    half = np.maximum(2.0 * np.linalg.norm(d, axis=-1), 1.8 * np.linalg.norm(m, axis=-1))[..., None] * scale
    x = x / norm * half
    y = _rot90(x)
    c = eye_centre + 0.1 * m
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y], axis=-2)


def crop_affines(landmarks: np.ndarray, size: int, scale: float = 1.0) -> np.ndarray:
    """Affine maps (..., 2, 3) from source pixels to ``size`` x ``size`` crop pixels (pixel
    centres at integers in both)."""
    quads = crop_quads(landmarks, scale)
    side = np.linalg.norm(quads[..., 3, :] - quads[..., 0, :], axis=-1)  # source length of the top edge
    s = size / side
    ux = (quads[..., 3, :] - quads[..., 0, :]) / side[..., None]  # crop +x in source
    uy = (quads[..., 1, :] - quads[..., 0, :]) / side[..., None]  # crop +y in source
    linear = np.stack([ux, uy], axis=-2) * s[..., None, None]  # rows map source offsets to crop x, y
    # the quad's top-left corner is the crop's (-0.5, -0.5) pixel edge
    offset = -0.5 - np.einsum("...ij,...j->...i", linear, quads[..., 0, :])
    return np.concatenate([linear, offset[..., None]], axis=-1)


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (..., N, 2) by affines (..., 2, 3)."""
    return np.einsum("...ij,...nj->...ni", affine[..., :2], points) + affine[..., None, :, 2]


def warp_crop(frame: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The crop of one RGB frame under ``affine`` (2, 3); large reductions first shrink the frame
    by an integer factor with area averaging, so the crop is not aliased. Outside the frame is black."""
    shrink = int(np.floor(1.0 / max(np.sqrt(abs(np.linalg.det(affine[:, :2]))), 1e-12) / 2.0))
    if shrink >= 2:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (max(1, w // shrink), max(1, h // shrink)), interpolation=cv2.INTER_AREA)
        # source pixel centre u maps to small-image coordinate (u + 0.5) * (w_small / w) - 0.5
        fx, fy = small.shape[1] / w, small.shape[0] / h
        to_small = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
        affine = (np.vstack([affine, [0.0, 0.0, 1.0]]) @ np.linalg.inv(to_small))[:2]
        frame = small
    return cv2.warpAffine(frame, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_drawings(crop_landmarks: np.ndarray, size: int, oval: bool, landmark_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """1-px sketches (T, size, size) uint8 {0, 255} and binary landmark images (T, landmark_size,
    landmark_size) {0, 1} from crop-space landmarks (T, 68, 2)."""
    return (sketch(crop_landmarks, size, oval_mask=oval),
            landmark_image(crop_landmarks, landmark_size, source_size=size))
