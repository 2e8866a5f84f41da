"""AU intensity rules from blendshapes and 68 landmarks: hand-computed values, invariances,
numpy/torch round trips and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from datamodules.features.au_rules import (
    BLENDSHAPE_AU_RULES,
    au_from_blendshapes,
    au_from_landmarks,
    landmark_features,
)
from datamodules.features.face_state import BLENDSHAPE_INDEX, EXPRESSION_DIM


def _blendshapes(**scores: float) -> np.ndarray:
    x = np.zeros(EXPRESSION_DIM)
    for name, value in scores.items():
        x[BLENDSHAPE_INDEX[name]] = value
    return x


def neutral_face() -> np.ndarray:
    """A symmetric iBUG-68 face; outer eye corners 36/45 are 1.4 apart (the IOD)."""
    p = np.zeros((68, 2))
    for i in range(17):  # jaw: lower half ellipse, chin (8) at y = 1.1
        a = math.pi * i / 16
        p[i] = (-0.95 * math.cos(a), 0.2 + 0.9 * math.sin(a))
    p[17:22] = [(-0.9 + 0.175 * i, -0.55) for i in range(5)]
    p[22:27] = [(0.2 + 0.175 * i, -0.55) for i in range(5)]
    p[27:31] = [(0.0, -0.3 + 0.2 * i) for i in range(4)]
    p[31:36] = [(-0.2 + 0.1 * i, 0.4) for i in range(5)]
    p[36:42] = [(-0.7, -0.3), (-0.57, -0.36), (-0.43, -0.36), (-0.3, -0.3), (-0.43, -0.24), (-0.57, -0.24)]
    p[42:48] = [(0.3, -0.3), (0.43, -0.36), (0.57, -0.36), (0.7, -0.3), (0.57, -0.24), (0.43, -0.24)]
    p[48:60] = [(-0.35, 0.75), (-0.22, 0.7), (-0.1, 0.68), (0.0, 0.68), (0.1, 0.68), (0.22, 0.7),
                (0.35, 0.75), (0.22, 0.82), (0.1, 0.85), (0.0, 0.85), (-0.1, 0.85), (-0.22, 0.82)]
    p[60:68] = [(-0.28, 0.76), (-0.1, 0.755), (0.0, 0.755), (0.1, 0.755), (0.28, 0.76),
                (0.1, 0.765), (0.0, 0.765), (-0.1, 0.765)]
    return p


def smiling_face() -> np.ndarray:
    p = neutral_face()
    p[48] += (-0.07, -0.042)  # corners out by 0.07 each (width +0.14 = 0.1 IOD) and up 0.042 (0.03 IOD)
    p[54] += (0.07, -0.042)
    return p


def similarity(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return scale * points @ rot.T + np.asarray(shift)


# ---------------------------------------------------------------- blendshapes


def test_blendshape_rules_hand_values():
    x = _blendshapes(cheekSquintLeft=1.0, cheekSquintRight=0.6, mouthSmileLeft=0.5, mouthSmileRight=0.3,
                     jawOpen=0.2, mouthLowerDownLeft=0.8, mouthLowerDownRight=0.4)
    out = au_from_blendshapes(x, aus=("AU6", "AU12", "AU25", "AU26", "AU1"))
    # AU6 = 5 * (1 + 0.6)/2; AU12 = 5 * 0.4; AU25 = 5 * max(0.2, 0.6); AU26 = 5 * 0.2; AU1 = 0
    np.testing.assert_allclose(out, [4.0, 2.0, 3.0, 1.0, 0.0])
    assert isinstance(out, np.ndarray) and out.shape == (5,)


def test_blendshape_rules_batch_torch_and_clipping():
    x = torch.zeros(2, 3, EXPRESSION_DIM)
    x[1, 2, BLENDSHAPE_INDEX["mouthSmileLeft"]] = 1.5  # out of range: clipped to 1
    x[1, 2, BLENDSHAPE_INDEX["mouthSmileRight"]] = 1.0
    out = au_from_blendshapes(x.float())
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (2, 3, 2)
    assert float(out[1, 2, 1]) == pytest.approx(5.0) and float(out.sum()) == pytest.approx(5.0)


def test_every_blendshape_rule_names_real_blendshapes():
    for au, groups in BLENDSHAPE_AU_RULES.items():
        for group in groups:
            assert group and all(name in BLENDSHAPE_INDEX for name in group), au


def test_blendshape_rules_reject_bad_input():
    with pytest.raises(ValueError, match=r"\(\.\.\., 52\)"):
        au_from_blendshapes(np.zeros((4, 51)))
    with pytest.raises(ValueError, match="NaN"):
        au_from_blendshapes(np.full(52, np.nan))
    with pytest.raises(ValueError, match="unknown"):
        au_from_blendshapes(np.zeros(52), aus=("AU99",))
    with pytest.raises(ValueError, match="numpy array or torch tensor"):
        au_from_blendshapes([0.0] * 52)


# ---------------------------------------------------------------- landmarks


def test_landmark_features_are_in_interocular_units():
    f = landmark_features(neutral_face())
    assert float(f["mouth_width"]) == pytest.approx(0.7 / 1.4)
    assert float(f["jaw_drop"]) == pytest.approx((1.1 - 0.4) / 1.4)
    assert float(f["lower_lid_height"]) == pytest.approx(-0.06 / 1.4)  # lower lid 0.06 below the corners
    assert float(f["upper_lid_height"]) == pytest.approx(0.06 / 1.4)
    assert float(f["brow_inner_height"]) == pytest.approx(0.25 / 1.4)  # brows at y=-0.55, corners at -0.3


def test_smile_gives_hand_computed_au12_and_no_au6():
    seq = np.stack([neutral_face(), smiling_face()])
    out = au_from_landmarks(seq, neutral="first", aus=("AU12", "AU6", "AU15"))
    # width +0.1 IOD of 0.15 full scale, lift +0.03 of 0.06: AU12 = 5 * (2/3 + 1/2) / 2
    np.testing.assert_allclose(out[0], [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[1], [5 * (2 / 3 + 0.5) / 2, 0.0, 0.0], atol=1e-9)


def test_cheek_raise_moves_lower_lid_but_blink_does_not():
    raised = neutral_face()
    raised[[40, 41, 46, 47], 1] -= 0.028  # lower lids up by 0.02 IOD of 0.04 full scale
    blink = raised.copy()
    blink[[37, 38, 43, 44], 1] += 0.1  # ... and upper lids down past the corner line: closed
    half = raised.copy()
    half[[37, 38, 43, 44], 1] += 0.03  # upper lids half-way down (0.06 -> 0.03 above the corners)
    out = au_from_landmarks(np.stack([raised, blink, half]), neutral=neutral_face(), aus=("AU6",))
    np.testing.assert_allclose(out[:, 0], [2.5, 0.0, 1.25], atol=1e-9)


def test_jaw_drop_saturates_and_lips_part():
    face = neutral_face()
    face[8, 1] += 0.3  # 0.214 IOD > 0.15 full scale
    face[66, 1] += 0.07  # inner lip gap opens by 0.05 IOD of 0.10
    out = au_from_landmarks(face, neutral=neutral_face(), aus=("AU26", "AU25"))
    np.testing.assert_allclose(out, [5.0, 2.5], atol=1e-9)


def test_landmark_rules_invariant_to_in_plane_similarity():
    seq = np.stack([neutral_face(), smiling_face()])
    moved = similarity(seq, angle_deg=25.0, scale=130.0, shift=(320.0, 240.0))
    a = au_from_landmarks(seq, aus=("AU1", "AU2", "AU4", "AU6", "AU12", "AU15", "AU25", "AU26"))
    b = au_from_landmarks(torch.from_numpy(moved), aus=("AU1", "AU2", "AU4", "AU6", "AU12", "AU15", "AU25", "AU26"))
    assert isinstance(b, torch.Tensor)
    np.testing.assert_allclose(b.numpy(), a, atol=1e-9)


def test_landmark_rules_reject_bad_input():
    with pytest.raises(ValueError, match="needs sequences"):
        au_from_landmarks(neutral_face())
    with pytest.raises(ValueError, match=r"\(\.\.\., 68, 2\)"):
        au_from_landmarks(np.zeros((3, 67, 2)))
    with pytest.raises(ValueError, match="degenerate"):
        au_from_landmarks(np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match="neutral"):
        au_from_landmarks(np.stack([neutral_face()] * 2), neutral="last")
    with pytest.raises(ValueError, match="unknown"):
        au_from_landmarks(np.stack([neutral_face()] * 2), aus=("AU45",))
