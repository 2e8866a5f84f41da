"""Interview layout: the embedded world writes it, InterviewDataModule reads it; the blendshape
affect estimator; resumable training order; bad-input errors."""

from __future__ import annotations

import argparse
import csv
import shutil

import numpy as np
import pytest
import torch

from datamodules.features.face_state import AFFECT_CLASSES, BLENDSHAPE_INDEX
from datamodules.interview import InterviewDataModule, affect_from_blendshapes, read_affect_csv
from datamodules.synthetic.interview_world import (
    configure_layout_parser,
    resample_frames,
    write_interview_dataset,
)

FRAMES, SIZE = 60, 32


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_interview_dataset(tmp_path_factory.mktemp("iw") / "world", interviewees=4, seed=3,
                                   session_frames=FRAMES, image_size=SIZE)


def _module(root, tmp_path, **kwargs) -> InterviewDataModule:
    settings = dict(root=str(root), batch_size=2, image_size=32, history=10, horizon=8, clips_per_session=3,
                    eval_clips_per_session=2, num_modes=6, cache_dir=str(tmp_path / "cache"))
    settings.update(kwargs)
    return InterviewDataModule(**settings)


def test_world_writes_the_documented_layout(world):
    with open(world / "sessions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["split"] for r in rows].count("train") == 2 and {r["split"] for r in rows} == {"train", "val", "test"}
    folder = world / "sessions" / rows[0]["session"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["interviewee.mp4", "interviewee_affect.csv", "interviewee_face_state.npy", "interviewee_landmarks.npy",
                     "interviewer.mp4", "interviewer_face_state.npy", "interviewer_landmarks.npy"]
    affect = read_affect_csv(folder / "interviewee_affect.csv")
    assert affect.shape == (FRAMES, 8)
    np.testing.assert_allclose(affect.sum(1), 1.0, atol=1e-3)  # likelihoods over the 8 classes
    assert np.load(folder / "interviewer_landmarks.npy").shape == (FRAMES, 68, 2)
    with open(folder / "interviewee_affect.csv") as f:
        assert f.readline().strip() == "frame," + ",".join(AFFECT_CLASSES)


def test_make_data_parser_and_refusal_to_overwrite(world):
    parser = argparse.ArgumentParser()
    configure_layout_parser(parser)
    args = parser.parse_args(["--out", "x"])
    assert (args.fps, args.session_frames) == (30.0, 900)
    with pytest.raises(FileExistsError, match="not empty"):
        write_interview_dataset(world)


def test_resampling_interpolates_linearly():
    values = np.arange(6, dtype=np.float32)[:, None]  # 25 fps ramp
    out = resample_frames(values, 25, 50, 9)
    np.testing.assert_allclose(out[:, 0], np.arange(9) / 2)
    with pytest.raises(ValueError, match="too short"):
        resample_frames(values, 25, 50, 12)


def test_datamodule_batches_and_shape_model(world, tmp_path):
    dm = _module(world, tmp_path)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    p = dm.num_shape_params
    assert p == 4 + 6
    assert batch["affect"].shape == (2, 18, 8) and batch["shape"].shape == (2, 18, p)
    torch.testing.assert_close(batch["target_shape"], batch["shape"][:, 10:])
    assert batch["sketch"].shape == (2, 1, 32, 32) and set(batch["sketch"].unique().tolist()) == {-1.0, 1.0}
    assert batch["face"].shape == (2, 3, 32, 32) and batch["face"].min() >= -1 and batch["face"].max() <= 1
    # outside the oval everything is black (-1)
    assert (batch["face"][:, :, 0, 0] == -1).all() and (batch["sketch"][:, :, 0, 0] == -1).all()
    assert dm.shape_model_path.is_file()
    shapes, affect = dm.dictionary_data()
    train_frames = sum(s.length - 10 for s in dm.sessions("train"))
    assert shapes.shape == (train_frames, p) and affect.shape == (train_frames, 8)
    # the shape model's training parameters are standardised
    all_params = np.concatenate(dm.shape_parameters("train"))
    np.testing.assert_allclose(all_params.mean(0), 0, atol=1e-4)
    val = dm.datasets["val"]
    assert len(val) == 2 and val[1]["start"].item() == FRAMES - 18  # evenly spaced, last window at the end


def test_affect_window_precedes_the_generated_frame(world, tmp_path):
    dm = _module(world, tmp_path)
    dm.setup("fit")
    item = dm.datasets["train"][(0, 7)]
    session = dm.sessions("train")[0]
    np.testing.assert_allclose(item["affect"].numpy(), session.affect[7:25])
    expected = dm.shape_model.encode(session.landmarks[17], standardise=True)
    np.testing.assert_allclose(item["shape"][10].numpy(), expected, atol=1e-5)


def test_training_order_resumes_mid_epoch(world, tmp_path):
    dm = _module(world, tmp_path)
    dm.setup("fit")
    loader = dm.train_dataloader()
    full = [b["start"].tolist() for b in loader]
    resumed = dm.train_dataloader()
    resumed.load_state_dict({"seed": loader.sampler.seed, "epoch": 0, "batches": 1})
    assert [b["start"].tolist() for b in resumed] == full[1:]


def test_blendshape_estimator_names_prototypical_displays():
    x = np.zeros((4, 52))
    x[1, [BLENDSHAPE_INDEX["mouthSmileLeft"], BLENDSHAPE_INDEX["mouthSmileRight"]]] = 0.9
    x[1, [BLENDSHAPE_INDEX["cheekSquintLeft"], BLENDSHAPE_INDEX["cheekSquintRight"]]] = 0.5
    x[2, [BLENDSHAPE_INDEX["noseSneerLeft"], BLENDSHAPE_INDEX["noseSneerRight"]]] = 0.9
    x[3, [BLENDSHAPE_INDEX["mouthSmileLeft"], BLENDSHAPE_INDEX["mouthDimpleLeft"]]] = 0.8
    probs = affect_from_blendshapes(x)
    names = [AFFECT_CLASSES[i] for i in probs.argmax(1)]
    assert names == ["neutral", "joy", "disgust", "contempt"]
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="blendshapes"):
        affect_from_blendshapes(np.zeros((3, 40)))


def test_blendshape_source_without_csv(world, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(world, root)
    for csv_file in root.glob("sessions/*/interviewee_affect.csv"):
        csv_file.unlink()
    dm = _module(root, tmp_path)
    session = dm.sessions("val")[0]
    faces = np.load(session.files.folder / "interviewee_face_state.npy")
    np.testing.assert_allclose(session.affect, affect_from_blendshapes(faces), atol=1e-6)
    (session.files.folder / "interviewee_face_state.npy").unlink()
    with pytest.raises(FileNotFoundError, match="no interviewee affect"):
        _module(root, tmp_path / "other").sessions("val")


def test_bad_inputs_raise_clear_errors(world, tmp_path):
    with pytest.raises(ValueError, match="history"):
        InterviewDataModule(history=0)
    with pytest.raises(ValueError, match="affect_source"):
        InterviewDataModule(affect_source="facet")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        _ = _module(tmp_path / "nowhere", tmp_path).data_root
    with pytest.raises(ValueError, match="fewer than history"):
        _module(world, tmp_path, history=50, horizon=20).setup("fit")
    root = tmp_path / "broken"
    shutil.copytree(world, root)
    session = next((root / "sessions").iterdir())
    np.save(session / "interviewer_landmarks.npy", np.zeros((FRAMES - 10, 68, 2), np.float32) + 50)
    with pytest.raises(ValueError, match="frame counts disagree"):
        for split in ("train", "val", "test"):
            _module(root, tmp_path / "b").sessions(split)
    (session / "interviewee_affect.csv").write_text("frame,joy\n0,1\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_affect_csv(session / "interviewee_affect.csv")
