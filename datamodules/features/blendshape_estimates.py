"""AU intensities and the 8-d affect estimate from MediaPipe blendshape scores, by fixed rules.

**AU intensities** (0..5, OpenFace's ``AUxx_r`` scale): intensity = 5 x the mean of an AU's
blendshape group (a left/right pair or one shape), the max over alternative groups. These are the
blendshape rules of :mod:`datamodules.features.au_rules` (re-exported here; the pairing follows
the ARKit blendshape descriptions, e.g. ``cheekSquint`` "raises the cheek" = AU6,
``mouthSmile`` "raises the corner of the mouth" = AU12), including AU16 (lower lip depressor) =
``mouthLowerDown``, needed by the disgust prototype.

**Affect** (8 numbers per frame, :data:`~datamodules.features.face_state.AFFECT_CLASSES`
order: joy, anger, surprise, fear, contempt, disgust, sadness, neutral; rows sum to 1), the
kind of descriptor DyadGAN / Interactive GAN take from Emotient FACET (notes B.1, C.7):

1. AU evidence ``a`` = AU intensity / 5 in [0, 1] for the AUs of :data:`AFFECT_PROTOTYPES`, plus
   two *unilateral* channels ``U12 = |mouthSmileLeft - mouthSmileRight|`` and
   ``U14 = |mouthDimpleLeft - mouthDimpleRight|`` (contempt is a one-sided smile).
2. Prototype match ``c_k = cos(a, p_k)``, ``p_k`` the binary AU set of category ``k`` from the
   EMFACS prototype table (Friesen & Ekman 1983, as reproduced in FACS references: happiness
   6+12, sadness 1+4+15, surprise 1+2+5+26, fear 1+2+4+5+7+20+26, anger 4+5+7+23, disgust
   9+15+16 with the AU10 variant added, contempt R12+R14).
3. Category shares ``q = softmax(c / TAU)`` over the 7 non-neutral categories.
4. Expressivity ``s = clip(max(a) / FULL_DISPLAY, 0, 1)``: how much of the face is displaying
   anything at all; ``neutral = 1 - s``, category ``k`` = ``s q_k``.

``TAU`` and ``FULL_DISPLAY`` are heuristic constants (not fitted to a dataset): a blendshape
score of 0.5 on the strongest channel is a clear display, and a cosine gap of 0.1 is a factor e
between categories. The rule is deterministic and the same for real and generated faces, which
is what conditioning and evaluation need; it is not a trained expression classifier.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from datamodules.features.au_rules import AU_INTENSITY_MAX, BLENDSHAPE_AU_RULES, au_from_blendshapes
from datamodules.features.face_state import AFFECT_CLASSES, BLENDSHAPE_INDEX, EXPRESSION_DIM

__all__ = [
    "AFFECT_PROTOTYPES",
    "AU_INTENSITY_MAX",
    "BLENDSHAPE_AU_RULES",
    "affect_from_blendshapes",
    "au_from_blendshapes",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

# EMFACS prototypes in AFFECT_CLASSES order (neutral has none: it is 1 - expressivity).
AFFECT_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "joy": ("AU6", "AU12"),
    "anger": ("AU4", "AU5", "AU7", "AU23"),
    "surprise": ("AU1", "AU2", "AU5", "AU26"),
    "fear": ("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"),
    "contempt": ("U12", "U14"),
    "disgust": ("AU9", "AU10", "AU15", "AU16"),
    "sadness": ("AU1", "AU4", "AU15"),
}
assert tuple(AFFECT_PROTOTYPES) + ("neutral",) == AFFECT_CLASSES
TAU = 0.1
FULL_DISPLAY = 0.5

_UNILATERAL = {"U12": ("mouthSmileLeft", "mouthSmileRight"), "U14": ("mouthDimpleLeft", "mouthDimpleRight")}
_EVIDENCE = tuple(sorted({c for p in AFFECT_PROTOTYPES.values() for c in p}, key=lambda c: (c[0] == "U", int(c.lstrip("AU")))))


def _check(blendshapes: Array) -> tuple[torch.Tensor, bool]:
    is_numpy = isinstance(blendshapes, np.ndarray)
    if not is_numpy and not isinstance(blendshapes, torch.Tensor):
        raise ValueError(f"blendshapes: expected a numpy array or torch tensor, got {type(blendshapes).__name__}")
    x = torch.from_numpy(np.asarray(blendshapes, dtype=np.float64)) if is_numpy else blendshapes.double()
    if x.ndim < 1 or x.shape[-1] != EXPRESSION_DIM:
        raise ValueError(f"blendshapes: expected (..., {EXPRESSION_DIM}) MediaPipe scores, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("blendshapes: contains NaN or inf (drop frames without a face first)")
    return x.clamp(0.0, 1.0), is_numpy


def _back(t: torch.Tensor, is_numpy: bool, like: Array) -> Array:
    if is_numpy:
        return t.numpy()
    return t.to(like.dtype if like.is_floating_point() else torch.float32)


def affect_from_blendshapes(blendshapes: Array) -> Array:
    """The 8-d affect estimate (..., 8), rows summing to 1, from blendshape scores (..., 52)."""
    x, is_numpy = _check(blendshapes)
    aus = tuple(c for c in _EVIDENCE if not c.startswith("U"))
    evidence = {c: v for c, v in zip(aus, (au_from_blendshapes(x, aus) / AU_INTENSITY_MAX).unbind(-1), strict=True)}
    for name, (left, right) in _UNILATERAL.items():
        evidence[name] = (x[..., BLENDSHAPE_INDEX[left]] - x[..., BLENDSHAPE_INDEX[right]]).abs()
    a = torch.stack([evidence[c] for c in _EVIDENCE], dim=-1)
    prototypes = torch.tensor([[float(c in p) for c in _EVIDENCE] for p in AFFECT_PROTOTYPES.values()], dtype=a.dtype)
    prototypes = prototypes / prototypes.norm(dim=-1, keepdim=True)
    # cosine with each prototype; an all-zero face has no direction (shares uniform, s = 0)
    cosine = (a @ prototypes.T) / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    shares = torch.softmax(cosine / TAU, dim=-1)
    expressivity = (a.amax(dim=-1, keepdim=True) / FULL_DISPLAY).clamp(0.0, 1.0)
    out = torch.cat([expressivity * shares, 1.0 - expressivity], dim=-1)
    return _back(out, is_numpy, blendshapes)
