"""UvA-NEMO DataModule: CMM-Net preprocessing (N2S segment, eye alignment, landmark images), folds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from datamodules.features.drawing import landmark_image
from datamodules.features.rig import FaceRig
from datamodules.smile import (
    EYE_CENTRE,
    EYE_DISTANCE,
    FILE_DETAILS,
    NEMODataModule,
    eye_alignment,
    folds_from_dir,
    n2s_segment,
    nemo_videos,
    read_file_details,
    subject_folds,
)
from datamodules.synthetic.nemo_world import write_nemo_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_nemo_dataset(tmp_path_factory.mktemp("nemo") / "root", subjects=10, videos_per_subject=2,
                              seed=2, image_size=64)


def test_n2s_segment_hand_computed():
    curve = np.concatenate([np.zeros(20), np.linspace(0, 4, 11), np.full(40, 4.0)])  # onset frames 20..30
    seg = n2s_segment(curve, 32)
    # 5-frame means: frame 20 = (0+0+0+0.4+0.8)/5 = 0.24 < 0.4 (10 % of 4), frame 21 = 0.48: start 20
    assert np.array_equal(seg, np.arange(20, 52))  # short onset: padded with what follows
    long = np.concatenate([np.zeros(5), np.linspace(0, 4, 101), np.full(10, 4.0)])
    seg = n2s_segment(long, 32)
    assert len(seg) == 32 and np.all(np.diff(seg) > 0) and seg[-1] - seg[0] > 80  # sampled over the onset
    short = n2s_segment(np.linspace(0, 1, 10), 32)
    assert short[-1] == 9 and len(short) == 32  # video shorter than T repeats its last frame
    assert np.array_equal(n2s_segment(np.zeros(40), 8), np.arange(8))  # no smile: first frames
    with pytest.raises(ValueError, match="intensity"):
        n2s_segment(np.array([0.0, np.nan]), 4)
    with pytest.raises(ValueError, match="length"):
        n2s_segment(np.zeros(5), 1)


def test_eye_alignment_puts_eyes_on_the_template():
    marks = FaceRig.landmarks_2d(np.zeros((1, 58)), None, 256)
    # rotate by 20 degrees, scale by 1.7 and shift: alignment must undo it
    angle, scale = np.deg2rad(20), 1.7
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = marks @ rot.T + np.array([40.0, -10.0])
    matrix = eye_alignment(moved, 64)
    aligned = np.einsum("tij,tpj->tpi", matrix[:, :, :2], moved) + matrix[:, None, :, 2]
    right, left = aligned[0, [36, 39]].mean(0), aligned[0, [42, 45]].mean(0)
    np.testing.assert_allclose((right + left) / 2, np.array(EYE_CENTRE) * 64 - 0.5, atol=1e-9)
    assert abs(right[1] - left[1]) < 1e-9
    assert np.linalg.norm(aligned[0, 45] - aligned[0, 36]) == pytest.approx(EYE_DISTANCE * 64)
    with pytest.raises(ValueError, match="landmarks"):
        eye_alignment(np.zeros((2, 5, 2)), 64)


def test_table_and_folds(root, tmp_path):
    items = nemo_videos(root)
    assert len(items) == 20 and {i.label for i in items} == {0, 1}
    folds = subject_folds([i.subject for i in items], 10, seed=0)
    assert sorted(folds.values()) == list(range(1, 11))  # 10 subjects, one per fold
    with pytest.raises(ValueError, match="10 subject-disjoint folds"):
        subject_folds([1, 2, 3], 10)
    bad = tmp_path / FILE_DETAILS
    bad.write_text("x\nfilename subject_code gender age label\n001_deliberate_smile_1.mp4 1 male 30 happy\n")
    with pytest.raises(ValueError, match=":3"):
        read_file_details(bad)
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "test.json").write_text(json.dumps({f"{i.stem}.mp4": i.label for i in items[:-1]}))
    with pytest.raises(ValueError, match="in no fold"):
        folds_from_dir(tmp_path, [i.stem for i in items])


def test_datamodule_batches(root, tmp_path):
    dm = NEMODataModule(root=str(root), fold=3, val_fold=4, batch_size=4, cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    dm.setup("test")
    subjects = {s: {int(i.subject) for i in dm.datasets[s].items} for s in ("train", "val", "test")}
    assert len(subjects["test"]) == 1 and len(subjects["val"]) == 1 and len(subjects["train"]) == 8
    assert not (subjects["train"] & subjects["test"]) and not (subjects["train"] & subjects["val"])
    loader = dm.train_dataloader()
    batch = next(iter(loader))
    assert batch["video"].shape == (4, 32, 3, 64, 64) and batch["video"].min() >= -1 and batch["video"].max() <= 1
    assert torch.equal(batch["neutral"], batch["video"][:, 0])
    assert batch["landmark_images"].shape == (4, 32, 1, 64, 64)
    assert set(batch["landmark_images"].unique().tolist()) == {0.0, 1.0}
    expected = landmark_image(batch["landmarks"][0].numpy(), 64)
    assert np.array_equal(batch["landmark_images"][0, :, 0].numpy(), expected)
    assert batch["au"].shape == (4, 32, 2) and batch["label"].dtype == torch.int64
    # the segment is neutral-to-smile: lip-corner puller rises from the first to the last frame
    assert (batch["au"][:, -1, 1] > batch["au"][:, 0, 1] + 1.0).all()
    # eyes sit on the template in every aligned frame
    eyes = (batch["landmarks"][..., [36, 39, 42, 45], :].mean(dim=2))
    assert torch.allclose(eyes, torch.tensor(EYE_CENTRE) * 64 - 0.5, atol=0.6)
    # resumable: the loader's position survives a state round trip
    state = loader.state_dict()
    assert state["batches"] == 1
    cached = sorted((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 20  # one preprocessed file per video


def test_datamodule_bad_input(root, tmp_path):
    with pytest.raises(ValueError, match="fold"):
        NEMODataModule(root=str(root), fold=11)
    with pytest.raises(ValueError, match="val_fold"):
        NEMODataModule(root=str(root), fold=2, val_fold=2)
    with pytest.raises(FileNotFoundError, match="root"):
        NEMODataModule(root=str(tmp_path / "missing")).setup("fit")
    dm = NEMODataModule(root=str(root), landmarks_dir="nothing", cache_dir=str(tmp_path / "c"))
    with pytest.raises(FileNotFoundError, match="landmarks"):
        dm.setup("test")
