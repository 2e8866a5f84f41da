"""The zoo's per-frame representations and their channel layouts.

Face state (58 numbers per frame), as in the REACT challenge's ``3D_FV_files``:
``[0:52]`` expression coefficients, ``[52:55]`` head rotation (pitch, yaw, roll, radians),
``[55:58]`` head translation (x right, y down, z towards the camera; in face-widths).
The 52 expression channels use MediaPipe's blendshape names and order (ARKit names with
``_neutral`` first and no ``tongueOut``), so MediaPipe output maps onto it one to one.
On real REACT data the 52 are FaceVerse expression coefficients: same width, different
basis; models never assume one or the other.

Emotion (25 numbers per frame), the REACT challenge's emotion csv: ``[0:15]`` AU
occurrences (0/1), ``[15:17]`` valence, arousal in [-1, 1], ``[17:25]`` probabilities of
the 8 expressions below (REACT order, B23 ``metric/FRD.py`` block boundaries).

Affect (8 categories) is DyadGAN's per-frame partner affect, in the paper's order.
"""

from __future__ import annotations

FACE_STATE_DIM = 58
EXPRESSION_DIM = 52
EXPRESSION = slice(0, 52)
ROTATION = slice(52, 55)
TRANSLATION = slice(55, 58)
POSE = slice(52, 58)

# MediaPipe FaceLandmarker blendshape categories, in the order the model emits them.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
BLENDSHAPE_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
assert len(BLENDSHAPE_NAMES) == EXPRESSION_DIM

EMOTION_DIM = 25
AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
    "AU23", "AU24", "AU25", "AU26",
)
EXPRESSION_CLASSES: tuple[str, ...] = (
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
)
EMOTION_COLUMNS: tuple[str, ...] = AU_NAMES + ("Valence", "Arousal") + EXPRESSION_CLASSES
EMOTION_AU = slice(0, 15)
EMOTION_VA = slice(15, 17)
EMOTION_EXPR = slice(17, 25)
assert len(EMOTION_COLUMNS) == EMOTION_DIM

# DyadGAN's partner affect, in the paper's order (Sec. 3).
AFFECT_CLASSES: tuple[str, ...] = (
    "joy", "anger", "surprise", "fear", "contempt", "disgust", "sadness", "neutral",
)

NUM_LANDMARKS = 68
