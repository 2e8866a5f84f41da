"""Facial action unit intensities from blendshapes or 68 landmarks, by fixed documented rules.

**An approximation, not a FACS coder.** CMM-Net measures AU6 (cheek raiser) and AU12 (lip-corner
puller) with OpenFace's regressors (Baltrušaitis et al. FG 2015, the paper's ref. [3]); those
need appearance features and trained models. These rules give the same *kind* of signal from
the zoo's own representations, so generated and real sequences can be scored by one estimator
(the requirement for the AU-curve metric: the same estimator on both sides). Absolute values are
not comparable with OpenFace's ``AU06_r``; curves from these rules are comparable with each other.

Both families return intensities on OpenFace's 0..5 scale, clipped, as float arrays of the
input's kind (numpy in, numpy out; torch in, torch out), shape ``(..., len(aus))``.

**Blendshapes** ``(..., 52)`` (MediaPipe/ARKit scores in [0, 1], ``BLENDSHAPE_NAMES`` order):
intensity = 5 x (mean of the listed left/right pair), or the max over alternatives where one AU
has several blendshape routes. The pairing follows the ARKit blendshape descriptions (e.g.
``cheekSquint`` "raises the cheek", ``mouthSmile`` "raises the corner of the mouth"). AU23 (lip
tightener) has no ARKit counterpart and is approximated by the press and roll shapes. The rules
are meaningless for FaceVerse coefficients (REACT's 3DMM files), which share the width only.

**Landmarks** ``(..., 68, 2)`` (iBUG order, 0-based; "right" = the subject's right):
each frame is aligned by a similarity transform (origin at the mid-point of the eye centres, eye
line horizontal, unit = inter-ocular distance between the outer eye corners 36 and 45, the 300-W
normalisation) so that in-plane head motion and face size cancel. Geometric features (below) are
compared with a **neutral** frame of the same face, because shape differs between people far more
than a smile changes it; by default the first frame of each sequence, which is neutral in
CMM-Net's neutral-to-smile clips. Intensity = 5 x displacement / ``LANDMARK_FULL_SCALE[feature]``.
Brow and lid heights are measured from each eye's corner line (36-39, 42-45), which the lids
do not move; AU6 (lower lid rises) is multiplied by the upper lid's openness relative to
neutral, because a blink also lifts the lower lid. The full-scale displacements are heuristic
calibration constants (typical adult face, ~90 mm outer-canthal width) chosen so that a broad
posed expression reaches 4-5; they are not fitted to a dataset (sanity figures against the
zoo's face rig are in ``docs/realism-and-smile-metrics.md``). Out-of-plane head rotation is not
compensated.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from datamodules.features.face_state import BLENDSHAPE_INDEX, EXPRESSION_DIM, NUM_LANDMARKS

__all__ = [
    "AU_INTENSITY_MAX",
    "BLENDSHAPE_AU_RULES",
    "LANDMARK_AU_RULES",
    "LANDMARK_FULL_SCALE",
    "au_from_blendshapes",
    "au_from_landmarks",
    "landmark_features",
    "align_landmarks",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

AU_INTENSITY_MAX = 5.0  # OpenFace ``AUxx_r`` / DISFA scale

# AU -> alternatives; each alternative is a group of blendshapes that is averaged; the AU is the
# max over its alternatives. Most AUs have one alternative (a left/right pair or a single shape).
BLENDSHAPE_AU_RULES: dict[str, tuple[tuple[str, ...], ...]] = {
    "AU1": (("browInnerUp",),),                                      # inner brow raiser
    "AU2": (("browOuterUpLeft", "browOuterUpRight"),),               # outer brow raiser
    "AU4": (("browDownLeft", "browDownRight"),),                     # brow lowerer
    "AU5": (("eyeWideLeft", "eyeWideRight"),),                       # upper lid raiser
    "AU6": (("cheekSquintLeft", "cheekSquintRight"),),               # cheek raiser
    "AU7": (("eyeSquintLeft", "eyeSquintRight"),),                   # lid tightener
    "AU9": (("noseSneerLeft", "noseSneerRight"),),                   # nose wrinkler
    "AU10": (("mouthUpperUpLeft", "mouthUpperUpRight"),),            # upper lip raiser
    "AU12": (("mouthSmileLeft", "mouthSmileRight"),),                # lip corner puller
    "AU14": (("mouthDimpleLeft", "mouthDimpleRight"),),              # dimpler
    "AU15": (("mouthFrownLeft", "mouthFrownRight"),),                # lip corner depressor
    "AU16": (("mouthLowerDownLeft", "mouthLowerDownRight"),),        # lower lip depressor
    "AU17": (("mouthShrugLower",),),                                 # chin raiser
    "AU18": (("mouthPucker",),),                                     # lip pucker
    "AU20": (("mouthStretchLeft", "mouthStretchRight"),),            # lip stretcher
    "AU22": (("mouthFunnel",),),                                     # lip funneler
    "AU23": (("mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper"),),  # lip tightener (approx.)
    "AU24": (("mouthPressLeft", "mouthPressRight"),),                # lip pressor
    "AU25": (("jawOpen",), ("mouthLowerDownLeft", "mouthLowerDownRight")),  # lips part: jaw or lower lip
    "AU26": (("jawOpen",),),                                         # jaw drop
    "AU28": (("mouthRollLower", "mouthRollUpper"),),                 # lip suck
    "AU45": (("eyeBlinkLeft", "eyeBlinkRight"),),                    # blink
}

# iBUG-68 indices used by the landmark rules.
_R_EYE, _L_EYE = list(range(36, 42)), list(range(42, 48))
_R_OUTER_CORNER, _L_OUTER_CORNER = 36, 45

# Full-scale displacement (in inter-ocular distances) that maps to intensity 5.
LANDMARK_FULL_SCALE: dict[str, float] = {
    "brow_inner_height": 0.10,   # AU1: inner brow points 21/22 rise above the eye-corner line
    "brow_outer_height": 0.10,   # AU2: outer brow points 17/26 rise
    "brow_height": 0.08,         # AU4: mean brow height falls
    "lower_lid_height": 0.04,    # AU6: lower lid (40,41 / 46,47) rises relative to the eye corners
    "mouth_width": 0.15,         # AU12: corner-to-corner distance 48-54 grows
    "corner_lift": 0.06,         # AU12 / AU15: corners 48/54 rise / fall relative to the lip mid-line
    "lip_gap": 0.10,             # AU25: inner-lip gap 62-66 opens
    "jaw_drop": 0.15,            # AU26: chin 8 moves away from the nose base 33
}
# Not an AU feature of its own: the upper lid's height above the eye-corner line, used to
# suppress AU6 when the eye closes (a blink also lifts the lower lid a little).
_UPPER_LID = "upper_lid_height"

# AU -> (feature, sign): intensity = 5 * clip(sign * delta / full_scale, 0, 1); AU12 averages
# its two features; AU6 is further multiplied by the upper lid's openness relative to neutral
# (clipped to [0, 1]), so a blink or eye closure does not read as a cheek raise.
LANDMARK_AU_RULES: dict[str, tuple[tuple[str, float], ...]] = {
    "AU1": (("brow_inner_height", 1.0),),
    "AU2": (("brow_outer_height", 1.0),),
    "AU4": (("brow_height", -1.0),),
    "AU6": (("lower_lid_height", 1.0),),
    "AU12": (("mouth_width", 1.0), ("corner_lift", 1.0)),
    "AU15": (("corner_lift", -1.0),),
    "AU25": (("lip_gap", 1.0),),
    "AU26": (("jaw_drop", 1.0),),
}


def _to_torch(x: Array, name: str) -> tuple[torch.Tensor, bool]:
    is_numpy = isinstance(x, np.ndarray)
    if not is_numpy and not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a numpy array or torch tensor, got {type(x).__name__}")
    t = torch.from_numpy(np.asarray(x, dtype=np.float64)) if is_numpy else x.double()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return t, is_numpy


def _back(t: torch.Tensor, is_numpy: bool, like: Array) -> Array:
    if is_numpy:
        return t.numpy()
    return t.to(like.dtype if like.is_floating_point() else torch.float32)


def _check_aus(aus: tuple[str, ...] | list[str], rules: dict) -> tuple[str, ...]:
    aus = tuple(aus)
    unknown = [a for a in aus if a not in rules]
    if not aus or unknown:
        raise ValueError(f"aus: expected names from {list(rules)}, got unknown {unknown or 'empty list'}")
    return aus


def au_from_blendshapes(blendshapes: Array, aus: tuple[str, ...] | list[str] = ("AU6", "AU12")) -> Array:
    """AU intensities (..., len(aus)) in [0, 5] from MediaPipe blendshape scores (..., 52)."""
    aus = _check_aus(aus, BLENDSHAPE_AU_RULES)
    x, is_numpy = _to_torch(blendshapes, "blendshapes")
    if x.ndim < 1 or x.shape[-1] != EXPRESSION_DIM:
        raise ValueError(f"blendshapes: expected (..., {EXPRESSION_DIM}) MediaPipe scores, got shape {tuple(x.shape)}")
    x = x.clamp(0.0, 1.0)
    columns = []
    for au in aus:
        groups = [x[..., [BLENDSHAPE_INDEX[n] for n in group]].mean(dim=-1) for group in BLENDSHAPE_AU_RULES[au]]
        columns.append(torch.stack(groups, dim=-1).amax(dim=-1))
    return _back(AU_INTENSITY_MAX * torch.stack(columns, dim=-1), is_numpy, blendshapes)


def align_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """Similarity-normalise (..., 68, 2) landmarks: origin at the mid-point of the eye centres,
    eye line along +x, unit length = outer-corner inter-ocular distance (36-45)."""
    right_eye = landmarks[..., _R_EYE, :].mean(dim=-2)
    left_eye = landmarks[..., _L_EYE, :].mean(dim=-2)
    iod = (landmarks[..., _L_OUTER_CORNER, :] - landmarks[..., _R_OUTER_CORNER, :]).norm(dim=-1)
    if (iod <= 1e-9).any():
        raise ValueError("landmarks: outer eye corners 36 and 45 coincide in some frame (degenerate face)")
    # The subject's right eye is on the image left, so right -> left points along +x upright.
    axis = left_eye - right_eye
    angle = torch.atan2(axis[..., 1], axis[..., 0])
    cos, sin = torch.cos(-angle)[..., None], torch.sin(-angle)[..., None]
    centred = landmarks - ((right_eye + left_eye) / 2)[..., None, :]
    x, y = centred[..., 0], centred[..., 1]
    rotated = torch.stack([cos * x - sin * y, sin * x + cos * y], dim=-1)
    return rotated / iod[..., None, None]


def landmark_features(landmarks: Array) -> dict[str, Array]:
    """The geometric features of :data:`LANDMARK_FULL_SCALE` (and the upper-lid height), in
    inter-ocular distances, per frame (shape ``landmarks.shape[:-2]``). y grows downwards, so
    "height" = -y."""
    x, is_numpy = _to_torch(landmarks, "landmarks")
    if x.ndim < 2 or x.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks: expected (..., {NUM_LANDMARKS}, 2) iBUG points, got shape {tuple(x.shape)}")
    p = align_landmarks(x)
    px, py = p[..., 0], p[..., 1]
    # Reference height per eye: its corner line (36-39, 42-45), which lids do not move.
    eye_y = {"r": py[..., [36, 39]].mean(dim=-1), "l": py[..., [42, 45]].mean(dim=-1)}
    features = {
        "brow_inner_height": ((eye_y["r"] - py[..., 21]) + (eye_y["l"] - py[..., 22])) / 2,
        "brow_outer_height": ((eye_y["r"] - py[..., 17]) + (eye_y["l"] - py[..., 26])) / 2,
        "brow_height": (eye_y["r"] - py[..., 17:22].mean(dim=-1) + eye_y["l"] - py[..., 22:27].mean(dim=-1)) / 2,
        # Lower lid relative to its eye's corner line (36-39, 42-45): rises with the cheek (AU6)
        # but not in a blink, where the upper lid moves.
        "lower_lid_height": ((eye_y["r"] - py[..., [40, 41]].mean(dim=-1)) + (eye_y["l"] - py[..., [46, 47]].mean(dim=-1))) / 2,
        _UPPER_LID: ((eye_y["r"] - py[..., [37, 38]].mean(dim=-1)) + (eye_y["l"] - py[..., [43, 44]].mean(dim=-1))) / 2,
        "mouth_width": torch.hypot(px[..., 54] - px[..., 48], py[..., 54] - py[..., 48]),
        "corner_lift": (py[..., 51] + py[..., 57]) / 2 - (py[..., 48] + py[..., 54]) / 2,
        "lip_gap": (py[..., 66] - py[..., 62]).clamp_min(0.0),
        "jaw_drop": py[..., 8] - py[..., 33],
    }
    return {k: _back(v, is_numpy, landmarks) for k, v in features.items()}


def au_from_landmarks(
    landmarks: Array,
    neutral: Array | str = "first",
    aus: tuple[str, ...] | list[str] = ("AU6", "AU12"),
) -> Array:
    """AU intensities (..., len(aus)) in [0, 5] from 68 iBUG landmarks (..., 68, 2).

    ``neutral``: landmarks of the same face at rest, broadcastable to ``landmarks`` (e.g. one
    (68, 2) frame or (N, 1, 68, 2) per sequence), or ``"first"``: frame 0 of each sequence, for
    sequences (..., T, 68, 2).
    """
    aus = _check_aus(aus, LANDMARK_AU_RULES)
    x, is_numpy = _to_torch(landmarks, "landmarks")
    if isinstance(neutral, str):
        if neutral != "first":
            raise ValueError(f"neutral: expected landmarks or 'first', got {neutral!r}")
        if x.ndim < 3:
            raise ValueError(f"neutral='first' needs sequences (..., T, 68, 2), got shape {tuple(x.shape)}; pass neutral landmarks")
        ref = x[..., :1, :, :]
    else:
        ref, _ = _to_torch(neutral, "neutral")
        if ref.ndim < 2 or ref.shape[-2:] != (NUM_LANDMARKS, 2):
            raise ValueError(f"neutral: expected (..., {NUM_LANDMARKS}, 2) iBUG points, got shape {tuple(ref.shape)}")
    feats, ref_feats = landmark_features(x), landmark_features(ref)
    columns = []
    for au in aus:
        parts = []
        for feature, sign in LANDMARK_AU_RULES[au]:
            delta = feats[feature] - ref_feats[feature]
            parts.append((sign * delta / LANDMARK_FULL_SCALE[feature]).clamp(0.0, 1.0))
        column = torch.stack(torch.broadcast_tensors(*parts), dim=-1).mean(dim=-1)
        if au == "AU6":
            openness = feats[_UPPER_LID] / ref_feats[_UPPER_LID].clamp_min(1e-9)
            column = column * openness.clamp(0.0, 1.0)
        columns.append(column)
    return _back(AU_INTENSITY_MAX * torch.stack(torch.broadcast_tensors(*columns), dim=-1), is_numpy, landmarks)
