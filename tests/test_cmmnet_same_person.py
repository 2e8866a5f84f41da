"""The same-person reference of CMM-Net's mode diversity (zoo/cmmnet/same_person.py) and its
place in evaluate_cmmnet."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from datamodules.smile import NEMODataModule
from datamodules.synthetic.nemo_world import (
    EYE_STYLES,
    MOUTH_STYLES,
    SmileStyle,
    write_nemo_dataset,
)
from zoo.cmmnet import CMMNet
from zoo.cmmnet.evaluate import (
    _closest_variants,
    _matched_styles,
    _reconstruct,
    chamfer_px,
    evaluate_cmmnet,
    landmark_input,
)
from zoo.cmmnet.same_person import (
    same_subject_groups,
    smile_variants,
    variant_styles,
    world_variant_sequences,
)

STYLE = SmileStyle(label="spontaneous", mouth="closed", eyes="open", lead_frames=20, onset_frames=30,
                   apex_frames=40, offset_frames=30, tail_frames=20, amplitude=0.7, weak_side=0.95,
                   weak_side_lag=0, left_stronger=True, cheek_raise=0.8, jaw_open=0.0, eye_closure=0.0,
                   overshoot=0.0)


def test_smile_variants_cover_the_world_styles_and_keep_the_rest():
    variants = smile_variants(STYLE, seed=3)
    assert [(v.mouth, v.eyes) for v in variants] == [(m, e) for m in MOUTH_STYLES for e in EYE_STYLES]
    for v in variants:
        # timing, amplitude, asymmetry and cheek raise are the original's
        same = {f.name for f in dataclasses.fields(SmileStyle)} - {"mouth", "eyes", "jaw_open", "eye_closure"}
        assert all(getattr(v, name) == getattr(STYLE, name) for name in same)
        assert (v.jaw_open == 0.0) == (v.mouth == "closed") and (v.eye_closure == 0.0) == (v.eyes == "open")
    assert variants[0] == STYLE  # (closed, open) is the original itself
    opened = [v.jaw_open for v in variants if v.mouth == "open"]
    assert opened[0] == opened[1] > 0  # one open-mouth value for the person's open variants
    assert smile_variants(STYLE, seed=3) == variants  # seeded
    with pytest.raises(ValueError, match="mouth"):
        smile_variants(dataclasses.replace(STYLE, mouth="pursed"))


def test_same_subject_groups_hand_computed():
    subjects = torch.tensor([5, 5, 5, 7, 7, 9])
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    assert same_subject_groups(subjects, labels) == [[0, 2], [3, 4]]
    with pytest.raises(ValueError, match="subjects, labels"):
        same_subject_groups(subjects, labels[:3])


@pytest.fixture(scope="module")
def nemo(tmp_path_factory):
    root = write_nemo_dataset(tmp_path_factory.mktemp("nemo") / "root", subjects=4, videos_per_subject=2, seed=1,
                              image_size=64)
    return NEMODataModule(root=str(root), fold=1, num_folds=2, batch_size=4,
                          cache_dir=str(tmp_path_factory.mktemp("cache")))


def test_world_variants_share_everything_but_the_smile(nemo):
    dataset = nemo.dataset("test")
    meta = json.loads((nemo.data_root / "facezoo_world.json").read_text())
    styles = {v["stem"]: SmileStyle(**v["style"]) for v in meta["videos"]}
    stems = [item.stem for item in dataset.items]
    # from frame 0, so the neutral lead-in is in it; one length for all (they are stacked)
    length = min(styles[s].frames for s in stems)
    segments = [np.arange(length) for _ in stems]
    out = world_variant_sequences(nemo.data_root, stems, segments, 64)
    n = len(stems)
    assert out["video"].shape[:2] == (n, 4) and out["video"].shape[3:] == (3, 64, 64)
    assert out["landmark_images"].shape[:2] == (n, 4) and out["landmark_images"].shape[3:] == (1, 64, 64)
    assert out["video"].min() >= -1 and out["video"].max() <= 1
    assert set(out["landmark_images"].unique().tolist()) <= {0.0, 1.0}
    for i, stem in enumerate(stems):
        style = styles[stem]
        marks = out["landmark_images"][i]
        # before the smile starts the variants are one face (same person, seed, blinks, head drift)
        lead = style.lead_frames - 1
        assert all(torch.equal(marks[0, t], marks[v, t]) for v in range(1, 4) for t in range(lead))
        # at the apex an open-mouth variant is drawn apart from the closed one (indices 0-1 closed, 2-3 open)
        apex = min(style.lead_frames + style.onset_frames + style.apex_frames // 2, length - 1)
        assert chamfer_px(marks[0, apex, 0], marks[2, apex, 0]) > 0.05
    assert world_variant_sequences(nemo.data_root / "videos", stems, segments, 64) is None  # no metadata: real data
    with pytest.raises(ValueError, match="no style"):
        world_variant_sequences(nemo.data_root, ["999_deliberate_smile_1"], segments[:1], 64)


def test_evaluate_reports_the_same_person_scale(nemo):
    torch.manual_seed(0)
    model = CMMNet(base_channels=4, translator_channels=4, discriminator_channels=4, lstm_hidden=16, label_dim=4,
                   latent_dim=8)
    result = evaluate_cmmnet(model, nemo, k=2, seed=0)
    assert result["same_person_source"] == 1.0
    for name in ("posed", "spontaneous"):
        for figure in ("diversity_landmarks_px_same_person", "diversity_au_same_person", "diversity_video_same_person"):
            assert result[f"{name}/{figure}"] > 0, (name, figure)
    # the variants of one person differ less than different people do
    assert result["posed/diversity_landmarks_px_same_person"] < result["posed/diversity_landmarks_px_real"]
    # the landmark path (no translator): its own estimator and classifier
    for name in ("posed", "spontaneous"):
        assert 0 <= result[f"{name}/class_consistency_landmarks"] <= 1
        assert 0 <= result[f"{name}/classifier_accuracy_real_landmarks"] <= 1
        assert 0 <= result[f"{name}/classifier_accuracy_reconstructed_landmarks"] <= 1
        assert result[f"{name}/diversity_au_landmarks_same_person"] > 0
        assert result[f"{name}/diversity_au_landmarks"] >= 0
        # the translator alone on real landmark images (the upper bound of the face figures)
        assert -1 <= result[f"{name}/ssim_translated_real"] <= 1
        assert result[f"{name}/au12_curve_distance_translated_real"] >= 0
        assert 0 <= result[f"{name}/classifier_accuracy_translated_real"] <= 1
    assert 0 <= result["classifier_accuracy_real_landmarks"] <= 1
    for figure in ("class_auc", "classifier_auc_real", "class_auc_landmarks", "classifier_auc_real_landmarks"):
        assert 0 <= result[figure] <= 1, figure
    for name in ("posed", "spontaneous"):  # k = 2 modes: one or two distinct variants
        assert 1 <= result[f"{name}/modes_matched_variants"] <= 2
        assert 1 <= result[f"{name}/modes_matched_mouth_styles"] <= result[f"{name}/modes_matched_variants"]
        assert 1 <= result[f"{name}/modes_matched_eye_styles"] <= result[f"{name}/modes_matched_variants"]


def test_matched_variants_hand_computed():
    variants = torch.zeros(4, 6, 1, 16, 16)
    for v in range(4):
        variants[v, :, 0, 2 + 3 * v, 4] = 1  # variant v: one lit pixel in row 2 + 3v
    def matched(modes):
        return _matched_styles(_closest_variants(modes, variants))["modes_matched_variants"].item()

    assert matched(variants[[0, 2, 3]]) == 3  # three modes, three variants
    near = variants[[1, 1]].clone()
    near[1, :, 0, 5, 4], near[1, :, 0, 6, 4] = 0, 1  # one row off variant 1 (row 5): still closest to it
    assert matched(near) == 1
    assert _closest_variants(near, variants).tolist() == [1, 1]


def test_matched_styles_split_the_variants_into_mouth_and_eyes():
    assert variant_styles() == [("closed", "open"), ("closed", "closing"), ("open", "open"), ("open", "closing")]
    figures = {k: v.item() for k, v in _matched_styles(torch.tensor([0, 1, 1])).items()}
    assert figures == {"modes_matched_variants": 2, "modes_matched_mouth_styles": 1, "modes_matched_eye_styles": 2}
    figures = {k: v.item() for k, v in _matched_styles(torch.tensor([0, 3, 0])).items()}
    assert figures == {"modes_matched_variants": 2, "modes_matched_mouth_styles": 2, "modes_matched_eye_styles": 2}
    figures = {k: v.item() for k, v in _matched_styles(torch.tensor([2, 2, 2])).items()}
    assert figures == {"modes_matched_variants": 1, "modes_matched_mouth_styles": 1, "modes_matched_eye_styles": 1}


def test_reconstruct_is_the_vae_mean_path_thresholded():
    torch.manual_seed(0)
    model = CMMNet(base_channels=4, translator_channels=4, discriminator_channels=4, lstm_hidden=16, label_dim=4,
                   latent_dim=8).train()
    marks = (torch.rand(3, 5, 1, 64, 64) > 0.9).float()
    out = _reconstruct(model, marks, batch_size=2)
    assert out.shape == marks.shape and set(out.unique().tolist()) <= {0.0, 1.0}
    assert model.training  # restored
    model.eval()
    with torch.no_grad():  # frame by frame, by hand: decoder(encoder mean) > 0.5 in probability
        for i in range(3):
            for t in range(5):
                expected = torch.sigmoid(model.decoder(model.encoder(marks[i, t][None])[0]))[0] > 0.5
                assert torch.equal(out[i, t].bool(), expected)


def test_landmark_input_hand_computed():
    marks = torch.tensor([[[[0.0, 1.0], [0.25, 1.0]]]])  # (1, 1, 2, 2)
    x = landmark_input(marks)
    assert x.shape == (1, 3, 2, 2)
    assert torch.equal(x[0, 2], torch.tensor([[-1.0, 1.0], [-0.5, 1.0]])) and torch.equal(x[0, 0], x[0, 1])
    with pytest.raises(ValueError, match="marks"):
        landmark_input(torch.zeros(1, 3, 2, 2))


def test_mode_figure_rows(nemo, tmp_path):
    import importlib.util
    from pathlib import Path

    import cv2

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cmmnet_eval.py"
    spec = importlib.util.spec_from_file_location("cmmnet_eval_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    torch.manual_seed(0)
    model = CMMNet(base_channels=4, translator_channels=4, discriminator_channels=4, lstm_hidden=16, label_dim=4,
                   latent_dim=8).eval()
    figure = cv2.imread(str(script.mode_figure(model, nemo, tmp_path / "modes.png", k=2, stride=8)))
    classes = len({int(item.label) for item in nemo.dataset("test").items})
    # per class: a title, faces (real, translator on real landmarks, 2 modes), landmarks (real, 2 modes)
    assert figure.shape == (classes * (14 + (4 + 3) * 64), 4 * 64, 3)
