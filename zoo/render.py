"""The zoo's rendering path for model outputs: face state -> landmarks -> sketch / face -> video.

Every model of the zoo emits face states (T, 58); this module turns them into something to
look at and log: 68 pixel landmarks through the project's rig, DyadGAN-style sketches, frames
of the embedded world's procedural face renderer, side-by-side tiles with labels, and mp4 /
PNG-folder files.

Extension point: :func:`render_face_video` takes any ``renderer`` with a
``render_sequence(face_states (T, 58), identity) -> uint8 (T, H, W, 3)`` method
(:class:`FaceVideoRenderer`). The procedural :class:`FaceRenderer` is the default; a learned
sketch-to-face generator plugs in the same way (draw :func:`render_sketch_video`, translate).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch

from datamodules.features.drawing import sketch
from datamodules.features.face_state import FACE_STATE_DIM
from datamodules.features.io import write_video
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import Identity, default_identity
from datamodules.synthetic.face_renderer import FaceRenderer

__all__ = [
    "FaceVideoRenderer",
    "face_state_to_landmarks",
    "render_face_video",
    "render_sketch_video",
    "save_video",
    "tile_videos",
]


@runtime_checkable
class FaceVideoRenderer(Protocol):
    """Anything that turns face states into frames (the procedural renderer, a generator, ...)."""

    def render_sequence(self, face_states: np.ndarray, identity: Identity) -> np.ndarray:
        """face states (T, 58) -> uint8 RGB frames (T, H, W, 3)."""
        ...


def _face_states(face_state, name: str = "face_state") -> np.ndarray:
    if isinstance(face_state, torch.Tensor):
        face_state = face_state.detach().float().cpu().numpy()
    face_state = np.asarray(face_state, dtype=np.float64)
    if face_state.ndim != 2 or face_state.shape[1] != FACE_STATE_DIM:
        raise ValueError(f"{name}: expected shape (T, {FACE_STATE_DIM}), got {face_state.shape}")
    if not np.isfinite(face_state).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return face_state


def _identity_coefficients(identity: Identity | None) -> np.ndarray | None:
    return None if identity is None else identity.shape_coefficients.astype(np.float64)


def face_state_to_landmarks(face_state, image_size: int = 256, identity: Identity | None = None):
    """Pixel landmarks (..., 68, 2) of face states (..., 58) through the project's rig.

    numpy in, numpy out; torch in, torch out (differentiable). ``identity`` None = mean face.
    """
    coefficients = _identity_coefficients(identity)
    if coefficients is not None and isinstance(face_state, torch.Tensor):
        coefficients = torch.as_tensor(coefficients, dtype=face_state.dtype, device=face_state.device)
    return FaceRig.landmarks_2d(face_state, coefficients, image_size)


def render_sketch_video(
    face_state,
    image_size: int = 256,
    identity: Identity | None = None,
    oval_mask: bool = False,
) -> np.ndarray:
    """White-on-black 1-px landmark sketches of face states (T, 58): uint8 (T, H, W, 3)."""
    states = _face_states(face_state)
    points = face_state_to_landmarks(states, image_size, identity)
    lines = sketch(points, image_size, oval_mask=oval_mask)
    return np.repeat(lines[..., None], 3, axis=-1)


_DEFAULT_RENDERERS: dict[int, FaceRenderer] = {}


def render_face_video(
    face_state,
    identity: Identity | None = None,
    image_size: int = 256,
    renderer: FaceVideoRenderer | None = None,
) -> np.ndarray:
    """Face frames (T, H, W, 3) uint8 of face states (T, 58).

    ``identity`` None = :func:`default_identity` (a fixed average person). ``renderer`` None =
    the procedural :class:`FaceRenderer` at ``image_size``; otherwise any
    :class:`FaceVideoRenderer`, whose output is checked to be (T, image_size, image_size, 3) uint8.
    """
    states = _face_states(face_state)
    identity = default_identity() if identity is None else identity
    if renderer is None:
        renderer = _DEFAULT_RENDERERS.get(image_size)
        if renderer is None:
            renderer = _DEFAULT_RENDERERS.setdefault(image_size, FaceRenderer(image_size))
    elif not isinstance(renderer, FaceVideoRenderer):
        raise ValueError(f"renderer: expected an object with render_sequence(face_states, identity), got {type(renderer).__name__}")
    frames = np.asarray(renderer.render_sequence(states, identity))
    expected = (len(states), image_size, image_size, 3)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise ValueError(f"renderer {type(renderer).__name__}: returned {frames.dtype} {frames.shape}, expected uint8 {expected}")
    return frames


def tile_videos(videos: list[np.ndarray], labels: list[str] | None = None) -> np.ndarray:
    """Put videos (T, H, W_i, 3) side by side -> (T, H, sum W_i, 3); optional text label on each."""
    if not videos:
        raise ValueError("videos: expected a non-empty list of (T, H, W, 3) uint8 arrays")
    arrays = [np.asarray(v) for v in videos]
    for i, v in enumerate(arrays):
        if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8:
            raise ValueError(f"videos[{i}]: expected uint8 (T, H, W, 3), got {v.dtype} {v.shape}")
    if len({v.shape[:2] for v in arrays}) != 1:
        raise ValueError(f"videos: all must share T and H, got {[v.shape[:2] for v in arrays]}")
    if labels is not None and len(labels) != len(arrays):
        raise ValueError(f"labels: expected {len(arrays)} labels (one per video), got {len(labels)}")
    tiled = np.concatenate(arrays, axis=2)
    if labels is None:
        return tiled
    height = arrays[0].shape[1]
    scale = max(0.3, height / 512)
    thickness = max(1, round(height / 256))
    band = int(round(22 * scale * 1.6))
    x = 0
    for v, label in zip(arrays, labels, strict=True):
        width = v.shape[2]
        # darken a band at the top so the label reads on any background, then paint the text
        # (rasterised once, blended into every frame)
        text = np.zeros((band, width), dtype=np.uint8)
        _, baseline = cv2.getTextSize(str(label), cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        cv2.putText(text, str(label), (4, band - baseline - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
        alpha = text[None, :, :, None].astype(np.float32) / 255.0
        region = tiled[:, :band, x : x + width].astype(np.float32) * 0.45
        tiled[:, :band, x : x + width] = np.round(region + alpha * (255.0 - region)).astype(np.uint8)
        x += width
    return tiled


def save_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 25.0) -> Path:
    """Write uint8 (T, H, W, 3) RGB frames as mp4 (video suffix) or a PNG folder, atomically."""
    return write_video(path, frames, fps=fps)
