"""The embedded dyadic world: the REACT layout it writes, and behaviour a model can learn from."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from datamodules.features.face_state import BLENDSHAPE_INDEX, EMOTION_COLUMNS
from datamodules.features.io import read_video, read_wav, video_frame_count
from datamodules.synthetic.behaviour import (
    LISTENER_ARCHETYPES,
    ListenerStyle,
    delayed,
    simulate_dyad_clip,
)
from datamodules.synthetic.react_world import (
    cached_react_dataset,
    neighbour_matrix,
    write_react_dataset,
)

FRAMES = 90
SIZE = 48


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "react"
    return write_react_dataset(root, sessions=4, seed=3, clips_per_session=2, clip_frames=FRAMES, image_size=SIZE)


def _rows(root, split):
    with open(root / f"{split}.csv", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_layout_has_every_modality_per_person_clip(world):
    total = 0
    for split in ("train", "val", "test"):
        header, rows = _rows(world, split)
        assert header == ["", "speaker_path", "listener_path"]
        assert rows, f"{split} split is empty"
        for i, (index, speaker, listener) in enumerate(rows):
            assert int(index) == i
            assert speaker.split("/")[0] in ("NoXI", "RECOLA")
            assert speaker.rsplit("/", 1)[1] == listener.rsplit("/", 1)[1]  # same clip number
            for path in (speaker, listener):
                base = world / split
                assert video_frame_count(base / "Video_files" / f"{path}.mp4") == FRAMES
                face = np.load(base / "3D_FV_files" / f"{path}.npy")
                assert face.shape == (FRAMES, 58) and face.dtype == np.float32
                audio, rate = read_wav(base / "Audio_files" / f"{path}.wav")
                assert rate == 44100 and len(audio) == FRAMES * 44100 // 25
                with open(base / "Emotion" / f"{path}.csv", newline="") as f:
                    emotion_rows = list(csv.reader(f))
                assert tuple(emotion_rows[0]) == EMOTION_COLUMNS
                emotion = np.array(emotion_rows[1:], dtype=np.float64)
                assert emotion.shape == (FRAMES, 25)
                assert set(np.unique(emotion[:, :15])) <= {0.0, 1.0}
                assert np.all(np.abs(emotion[:, 15:17]) <= 1)
                np.testing.assert_allclose(emotion[:, 17:].sum(axis=1), 1.0, atol=1e-3)
        matrix = np.load(world / f"neighbour_emotion_{split}.npy")
        assert matrix.shape == (2 * len(rows), 2 * len(rows))
        assert np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 1)
        total += len(rows)
    assert total == 4 * 2


def test_noxi_person_folders_follow_the_expert_novice_convention(world):
    _, rows = _rows(world, "train")
    for speaker, listener in (r[1:] for r in rows):
        if speaker.startswith("NoXI"):
            assert "/Expert_video/" in speaker and "/Novice_video/" in listener


def test_frames_show_the_face_moving(world):
    _, rows = _rows(world, "train")
    video = read_video(world / "train" / "Video_files" / f"{rows[0][1]}.mp4")
    assert video.shape == (FRAMES, SIZE, SIZE, 3)
    assert video.std() > 10  # a face on a background, not a flat image
    assert np.abs(np.diff(video.astype(np.float32), axis=0)).mean() > 0.2  # it moves


def test_neighbours_follow_speaker_emotion_similarity(world):
    meta = json.loads((world / "facezoo_world.json").read_text())
    assert meta["settings"]["clip_frames"] == FRAMES
    emotions = [np.stack([np.linspace(0, 1, 10)] * 25, axis=1) * s for s in (1.0, 1.01, 3.0)]
    matrix = neighbour_matrix(emotions)
    assert matrix.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_same_seed_same_world(world, tmp_path):
    again = write_react_dataset(tmp_path / "again", sessions=4, seed=3, clips_per_session=2,
                                clip_frames=FRAMES, image_size=SIZE)
    _, rows = _rows(world, "test")
    path = rows[0][1]
    np.testing.assert_array_equal(np.load(world / "test" / "3D_FV_files" / f"{path}.npy"),
                                  np.load(again / "test" / "3D_FV_files" / f"{path}.npy"))
    np.testing.assert_array_equal(np.load(world / "neighbour_emotion_test.npy"),
                                  np.load(again / "neighbour_emotion_test.npy"))


def test_png_variant_holds_numbered_frames(tmp_path):
    root = write_react_dataset(tmp_path / "png", sessions=3, clips_per_session=1, clip_frames=12,
                               image_size=32, video_format="png")
    _, rows = _rows(root, "train")
    folder = root / "train" / "Video_files" / rows[0][1]
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{i}.png" for i in range(1, 13))


def test_refuses_to_overwrite_and_rejects_bad_settings(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        write_react_dataset(tmp_path / "full", sessions=3)
    assert (tmp_path / "full" / "keep.txt").read_text() == "precious"
    with pytest.raises(ValueError, match="sessions=2"):
        write_react_dataset(tmp_path / "few", sessions=2)
    with pytest.raises(ValueError, match="video_format"):
        write_react_dataset(tmp_path / "fmt", sessions=3, video_format="gif")
    assert not (tmp_path / "few").exists()


def test_cache_generates_once(tmp_path):
    settings = dict(sessions=3, clips_per_session=1, clip_frames=10, image_size=32)
    root = cached_react_dataset(cache_dir=tmp_path, progress=False, **settings)
    stamp = (root / "facezoo_world.json").stat().st_mtime_ns
    assert cached_react_dataset(cache_dir=tmp_path, progress=False, **settings) == root
    assert (root / "facezoo_world.json").stat().st_mtime_ns == stamp
    assert cached_react_dataset(cache_dir=tmp_path, progress=False, **{**settings, "seed": 1}) != root


def _style(name: str, delay: int) -> ListenerStyle:
    return ListenerStyle(name=name, delay=delay, expressivity=1.0, **LISTENER_ARCHETYPES[name])


def test_listener_mimics_the_speaker_after_its_delay():
    rng = np.random.default_rng(0)
    smile = BLENDSHAPE_INDEX["mouthSmileLeft"]
    lags = []
    for _ in range(6):
        a, b = simulate_dyad_clip(rng, "cheerful", (_style("mimic", 12), _style("mimic", 12)), 751)
        listening = ~b.talking & a.talking
        scores = [np.corrcoef(delayed(a.face_state[:, smile], lag)[listening], b.face_state[listening, smile])[0, 1]
                  for lag in range(0, 30)]
        lags.append(int(np.nanargmax(scores)))
    assert 8 <= np.median(lags) <= 18  # reacts a few hundred ms later (12 frames = 480 ms)


def test_speech_audio_follows_the_jaw(world):
    _, rows = _rows(world, "train")
    path = rows[0][1]
    face = np.load(world / "train" / "3D_FV_files" / f"{path}.npy")
    audio, rate = read_wav(world / "train" / "Audio_files" / f"{path}.wav")
    per_frame = np.abs(audio).reshape(FRAMES, rate // 25).mean(axis=1)
    jaw = face[:, BLENDSHAPE_INDEX["jawOpen"]]
    assert np.corrcoef(per_frame, jaw)[0, 1] > 0.5


def test_listener_styles_make_several_appropriate_reactions():
    """Same speaker behaviour, different listeners: the reactions differ, each reacts."""
    reactions = []
    for name in ("mimic", "nodder", "still"):
        rng = np.random.default_rng(7)  # same speaker script for every listener
        _, b = simulate_dyad_clip(rng, "cheerful", (_style("still", 10), _style(name, 10)), 500)
        reactions.append(b.face_state)
    assert np.abs(reactions[0] - reactions[2]).mean() > 0.005
    nod_energy = [np.abs(np.diff(r[:, 52])).sum() for r in reactions]
    assert nod_energy[1] > nod_energy[2]  # the nodder nods more than the still listener
