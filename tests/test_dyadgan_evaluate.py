"""evaluate_dyadgan: keys for both architectures, every figure on hand-checkable cases (C-LSTMs
that hold the last frame, a generator that paints one grey face), determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.interview import InterviewDataModule
from datamodules.synthetic.interview_world import write_interview_dataset
from zoo.dyadgan import DyadGAN
from zoo.dyadgan.evaluate import evaluate_dyadgan
from zoo.metrics.realism import structural_similarity
from zoo.metrics.world_features import train_world_face_net, world_fid

H, F, S, MODES = 6, 4, 16, 2
P = 4 + MODES
STRIDE = 5  # window stride


@pytest.fixture(autouse=True)
def _no_inception_weights(tmp_path, monkeypatch):
    """FID proper is not computed here: hide any pytorch-fid weights of the machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FACEZOO_FID_WEIGHTS", raising=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = write_interview_dataset(tmp_path_factory.mktemp("iw") / "world", interviewees=4, seed=5, session_frames=36,
                                   image_size=32)
    dm = InterviewDataModule(root=str(root), image_size=S, history=H, horizon=F, num_modes=MODES, batch_size=2,
                             cache_dir=str(tmp_path_factory.mktemp("cache")))
    faces = dm.face_attribute_data("train", stride=1)
    net = train_world_face_net(faces["faces"], faces["identities"], faces["landmarks"], steps=4, batch_size=16, width=4)
    return dm, net


def _model(dm, **kwargs) -> DyadGAN:
    torch.manual_seed(0)
    settings = dict(shape_dim=P, history=H, horizon=F, image_size=S, condition_dim=8, ngf=4, ndf=4, unet_ngf=4,
                    patch_ndf=4, patch_layers=2, lstm_hidden=8, lstm_layers=1, dictionary_min_cluster_size=5)
    settings.update(kwargs)
    model = DyadGAN(**settings)
    model.fit_dictionary(dm)
    return model


def _evaluate(model, dm, net, **kwargs):
    settings = dict(num_samples=3, seed=0, split="test", window_stride=STRIDE, world_net=net)
    return evaluate_dyadgan(model, dm, **{**settings, **kwargs})


def _windows(dm):
    """Every evaluated window's shape parameters (W, H + F, P), as evaluate_dyadgan cuts them."""
    out = []
    for session, params in zip(dm.sessions("test"), dm.shape_parameters("test")):
        out += [params[s:s + H + F] for s in range(0, session.length - H - F + 1, STRIDE)]
    return np.stack(out).astype(np.float64)


def test_keys_of_both_architectures(data):
    dm, net = data
    two = _evaluate(_model(dm), dm, net)
    one = _evaluate(_model(dm, architecture="one_stage"), dm, net)
    sketch_keys = {"sketch_l1", "stage2_ssim", "stage2_fid_world"}
    common = {"lstm_overlap_mse", "lstm_nonoverlap_mse", "lstm_overlap_rollout_mse", "hold_last_next_mse", "hold_last_mse",
              "mean_shape_mse", "jerk_real", "dictionary_jerk", "lstm_jerk", "lstm_nonoverlap_jerk",
              "dictionary_diversity", "lstm_diversity", "lstm_nonoverlap_diversity", "dictionary_mse",
              "dictionary_min_mse", "dictionary_fps", "lstm_fps", "lstm_nonoverlap_fps", "render_fps", "ssim",
              "fid_world", "fid_world_dictionary", "fid_world_real_reference", "has_sketches", "fid_available",
              "num_windows", "num_images", "num_samples", "world_net_landmark_error_px"}
    assert set(one) == common and set(two) == common | sketch_keys
    assert two["has_sketches"] == 1.0 and one["has_sketches"] == 0.0
    assert all(isinstance(v, float) and np.isfinite(v) for v in two.values())
    # 36-frame sessions: windows start at 0, 5, ..., 25 (10-frame windows), images at frames 6..35
    sessions = dm.sessions("test")
    assert two["num_windows"] == len(sessions) * 6 and two["num_images"] == len(sessions) * 30
    assert two["fid_available"] == 0.0  # no Inception weights on a test machine
    assert two["dictionary_min_mse"] <= two["dictionary_mse"]
    assert two["dictionary_diversity"] > 0 and two["lstm_diversity"] == 0.0  # C-LSTMs give one sequence


def test_table2_references_and_lstms_that_hold_the_last_frame(data):
    dm, net = data
    model = _model(dm)
    for lstm in (model.lstm_overlap, model.lstm_nonoverlap):
        torch.nn.init.zeros_(lstm.head.weight)
        torch.nn.init.zeros_(lstm.head.bias)  # offsets 0: every prediction repeats the last input frame
    figures = _evaluate(model, dm, net)
    w = _windows(dm)
    last = w[:, H - 1:H]
    assert figures["hold_last_next_mse"] == pytest.approx(((w[:, H:H + 1] - last) ** 2).mean(), rel=1e-5)
    assert figures["hold_last_mse"] == pytest.approx(((w[:, H:] - last) ** 2).mean(), rel=1e-5)
    assert figures["mean_shape_mse"] == pytest.approx((w[:, H:] ** 2).mean(), rel=1e-5)
    assert figures["lstm_overlap_mse"] == pytest.approx(figures["hold_last_next_mse"], rel=1e-5)
    assert figures["lstm_nonoverlap_mse"] == pytest.approx(figures["hold_last_mse"], rel=1e-5)
    assert figures["lstm_overlap_rollout_mse"] == pytest.approx(figures["hold_last_mse"], rel=1e-5)
    assert figures["lstm_jerk"] == 0.0 and figures["lstm_nonoverlap_jerk"] == 0.0  # constant sequences
    third = np.diff(w[:, H:], n=3, axis=1)
    assert figures["jerk_real"] == pytest.approx(np.linalg.norm(third, axis=-1).mean(), rel=1e-5)


class _GreyFaces(DyadGAN):
    """Paints every face mid-grey (128): SSIM and FID_world then have a reference computed here."""

    def render(self, z, window):
        face = torch.full((len(z), 3, self.hparams.image_size, self.hparams.image_size), 128 / 127.5 - 1)
        return None, face


def test_realism_figures_compare_generated_and_real_faces_of_the_same_frames(data):
    dm, net = data
    model = _model(dm)
    model.__class__ = _GreyFaces
    model.hparams.architecture = "one_stage"
    figures = _evaluate(model, dm, net)
    real = torch.from_numpy(np.concatenate([np.asarray(s.frames[H:]) for s in dm.sessions("test")])).permute(0, 3, 1, 2)
    grey = torch.full_like(real, 128)
    assert figures["ssim"] == pytest.approx(float(structural_similarity(grey, real)), rel=1e-4)  # float32 vs 64
    assert figures["fid_world"] == pytest.approx(world_fid(net, grey, real), rel=1e-6)
    assert figures["fid_world_dictionary"] == pytest.approx(figures["fid_world"], rel=1e-6)  # z is ignored
    train = torch.from_numpy(np.concatenate([np.asarray(s.frames[H:]) for s in dm.sessions("train")]))
    keep = np.linspace(0, len(train) - 1, len(real)).round().astype(int)  # as many training faces as test faces
    assert figures["fid_world_real_reference"] == pytest.approx(world_fid(net, train[keep], real), rel=1e-6)
    assert figures["fid_world_real_reference"] < figures["fid_world"]
    capped = _evaluate(model, dm, net, max_images=7)
    assert capped["num_images"] == 7


def test_seed_decides_the_dictionary_figures_and_the_rest_is_fixed(data):
    dm, net = data
    model = _model(dm)
    a, b = _evaluate(model, dm, net), _evaluate(model, dm, net)
    c = evaluate_dyadgan(model, dm, num_samples=3, seed=1, split="test", window_stride=STRIDE, world_net=net)
    timing = {k for k in a if k.endswith("_fps")}
    assert {k: v for k, v in a.items() if k not in timing} == {k: v for k, v in b.items() if k not in timing}
    assert a["dictionary_diversity"] != c["dictionary_diversity"] and a["lstm_overlap_mse"] == c["lstm_overlap_mse"]
    assert model.training  # mode restored


def test_default_world_net_is_trained_on_the_training_faces(data, tmp_path, monkeypatch):
    dm, _ = data
    monkeypatch.setenv("FACEZOO_HOME", str(tmp_path))
    figures = evaluate_dyadgan(_model(dm), dm, num_samples=2, window_stride=STRIDE, max_images=8,
                               world_net_settings={"steps": 2, "batch_size": 8, "width": 4})
    assert np.isfinite(figures["fid_world"])
    assert len(list((tmp_path / "cache" / "world_features").glob("world-face-net-*.pt"))) == 1


def test_bad_input(data):
    dm, net = data
    model = _model(dm)
    with pytest.raises(ValueError, match="split"):
        _evaluate(model, dm, net, split="dev")
    with pytest.raises(ValueError, match="num_samples"):
        evaluate_dyadgan(model, dm, num_samples=1, world_net=net)
    with pytest.raises(ValueError, match="model.image_size=32"):
        evaluate_dyadgan(_model(dm, image_size=32, patch_layers=2), dm, world_net=net)
    with pytest.raises(ValueError, match="expected a zoo.dyadgan.DyadGAN"):
        evaluate_dyadgan(torch.nn.Linear(2, 2), dm, world_net=net)
    with pytest.raises(ValueError, match="InterviewDataModule"):
        evaluate_dyadgan(model, object(), world_net=net)
    with pytest.raises(ValueError, match="not fitted"):
        evaluate_dyadgan(DyadGAN(shape_dim=P, history=H, horizon=F, image_size=S, patch_layers=2), dm, world_net=net)
    with pytest.raises(ValueError, match="window_stride"):
        evaluate_dyadgan(model, dm, window_stride=0, world_net=net)
    with pytest.raises(FileNotFoundError):
        evaluate_dyadgan(model, dm, world_net=net, fid_weights="/nonexistent/pt_inception.pth")
