"""DISFA / DISFA+ layouts, label-based N2S segments, CMM-Net's paired split, the embedded world."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from datamodules.disfa import (
    DISFADataModule,
    disfa_plus_segments,
    disfa_segments,
    paired_split,
    read_disfa_labels,
    read_disfa_plus_labels,
    smile_episodes,
)
from datamodules.smile import SMILE_CLASSES, frame_grid, n2s_segment_at_rate
from datamodules.synthetic.disfa_world import (
    DISFA_AUS,
    OTHER_TRIAL,
    configure_layout_parser,
    run_layout,
    write_disfa_dataset,
)

SETTINGS = dict(subjects=4, plus_subjects=3, smiles_per_session=2, other_expressions=1, posed_trials=2, seed=3,
                image_size=48)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_disfa_dataset(tmp_path_factory.mktemp("disfa") / "root", **SETTINGS)


def test_label_readers(tmp_path):
    one = tmp_path / "SN001_au12.txt"
    one.write_text("1,0\n2,3\n3,5\n")
    assert read_disfa_labels(one).tolist() == [0, 3, 5]
    zero = tmp_path / "zero.txt"
    zero.write_text("0,1\n1,2\n")
    assert read_disfa_labels(zero).tolist() == [1, 2]
    for text, match in (("1,0\n2;3\n", ":2"), ("1,0\n3,1\n", "consecutive"), ("1,7\n", "0..5"), ("", "no label")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=match):
            read_disfa_labels(bad)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_disfa_labels(tmp_path / "missing.txt")
    plus = tmp_path / "AU12.txt"
    plus.write_text("000.jpg 0\n001.jpg 2\n")
    names, values = read_disfa_plus_labels(plus)
    assert names == ["000.jpg", "001.jpg"] and values.tolist() == [0, 2]
    plus.write_text("000.jpg 0\n001.jpg\n")
    with pytest.raises(ValueError, match="AU12.txt:2"):
        read_disfa_plus_labels(plus)


def test_smile_episodes_and_rate_handling():
    au12 = np.array([0, 0, 1, 2, 3, 2, 1, 0, 0, 1, 1, 0, 1, 2, 0], dtype=float)
    # runs >= 1: [2, 7), [9, 11), [12, 14); the second never reaches 2
    assert smile_episodes(au12) == [(2, 7), (12, 14)]
    assert frame_grid(10, 40.0, 20.0).tolist() == [0, 2, 4, 6, 8]
    assert frame_grid(4, 20.0, None).tolist() == [0, 1, 2, 3]
    curve = np.concatenate([np.zeros(40), np.linspace(0, 4, 9), np.full(60, 4.0)])  # onset 40..48 at 40 fps
    seg = n2s_segment_at_rate(curve, 8, 40.0, 20.0)
    assert np.all(np.diff(seg) == 2) and 36 <= seg[0] <= 42  # 20 fps samples of the 40 fps curve
    long = np.concatenate([np.zeros(40), np.linspace(0, 4, 41), np.full(60, 4.0)])  # onset 40..80
    seg = n2s_segment_at_rate(long, 8, 40.0, 20.0)
    assert seg[-1] - seg[0] > 30 and np.all(seg % 2 == 0)  # a long onset is sampled over its 20 fps grid
    with pytest.raises(ValueError, match="onset_level"):
        smile_episodes(au12, onset_level=3, apex_level=2)


def test_world_layout_and_labels(world):
    meta = json.loads((world / "facezoo_world.json").read_text())
    sessions = meta["disfa_sessions"]
    assert len(sessions) == 4 and sum(p["disfa_plus"] for p in meta["people"]) == 3
    for session in sessions:
        sn = f"SN{session['subject']:03d}"
        assert (world / "DISFA" / "Videos_LeftCamera" / f"LeftVideo{sn}_comp.avi").is_file()
        marks = np.load(world / "DISFA" / "landmarks" / f"LeftVideo{sn}_comp.npy")
        assert marks.shape == (session["frames"], 68, 2)
        for au in DISFA_AUS:  # one label line more than frames, like DISFA's 4845 vs 4844
            labels = read_disfa_labels(world / "DISFA" / "ActionUnit_Labels" / sn / f"{sn}_au{au}.txt")
            assert len(labels) == session["frames"] + 1 and set(np.unique(labels)) <= set(range(6))
    trials = meta["disfa_plus_trials"]
    assert len(trials) == 3 * (2 + 1) and sum(t["trial"] == OTHER_TRIAL for t in trials) == 3


def test_segments_follow_the_labelled_smiles(world):
    meta = json.loads((world / "facezoo_world.json").read_text())
    spontaneous = disfa_segments(world / "DISFA")
    smiles = {(s["subject"], e["start"], e["frames"]) for s in meta["disfa_sessions"] for e in s["episodes"]
              if e["kind"] == "smile"}
    assert len(spontaneous) == len(smiles)  # every smile found, no surprise or frown taken for one
    for seg in spontaneous:
        assert seg.label == 1 and len(seg.indices) == 32 and np.all(np.diff(seg.indices) == 1)
        assert any(s == seg.subject and start <= seg.indices[0] < start + n for s, start, n in smiles)
        au12 = np.array(seg.au)[:, 1]
        assert au12[0] <= 1 and au12.max() >= 2  # neutral to smile
    posed = disfa_plus_segments(world / "DISFA+")
    assert len(posed) == 3 * 2 and all(s.label == 0 and "Smile" in s.stem for s in posed)


def test_disfa_plus_rate_is_resampled(tmp_path):
    root = write_disfa_dataset(tmp_path / "w", subjects=1, plus_subjects=1, smiles_per_session=1, other_expressions=0,
                               posed_trials=1, seed=0, image_size=32, disfa_plus_fps=40.0)
    native = disfa_plus_segments(root / "DISFA+", fps=40.0, target_fps=None)[0]
    resampled = disfa_plus_segments(root / "DISFA+", fps=40.0, target_fps=20.0)[0]
    assert np.all(np.diff(native.indices) == 1)
    assert np.all(np.diff(resampled.indices) == 2)  # 32 frames at 20 fps = 1.6 s of the 40 fps trial


def test_paired_split_is_seeded_and_stratified(world):
    segments = disfa_segments(world / "DISFA") + disfa_plus_segments(world / "DISFA+")
    split = paired_split(segments, seed=1)
    assert paired_split(segments, seed=1) == split
    train, test = {s.stem for s in split["train"]}, {s.stem for s in split["test"]}
    assert not train & test and train | test == {s.stem for s in segments}
    for label in (0, 1):
        total = sum(s.label == label for s in segments)
        assert sum(s.label == label for s in split["train"]) == round(2 / 3 * total)
    with pytest.raises(ValueError, match="train_fraction"):
        paired_split(segments, 1.0)


def test_datamodule_batches_match_nemo(world, tmp_path):
    dm = DISFADataModule(root=str(world), batch_size=3, cache_dir=str(tmp_path / "cache"))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"video", "neutral", "landmark_images", "landmarks", "au", "label", "subject", "index"}
    assert batch["video"].shape == (3, 32, 3, 64, 64) and -1 <= batch["video"].min() <= batch["video"].max() <= 1
    assert torch.equal(batch["neutral"], batch["video"][:, 0])
    assert batch["landmark_images"].shape == (3, 32, 1, 64, 64) and batch["au"].shape == (3, 32, 2)
    subjects = {s.subject for s in dm.split_items("train") + dm.split_items("test")}
    plus = {p["subject"] for p in json.loads((world / "facezoo_world.json").read_text())["people"] if p["disfa_plus"]}
    assert subjects == plus  # paired_only: the DISFA+ people
    assert {int(i.label) for i in dm.dataset("test").items} == {0, 1}
    assert dm.split_items("val") == dm.split_items("test")
    held = DISFADataModule(root=str(world), val_fraction=0.3, cache_dir=str(tmp_path / "cache"))
    assert not {s.stem for s in held.split_items("val")} & {s.stem for s in held.split_items("train")}
    assert SMILE_CLASSES[int(dm.dataset("test").items[0].label)] in ("posed", "spontaneous")


def test_bad_layouts(world, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(world, broken)
    sn = sorted((broken / "DISFA" / "ActionUnit_Labels").iterdir())[0].name
    (broken / "DISFA" / "ActionUnit_Labels" / sn / f"{sn}_au12.txt").unlink()
    with pytest.raises(FileNotFoundError, match="AU12"):
        disfa_segments(broken / "DISFA")
    short = tmp_path / "short"
    shutil.copytree(world, short)
    label = short / "DISFA" / "ActionUnit_Labels" / sn / f"{sn}_au6.txt"
    label.write_text("\n".join(label.read_text().splitlines()[:-10]) + "\n")
    with pytest.raises(ValueError, match="max_label_mismatch"):
        disfa_segments(short / "DISFA")
    with pytest.raises(FileNotFoundError, match="Videos_LeftCamera"):
        disfa_segments(tmp_path)
    nomarks = tmp_path / "nomarks"
    shutil.copytree(world, nomarks)
    shutil.rmtree(nomarks / "DISFA+" / "landmarks")
    with pytest.raises(FileNotFoundError, match="landmarks"):
        disfa_plus_segments(nomarks / "DISFA+")
    with pytest.raises(ValueError, match="posed_trials"):
        DISFADataModule(root=str(world), posed_trials="(")
    with pytest.raises(ValueError, match="train_fraction"):
        DISFADataModule(root=str(world), train_fraction=0)
    with pytest.raises(FileNotFoundError, match="root"):
        DISFADataModule(root=str(tmp_path / "missing")).segments()


def test_make_data_disfa(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    configure_layout_parser(parser)
    args = parser.parse_args(["--out", str(tmp_path / "d"), "--subjects", "1", "--plus-subjects", "1",
                              "--smiles-per-session", "1", "--other-expressions", "0", "--posed-trials", "1",
                              "--image-size", "32"])
    assert run_layout(args) == 0
    assert len(list((tmp_path / "d" / "DISFA" / "Videos_LeftCamera").glob("*.avi"))) == 1
    assert "cmmnet_disfa.yaml" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--plus-subjects"):
        run_layout(parser.parse_args(["--out", str(tmp_path / "e"), "--subjects", "1", "--plus-subjects", "2"]))
    with pytest.raises(FileExistsError, match="not empty"):
        write_disfa_dataset(tmp_path / "d", subjects=1, plus_subjects=1)
