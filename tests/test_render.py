"""zoo.render: landmarks, sketch and face videos, the renderer extension point, tiling, saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM
from datamodules.features.io import read_video
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import default_identity, sample_identity
from datamodules.synthetic.face_renderer import FaceRenderer
from zoo.render import (
    FaceVideoRenderer,
    face_state_to_landmarks,
    render_face_video,
    render_sketch_video,
    save_video,
    tile_videos,
)


def states(T: int = 3) -> np.ndarray:
    out = np.zeros((T, FACE_STATE_DIM))
    out[:, BLENDSHAPE_INDEX["jawOpen"]] = np.linspace(0.0, 1.0, T)
    out[:, 53] = np.linspace(-0.2, 0.2, T)
    return out


def test_landmarks_follow_the_rig_for_numpy_torch_and_identities():
    person = sample_identity(np.random.default_rng(0))
    np.testing.assert_allclose(face_state_to_landmarks(states(), 128), FaceRig.landmarks_2d(states(), None, 128))
    np.testing.assert_allclose(
        face_state_to_landmarks(states(), 128, person),
        FaceRig.landmarks_2d(states(), person.shape_coefficients.astype(np.float64), 128),
    )
    got = face_state_to_landmarks(torch.tensor(states(), dtype=torch.float32), 128, person)
    assert isinstance(got, torch.Tensor) and got.shape == (3, 68, 2)
    np.testing.assert_allclose(got.numpy(), face_state_to_landmarks(states(), 128, person), atol=1e-3)


def test_sketch_video_is_grey_binary_and_lit_at_the_landmarks():
    video = render_sketch_video(states(), image_size=96)
    assert video.shape == (3, 96, 96, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video[..., 0], video[..., 1])
    np.testing.assert_array_equal(video[..., 0], video[..., 2])
    assert set(np.unique(video)) == {0, 255}
    pixels = np.round(face_state_to_landmarks(states(), 96)).astype(int)
    for t in range(3):
        assert (video[t, pixels[t, :, 1], pixels[t, :, 0], 0] == 255).all()
    assert not np.array_equal(video[0], video[2])
    assert render_sketch_video(torch.tensor(states()), 96).shape == video.shape


def test_face_video_defaults_to_a_fixed_person_and_matches_the_renderer():
    video = render_face_video(states(), image_size=64)
    assert video.shape == (3, 64, 64, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video, FaceRenderer(64).render_sequence(states(), default_identity()))
    other = render_face_video(states(), sample_identity(np.random.default_rng(3)), image_size=64)
    assert not np.array_equal(video, other)


class _SketchTinter:
    """A stand-in learned renderer: colours the sketch (what a sketch-to-face generator would consume)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls = 0

    def render_sequence(self, face_states, identity):
        self.calls += 1
        sketches = render_sketch_video(face_states, self.size)
        return (sketches * np.array([1.0, 0.5, 0.0])).astype(np.uint8)


def test_renderer_extension_point_is_used_and_its_output_checked():
    tinter = _SketchTinter(64)
    assert isinstance(tinter, FaceVideoRenderer)
    video = render_face_video(states(), image_size=64, renderer=tinter)
    assert tinter.calls == 1 and video[..., 2].max() == 0 and video[..., 0].max() == 255
    with pytest.raises(ValueError, match="renderer"):
        render_face_video(states(), image_size=128, renderer=tinter)  # wrong frame size
    with pytest.raises(ValueError, match="renderer"):
        render_face_video(states(), renderer=object())


def test_tile_videos_places_videos_side_by_side_and_labels_only_the_top_band():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 40, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    tiled = tile_videos([a, b])
    assert tiled.shape == (2, 40, 80, 3)
    np.testing.assert_array_equal(tiled[:, :, :30], a)
    np.testing.assert_array_equal(tiled[:, :, 30:], b)
    labelled = tile_videos([np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 64, 64, 3), np.uint8)], ["real", "fake"])
    changed = labelled.any(axis=(0, 3))
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size > 0 and rows.max() < 32  # text in the top band only
    assert changed[:, :64].any() and changed[:, 64:].any()  # one label per video
    np.testing.assert_array_equal(labelled[0], labelled[1])  # same label every frame


def test_tile_videos_rejects_mismatched_input():
    with pytest.raises(ValueError, match="share T and H"):
        tile_videos([np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="labels"):
        tile_videos([np.zeros((2, 8, 8, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match=r"videos\[0\]"):
        tile_videos([np.zeros((2, 8, 8), np.uint8)])
    with pytest.raises(ValueError, match="non-empty"):
        tile_videos([])


def test_save_video_png_folder_round_trips_and_mp4_is_written(tmp_path):
    video = render_face_video(states(4), image_size=64)
    folder = save_video(tmp_path / "clip", video)
    np.testing.assert_array_equal(read_video(folder), video)
    mp4 = save_video(tmp_path / "clip.mp4", video, fps=25)
    decoded = read_video(mp4)
    assert decoded.shape == video.shape
    assert np.abs(decoded.astype(int) - video.astype(int)).mean() < 12  # lossy codec, same pictures
    with pytest.raises(ValueError, match="uint8"):
        save_video(tmp_path / "bad.mp4", video.astype(np.float32))
