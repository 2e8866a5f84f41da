"""Speaker motion read from tracked face-state coefficients instead of pixels.

REACT ships every clip's FaceVerse coefficients (``3D_FV_files``, (T, 58): 52 expression,
3 rotation, 3 translation); the DataModule gives them as ``speaker_3dmm`` (mean-subtracted). With
``speaker_motion="face_state"`` the REACT models (Trans-AE, ReactFace) read the speaker's motion
from them through :class:`FaceStateEncoder` instead of learning a face encoder from frames
(:class:`~zoo.common.video_encoder.VideoEncoder`); everything after the encoder is unchanged.

Why it exists: on the embedded world's few training identities the pixel encoder does not learn
to read unseen speakers' faces within a CPU demo's budget (README, "Measured figures"), so the CPU
demo configs use the tracked coefficients. The paper-scale configs keep the paper's pixels.
REACT 2023/24's BeLFusion baseline likewise conditions on extracted speaker features rather than
frames (reactmultimodalchallenge/baseline_react2023).

The encoder is per frame (two linear layers), so it is causal and streams exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from datamodules.features.face_state import FACE_STATE_DIM
from zoo.common.video_encoder import VideoEncoder

__all__ = ["FaceStateEncoder", "SPEAKER_MOTION", "build_motion_encoder", "check_face_state"]

SPEAKER_MOTION = ("video", "face_state")


def check_face_state(face_state: torch.Tensor, channels: int = FACE_STATE_DIM, *, name: str = "speaker_3dmm") -> None:
    """Shape, dtype and finiteness check with a message that says what was expected."""
    if not isinstance(face_state, torch.Tensor) or face_state.ndim != 3 or face_state.shape[-1] != channels:
        shape = tuple(face_state.shape) if isinstance(face_state, torch.Tensor) else type(face_state).__name__
        raise ValueError(f"{name} must be a (batch, time, {channels}) face-state tensor "
                         f"(mean-subtracted 3DMM coefficients), got {shape}")
    if not face_state.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {face_state.dtype}")
    if face_state.shape[1] < 1:
        raise ValueError(f"{name} has no frames (time dimension is 0)")
    if not bool(torch.isfinite(face_state.detach()).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


class FaceStateEncoder(nn.Module):
    """(B, T, 58) mean-subtracted face states -> (B, T, feature_dim) speaker motion features.

    Linear -> GELU -> Linear per frame: the same interface as ``VideoEncoder`` (``feature_dim``,
    (B, T, ...) -> (B, T, C)), so the speaker encoder's attention layers are shared unchanged.
    """

    def __init__(self, feature_dim: int, input_dim: int = FACE_STATE_DIM, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or feature_dim
        self.feature_dim, self.input_dim = feature_dim, input_dim
        self.proj = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, feature_dim))

    def forward(self, face_state: torch.Tensor) -> torch.Tensor:
        check_face_state(face_state, self.input_dim)
        return self.proj(face_state)


def build_motion_encoder(
    speaker_motion: str, feature_dim: int, *, enabled: bool = True, video_stem_channels: int | None = None,
    video_causal: bool = True,
) -> VideoEncoder | FaceStateEncoder | None:
    """The speaker motion encoder of a REACT model: pixels (the paper) or tracked face states; None
    when the motion modality is switched off (``enabled=False``). ``speaker_motion`` is checked
    either way, so a typo in a config fails at construction."""
    if speaker_motion not in SPEAKER_MOTION:
        raise ValueError(f"speaker_motion must be one of {SPEAKER_MOTION}, got {speaker_motion!r}")
    if not enabled:
        return None
    if speaker_motion == "face_state":
        return FaceStateEncoder(feature_dim)
    return VideoEncoder(feature_dim, stem_channels=video_stem_channels, causal=video_causal)
