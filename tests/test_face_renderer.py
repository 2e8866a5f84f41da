"""Procedural face renderer and identities: shapes, visible expressions (blink, open mouth,
smile), pose, identity differences, determinism, JSON round trip and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM
from datamodules.features.rig import FaceRig
from datamodules.synthetic.appearance import (
    HAIR_STYLES,
    Identity,
    default_identity,
    sample_identity,
)
from datamodules.synthetic.face_renderer import FaceRenderer

SIZE = 128


def state(yaw: float = 0.0, **blendshapes: float) -> np.ndarray:
    out = np.zeros(FACE_STATE_DIM)
    for name, value in blendshapes.items():
        out[BLENDSHAPE_INDEX[name]] = value
    out[53] = yaw
    return out


def box(points: np.ndarray, margin: int = 2) -> tuple[slice, slice]:
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + margin + 1
    return slice(y0, y1), slice(x0, x1)


@pytest.fixture(scope="module")
def renderer() -> FaceRenderer:
    return FaceRenderer(SIZE)


@pytest.fixture(scope="module")
def person() -> Identity:
    return default_identity()


def test_output_is_uint8_rgb_of_the_requested_size(renderer, person):
    frame = renderer.render(state(), person)
    assert frame.shape == (SIZE, SIZE, 3) and frame.dtype == np.uint8
    frames = renderer.render_sequence(np.zeros((4, FACE_STATE_DIM)), person)
    assert frames.shape == (4, SIZE, SIZE, 3) and frames.dtype == np.uint8
    assert FaceRenderer(64).render(state(), person).shape == (64, 64, 3)
    # the face is drawn: the frame centre is skin, not background
    assert np.abs(frame[SIZE // 2, SIZE // 2].astype(int) - person.background_colour).sum() > 60


def test_sequence_frames_equal_single_frames(renderer, person):
    rng = np.random.default_rng(0)
    states = np.zeros((3, FACE_STATE_DIM))
    states[:, :52] = rng.uniform(0, 0.6, (3, 52))
    states[:, 52:55] = rng.uniform(-0.3, 0.3, (3, 3))
    frames = renderer.render_sequence(states, person)
    for t in range(3):
        np.testing.assert_array_equal(frames[t], renderer.render(states[t], person))


def test_blink_closes_the_eye_and_changes_only_the_eye_region(person):
    renderer = FaceRenderer(256)
    open_eyes = renderer.render(state(), person)
    blink = renderer.render(state(eyeBlinkLeft=1.0), person)
    landmarks = FaceRig.landmarks_2d(state(), person.shape_coefficients, 256)
    left_eye, right_eye = box(landmarks[42:48], 3), box(landmarks[36:42], 3)

    def whites(frame: np.ndarray, region) -> int:
        patch = frame[region].astype(int)
        return int(((patch > 200).all(axis=-1)).sum())

    assert whites(open_eyes, left_eye) >= 10 and whites(blink, left_eye) == 0
    np.testing.assert_array_equal(blink[right_eye], open_eyes[right_eye])
    changed = np.argwhere((blink != open_eyes).any(axis=-1))
    assert len(changed) > 10
    ys, xs = changed[:, 0], changed[:, 1]
    assert ys.min() >= left_eye[0].start - 4 and ys.max() < left_eye[0].stop + 4
    assert xs.min() >= left_eye[1].start - 4 and xs.max() < left_eye[1].stop + 4


def test_open_jaw_shows_the_dark_mouth_and_teeth(person):
    renderer = FaceRenderer(256)
    closed = renderer.render(state(), person)
    opened = renderer.render(state(jawOpen=0.7), person)
    mouth = box(FaceRig.landmarks_2d(state(jawOpen=0.7), person.shape_coefficients, 256)[48:68])

    def dark(frame):
        return int((frame[mouth].max(axis=-1) < 80).sum())

    def bright(frame):
        return int((frame[mouth].min(axis=-1) > 200).sum())

    assert dark(closed) == 0 and dark(opened) > 40
    assert bright(closed) == 0 and bright(opened) > 15


def test_smile_and_raised_brows_change_the_face(renderer, person):
    neutral = renderer.render(state(), person).astype(int)
    smile = renderer.render(state(mouthSmileLeft=1.0, mouthSmileRight=1.0), person).astype(int)
    brows = renderer.render(state(browInnerUp=1.0, browOuterUpLeft=1.0, browOuterUpRight=1.0), person).astype(int)
    landmarks = FaceRig.landmarks_2d(state(), person.shape_coefficients, SIZE)
    mouth, brow = box(landmarks[48:68], 6), box(landmarks[17:27], 6)
    assert np.abs(smile - neutral)[mouth].mean() > 5
    assert np.abs(brows - neutral)[brow].mean() > 5


def test_head_turn_moves_the_whole_face(renderer, person):
    neutral = renderer.render(state(), person)
    turned = renderer.render(state(yaw=0.5), person)
    differs = (neutral != turned).any(axis=-1)
    assert differs.mean() > 0.1


def test_different_identities_differ_and_rendering_is_deterministic():
    a, b = sample_identity(np.random.default_rng(1)), sample_identity(np.random.default_rng(2))
    assert a != b
    frame_a = FaceRenderer(SIZE).render(state(), a)
    frame_b = FaceRenderer(SIZE).render(state(), b)
    assert np.abs(frame_a.astype(int) - frame_b.astype(int)).mean() > 10
    assert sample_identity(np.random.default_rng(1)) == a
    np.testing.assert_array_equal(FaceRenderer(SIZE).render(state(), a), frame_a)


def test_every_hair_style_beard_and_glasses_render():
    renderer = FaceRenderer(64)
    base = default_identity().to_dict()
    frames = []
    for style in HAIR_STYLES:
        for beard, glasses in (("none", False), ("full", True), ("moustache", False), ("stubble", True)):
            person = Identity.from_dict({**base, "hair_style": style, "beard": beard, "glasses": glasses})
            frames.append(renderer.render_sequence(np.stack([state(), state(yaw=0.6, jawOpen=1.0)]), person))
    assert len({f.tobytes() for f in frames}) == len(frames)


def test_identity_round_trips_through_json():
    for seed in range(10):
        person = sample_identity(np.random.default_rng(seed))
        data = json.loads(json.dumps(person.to_dict()))
        assert Identity.from_dict(data) == person


def test_sampled_identities_are_diverse_and_plausible():
    people = [sample_identity(np.random.default_rng(seed)) for seed in range(200)]
    assert len({p.hair_style for p in people}) >= 5
    assert {p.beard for p in people} >= {"none", "full"}
    assert 0.05 < np.mean([p.glasses for p in people]) < 0.4
    lightness = np.array([sum(p.skin) / 3 for p in people])
    assert lightness.min() < 90 and lightness.max() > 200  # very dark to very light skin
    shapes = np.array([p.shape for p in people])
    assert np.all(np.abs(shapes) <= 2.5) and 0.7 < shapes.std() < 1.2


def test_bad_input_raises_clear_errors(renderer, person):
    with pytest.raises(ValueError, match="face_states"):
        renderer.render_sequence(np.zeros((3, 57)), person)
    with pytest.raises(ValueError, match="face_state"):
        renderer.render(np.zeros((2, 58)), person)
    with pytest.raises(ValueError, match="NaN"):
        renderer.render_sequence(np.full((1, 58), np.nan), person)
    with pytest.raises(ValueError, match="identity"):
        renderer.render(state(), {"skin": (1, 2, 3)})
    with pytest.raises(ValueError, match="image_size"):
        FaceRenderer(8)
    with pytest.raises(ValueError, match="hair_style"):
        Identity.from_dict({**person.to_dict(), "hair_style": "mohawk"})
    with pytest.raises(ValueError, match="missing keys"):
        Identity.from_dict({k: v for k, v in person.to_dict().items() if k != "skin"})
    with pytest.raises(ValueError, match="skin"):
        Identity.from_dict({**person.to_dict(), "skin": [300, 0, 0]})
    with pytest.raises(ValueError, match="rng"):
        sample_identity(0)
