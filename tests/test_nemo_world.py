"""The embedded world in the UvA-NEMO layout: files, table, landmarks, and smile dynamics."""

from __future__ import annotations

import argparse
import json
import re

import cv2
import numpy as np
import pytest

from datamodules.features.face_state import BLENDSHAPE_INDEX
from datamodules.features.io import video_frame_count
from datamodules.features.rig import FaceRig
from datamodules.smile import read_file_details
from datamodules.synthetic.nemo_world import (
    FILE_DETAILS,
    FPS,
    LABELS,
    configure_layout_parser,
    run_layout,
    sample_smile_style,
    simulate_smile,
    write_nemo_dataset,
)

SMILE = [BLENDSHAPE_INDEX["mouthSmileLeft"], BLENDSHAPE_INDEX["mouthSmileRight"]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_nemo_dataset(tmp_path_factory.mktemp("nemo") / "root", subjects=3, videos_per_subject=3,
                              seed=1, image_size=48)


def test_layout_names_table_and_landmarks(world):
    videos = sorted((world / "videos").glob("*.mp4"))
    assert len(videos) == 9
    assert all(re.fullmatch(r"\d{3}_(deliberate|spontaneous)_smile_\d+", v.stem) for v in videos)
    table = read_file_details(world / FILE_DETAILS)
    assert sorted(table) == [v.stem for v in videos]
    for video in videos:
        row = table[video.stem]
        assert row["subject"] == int(video.stem[:3])
        assert row["label"] == LABELS.index(video.stem.split("_")[1])
        marks = np.load(world / "landmarks" / f"{video.stem}.npy")
        state = np.load(world / "face_state" / f"{video.stem}.npy")
        assert marks.shape == (video_frame_count(video), 68, 2) and state.shape == (len(marks), 58)
        # the saved landmarks are the rig's landmarks of the saved face state and identity
        identity = next(p for p in json.loads((world / "facezoo_world.json").read_text())["people"]
                        if p["subject"] == row["subject"])["identity"]["shape"]
        np.testing.assert_allclose(marks, FaceRig.landmarks_2d(state.astype(np.float64), np.array(identity), 48), atol=1e-3)
        # starts and ends neutral (no smile in the first and last frames)
        assert state[0, SMILE].max() < 0.01 and state[-1, SMILE].max() < 0.01
        assert state[:, SMILE].max() > 0.4
    capture = cv2.VideoCapture(str(videos[0]))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    capture.release()
    # every subject smiles both ways when it has two or more videos
    subjects = {v.stem[:3] for v in videos}
    for s in subjects:
        assert {v.stem.split("_")[1] for v in videos if v.stem.startswith(s)} == set(LABELS)


def test_posed_and_spontaneous_dynamics_differ():
    rng = np.random.default_rng(0)
    stats = {label: [] for label in LABELS}
    for label in LABELS:
        for _ in range(60):
            style = sample_smile_style(rng, label)
            face = simulate_smile(rng, style)
            left, right = face[:, SMILE[0]], face[:, SMILE[1]]
            peak = max(left.max(), right.max())
            rise = int(np.argmax(np.maximum(left, right) >= 0.9 * peak)) - int(np.argmax(np.maximum(left, right) > 0.1 * peak))
            asym = abs(left.max() - right.max()) / peak
            cheek = face[:, BLENDSHAPE_INDEX["cheekSquintLeft"]].max() / peak
            stats[label].append((rise, asym, cheek, style.mouth == "open", style.eyes == "closing"))
    posed, spont = np.array(stats["deliberate"], float), np.array(stats["spontaneous"], float)
    assert posed[:, 0].mean() < 0.7 * spont[:, 0].mean()  # faster onset
    assert posed[:, 1].mean() > 3 * spont[:, 1].mean()  # more asymmetric
    assert spont[:, 2].mean() > 2 * posed[:, 2].mean()  # cheek raise (Duchenne)
    for arr in (posed, spont):  # several ways to smile within each class
        assert 0 < arr[:, 3].mean() < 1 and 0 < arr[:, 4].mean() < 1


def test_bad_input(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        write_nemo_dataset(tmp_path / "full", subjects=1)
    with pytest.raises(ValueError, match="subjects"):
        write_nemo_dataset(tmp_path / "a", subjects=0)
    with pytest.raises(ValueError, match="label"):
        sample_smile_style(np.random.default_rng(0), "posed")
    assert not (tmp_path / "a").exists()


def test_make_data_layout(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_layout_parser(parser)
    args = parser.parse_args(["--out", str(tmp_path / "n"), "--subjects", "1", "--videos-per-subject", "1",
                              "--image-size", "32"])
    assert run_layout(args) == 0
    assert len(list((tmp_path / "n" / "videos").glob("*.mp4"))) == 1
    assert "zoo/demo/cmmnet.yaml" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--subjects"):
        run_layout(parser.parse_args(["--out", str(tmp_path / "m"), "--subjects", "0"]))
