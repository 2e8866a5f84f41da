"""Face Landmarker model resolution, head pose conversion, blendshape order, and the real model
when a ``.task`` file is available."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from datamodules.features import mediapipe_landmarks as ml
from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM
from datamodules.features.rig import rotation_matrix


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ml.FACE_LANDMARKER_ENV, raising=False)
    return tmp_path / "home"


def test_offline_error_names_the_file_the_address_and_the_place(home, monkeypatch):
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        ml.resolve_face_landmarker_model()
    message = str(err.value)
    assert ml.FACE_LANDMARKER_URL in message and ml.FACE_LANDMARKER_SHA256 in message
    assert str(home / "weights" / "face_landmarker.task") in message


def test_failed_download_gives_the_same_instructions(home, monkeypatch):
    monkeypatch.delenv("FACEZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise ml.urllib.error.URLError("no route to host")

    monkeypatch.setattr(ml.urllib.request, "urlopen", unreachable)
    with pytest.raises(FileNotFoundError, match="could not be downloaded.*fetch https://storage.googleapis.com"):
        ml.resolve_face_landmarker_model()
    assert not (home / "weights").exists() or not any((home / "weights").iterdir())


def test_explicit_path_env_var_and_cache_are_searched_in_order(home, tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="--model"):
        ml.resolve_face_landmarker_model(tmp_path / "missing.task")
    monkeypatch.setenv(ml.FACE_LANDMARKER_ENV, str(tmp_path / "absent.task"))
    with pytest.raises(FileNotFoundError, match=ml.FACE_LANDMARKER_ENV):
        ml.resolve_face_landmarker_model()
    explicit = tmp_path / "mine.task"
    explicit.write_bytes(b"x")
    assert ml.resolve_face_landmarker_model(explicit) == explicit
    monkeypatch.setenv(ml.FACE_LANDMARKER_ENV, str(explicit))
    assert ml.resolve_face_landmarker_model() == explicit
    monkeypatch.delenv(ml.FACE_LANDMARKER_ENV)
    cached = home / "weights" / "face_landmarker.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the model")
    with pytest.raises(ValueError, match="sha256 differs"):
        ml.resolve_face_landmarker_model()


def test_download_keeps_only_a_file_with_the_expected_hash(tmp_path):
    source = tmp_path / "served.task"
    source.write_bytes(os.urandom(3000))
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "cache" / "face_landmarker.task"
    with pytest.raises(ValueError, match="sha256"):
        ml.download_face_landmarker(target, url=source.as_uri(), sha256="0" * 64)
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert ml.download_face_landmarker(target, url=source.as_uri(), sha256=good) == target
    assert target.read_bytes() == source.read_bytes()


def test_blendshape_order_matches_mediapipe_enum():
    enum = pytest.importorskip("mediapipe.tasks.python.vision.face_landmarker").Blendshapes

    def name(enum_name: str) -> str:  # BROW_DOWN_LEFT -> browDownLeft, NEUTRAL -> _neutral
        if enum_name == "NEUTRAL":
            return "_neutral"
        head, *rest = enum_name.lower().split("_")
        return head + "".join(w.capitalize() for w in rest)

    assert {name(b.name): b.value for b in enum} == BLENDSHAPE_INDEX


def test_euler_angles_invert_the_rig_rotation():
    rng = np.random.default_rng(1)
    angles = rng.uniform(-1.2, 1.2, size=(200, 3))
    np.testing.assert_allclose(ml.euler_from_rotation(rotation_matrix(angles)), angles, atol=1e-10)


@pytest.mark.parametrize("axis, index", [(1, 1), (0, 0)])
def test_mediapipe_rotations_get_the_rig_signs(axis, index):
    # MediaPipe space is y-up: +0.3 rad about y swings the nose (+z) to +x (rig: +yaw, nose to the
    # image right); +0.3 rad about x swings the nose to -y, i.e. down (rig: +pitch, chin down).
    c, s = np.cos(0.3), np.sin(0.3)
    m = np.eye(4)
    if axis == 1:
        m[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    else:
        m[:3, :3] = [[1, 0, 0], [0, c, -s], [0, s, c]]
    m[:3, 3] = [0.0, 0.0, -78.0]
    rotation, translation = ml.pose_from_transformation_matrix(m)
    expected = np.zeros(3)
    expected[index] = 0.3
    np.testing.assert_allclose(rotation, expected, atol=1e-12)
    np.testing.assert_allclose(translation, 0.0, atol=1e-12)  # 78 cm = 6 face widths of 13 cm: the rig's distance


def test_pose_round_trip_and_scale_is_dropped():
    rotation, translation = np.array([0.2, -0.4, 0.1]), np.array([0.3, -0.2, 0.5])
    m = ml.transformation_matrix_from_pose(rotation, translation)
    back = ml.pose_from_transformation_matrix(m)
    np.testing.assert_allclose(back[0], rotation, atol=1e-12)
    np.testing.assert_allclose(back[1], translation, atol=1e-12)
    m[:3, :3] *= 1.07  # the geometry pipeline may fold a scale into the matrix
    np.testing.assert_allclose(ml.pose_from_transformation_matrix(m)[0], rotation, atol=1e-12)
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="reflection"):
        ml.pose_from_transformation_matrix(mirror)
    with pytest.raises(ValueError, match="4x4"):
        ml.pose_from_transformation_matrix(np.eye(3))


def test_observation_validates_shapes():
    with pytest.raises(ValueError, match="landmarks"):
        ml.FaceObservation(np.zeros((468, 3)), np.zeros(52), np.eye(4))
    obs = ml.FaceObservation(np.zeros((478, 3)), np.full(52, 0.1), ml.transformation_matrix_from_pose(np.zeros(3), np.zeros(3)))
    state = ml.face_state_from_observation(obs)
    assert state.shape == (FACE_STATE_DIM,) and np.allclose(state[:52], 0.1) and np.allclose(state[52:], 0.0)


def _available_task() -> Path | None:
    for candidate in (os.environ.get(ml.FACE_LANDMARKER_ENV), ml.face_landmarker_cache_path()):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.mark.skipif(_available_task() is None, reason="no face_landmarker.task (set FACEZOO_FACE_LANDMARKER)")
def test_real_mediapipe_model_on_embedded_world_frames():
    from datamodules.features.mediapipe_to_ibug import mediapipe_to_ibug
    from datamodules.features.rig import FaceRig
    from datamodules.synthetic.appearance import default_identity
    from datamodules.synthetic.face_renderer import FaceRenderer

    states = np.zeros((5, FACE_STATE_DIM))
    states[:, BLENDSHAPE_INDEX["mouthSmileLeft"]] = states[:, BLENDSHAPE_INDEX["mouthSmileRight"]] = np.linspace(0, 0.8, 5)
    identity = default_identity()
    frames = FaceRenderer(256).render_sequence(states, identity)
    truth = FaceRig.landmarks_2d(states, identity.shape_coefficients, 256)
    landmarker = ml.MediaPipeFaceLandmarker(_available_task())
    try:
        observations = [landmarker.detect(f, 40 * t) for t, f in enumerate(frames)]
    finally:
        landmarker.close()
    found = [t for t, o in enumerate(observations) if o is not None]
    assert found, "MediaPipe found no face in the embedded world's frames"
    for t in found:
        points = mediapipe_to_ibug(observations[t].landmarks[:, :2] * 256 - 0.5)
        iod = np.linalg.norm(truth[t, 45] - truth[t, 36])
        assert np.linalg.norm(points - truth[t], axis=-1).mean() < 0.25 * iod
