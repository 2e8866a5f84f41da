"""CMM-Net evaluation: smile classifier, AU estimator, diversity helpers, evaluate_cmmnet end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.disfa import DISFADataModule
from datamodules.synthetic.disfa_world import write_disfa_dataset
from zoo.cmmnet import CMMNet
from zoo.cmmnet.au_estimator import AUEstimator, fit_au_estimator
from zoo.cmmnet.evaluate import chamfer_px, evaluate_cmmnet, pairwise_mean
from zoo.cmmnet.smile_classifier import SmileClassifier


def _curves(n: int, onset: int, cheek: float, rng: np.random.Generator) -> torch.Tensor:
    t = np.arange(32)
    rise = np.clip((t - 4) / onset, 0, 1)
    au12 = 4 * rise + rng.normal(0, 0.2, (n, 32))
    au6 = cheek * rise + rng.normal(0, 0.2, (n, 32))
    return torch.from_numpy(np.stack([au6, au12], axis=-1)).float().clamp(0, 5)


def test_smile_classifier_separates_onset_and_cheek_raise():
    rng = np.random.default_rng(0)
    posed, spont = _curves(20, 6, 0.5, rng), _curves(20, 20, 3.0, rng)  # fast/no cheek vs slow/Duchenne
    x, y = torch.cat([posed, spont]), torch.tensor([0] * 20 + [1] * 20)
    classifier = SmileClassifier().fit(x, y)
    test_posed, test_spont = _curves(10, 6, 0.5, rng), _curves(10, 20, 3.0, rng)
    assert classifier.accuracy(test_posed, torch.zeros(10)) == 1.0
    assert classifier.accuracy(test_spont, torch.ones(10)) == 1.0
    assert classifier.features(x).shape == (40, 2 * (2 * 32 - 1))
    with pytest.raises(ValueError, match="curves"):
        classifier.predict(torch.zeros(3, 16, 2))
    with pytest.raises(ValueError, match="one class"):
        SmileClassifier().fit(posed, torch.zeros(20))
    with pytest.raises(ValueError, match="fit"):
        SmileClassifier().predict(posed)


def test_au_estimator_learns_from_training_frames():
    g = torch.Generator().manual_seed(0)
    b, t = 12, 4
    neutral = torch.rand(b, 3, 64, 64, generator=g) * 0.2 - 0.6
    level = torch.rand(b, t, generator=g) * 5
    # a "smile" brightens the lower half in proportion to the intensity
    video = neutral[:, None].repeat(1, t, 1, 1, 1)
    video[..., 32:, :] += (level / 5 * 1.2)[..., None, None, None]
    au = torch.stack([level / 2, level], dim=-1)
    estimator = fit_au_estimator(neutral, video, au, epochs=30, batch_size=16, seed=0)
    error = (estimator.sequences(neutral, video) - au).abs().mean()
    baseline = (au - au.mean(dim=(0, 1))).abs().mean()
    assert error < 0.5 * baseline
    again = fit_au_estimator(neutral, video, au, epochs=30, batch_size=16, seed=0)
    assert torch.equal(again.sequences(neutral, video), estimator.sequences(neutral, video))  # seeded
    with pytest.raises(ValueError, match="frame"):
        AUEstimator()(neutral, neutral[:, :, :32])
    with pytest.raises(ValueError, match="au"):
        fit_au_estimator(neutral, video, au * 3)


def test_diversity_helpers_hand_computed():
    x = torch.zeros(1, 3, 2)
    x[0, 1] = 1.0
    x[0, 2] = 3.0  # pairs: |0-1| = 1, |0-3| = 3, |1-3| = 2 -> mean 2
    assert pairwise_mean(x).item() == pytest.approx(2.0)
    a, b = torch.zeros(8, 8), torch.zeros(8, 8)
    a[1, 1], b[4, 5] = 1, 1  # one pixel each, 5 px apart
    assert chamfer_px(a, b).item() == pytest.approx(5.0)
    assert torch.isnan(chamfer_px(a, torch.zeros(8, 8)))
    with pytest.raises(ValueError, match="K >= 2"):
        pairwise_mean(torch.zeros(2, 1, 3))


@pytest.fixture(scope="module")
def disfa(tmp_path_factory):
    root = write_disfa_dataset(tmp_path_factory.mktemp("disfa") / "root", subjects=3, plus_subjects=3,
                               smiles_per_session=2, other_expressions=0, posed_trials=2, seed=1, image_size=48)
    return DISFADataModule(root=str(root), batch_size=4, cache_dir=str(tmp_path_factory.mktemp("cache")))


def _small(**kw) -> CMMNet:
    return CMMNet(base_channels=4, translator_channels=4, discriminator_channels=4, lstm_hidden=16, label_dim=4,
                  latent_dim=8, **kw)


def test_evaluate_cmmnet_figures(disfa):
    torch.manual_seed(0)
    result = evaluate_cmmnet(_small(), disfa, k=3, seed=0)
    for name in ("posed", "spontaneous"):
        for figure in ("ssim", "au6_curve_distance", "au12_curve_distance", "class_consistency",
                       "classifier_accuracy_real", "diversity_au", "diversity_video", "diversity_au_real"):
            assert f"{name}/{figure}" in result, figure
        assert 0 <= result[f"{name}/class_consistency"] <= 1 and -1 <= result[f"{name}/ssim"] <= 1
        assert result[f"{name}/au6_curve_distance"] >= 0
    assert result["num_test_sequences"] == len(disfa.dataset("test")) and result["k"] == 3
    # the real scale of the landmark diversity: frame-wise Chamfer between different real sequences
    items = [disfa.dataset("test")[i] for i in range(len(disfa.dataset("test")))]
    for c, name in enumerate(("posed", "spontaneous")):
        marks = [item["landmark_images"][:, 0] for item in items if int(item["label"]) == c]
        pairs = [chamfer_px(a[t], b[t]).item() for i, a in enumerate(marks) for b in marks[i + 1:] for t in range(len(a))]
        assert result[f"{name}/diversity_landmarks_px_real"] == pytest.approx(np.nanmean(pairs), rel=1e-6)
    assert all(isinstance(v, float) for v in result.values())
    # no embedded-NEMO metadata here: the same-person scale comes from one subject's several test smiles
    subjects = torch.tensor([int(disfa.dataset("test")[i]["subject"]) for i in range(len(items))])
    labels = torch.tensor([int(item["label"]) for item in items])
    groups = [(subjects == s) & (labels == c) for s in subjects.unique() for c in (0, 1)]
    if any(int(g.sum()) > 1 for g in groups):
        assert result["same_person_source"] == 0.0
    else:
        assert "same_person_source" not in result and any("same-person" in note for note in result.notes)
    assert any("IS" in note for note in result.notes)  # no Inception weights offline: omitted, said so
    assert not any(key.endswith("/is") for key in result)
    again = evaluate_cmmnet(_small(), disfa, k=5, seed=0)
    assert again["k"] == 3 and any("num_modes" in note for note in again.notes)


def test_evaluate_cranet_has_no_diversity(disfa):
    cranet = _small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1])
    result = evaluate_cmmnet(cranet, disfa, k=2, seed=0)
    assert result["posed/diversity_video"] == 0.0 and result["spontaneous/diversity_au"] == 0.0
    assert "posed/diversity_landmarks_px" not in result and "posed/diversity_landmarks_px_real" not in result
    with pytest.raises(ValueError, match="split"):
        evaluate_cmmnet(cranet, disfa, split="train")
