"""MediaPipe Face Landmarker (Tasks API) behind a small protocol, its ``.task`` model, and the
58-d face state from its output.

What a landmarker gives per frame (:class:`FaceObservation`): the 478 normalised landmarks
(x, y in [0, 1] of the image width/height, z relative depth on roughly the scale of x), the 52
blendshape scores in :data:`~datamodules.features.face_state.BLENDSHAPE_NAMES` order, and the
4x4 facial transformation matrix. ``None`` means no face in that frame.

Any object with ``detect(frame, timestamp_ms) -> FaceObservation | None`` and ``close()`` is a
landmarker (:class:`Landmarker`), so the pipeline runs the same with

* :class:`MediaPipeFaceLandmarker`: the real model in VIDEO running mode (tracking between
  frames; timestamps must increase strictly, so use one instance per video);
* :class:`GroundTruthLandmarker`: the embedded world's known geometry replayed as detections
  (tests, benchmarks, checking the pipeline end to end where the truth is known).

The ``.task`` model (:func:`resolve_face_landmarker_model`), first match wins:
1. an explicit path (``facezoo prepare --model``);
2. ``$FACEZOO_FACE_LANDMARKER``;
3. ``$FACEZOO_HOME/weights/face_landmarker.task`` (``FACEZOO_HOME`` defaults to ``~/.cache/facezoo``);
4. a download of :data:`FACE_LANDMARKER_URL` (the address of Google's Face Landmarker guide,
   https://ai.google.dev/edge/mediapipe/solutions/vision/face_landmarker) into 3, checked against
   :data:`FACE_LANDMARKER_SHA256`, unless ``FACEZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``.
The pinned sha256 and size are those that independent projects pin for that address
(float16 version 1); offline, the error names the address and the place to put the file.

Head pose convention (:func:`pose_from_transformation_matrix`). MediaPipe's matrix maps the
canonical face model (centimetres; x to image right, y up, z towards the camera) into camera
space (camera at the origin looking down -z). The face state uses the rig's axes (x right,
**y down**, z towards the camera; ``datamodules/features/rig.py``), so with F = diag(1, -1, 1):

* rotation: ``R_state = F R_mp F`` (the rotation block made orthonormal by polar decomposition,
  which drops any scale), then the rig's Euler angles ``R = Rz(roll) Ry(yaw) Rx(pitch)``
  (positive pitch = chin down, positive yaw = nose to image right, positive roll = clockwise on
  screen), exactly the inverse of :func:`datamodules.features.rig.rotation_matrix`;
* translation: ``(t_x, -t_y, t_z + CAMERA_DISTANCE * FACE_WIDTH_CM) / FACE_WIDTH_CM`` in face
  widths, with ``FACE_WIDTH_CM = 13`` (the rig's "6 face widths ~ 0.8 m" camera). Zero is a face
  78 cm in front of the camera on its optical axis. It is the canonical model's origin, not the
  rig's between-the-eyes origin, and x, y are relative to the optical axis, not to the rig's
  framing; models use mean-subtracted face states, so only changes matter.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from datamodules.features.face_state import (
    BLENDSHAPE_NAMES,
    EXPRESSION,
    EXPRESSION_DIM,
    FACE_STATE_DIM,
    ROTATION,
    TRANSLATION,
)
from datamodules.features.mediapipe_to_ibug import NUM_MESH_POINTS, mediapipe_points_for_ibug
from datamodules.features.rig import CAMERA_DISTANCE, FACE_WIDTH_FRACTION, FaceRig, rotation_matrix
from datamodules.home import facezoo_home

FACE_LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_LANDMARKER_BYTES = 3_758_596
FACE_LANDMARKER_ENV = "FACEZOO_FACE_LANDMARKER"
FACE_LANDMARKER_FILE = "face_landmarker.task"

FACE_WIDTH_CM = 13.0
_FLIP_Y = np.diag([1.0, -1.0, 1.0])


def face_landmarker_cache_path() -> Path:
    return facezoo_home() / "weights" / FACE_LANDMARKER_FILE


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("FACEZOO_OFFLINE", "HF_HUB_OFFLINE"))


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_instructions(where: Path) -> str:
    return (
        f"fetch {FACE_LANDMARKER_URL} (sha256 {FACE_LANDMARKER_SHA256}, {FACE_LANDMARKER_BYTES:,} bytes) "
        f"and save it as {where}, or pass --model PATH / set ${FACE_LANDMARKER_ENV}"
    )


def download_face_landmarker(
    destination: str | os.PathLike,
    url: str = FACE_LANDMARKER_URL,
    sha256: str = FACE_LANDMARKER_SHA256,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` to ``destination`` through a temporary file, keeping it only if its
    sha256 matches (as ``torch.hub`` does); raises ``ValueError`` on a mismatch."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed https/file URL)
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise ValueError(f"{url}: downloaded file has sha256 {digest.hexdigest()}, expected {sha256}; not saved")
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
    return destination


def resolve_face_landmarker_model(path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The Face Landmarker ``.task`` file (search order in the module docstring)."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise FileNotFoundError(f"--model {explicit}: no such file (expected MediaPipe's {FACE_LANDMARKER_FILE})")
        return explicit
    if os.environ.get(FACE_LANDMARKER_ENV):
        from_env = Path(os.environ[FACE_LANDMARKER_ENV]).expanduser()
        if not from_env.is_file():
            raise FileNotFoundError(f"${FACE_LANDMARKER_ENV}={from_env}: no such file; {_fetch_instructions(from_env)}")
        return from_env
    cached = face_landmarker_cache_path()
    if cached.is_file():
        if sha256_of(cached) != FACE_LANDMARKER_SHA256:
            raise ValueError(f"{cached}: sha256 differs from the pinned {FACE_LANDMARKER_SHA256} (corrupt or another "
                             f"version); delete it, or pass that file explicitly with --model to use it anyway")
        return cached
    if not download or _offline():
        raise FileNotFoundError(f"MediaPipe Face Landmarker model not found (offline mode); {_fetch_instructions(cached)}")
    try:
        return download_face_landmarker(cached)
    except (urllib.error.URLError, OSError) as err:
        raise FileNotFoundError(f"MediaPipe Face Landmarker model could not be downloaded ({err}); "
                                f"{_fetch_instructions(cached)}") from err


# ----------------------------------------------------------------------------------------------
# observations and the landmarker protocol


@dataclass(frozen=True)
class FaceObservation:
    """One detected face: ``landmarks`` (478, 3) normalised x, y, z; ``blendshapes`` (52,) in
    ``BLENDSHAPE_NAMES`` order; ``transform`` (4, 4) facial transformation matrix."""

    landmarks: np.ndarray
    blendshapes: np.ndarray
    transform: np.ndarray

    def __post_init__(self) -> None:
        checks = (("landmarks", (NUM_MESH_POINTS, 3)), ("blendshapes", (EXPRESSION_DIM,)), ("transform", (4, 4)))
        for name, shape in checks:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape or not np.isfinite(value).all():
                raise ValueError(f"FaceObservation.{name}: expected finite {shape}, got {value.shape}")
            object.__setattr__(self, name, value)


@runtime_checkable
class Landmarker(Protocol):
    """What ``facezoo prepare`` needs from a face landmarker (one instance per video)."""

    def detect(self, frame: np.ndarray, timestamp_ms: int) -> FaceObservation | None:
        """``frame``: uint8 RGB (H, W, 3); ``timestamp_ms`` strictly increasing within a video."""
        ...

    def close(self) -> None: ...


class MediaPipeFaceLandmarker:
    """MediaPipe Face Landmarker in VIDEO running mode, one face, blendshapes and matrix on."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        min_face_detection_confidence: float = 0.5,
        min_face_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model_path: {self.model_path} does not exist (MediaPipe {FACE_LANDMARKER_FILE})")
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=min_face_detection_confidence,
            min_face_presence_confidence=min_face_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._task = vision.FaceLandmarker.create_from_options(options)

    def detect(self, frame: np.ndarray, timestamp_ms: int) -> FaceObservation | None:
        import mediapipe as mp

        frame = np.ascontiguousarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame: expected uint8 RGB (H, W, 3), got {frame.dtype} {frame.shape}")
        result = self._task.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=frame), int(timestamp_ms))
        if not result.face_landmarks:
            return None
        if not result.face_blendshapes or not result.facial_transformation_matrixes:
            raise ValueError(f"{self.model_path}: this model emits no blendshapes / transformation matrix; "
                             f"use the Face Landmarker with blendshapes ({FACE_LANDMARKER_URL})")
        landmarks = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float64)
        scores = {c.category_name: c.score for c in result.face_blendshapes[0]}
        missing = [n for n in BLENDSHAPE_NAMES if n not in scores]
        if missing:
            raise ValueError(f"{self.model_path}: blendshape categories {missing} missing from the model output")
        blendshapes = np.array([scores[n] for n in BLENDSHAPE_NAMES], dtype=np.float64)
        return FaceObservation(landmarks, blendshapes, np.asarray(result.facial_transformation_matrixes[0]))

    def close(self) -> None:
        self._task.close()


@dataclass(frozen=True)
class MediaPipeLandmarkerFactory:
    """Picklable recipe for one :class:`MediaPipeFaceLandmarker` per video (worker processes)."""

    model_path: str
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5

    def __call__(self, video: Path) -> MediaPipeFaceLandmarker:
        return MediaPipeFaceLandmarker(self.model_path, self.min_face_detection_confidence,
                                       self.min_face_presence_confidence, self.min_tracking_confidence)

    def describe(self) -> dict:
        return {"kind": "mediapipe", "model": str(self.model_path), "sha256": sha256_of(self.model_path)}


# ----------------------------------------------------------------------------------------------
# head pose <-> facial transformation matrix


def euler_from_rotation(matrix: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) (..., 3) of rotation matrices (..., 3, 3) in the rig's convention
    ``R = Rz(roll) Ry(yaw) Rx(pitch)``; inverse of :func:`~datamodules.features.rig.rotation_matrix`
    for |yaw| < pi/2."""
    r = np.asarray(matrix, dtype=np.float64)
    pitch = np.arctan2(-r[..., 2, 1], r[..., 2, 2])
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.stack([pitch, yaw, roll], axis=-1)


def pose_from_transformation_matrix(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face-state rotation (3,) and translation (3,) from a MediaPipe 4x4 facial transformation
    matrix (convention in the module docstring)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4) or not np.isfinite(m).all():
        raise ValueError(f"matrix: expected a finite 4x4 facial transformation matrix, got {m.shape}")
    u, _, vt = np.linalg.svd(m[:3, :3])
    rotation = u @ vt
    if np.linalg.det(rotation) < 0:  # a reflection is no head pose
        raise ValueError("matrix: rotation block is a reflection (determinant < 0)")
    r_state = _FLIP_Y @ rotation @ _FLIP_Y
    t = m[:3, 3]
    translation = np.array([t[0], -t[1], t[2] + CAMERA_DISTANCE * FACE_WIDTH_CM]) / FACE_WIDTH_CM
    return euler_from_rotation(r_state), translation


def transformation_matrix_from_pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pose_from_transformation_matrix` (scale 1)."""
    m = np.eye(4)
    m[:3, :3] = _FLIP_Y @ rotation_matrix(np.asarray(rotation, dtype=np.float64)) @ _FLIP_Y
    t = np.asarray(translation, dtype=np.float64) * FACE_WIDTH_CM
    m[:3, 3] = (t[0], -t[1], t[2] - CAMERA_DISTANCE * FACE_WIDTH_CM)
    return m


def face_state_from_observation(observation: FaceObservation) -> np.ndarray:
    """The 58-d face state: 52 blendshape scores, then rotation and translation of the matrix."""
    state = np.empty(FACE_STATE_DIM)
    state[EXPRESSION] = observation.blendshapes
    state[ROTATION], state[TRANSLATION] = pose_from_transformation_matrix(observation.transform)
    return state


# ----------------------------------------------------------------------------------------------
# replaying known geometry as detections


class GroundTruthLandmarker:
    """Detections from known face states, as a perfect landmarker would report them.

    ``face_states`` (T, 58) are the per-frame truth of a square ``image_size`` video at ``fps``
    (e.g. the embedded world's, rendered by ``FaceRenderer``); a row of NaN means "no face in
    this frame". ``identity``: the rig identity coefficients of the person. The frame index is
    ``round(timestamp_ms * fps / 1000)``. Landmarks: the rig's 68 projected points carried to
    478 MediaPipe points by :func:`mediapipe_points_for_ibug` (so the frozen mapping gives them
    back exactly), normalised like MediaPipe's (pixel centre + 0.5, divided by the side); z is
    the rig depth on the x scale. Blendshapes: the expression channels; matrix: the pose.
    """

    def __init__(self, face_states: np.ndarray, identity: np.ndarray | None, image_size: int, fps: float) -> None:
        face_states = np.asarray(face_states, dtype=np.float64)
        if face_states.ndim != 2 or face_states.shape[1] != FACE_STATE_DIM:
            raise ValueError(f"face_states: expected (T, {FACE_STATE_DIM}), got {face_states.shape}")
        if not fps > 0:
            raise ValueError(f"fps: expected a positive frame rate, got {fps!r}")
        self.face_states, self.identity, self.image_size, self.fps = face_states, identity, int(image_size), float(fps)
        self.present = np.isfinite(face_states).all(axis=1)
        self._last_timestamp: int | None = None
        self.calls = 0

    def detect(self, frame: np.ndarray, timestamp_ms: int) -> FaceObservation | None:
        if frame.shape[:2] != (self.image_size, self.image_size):
            raise ValueError(f"frame: expected {self.image_size}x{self.image_size}, got {frame.shape[:2]}")
        if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
            raise ValueError(f"timestamp_ms: {timestamp_ms} does not increase (previous {self._last_timestamp}); "
                             "MediaPipe's VIDEO mode rejects this too")
        self._last_timestamp = timestamp_ms
        self.calls += 1
        index = int(round(timestamp_ms * self.fps / 1000.0))
        if not 0 <= index < len(self.face_states):
            raise ValueError(f"timestamp_ms {timestamp_ms}: frame {index} is outside the known {len(self.face_states)} frames")
        if not self.present[index]:
            return None
        state = self.face_states[index]
        points3d = FaceRig.landmarks_3d(state, self.identity)
        pixels = FaceRig.project(points3d, self.image_size)
        normalised = np.concatenate([(pixels + 0.5) / self.image_size, -points3d[:, 2:] * FACE_WIDTH_FRACTION], axis=1)
        landmarks = mediapipe_points_for_ibug(normalised)
        return FaceObservation(landmarks, state[EXPRESSION], transformation_matrix_from_pose(state[ROTATION], state[TRANSLATION]))

    def close(self) -> None:
        pass

