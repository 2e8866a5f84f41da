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
from zoo.cmmnet.smile_classifier import SmileClassifier, roc_auc


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


def test_roc_auc_matches_the_pairwise_count():
    scores, labels = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4]), torch.tensor([0, 0, 1, 1, 1])
    # positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4: wins 1 + 2 + (1 + tie 0.5) = 4.5 of 6
    assert roc_auc(scores, labels) == pytest.approx(4.5 / 6)
    assert roc_auc(torch.arange(4.0), torch.tensor([0, 0, 1, 1])) == 1.0
    assert roc_auc(torch.zeros(4), torch.tensor([0, 1, 0, 1])) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="same length"):
        roc_auc(torch.zeros(3), torch.tensor([0, 1]))


def test_classifier_auc_survives_a_shift_that_breaks_its_accuracy():
    """Weaker smiles of both classes (every curve halved) move every logit towards "spontaneous":
    the posed ones are misclassified, but the classes keep their order."""
    rng = np.random.default_rng(0)
    posed, spont = _curves(20, 6, 0.5, rng), _curves(20, 20, 3.0, rng)
    classifier = SmileClassifier().fit(torch.cat([posed, spont]), torch.tensor([0] * 20 + [1] * 20))
    weak_posed, weak_spont = _curves(10, 6, 0.5, rng) * 0.4, _curves(10, 20, 3.0, rng) * 0.4
    weak, labels = torch.cat([weak_posed, weak_spont]), torch.tensor([0] * 10 + [1] * 10)
    assert classifier.accuracy(weak_posed, torch.zeros(10)) < 0.5
    assert classifier.auc(weak, labels) > 0.9
    assert classifier.auc(torch.cat([weak_posed, weak_posed]), labels) == pytest.approx(0.5)


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
    again = evaluate_cmmnet(_small(translator_label=True), disfa, k=5, seed=0)  # the label reaches the translator
    assert again["k"] == 3 and any("num_modes" in note for note in again.notes)
    # only a translator that reads the class is also given the other one
    assert not any(key.endswith("label_swapped") for key in result)
    for name in ("posed", "spontaneous"):
        assert 0 <= again[f"{name}/classifier_accuracy_translated_real_label_swapped"] <= 1


def test_evaluate_cranet_has_no_diversity(disfa):
    cranet = _small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1])
    result = evaluate_cmmnet(cranet, disfa, k=2, seed=0)
    assert result["posed/diversity_video"] == 0.0 and result["spontaneous/diversity_au"] == 0.0
    assert "posed/diversity_landmarks_px" not in result and "posed/diversity_landmarks_px_real" not in result
    assert 0 <= result["class_auc"] <= 1 and "class_auc_landmarks" not in result  # no landmark path
    with pytest.raises(ValueError, match="split"):
        evaluate_cmmnet(cranet, disfa, split="train")


def test_last_frame_figures_against_hand_computation(disfa):
    """Held-out vs training people: Chamfer of the last frame to the neutral frame, the conditional
    LSTM and the closest mode, recomputed here from generate_landmarks."""
    torch.manual_seed(0)
    model = _small()
    result = evaluate_cmmnet(model, disfa, k=3, seed=0)
    for suffix, split in (("", "test"), ("_train", "train")):
        dataset = disfa.dataset(split)
        n = len(disfa.dataset("test"))
        items = [dataset[i] for i in range(min(n, len(dataset)))]
        marks = torch.stack([item["landmark_images"] for item in items])
        labels = torch.stack([torch.as_tensor(item["label"]) for item in items])
        cond, modes = model.generate_landmarks(marks[:, 0], labels, marks.shape[1])
        last = marks[:, -1, 0]
        neutral = np.nanmean([chamfer_px(marks[i, 0, 0], last[i]).item() for i in range(len(items))])
        conditional = np.nanmean([chamfer_px(cond[i, -1, 0], last[i]).item() for i in range(len(items))])
        best = [min((chamfer_px(m, last[i]).item() for m in modes[i, :, -1, 0]), key=lambda v: np.inf if np.isnan(v) else v)
                for i in range(len(items))]
        assert result[f"last_frame_px_neutral{suffix}"] == pytest.approx(neutral, rel=1e-6)
        assert result[f"last_frame_px_conditional{suffix}"] == pytest.approx(conditional, rel=1e-6, nan_ok=True)
        assert result[f"last_frame_px_best_mode{suffix}"] == pytest.approx(np.nanmean(best), rel=1e-6, nan_ok=True)
    assert "last_frame_px_neutral" not in evaluate_cmmnet(
        _small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1]), disfa, k=2, seed=0)


def test_ssim_neutral_copy_is_the_still_neutral_frame(disfa):
    from zoo.cmmnet.evaluate import _ssim, _to_uint8

    result = evaluate_cmmnet(_small(), disfa, k=2, seed=0)
    items = [disfa.dataset("test")[i] for i in range(len(disfa.dataset("test")))]
    for c, name in enumerate(("posed", "spontaneous")):
        mine = [item for item in items if int(item["label"]) == c]
        video = torch.stack([item["video"] for item in mine])
        still = video[:, :1].expand_as(video)  # the neutral frame (frame 0) held for every frame
        expected = np.mean([_ssim(_to_uint8(s), _to_uint8(v)).item() for s, v in zip(still, video)])
        assert result[f"{name}/ssim_neutral_copy"] == pytest.approx(expected, rel=1e-5)
        assert result[f"{name}/ssim_neutral_copy"] < 1.0  # the smile moves something


def test_last_frame_figures_skip_empty_images():
    """An empty generated image has no Chamfer distance: it is left out of the mean, never counted as 0."""
    from zoo.cmmnet.evaluate import _last_frame_figures

    class Stub:
        device = torch.device("cpu")

        def generate_landmarks(self, first, labels, steps):
            b = first.shape[0]
            modes = torch.zeros(b, 3, steps, 1, 8, 8)
            modes[:, 1, -1, 0, 2, 2] = 1  # one mode draws a pixel, the others nothing
            return torch.zeros(b, steps, 1, 8, 8), modes  # the conditional LSTM draws nothing

    marks = torch.zeros(2, 4, 1, 8, 8)
    marks[:, :-1, 0, 2, 2] = 1
    marks[:, -1, 0, 2, 5] = 1  # the last frame's pixel is 3 px from the neutral one
    figures = _last_frame_figures(Stub(), marks, torch.zeros(2, dtype=torch.long), batch_size=1)
    assert figures["neutral"] == pytest.approx(3.0) and figures["best_mode"] == pytest.approx(3.0)
    assert np.isnan(figures["conditional"])


def test_latent_probe_learns_and_leaves_the_model_alone(disfa):
    from zoo.cmmnet.latent_probe import IdentityBlindLSTM, latent_probe

    torch.manual_seed(0)
    model = _small()
    torch.nn.init.normal_(model.encoder.mean.weight, std=0.5)  # an untrained encoder's means are ~0: spread them
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = latent_probe(model, disfa, steps=200, sequences=4, batch_size=4, seed=0)
    # its first steps predict "stay at h_0" (zero-initialised output layer); training must beat that
    assert result["loss_last"] < 0.7 * result["loss_first"]
    for key in ("last_frame_px_neutral", "last_frame_px_conditional", "last_frame_px_neutral_train",
                "last_frame_px_conditional_train"):
        assert key in result
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # probed on a copy
    again = latent_probe(model, disfa, steps=200, sequences=4, batch_size=4, seed=0)
    assert again["loss_last"] == result["loss_last"]  # seeded
    blind = IdentityBlindLSTM(8, 2, 4, 16)
    h = blind(torch.zeros(2, 8), torch.tensor([0, 1]), 5)
    assert h.shape == (2, 5, 8)
    assert torch.equal(blind(torch.ones(2, 8), torch.tensor([0, 1]), 5) - 1, h)  # h_0 only shifts the path
    assert latent_probe(model, disfa, steps=5, sequences=2, batch_size=4, identity_blind=True)["steps"] == 5
    with pytest.raises(ValueError, match="landmark VAE"):
        latent_probe(_small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1]), disfa)
    with pytest.raises(ValueError, match="steps"):
        latent_probe(model, disfa, steps=0)


def test_latent_probe_script_rejects_a_missing_checkpoint(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cmmnet_latent_probe.py"
    spec = importlib.util.spec_from_file_location("cmmnet_latent_probe_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(FileNotFoundError, match="--ckpt .*missing.ckpt"):
        script.main(["--ckpt", str(tmp_path / "missing.ckpt")])
