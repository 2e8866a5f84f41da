"""Line drawings of the 68 iBUG landmarks: DyadGAN sketches and CMM-Net landmark images.

Both representations come from :func:`draw_landmarks`, so a sketch and a landmark image of the
same points differ only in size and pixel value:

* **sketch** (DyadGAN / Interactive GAN, Sec. 4.3): the 68 points connected by 1-pixel straight
  lines, white on black, optionally inside an oval mask;
* **landmark image** (CMM-Net, Sec. 4.1): a 64x64 binary {0, 1} raster of the same polylines.

Groups follow the usual iBUG part split (notes D.3): jaw, brows and nose bridge open; lower nose,
eyes and both lip loops closed. Lines are 8-connected without anti-aliasing unless asked, so the
drawings stay binary (notes D.3, F.6).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from datamodules.features.face_state import NUM_LANDMARKS

# (name, landmark indices, closed)
POLYLINE_GROUPS: tuple[tuple[str, tuple[int, ...], bool], ...] = (
    ("jaw", tuple(range(0, 17)), False),
    ("right_brow", tuple(range(17, 22)), False),
    ("left_brow", tuple(range(22, 27)), False),
    ("nose_bridge", tuple(range(27, 31)), False),
    # the nose bridge ends at the tip (30), which closes the nostril loop 30-31-...-35
    ("lower_nose", (30, 31, 32, 33, 34, 35), True),
    ("right_eye", tuple(range(36, 42)), True),
    ("left_eye", tuple(range(42, 48)), True),
    ("outer_lips", tuple(range(48, 60)), True),
    ("inner_lips", tuple(range(60, 68)), True),
)
_OPEN = [np.array(idx) for _, idx, closed in POLYLINE_GROUPS if not closed]
_CLOSED = [np.array(idx) for _, idx, closed in POLYLINE_GROUPS if closed]

_SHIFT = 4  # sub-pixel bits for anti-aliased drawing


def _to_numpy_points(points) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    points = np.asarray(points, dtype=np.float64)
    if points.ndim not in (2, 3) or points.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"points: expected shape (68, 2) or (T, 68, 2) pixel (x, y), got {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points: contains NaN or infinite coordinates")
    return points


def _check_size(image_size: int, name: str = "image_size") -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
        raise ValueError(f"{name}: expected a positive int (pixels), got {image_size!r}")
    return int(image_size)


def oval_mask(
    image_size: int,
    centre: tuple[float, float] = (0.5, 0.5),
    axes: tuple[float, float] = (0.4, 0.48),
) -> np.ndarray:
    """Boolean (H, W) ellipse, ``centre`` and semi-``axes`` as fractions of the image side.

    DyadGAN masks its roughly aligned training pairs with an oval (Interactive GAN Sec. 4.3);
    the defaults enclose the rig's face (jaw, brows, forehead) at every plausible pose.
    """
    size = _check_size(image_size)
    if not (axes[0] > 0 and axes[1] > 0):
        raise ValueError(f"axes: expected two positive fractions of the image side, got {axes}")
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = centre[0] * size - 0.5, centre[1] * size - 0.5
    return ((xs - cx) / (axes[0] * size)) ** 2 + ((ys - cy) / (axes[1] * size)) ** 2 <= 1.0


def draw_landmarks(
    points,
    image_size: int,
    thickness: int = 1,
    antialias: bool = False,
    oval_mask: bool | np.ndarray = False,
    value: int = 255,
) -> np.ndarray:
    """Polylines of 68 pixel landmarks on black: (68, 2) -> uint8 (H, W); (T, 68, 2) -> (T, H, W).

    ``oval_mask``: False, True (the default :func:`oval_mask` of this size) or a boolean (H, W)
    array; pixels outside it are zeroed. Without anti-aliasing the output is exactly {0, value}.
    """
    size = _check_size(image_size)
    if not isinstance(thickness, (int, np.integer)) or thickness < 1:
        raise ValueError(f"thickness: expected a positive int (pixels), got {thickness!r}")
    if not 0 < value <= 255:
        raise ValueError(f"value: expected an int in 1..255, got {value!r}")
    pts = _to_numpy_points(points)
    mask = _resolve_mask(oval_mask, size)
    single = pts.ndim == 2
    pts = pts[None] if single else pts
    if antialias:
        line_type, shift = cv2.LINE_AA, _SHIFT
        coords = np.round(pts * (1 << _SHIFT)).astype(np.int32)
    else:
        line_type, shift = cv2.LINE_8, 0
        coords = np.round(pts).astype(np.int32)
    # cv2 would silently wrap huge coordinates; clamp far outside the canvas instead
    limit = (4 * size) << shift
    np.clip(coords, -limit, limit, out=coords)
    out = np.zeros((len(pts), size, size), dtype=np.uint8)
    for frame, c in zip(out, coords, strict=True):
        cv2.polylines(frame, [c[idx] for idx in _OPEN], False, int(value), int(thickness), line_type, shift)
        cv2.polylines(frame, [c[idx] for idx in _CLOSED], True, int(value), int(thickness), line_type, shift)
    if mask is not None:
        out[:, ~mask] = 0
    return out[0] if single else out


def _resolve_mask(mask: bool | np.ndarray, size: int) -> np.ndarray | None:
    if mask is False or mask is None:
        return None
    if mask is True:
        return oval_mask(size)
    mask = np.asarray(mask)
    if mask.shape != (size, size) or mask.dtype != bool:
        raise ValueError(f"oval_mask: expected a bool, or a bool array of shape ({size}, {size}), got {mask.dtype} {mask.shape}")
    return mask


def sketch(points, image_size: int = 256, oval_mask: bool = True, antialias: bool = False) -> np.ndarray:
    """DyadGAN sketch: 1-px white (255) polylines on black, masked by an oval; uint8 (…, H, W)."""
    return draw_landmarks(points, image_size, thickness=1, antialias=antialias, oval_mask=oval_mask, value=255)


def landmark_image(points, size: int = 64, source_size: int | None = None) -> np.ndarray:
    """CMM-Net landmark image: binary {0, 1} uint8 (…, size, size) of the landmark polylines.

    ``points`` are pixel coordinates in a ``source_size`` square frame, rescaled to the ``size``
    frame (the image is resized to 64x64 in CMM-Net Sec. 4.1); ``None`` means they already are.
    """
    size = _check_size(size, "size")
    pts = _to_numpy_points(points)
    if source_size is not None:
        pts = (pts + 0.5) * (size / _check_size(source_size, "source_size")) - 0.5
    elif np.abs(pts).max() > 2 * size:
        raise ValueError(
            f"points: coordinates reach {np.abs(pts).max():.0f} px, far outside a {size}x{size} frame; "
            "pass source_size= (the side of the image they were measured in)"
        )
    return draw_landmarks(pts, size, thickness=1, antialias=False, value=1)
