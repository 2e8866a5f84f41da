"""Procedural face renderer of the embedded world: face state + identity -> RGB frames.

Everything visible is attached to the rig (``datamodules.features.rig``): the 68 landmarks, and
extra head points (face outline over the forehead, ears, hair, eyelid creases, nostrils, teeth,
wrinkle lines, glasses) written as fixed linear combinations of the 68 *local* landmarks plus
offsets, so they deform with identity and expression and then take the head pose exactly like
the landmarks. A frame is drawn back to front with anti-aliased OpenCV polygons:

    background, long hair, neck, shirt, hair (skull), ears, face (two-tone shading), beard,
    wrinkles and folds, nose, eyes (whites, iris following the eyeLook channels, lids, lashes),
    brows, lips and mouth interior (teeth, tongue), front hair, glasses.

Eyes and the mouth interior are clipped to the lid / inner-lip contours, so blinks close the eye
and teeth show only where the lips part. Geometry for a whole sequence is computed at once
(one einsum and one projection); the per-frame work is only OpenCV drawing.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from datamodules.features.face_state import (
    BLENDSHAPE_INDEX,
    EXPRESSION,
    FACE_STATE_DIM,
    NUM_LANDMARKS,
    ROTATION,
    TRANSLATION,
)
from datamodules.features.rig import (
    CAMERA_DISTANCE,
    FACE_WIDTH_FRACTION,
    MEAN_SHAPE,
    FaceRig,
    rotation_matrix,
)
from datamodules.synthetic.appearance import Identity

_SHIFT = 4  # fixed-point bits of the OpenCV drawing coordinates (sub-pixel anti-aliasing)
_ONE = 1 << _SHIFT


# ----------------------------------------------------------------------------------------------
# head-attached point sets: each point = weights (68,) · local landmarks + offset (3,)


def _catmull_rom(indices: list[int], per_segment: int) -> np.ndarray:
    """Weights (n, 68) of an open Catmull-Rom spline through the landmarks ``indices``."""
    k = len(indices)
    rows = []
    for seg in range(k - 1):
        p = [indices[max(seg - 1, 0)], indices[seg], indices[seg + 1], indices[min(seg + 2, k - 1)]]
        for t in np.arange(per_segment) / per_segment:
            w = 0.5 * np.array([
                -t + 2 * t**2 - t**3,
                2 - 5 * t**2 + 3 * t**3,
                t + 4 * t**2 - 3 * t**3,
                -(t**2) + t**3,
            ])
            row = np.zeros(NUM_LANDMARKS)
            np.add.at(row, p, w)
            rows.append(row)
    last = np.zeros(NUM_LANDMARKS)
    last[indices[-1]] = 1.0
    rows.append(last)
    return np.stack(rows)


def _combo(weights: dict[int, float], n: int = 1) -> np.ndarray:
    row = np.zeros(NUM_LANDMARKS)
    for i, w in weights.items():
        row[i] = w
    return np.repeat(row[None], n, axis=0)


def _forehead(u: np.ndarray, height: np.ndarray, depth_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Points on the forehead / skull-front surface: ``u`` in [-1, 1] runs from jaw point 0 to
    jaw point 16 (so face width follows identity), ``height`` face widths above them."""
    u = np.asarray(u, dtype=np.float64)
    bend = np.sign(u) * np.abs(u) ** 0.8  # a squarer temple than a pure ellipse
    m = (1.0 + bend) / 2.0
    weights = np.zeros((len(u), NUM_LANDMARKS))
    weights[:, 0], weights[:, 16] = 1.0 - m, m
    # bring the point from ear depth (z of points 0/16) onto the curved forehead
    z = depth_scale * 0.42 * (1.0 - np.abs(u) ** 4)
    offsets = np.stack([np.zeros_like(u), -np.asarray(height, dtype=np.float64), z], axis=-1)
    return weights, offsets


def _face_surface(pts: _Points) -> tuple[np.ndarray, np.ndarray]:
    """Rings of face-surface points between the outline and the midline, bulging forward.

    The jaw / forehead outline lies near the ears (far back), so under yaw it is not the
    silhouette; the convex hull of these rings, taken per frame, is (cheek and temple swing out).
    """
    w_jaw, w_top = pts.weights[-2], pts.weights[-1]
    o_jaw, o_top = pts.offsets[-2], pts.offsets[-1]
    weights, offsets = [], []
    for w, o in ((w_jaw, o_jaw), (w_top, o_top)):  # each part is left-right symmetric end to end
        w_mid, o_mid = 0.5 * (w + w[::-1]), 0.5 * (o + o[::-1])
        z = (w @ MEAN_SHAPE + o)[:, 2]
        for f in (0.0, 0.1, 0.2, 0.35):
            weights.append((1 - f) * w + f * w_mid)
            bulge = np.zeros_like(o)
            # a flat face front that falls off steeply towards the ears (superellipse-like)
            bulge[:, 2] = -(1.0 - (1.0 - f) ** 6) * np.minimum(z, 0.0)
            offsets.append((1 - f) * o + f * o_mid + bulge)
    return np.concatenate(weights), np.concatenate(offsets)


class _Points:
    """Named groups of head-attached points, concatenated into one linear map."""

    def __init__(self) -> None:
        self.weights: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        self.slices: dict[str, slice] = {}
        self.count = NUM_LANDMARKS  # landmarks come first in the posed array

    def add(self, name: str, weights: np.ndarray, offsets: np.ndarray | tuple = (0.0, 0.0, 0.0)) -> None:
        offsets = np.broadcast_to(np.asarray(offsets, dtype=np.float64), (len(weights), 3))
        self.weights.append(weights)
        self.offsets.append(offsets)
        self.slices[name] = slice(self.count, self.count + len(weights))
        self.count += len(weights)

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.weights), np.concatenate(self.offsets)


def _mirror_x(offsets: np.ndarray) -> np.ndarray:
    out = np.array(offsets, dtype=np.float64)
    out[..., 0] *= -1
    return out


_EAR_OUTLINE = np.array([  # right ear around jaw point 1, x outward = -x
    (0.010, -0.140, -0.05), (-0.040, -0.165, -0.07), (-0.080, -0.120, -0.09), (-0.095, -0.040, -0.10),
    (-0.085, 0.050, -0.09), (-0.060, 0.120, -0.07), (-0.030, 0.165, -0.05), (0.005, 0.160, -0.04),
    (0.015, 0.060, -0.04),
])
_EAR_INNER = np.array([(-0.025, -0.115, -0.06), (-0.065, -0.08, -0.08), (-0.07, 0.0, -0.08), (-0.045, 0.07, -0.06)])


def _ellipse_offsets(rx: float, ry: float, n: int, z: float = 0.0) -> np.ndarray:
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    return np.stack([rx * np.cos(a), ry * np.sin(a), np.full(n, z)], axis=-1)


_BODY_SHIRT = np.array([  # in body coordinates (head translation only), face widths
    (-0.30, 1.02), (-0.62, 1.14), (-0.95, 1.30), (-1.15, 1.55), (-1.30, 2.40), (1.30, 2.40),
    (1.15, 1.55), (0.95, 1.30), (0.62, 1.14), (0.30, 1.02), (0.20, 1.14), (0.0, 1.22), (-0.20, 1.14),
])
_BODY_NECK_BOTTOM = np.array([(0.26, 1.35), (-0.26, 1.35)])


def _build_points(identity: Identity) -> _Points:
    pts = _Points()
    width_scale = 1.0 + 0.06 * identity.shape[0]  # face_width mode also widens the skull
    # face outline: jaw (spline) then forehead arc back over the top
    pts.add("jaw", _catmull_rom(list(range(17)), 4))
    u = np.cos(np.linspace(0.0, np.pi, 19)[1:-1])
    h = 0.62 * np.sin(np.linspace(0.0, np.pi, 19)[1:-1]) ** 0.7
    pts.add("forehead", *_forehead(u, h))
    pts.add("face_surface", *_face_surface(pts))
    for side, ear_anchor in (("right", 1), ("left", 15)):
        outline = _EAR_OUTLINE if side == "right" else _mirror_x(_EAR_OUTLINE)
        inner = _EAR_INNER if side == "right" else _mirror_x(_EAR_INNER)
        pts.add(f"{side}_ear", _combo({ear_anchor: 1.0}, len(outline)), outline)
        pts.add(f"{side}_ear_inner", _combo({ear_anchor: 1.0}, len(inner)), inner)
    pts.add("neck_top", np.zeros((2, NUM_LANDMARKS)), [(0.27 * width_scale, 0.45, -0.5), (-0.27 * width_scale, 0.45, -0.5)])
    pts.add("skull_centre", np.zeros((1, NUM_LANDMARKS)), [(0.0, -0.22, -0.45)])

    # brows: upper edge on the landmarks, lower edge thicker at the inner end
    for side, idx in (("right", [17, 18, 19, 20, 21]), ("left", [26, 25, 24, 23, 22])):
        upper = _catmull_rom(idx, 3)
        s = np.linspace(0.0, 1.0, len(upper))  # outer -> inner
        thick = identity.eyebrow_thickness * (0.35 + 0.65 * np.sqrt(s))
        inner_dx = 0.006 if side == "right" else -0.006
        lower_off = np.stack([np.where(s > 0.9, inner_dx, 0.0), thick, np.zeros_like(s)], axis=-1)
        pts.add(f"{side}_brow", np.concatenate([upper, upper[::-1]]),
                np.concatenate([np.zeros_like(lower_off), lower_off[::-1]]))

    # eyes: upper lid corner-to-corner, lower lid back; crease above; iris centre between corners
    for side, (outer, u1, u2, inner, l1, l2) in (("right", (36, 37, 38, 39, 40, 41)), ("left", (45, 44, 43, 42, 47, 46))):
        upper = _catmull_rom([outer, u1, u2, inner], 4)
        lower = _catmull_rom([inner, l1, l2, outer], 4)
        pts.add(f"{side}_eye", np.concatenate([upper, lower[1:-1]]))
        pts.add(f"{side}_upper_lid", upper)
        pts.add(f"{side}_lower_lid", lower)
        s = np.linspace(0.0, 1.0, len(upper))
        crease = np.stack([np.zeros_like(s), -0.012 - 0.02 * np.sin(np.pi * s), np.zeros_like(s)], axis=-1)
        pts.add(f"{side}_crease", upper[2:-1], crease[2:-1])
        pts.add(f"{side}_iris", _combo({outer: 0.5, inner: 0.5}), (0.0, -0.004, 0.02))
        if identity.glasses:
            pts.add(f"{side}_lens", _combo({outer: 0.5, inner: 0.5}, 20), _ellipse_offsets(0.135, 0.095, 20, 0.10) + (0, 0.01, 0))

    # nose
    pts.add("nose_base", _catmull_rom([31, 32, 33, 34, 35], 3))
    for side, (ala, mid, sgn) in (("right", (31, 32, 1.0)), ("left", (35, 34, -1.0))):
        nostril = _ellipse_offsets(0.02, 0.008, 8) + (0.008 * sgn, -0.008, 0.0)
        pts.add(f"{side}_nostril", _combo({ala: 0.45, mid: 0.55}, 8), nostril)
        pts.add(f"{side}_ala", _combo({ala: 1.0}, 4),
                [(0.012 * sgn, -0.05, -0.01), (-0.004 * sgn, -0.03, 0.0), (-0.006 * sgn, -0.008, 0.0), (0.01 * sgn, 0.012, 0.0)])
        pts.add(f"{side}_nose_side", np.stack([_combo({28: 1.0})[0], _combo({29: 0.5, ala: 0.5})[0], _combo({ala: 1.0})[0]]),
                [(-0.035 * sgn, 0.0, -0.03), (-0.045 * sgn, 0.0, -0.02), (0.01 * sgn, -0.055, -0.01)])
    pts.add("nose_tip", _combo({30: 1.0}, 8), _ellipse_offsets(0.03, 0.022, 8) + (-0.008, -0.01, 0.0))

    # mouth: outer and inner lip contours, teeth bands, tongue
    pts.add("outer_upper", _catmull_rom([48, 49, 50, 51, 52, 53, 54], 3))
    pts.add("outer_lower", _catmull_rom([54, 55, 56, 57, 58, 59, 48], 3))
    inner_upper = _catmull_rom([60, 61, 62, 63, 64], 4)
    inner_lower = _catmull_rom([64, 65, 66, 67, 60], 4)
    pts.add("inner_upper", inner_upper)
    pts.add("inner_lower", inner_lower)
    pts.add("upper_teeth_edge", inner_upper, (0.0, 0.042, 0.0))
    pts.add("lower_teeth_edge", inner_lower, (0.0, -0.03, 0.0))
    pts.add("tongue", _combo({66: 0.8, 62: 0.2}, 12), _ellipse_offsets(0.08, 0.035, 12) + (0.0, 0.0, -0.02))

    # folds and wrinkles (drawn with expression-dependent strength)
    for side, (ala, corner, sgn) in (("right", (31, 48, 1.0)), ("left", (35, 54, -1.0))):
        pts.add(f"{side}_nasolabial", np.stack([_combo({ala: 1.0})[0], _combo({ala: 0.5, corner: 0.5})[0], _combo({corner: 1.0})[0]]),
                [(-0.03 * sgn, -0.01, 0.0), (-0.07 * sgn, 0.0, 0.0), (-0.04 * sgn, 0.035, 0.0)])
    for k, dy in enumerate((0.09, 0.15, 0.21)):
        pts.add(f"forehead_line_{k}", _catmull_rom([18, 19, 20, 21, 22, 23, 24, 25], 2),
                np.stack([np.zeros(15), -dy - 0.02 * np.sin(np.linspace(0, np.pi, 15)), np.zeros(15)], axis=-1))
    pts.add("frown_lines", np.concatenate([_combo({21: 1.0}, 2), _combo({22: 1.0}, 2)]),
            [(0.025, -0.01, 0.0), (0.03, 0.05, 0.0), (-0.025, -0.01, 0.0), (-0.03, 0.05, 0.0)])

    _add_hair(pts, identity, width_scale)
    if identity.beard in ("full", "stubble"):
        jaw = _catmull_rom(list(range(2, 15)), 3)
        top = np.stack([
            _combo({13: 1.0})[0], _combo({35: 1.0})[0], _combo({35: 0.5, 34: 0.5})[0], _combo({33: 1.0})[0],
            _combo({31: 0.5, 32: 0.5})[0], _combo({31: 1.0})[0], _combo({3: 1.0})[0],
        ])
        top_off = [(0.0, -0.12, 0.02), (0.04, 0.09, 0.0), (0.0, 0.025, 0.0), (0.0, 0.02, 0.0), (0.0, 0.025, 0.0), (-0.04, 0.09, 0.0), (0.0, -0.12, 0.02)]
        pts.add("beard", np.concatenate([jaw, top]), np.concatenate([np.tile((0.0, 0.015, 0.0), (len(jaw), 1)), top_off]))
    if identity.beard == "moustache":
        top = np.stack([_combo({48: 1.0})[0], _combo({31: 1.0})[0], _combo({33: 1.0})[0], _combo({35: 1.0})[0], _combo({54: 1.0})[0]])
        bottom = np.stack([_combo({53: 1.0})[0], _combo({51: 1.0})[0], _combo({49: 1.0})[0]])
        pts.add("moustache", np.concatenate([top, bottom]),
                [(-0.015, 0.03, 0.0), (0.0, 0.03, 0.0), (0.0, 0.02, 0.0), (0.0, 0.03, 0.0), (0.015, 0.03, 0.0),
                 (0.0, -0.005, 0.0), (0.0, -0.008, 0.0), (0.0, -0.005, 0.0)])
    if identity.glasses:
        pts.add("glasses_bridge", _combo({27: 1.0}, 3), [(-0.11, 0.02, 0.09), (0.0, 0.0, 0.11), (0.11, 0.02, 0.09)])
        pts.add("right_arm", np.stack([_combo({36: 1.0})[0], _combo({0: 1.0})[0]]),
                [(-0.04, -0.01, 0.1), (0.0, -0.03, 0.0)])
        pts.add("left_arm", np.stack([_combo({45: 1.0})[0], _combo({16: 1.0})[0]]), [(0.04, -0.01, 0.1), (0.0, -0.03, 0.0)])
    return pts


def _add_hair(pts: _Points, identity: Identity, width_scale: float) -> None:
    style = identity.hair_style
    if style == "bald":
        return
    # The front hair is a band on the forehead surface from above the face outline down to
    # the hairline; both edges share one depth profile so the band never folds under yaw.
    n = 17
    u_top = np.linspace(1.04, -1.04, n)
    top_h = 0.14 + 0.58 * np.clip(1.0 - np.abs(u_top / 1.04) ** 2.5, 0.0, None) ** 0.5
    u_line = np.linspace(-1.0, 1.0, n)
    if style == "bun":
        line_h = 0.58 - 0.1 * np.abs(u_line) ** 2
    elif style == "long":  # centre part
        line_h = 0.43 + 0.08 * np.abs(u_line) + 0.06 * np.exp(-(u_line / 0.08) ** 2)
    elif style == "curly":
        line_h = 0.45 - 0.06 * np.abs(u_line) ** 3 - 0.03 * np.cos(u_line * 9 * np.pi) ** 2
    else:  # short, buzz: side part on the subject's right
        line_h = 0.50 - 0.10 * np.abs(u_line) ** 3 - 0.05 * np.clip(u_line + 0.2, 0, None)
        line_h += 0.05 * np.exp(-((u_line + 0.35) / 0.1) ** 2)
    line_h = 0.1 + (line_h - 0.1) * (1.0 - np.abs(u_line) ** 8)  # down to the sideburns
    w_top, o_top = _forehead(np.clip(u_top, -1.0, 1.0), top_h)
    o_top[:, 0] += 0.04 * np.sign(u_top)
    w_line, o_line = _forehead(u_line, line_h)
    pts.add("hair_front", np.concatenate([w_top, w_line]), np.concatenate([o_top, o_line]))
    if style == "long":
        for side, (anchors, sgn) in (("right", ([0, 1, 2, 3], -1.0)), ("left", ([16, 15, 14, 13], 1.0))):
            inner = np.stack([_combo({a: 1.0})[0] for a in anchors])
            inner_off = [(-0.01 * sgn, -0.12, 0.05), (-0.005 * sgn, 0.0, 0.05), (0.0, 0.0, 0.05), (0.01 * sgn, 0.0, 0.04)]
            ends = np.array([(0.46, 0.80, -0.2), (0.54, 0.87, -0.2), (0.62, 0.82, -0.2), (0.67, 0.40, -0.2),
                             (0.64, 0.0, -0.2), (0.55, -0.35, -0.1)])
            ends[:, 0] *= sgn * width_scale
            pts.add(f"{side}_curtain", np.concatenate([inner, np.zeros((len(ends), NUM_LANDMARKS))]),
                    np.concatenate([inner_off, ends]))
        back = np.array([(-0.62, -0.3), (-0.68, 0.35), (-0.63, 0.85), (-0.45, 0.93), (0.45, 0.93), (0.63, 0.85),
                         (0.68, 0.35), (0.62, -0.3)])
        back[:, 0] *= width_scale
        pts.add("hair_back", np.zeros((len(back), NUM_LANDMARKS)), np.concatenate([back, np.full((len(back), 1), -0.55)], axis=1))
    if style == "bun":
        pts.add("bun_centre", np.zeros((1, NUM_LANDMARKS)), [(0.0, -0.92, -0.5)])


def _blend_into(roi: np.ndarray, source, alpha: np.ndarray) -> None:
    """``roi <- alpha * source + (1 - alpha) * roi`` in place; ``source`` an image or a colour."""
    if not isinstance(source, np.ndarray):
        colour = source
        source = np.empty_like(roi)
        source[:] = colour
    roi[:] = cv2.blendLinear(source, roi, alpha, 1.0 - alpha)


# ----------------------------------------------------------------------------------------------
# colours


def _shade(colour, factor: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * factor)) for c in colour)


def _blend(a, b, t: float) -> tuple[float, float, float]:
    return tuple(float((1 - t) * x + t * y) for x, y in zip(a, b, strict=True))


class _Palette:
    def __init__(self, identity: Identity) -> None:
        skin = np.asarray(identity.skin, dtype=np.float64)
        self.skin = _shade(skin, 1.0)
        self.skin_light = _shade(skin, 1.06)
        self.skin_shadow = _shade(skin, 0.86)
        self.skin_dark = _shade(skin, 0.72)
        self.crease = _shade(skin, 0.78)
        self.nostril = _shade(skin, 0.35)
        self.neck = _shade(skin, 0.8)
        self.ear_inner = _shade(skin, 0.75)
        hair = identity.hair_colour
        self.hair = _blend(hair, identity.skin, 0.45) if identity.hair_style == "buzz" else tuple(float(c) for c in hair)
        self.hair_dark = _shade(self.hair, 0.8)
        self.skull = self.skin_shadow if identity.hair_style == "bald" else self.hair
        self.brow = tuple(float(c) for c in identity.eyebrow_colour)
        self.iris = tuple(float(c) for c in identity.iris_colour)
        self.iris_dark = _shade(self.iris, 0.6)
        self.sclera = (236.0, 232.0, 226.0)
        self.sclera_shadow = (196.0, 188.0, 182.0)
        self.pupil = (16.0, 12.0, 12.0)
        self.lash = (26.0, 20.0, 20.0)
        self.lip = tuple(float(c) for c in identity.lip_colour)
        self.lip_upper = _shade(self.lip, 0.88)
        self.lip_seam = _shade(self.lip, 0.55)
        self.mouth = (58.0, 18.0, 22.0)
        self.teeth = (238.0, 232.0, 214.0)
        self.tongue = (170.0, 70.0, 78.0)
        beard = identity.hair_colour
        self.beard = tuple(float(c) for c in beard) if identity.beard in ("full", "moustache") else tuple(float(c) for c in beard)
        self.shirt = tuple(float(c) for c in identity.shirt_colour)
        self.shirt_shadow = _shade(self.shirt, 0.8)
        self.glasses = (32.0, 30.0, 34.0)
        self.background = np.asarray(identity.background_colour, dtype=np.float64)


# ----------------------------------------------------------------------------------------------


class FaceRenderer:
    """Draws people of the embedded world: ``render_sequence(face_states (T, 58), identity)``.

    Frames are uint8 RGB ``(T, H, W, 3)``; ``image_size`` is the side of the square frame. The
    renderer is deterministic: the same face states and identity give the same pixels.
    """

    def __init__(self, image_size: int = 256) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 32:
            raise ValueError(f"image_size: expected an int >= 32 (pixels), got {image_size!r}")
        self.image_size = int(image_size)
        self._px = self.image_size / 256.0  # line widths scale with the frame
        self._cache_key: Identity | None = None
        self._cache: tuple | None = None

    # -- public ---------------------------------------------------------------------------------

    def render(self, face_state: np.ndarray, identity: Identity) -> np.ndarray:
        """One frame: face state (58,) -> uint8 (H, W, 3)."""
        face_state = np.asarray(face_state)
        if face_state.shape != (FACE_STATE_DIM,):
            raise ValueError(f"face_state: expected shape ({FACE_STATE_DIM},), got {face_state.shape}")
        return self.render_sequence(face_state[None], identity)[0]

    def render_sequence(self, face_states: np.ndarray, identity: Identity) -> np.ndarray:
        """Frames of a sequence: face states (T, 58) -> uint8 (T, H, W, 3)."""
        if hasattr(face_states, "detach"):
            face_states = face_states.detach().cpu().numpy()
        face_states = np.asarray(face_states, dtype=np.float64)
        if face_states.ndim != 2 or face_states.shape[1] != FACE_STATE_DIM:
            raise ValueError(f"face_states: expected shape (T, {FACE_STATE_DIM}), got {face_states.shape}")
        if not np.isfinite(face_states).all():
            raise ValueError("face_states: contains NaN or infinite values")
        if not isinstance(identity, Identity):
            raise ValueError(f"identity: expected an appearance.Identity, got {type(identity).__name__}")
        points, palette, background = self._scene(identity)
        geometry = self._geometry(face_states, identity, points)
        frames = np.empty((len(face_states), self.image_size, self.image_size, 3), dtype=np.uint8)
        for t in range(len(face_states)):
            frame = frames[t]
            np.copyto(frame, background)
            self._draw_frame(frame, t, geometry, points, palette, identity, face_states[t])
        return frames

    # -- per identity ---------------------------------------------------------------------------

    def _scene(self, identity: Identity) -> tuple[_Points, _Palette, np.ndarray]:
        if self._cache_key != identity:
            palette = _Palette(identity)
            n = self.image_size
            # soft vertical gradient: walls are lit from above
            shade = np.linspace(1.06, 0.86, n)[:, None, None]
            background = np.clip(palette.background[None, None, :] * shade, 0, 255)
            background = np.broadcast_to(background, (n, n, 3)).astype(np.uint8)
            self._cache = (_build_points(identity), palette, np.ascontiguousarray(background))
            self._cache_key = identity
        return self._cache  # type: ignore[return-value]

    # -- per sequence ---------------------------------------------------------------------------

    def _geometry(self, face_states: np.ndarray, identity: Identity, points: _Points) -> dict:
        T = len(face_states)
        expression = face_states[:, EXPRESSION]
        rotation, translation = face_states[:, ROTATION], face_states[:, TRANSLATION]
        local = FaceRig.local_shape(expression, identity.shape_coefficients.astype(np.float64))
        weights, offsets = points.matrices()
        extra = np.matmul(weights, local) + offsets  # (N, 68) @ (T, 68, 3): BLAS
        extra = self._gaze(extra, expression, points)
        head = FaceRig.pose_points(np.concatenate([local, extra], axis=1), rotation, translation)
        body_xy = np.concatenate([_BODY_SHIRT, _BODY_NECK_BOTTOM])
        body = np.concatenate([body_xy, np.full((len(body_xy), 1), -0.5)], axis=1)
        body = np.broadcast_to(body, (T, *body.shape)) + translation[:, None, :]
        depth = CAMERA_DISTANCE - np.concatenate([head, body], axis=1)[..., 2]
        if (depth <= 0.05 * CAMERA_DISTANCE).any():
            raise ValueError("face_states: head translation puts the face at or behind the camera")
        pixels = FaceRig.project(np.concatenate([head, body], axis=1), self.image_size)
        # per-frame pixels per face width at the skull centre (for circles)
        centre = points.slices["skull_centre"].start
        scale = FACE_WIDTH_FRACTION * self.image_size * CAMERA_DISTANCE / depth[:, centre]
        # ear visibility: outward ear normals (facing partly forward) rotated by head pose
        normals = np.array([[-0.75, 0.0, 0.66], [0.75, 0.0, 0.66]])
        facing = np.einsum("tij,nj->tni", rotation_matrix(rotation), normals)[..., 2]
        fixed = np.round(pixels * _ONE)
        fixed = np.clip(fixed, -(8 * self.image_size) * _ONE, (8 * self.image_size) * _ONE).astype(np.int32)
        return {
            "fixed": fixed, "pixels": pixels, "scale": scale, "ears": facing > -0.05,
            "roll": np.degrees(rotation[:, 2]), "body": slice(head.shape[1], head.shape[1] + len(body_xy)),
        }

    @staticmethod
    def _gaze(extra: np.ndarray, expression: np.ndarray, points: _Points) -> np.ndarray:
        """Move the irises with the eyeLook channels (they move no landmark)."""
        b = BLENDSHAPE_INDEX
        for side, sgn in (("right", -1.0), ("left", 1.0)):
            key = "Left" if side == "left" else "Right"
            out = expression[:, b[f"eyeLookOut{key}"]] - expression[:, b[f"eyeLookIn{key}"]]
            down = expression[:, b[f"eyeLookDown{key}"]] - expression[:, b[f"eyeLookUp{key}"]]
            i = points.slices[f"{side}_iris"].start - NUM_LANDMARKS
            extra[:, i, 0] += 0.045 * sgn * out
            extra[:, i, 1] += 0.025 * down
        return extra

    # -- per frame ------------------------------------------------------------------------------

    def _draw_frame(self, img: np.ndarray, t: int, geo: dict, points: _Points, pal: _Palette,
                    identity: Identity, state: np.ndarray) -> None:
        p = geo["fixed"][t]
        s = points.slices
        px = self._px
        aa = cv2.LINE_AA

        def poly(*names: str) -> np.ndarray:
            return np.concatenate([p[s[n]] for n in names])

        def fill(pts: np.ndarray, colour) -> None:
            cv2.fillPoly(img, [pts], colour, aa, _SHIFT)

        def line(pts: np.ndarray, colour, width: float, closed: bool = False) -> None:
            cv2.polylines(img, [pts], closed, colour, max(1, int(round(width * px))), aa, _SHIFT)

        scale = geo["scale"][t]
        roll = float(geo["roll"][t])
        body = p[geo["body"]]
        shirt, neck_bottom = body[: len(_BODY_SHIRT)], body[len(_BODY_SHIRT):]
        # -- behind the head
        if "hair_back" in s:
            fill(p[s["hair_back"]], pal.hair_dark)
        fill(np.concatenate([p[s["neck_top"]], neck_bottom]), pal.neck)
        fill(shirt, pal.shirt)
        line(shirt[[0, 1, 2]], pal.shirt_shadow, 2)
        line(shirt[[9, 8, 7]], pal.shirt_shadow, 2)
        skull = p[s["skull_centre"]][0]
        axes = (0.6, 0.66) if identity.hair_style != "curly" else (0.7, 0.74)
        ax = (int(axes[0] * (1.0 + 0.06 * identity.shape[0]) * scale * _ONE), int(axes[1] * scale * _ONE))
        cv2.ellipse(img, (int(skull[0]), int(skull[1])), ax, roll, 0, 360, pal.skull, -1, aa, _SHIFT)
        if identity.hair_style == "curly":
            for a in np.linspace(0, 2 * np.pi, 16, endpoint=False):
                if math.sin(a) > 0.35:  # no curls below the ears
                    continue
                c = (int(skull[0] + ax[0] * math.cos(a)), int(skull[1] + ax[1] * math.sin(a)))
                cv2.circle(img, c, int(0.09 * scale * _ONE), pal.hair, -1, aa, _SHIFT)
        if "bun_centre" in s:
            c = p[s["bun_centre"]][0]
            cv2.circle(img, (int(c[0]), int(c[1])), int(0.2 * scale * _ONE), pal.hair_dark, -1, aa, _SHIFT)
        # -- ears (hidden when turned away, and under long hair)
        if identity.hair_style != "long":
            for k, side in enumerate(("right", "left")):
                if geo["ears"][t, k]:
                    fill(p[s[f"{side}_ear"]], pal.skin_shadow)
                    line(p[s[f"{side}_ear_inner"]], pal.ear_inner, 1.5)
        # -- face: shadow tone, then the lit tone through a blurred, smaller copy of the outline
        face = cv2.convexHull(p[s["face_surface"]])[:, 0]
        fill(face, pal.skin_shadow)
        self._shade_face(img, face, scale, pal)
        cv2.fillPoly(img, [p[s["nose_tip"]]], pal.skin_light, aa, _SHIFT)
        # -- beard / stubble
        if "beard" in s:
            if identity.beard == "stubble":  # a soft-edged tint, not a patch
                self._soft_fill(img, p[s["beard"]], pal.beard, 0.35, 0.03 * scale, within=face)
            else:
                fill(p[s["beard"]], pal.beard)
        # -- folds and wrinkles, deeper with the expression that makes them
        b = BLENDSHAPE_INDEX
        for side, key in (("right", "Right"), ("left", "Left")):
            smile = state[b[f"mouthSmile{key}"]] + 0.5 * state[b[f"cheekSquint{key}"]]
            depth = float(np.clip(0.25 + 0.8 * smile, 0.0, 1.0))
            line(p[s[f"{side}_nasolabial"]], _blend(pal.skin, pal.skin_dark, depth), 1.3)
        raise_ = float(state[b["browInnerUp"]] + 0.5 * (state[b["browOuterUpLeft"]] + state[b["browOuterUpRight"]]))
        if raise_ > 0.3:
            for k in range(3):
                line(p[s[f"forehead_line_{k}"]], _blend(pal.skin, pal.skin_dark, min(1.0, raise_ - 0.2)), 1)
        frown = float(0.5 * (state[b["browDownLeft"]] + state[b["browDownRight"]]))
        if frown > 0.25:
            f = p[s["frown_lines"]]
            colour = _blend(pal.skin, pal.skin_dark, min(1.0, 1.2 * frown))
            line(f[:2], colour, 1.2)
            line(f[2:], colour, 1.2)
        # -- nose
        for side in ("right", "left"):
            line(p[s[f"{side}_nose_side"]], pal.skin_shadow, 1.5)
            line(p[s[f"{side}_ala"]], pal.crease, 1.2)
            fill(p[s[f"{side}_nostril"]], pal.nostril)
        line(p[s["nose_base"]][2:-2], pal.crease, 1)
        # -- eyes, then brows over them
        for side in ("right", "left"):
            self._draw_eye(img, p, s, side, pal, scale)
        fill(p[s["right_brow"]], pal.brow)
        fill(p[s["left_brow"]], pal.brow)
        # -- mouth
        if "moustache" in s:
            fill(p[s["moustache"]], pal.beard)
        self._draw_mouth(img, p, s, pal)
        # -- front hair and curtains over the forehead and the face sides
        if "hair_front" in s:
            fill(p[s["hair_front"]], pal.hair)
        for side in ("right", "left"):
            if f"{side}_curtain" in s:
                fill(p[s[f"{side}_curtain"]], pal.hair)
        if identity.glasses:
            for side in ("right", "left"):
                line(p[s[f"{side}_lens"]], pal.glasses, 2, closed=True)
            line(p[s["glasses_bridge"]], pal.glasses, 2)
            line(p[s["right_arm"]], pal.glasses, 2)
            line(p[s["left_arm"]], pal.glasses, 2)

    def _shade_face(self, img: np.ndarray, face: np.ndarray, scale: float, pal: _Palette) -> None:
        """Soft two-tone shading lit from the upper left, kept inside the face outline."""
        x0, y0 = np.maximum(face.min(axis=0) >> _SHIFT, 0)
        x1, y1 = np.minimum((face.max(axis=0) >> _SHIFT) + 2, self.image_size)
        if x1 <= x0 or y1 <= y0:
            return
        roi = img[y0:y1, x0:x1]
        origin = np.array([x0, y0], dtype=np.int32) * _ONE
        centre = face.mean(axis=0)
        light = np.array([-0.02, -0.06]) * scale * _ONE
        inner = ((face - centre) * 0.86 + centre + light).astype(np.int32) - origin
        # the blur is wide (a twentieth of the face), so do it on a 4x smaller raster
        h, w = roi.shape[:2]
        small = np.zeros(((h + 3) // 4, (w + 3) // 4), dtype=np.uint8)
        cv2.fillPoly(small, [inner], 255, cv2.LINE_AA, _SHIFT + 2)
        small = cv2.GaussianBlur(small, (0, 0), max(0.5, 0.0125 * scale))
        lit = cv2.resize(small, (small.shape[1] * 4, small.shape[0] * 4), interpolation=cv2.INTER_LINEAR)[:h, :w]
        inside = np.zeros_like(lit)
        cv2.fillPoly(inside, [face - origin], 255, cv2.LINE_AA, _SHIFT)
        _blend_into(roi, pal.skin, cv2.multiply(lit, inside, dtype=cv2.CV_32F, scale=1.0 / 65025.0))

    def _soft_fill(self, img: np.ndarray, polygon: np.ndarray, colour, opacity: float, sigma: float,
                   within: np.ndarray | None = None) -> None:
        """Blend ``colour`` into the polygon with a Gaussian-softened edge (optionally clipped)."""
        pad = int(np.ceil(3 * sigma)) + 1
        x0, y0 = np.maximum((polygon.min(axis=0) >> _SHIFT) - pad, 0)
        x1, y1 = np.minimum((polygon.max(axis=0) >> _SHIFT) + pad + 1, self.image_size)
        if x1 <= x0 or y1 <= y0:
            return
        roi = img[y0:y1, x0:x1]
        origin = np.array([x0, y0], dtype=np.int32) * _ONE
        mask = np.zeros(roi.shape[:2], dtype=np.uint8)
        cv2.fillPoly(mask, [polygon - origin], 255, cv2.LINE_AA, _SHIFT)
        mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, sigma))
        if within is None:
            alpha = mask.astype(np.float32) * (opacity / 255.0)
        else:
            clip = np.zeros_like(mask)
            cv2.fillPoly(clip, [within - origin], 255, cv2.LINE_AA, _SHIFT)
            alpha = cv2.multiply(mask, clip, dtype=cv2.CV_32F, scale=opacity / 65025.0)
        _blend_into(roi, colour, alpha)

    def _draw_eye(self, img: np.ndarray, p: np.ndarray, s: dict, side: str, pal: _Palette, scale: float) -> None:
        contour = p[s[f"{side}_eye"]]
        upper, lower = p[s[f"{side}_upper_lid"]], p[s[f"{side}_lower_lid"]]
        aa = cv2.LINE_AA
        lid_width = max(1, int(round(1.6 * self._px)))
        # opening: mean gap between the upper and the (reversed) lower lid, in pixels
        gap = float(np.mean(lower[::-1][1:-1, 1] - upper[1:-1, 1])) / _ONE
        if gap > 0.6:
            x0, y0 = (contour.min(axis=0) >> _SHIFT) - 2
            x1, y1 = (contour.max(axis=0) >> _SHIFT) + 3
            x0, y0 = max(int(x0), 0), max(int(y0), 0)
            x1, y1 = min(int(x1), self.image_size), min(int(y1), self.image_size)
            if x1 > x0 and y1 > y0:
                roi = img[y0:y1, x0:x1]
                origin = np.array([x0, y0], dtype=np.int32) * _ONE
                local = contour - origin
                patch = np.empty_like(roi)
                patch[:] = pal.sclera
                cv2.polylines(patch, [upper - origin], False, pal.sclera_shadow, max(1, int(round(2.5 * self._px))), aa, _SHIFT)
                iris = p[s[f"{side}_iris"]][0] - origin
                centre = (int(iris[0]), int(iris[1]))
                r = 0.042 * scale
                cv2.circle(patch, centre, int(r * _ONE), pal.iris, -1, aa, _SHIFT)
                cv2.circle(patch, centre, int(r * _ONE), pal.iris_dark, max(1, int(round(0.25 * r))), aa, _SHIFT)
                cv2.circle(patch, centre, int(0.42 * r * _ONE), pal.pupil, -1, aa, _SHIFT)
                glint = (centre[0] - int(0.35 * r * _ONE), centre[1] - int(0.35 * r * _ONE))
                cv2.circle(patch, glint, int(max(0.6, 0.16 * r) * _ONE), (250, 250, 250), -1, aa, _SHIFT)
                mask = np.zeros(roi.shape[:2], dtype=np.uint8)
                cv2.fillPoly(mask, [local], 255, aa, _SHIFT)
                _blend_into(roi, patch, mask.astype(np.float32) * (1.0 / 255.0))
        cv2.polylines(img, [p[s[f"{side}_crease"]]], False, pal.crease, 1, aa, _SHIFT)
        cv2.polylines(img, [lower], False, pal.skin_shadow, 1, aa, _SHIFT)
        cv2.polylines(img, [upper], False, pal.lash, lid_width, aa, _SHIFT)

    def _draw_mouth(self, img: np.ndarray, p: np.ndarray, s: dict, pal: _Palette) -> None:
        aa = cv2.LINE_AA
        outer_upper, outer_lower = p[s["outer_upper"]], p[s["outer_lower"]]
        inner_upper, inner_lower = p[s["inner_upper"]], p[s["inner_lower"]]
        cv2.fillPoly(img, [np.concatenate([outer_lower, inner_lower[::-1]])], pal.lip, aa, _SHIFT)
        cv2.fillPoly(img, [np.concatenate([outer_upper, inner_upper[::-1]])], pal.lip_upper, aa, _SHIFT)
        inner = np.concatenate([inner_upper, inner_lower[1:-1]])
        gap = float(np.max(inner_lower[::-1][:, 1] - inner_upper[:, 1])) / _ONE
        if gap > 0.8:
            x0, y0 = (inner.min(axis=0) >> _SHIFT) - 2
            x1, y1 = (inner.max(axis=0) >> _SHIFT) + 3
            x0, y0 = max(int(x0), 0), max(int(y0), 0)
            x1, y1 = min(int(x1), self.image_size), min(int(y1), self.image_size)
            if x1 > x0 and y1 > y0:
                roi = img[y0:y1, x0:x1]
                origin = np.array([x0, y0], dtype=np.int32) * _ONE
                patch = np.empty_like(roi)
                patch[:] = pal.mouth
                cv2.fillPoly(patch, [p[s["tongue"]] - origin], pal.tongue, aa, _SHIFT)
                upper_teeth = np.concatenate([inner_upper, p[s["upper_teeth_edge"]][::-1]]) - origin
                lower_teeth = np.concatenate([inner_lower, p[s["lower_teeth_edge"]][::-1]]) - origin
                cv2.fillPoly(patch, [upper_teeth], pal.teeth, aa, _SHIFT)
                cv2.fillPoly(patch, [lower_teeth], _shade(pal.teeth, 0.9), aa, _SHIFT)
                mask = np.zeros(roi.shape[:2], dtype=np.uint8)
                cv2.fillPoly(mask, [inner - origin], 255, aa, _SHIFT)
                _blend_into(roi, patch, mask.astype(np.float32) * (1.0 / 255.0))
        cv2.polylines(img, [inner_upper], False, pal.lip_seam, max(1, int(round(1.2 * self._px))), aa, _SHIFT)
