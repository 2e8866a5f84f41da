"""CMM-Net: network shapes (paper Sec. 4.1), each loss, the phase schedule, generation, bad input."""

from __future__ import annotations

import argparse

import cv2
import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.features.rig import FaceRig
from zoo.cmmnet import CMMNet
from zoo.cmmnet.nets import (
    ConditionalLSTM,
    ConvDecoder,
    ConvEncoder,
    MultiModeLSTM,
    PatchDiscriminator,
    UNetTranslator,
    pull_loss,
    push_loss,
)

T = 4


def small(**kw) -> CMMNet:
    args = dict(base_channels=4, translator_channels=4, discriminator_channels=4, lstm_hidden=16, label_dim=4,
                latent_dim=8, num_modes=3)
    args.update(kw)
    return CMMNet(**args)


class Sequences(Dataset):
    def __init__(self, n: int = 4) -> None:
        g = torch.Generator().manual_seed(0)
        self.video = torch.rand(n, T, 3, 64, 64, generator=g) * 2 - 1
        self.marks = (torch.rand(n, T, 1, 64, 64, generator=g) > 0.9).float()

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.video[i], "neutral": self.video[i, 0], "landmark_images": self.marks[i],
                "label": torch.tensor(i % 2)}


def test_paper_network_shapes():
    enc, dec = ConvEncoder(1, 100), ConvDecoder(1, 100)
    mu, logvar = enc(torch.rand(2, 1, 64, 64))
    assert mu.shape == logvar.shape == (2, 100)  # 64x64 -> 1x1x100 (Sec. 4.1)
    assert dec(mu).shape == (2, 1, 64, 64)
    assert UNetTranslator()(torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64)).shape == (2, 3, 64, 64)
    assert PatchDiscriminator()(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    h = ConditionalLSTM(100)(mu, torch.tensor([0, 1]), 32)
    assert h.shape == (2, 32, 100)
    assert torch.allclose(h, mu[:, None].expand(-1, 32, -1))  # zero-initialised head: starts at h_0
    modes = MultiModeLSTM(3, 100)(h)
    assert modes.shape == (2, 3, 32, 100)
    with pytest.raises(ValueError, match="encoder input"):
        enc(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="label"):
        ConditionalLSTM(100)(mu, torch.tensor([0, 2]), 4)
    with pytest.raises(ValueError, match="num_modes"):
        MultiModeLSTM(1, 100)


def test_pull_and_push_losses_hand_computed():
    h = torch.zeros(1, 2, 3)
    modes = torch.zeros(1, 2, 2, 3)
    modes[0, 0, :, 0], modes[0, 1, :, 0] = 1.0, 3.0  # mode average 2 along x: ||h - h*|| = 2
    assert pull_loss(h, modes).item() == pytest.approx(2.0)
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0]]])  # both modes recognised with p = e^2 / (e^2 + 1)
    assert push_loss(logits).item() == pytest.approx(-np.log(np.exp(2) / (np.exp(2) + 1)))
    assert push_loss(logits.flip(-1)).item() == pytest.approx(-np.log(1 / (np.exp(2) + 1)))


def test_phase_schedule(monkeypatch):
    model = small(phases=["vae", "clstm", "multimode", "translation"], phase_epochs=[2, 1, 1, 3])
    seen = []
    for epoch in range(9):
        monkeypatch.setattr(CMMNet, "current_epoch", property(lambda self, e=epoch: e))
        seen.append(model.phase)
    assert seen == ["vae", "vae", "clstm", "multimode", "translation", "translation", "translation",
                    "translation", "translation"]
    with pytest.raises(ValueError, match="phase_epochs"):
        small(phases=["vae"], phase_epochs=[1, 2])
    with pytest.raises(ValueError, match="phases"):
        small(variant="cranet", phases=["translation"], phase_epochs=[1])
    with pytest.raises(ValueError, match="variant"):
        small(variant="videogan")


def _changed(before: dict, model: CMMNet) -> set[str]:
    return {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}


@pytest.mark.parametrize("variant,phase,trained", [
    ("cmmnet", "vae", {"encoder", "decoder"}),
    ("cmmnet", "clstm", {"encoder", "decoder", "clstm"}),
    ("cmmnet", "multimode", {"encoder", "decoder", "clstm", "modes"}),
    ("cmmnet", "translation", {"translator", "discriminator"}),
    ("cranet", "clstm", {"encoder", "decoder", "clstm", "discriminator"}),
])
def test_each_phase_trains_its_modules(variant, phase, trained, tmp_path):
    L.seed_everything(0)
    model = small(variant=variant, phases=[phase], phase_epochs=[1])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = L.Trainer(max_steps=2 if phase == "translation" else 1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        limit_val_batches=0)
    trainer.fit(model, DataLoader(Sequences(), batch_size=2))
    changed = _changed(before, model)
    assert changed == trained
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["train/loss"])
    if phase == "multimode":
        assert {"train/pull", "train/push"} <= set(logged)


def test_conditional_decoder_reads_its_condition_image():
    torch.manual_seed(0)
    plain, conditional = ConvDecoder(1, 8, 4), ConvDecoder(1, 8, 4, condition_channels=1)
    assert not any(k.startswith("condition") for k in plain.state_dict())  # the paper's weights, unchanged
    assert {k for k in conditional.state_dict() if not k.startswith("condition")} == set(plain.state_dict())
    marks = (torch.rand(2, 1, 64, 64) > 0.9).float()
    features = conditional.condition_features(marks)
    assert [tuple(f.shape) for f in features] == [(2, 32, 4, 4), (2, 16, 8, 8), (2, 8, 16, 16), (2, 4, 32, 32)]
    conditional.eval()
    z = torch.randn(2, 8)
    out = conditional(z, features)
    assert out.shape == (2, 1, 64, 64)
    swapped = conditional(z, conditional.condition_features(marks.flip(0)))
    assert not torch.allclose(out, swapped)  # the same code draws differently on another neutral face
    with pytest.raises(ValueError, match="condition features"):
        conditional(z)
    with pytest.raises(ValueError, match="condition features"):
        plain(z, features)
    with pytest.raises(ValueError, match="batch 3"):
        conditional(torch.randn(3, 8), features)
    with pytest.raises(ValueError, match="condition_channels 0"):
        plain.condition_features(marks)
    with pytest.raises(ValueError, match="decoder condition"):
        conditional.condition_features(torch.rand(2, 3, 64, 64))


def test_decoder_neutral_landmarks_decodes_each_frame_on_its_own_sequence_neutral(tmp_path):
    with pytest.raises(ValueError, match="decoder_neutral_landmarks"):
        small(variant="cranet", decoder_neutral_landmarks=True)
    torch.manual_seed(0)
    model = small(decoder_neutral_landmarks=True).eval()
    neutral = Sequences(2).marks[:, 0]
    h = torch.randn(2, 3, T, 8)  # (B, K, T, D): modes
    logits = model.decode(h, neutral)
    assert logits.shape == (2, 3, T, 1, 64, 64)
    for b in range(2):  # by hand: code (b, k, t) decoded with sequence b's neutral landmark image
        features = model.decoder.condition_features(neutral[b:b + 1])
        for k in range(3):
            for t in range(T):
                assert torch.allclose(logits[b, k, t], model.decoder(h[b, k, t][None], features)[0], atol=1e-5)
    with pytest.raises(ValueError, match="neutral landmark image"):
        model.decode(h)
    with pytest.raises(ValueError, match="neutral landmark images"):
        model.decode(h, neutral[:1])
    # every phase of the landmark path trains through it, the condition encoder included
    for phase, trained in (("vae", {"encoder", "decoder"}), ("multimode", {"encoder", "decoder", "clstm", "modes"})):
        L.seed_everything(0)
        model = small(decoder_neutral_landmarks=True, phases=[phase], phase_epochs=[1], vae_frames=2)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
        trainer.fit(model, DataLoader(Sequences(), batch_size=2))
        assert _changed(before, model) == trained
        assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters()
                   if n.startswith("decoder.condition"))
    data = Sequences(2)
    assert model.generate(data.video[:, 0], "posed", 2, data.marks[:, 0], num_frames=5).shape == (2, 2, 5, 3, 64, 64)


def test_generate_shapes_and_errors():
    model = small()
    data = Sequences(2)
    neutral, marks = data.video[:, 0], data.marks[:, 0]
    videos = model.generate(neutral, "spontaneous", 2, marks, num_frames=5)
    assert videos.shape == (2, 2, 5, 3, 64, 64) and videos.abs().max() <= 1
    assert model.generate(neutral, torch.tensor([0, 1]), None, marks, 5, include_conditional=True).shape[1] == 4
    conditional, modes = model.generate_landmarks(marks, 1, 5)
    assert conditional.shape == (2, 5, 1, 64, 64) and modes.shape == (2, 3, 5, 1, 64, 64)
    with pytest.raises(ValueError, match="k: expected 1..3"):
        model.generate(neutral, 0, 4, marks)
    with pytest.raises(ValueError, match="neutral_landmark_image"):
        model.generate(neutral, 0, 1)
    with pytest.raises(ValueError, match="label"):
        model.generate(neutral, "happy", 1, marks)
    with pytest.raises(ValueError, match="neutral_image"):
        model.generate(neutral[:, :, :32], 0, 1, marks)
    cranet = small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1])
    copies = cranet.generate(neutral, 1, 3, num_frames=5)
    assert copies.shape == (2, 3, 5, 3, 64, 64) and torch.equal(copies[:, 0], copies[:, 2])


def test_media_and_image_pairs():
    model = small()
    batch = next(iter(DataLoader(Sequences(2), batch_size=2)))
    fake, real = model.image_pairs(batch)
    assert fake.shape == real.shape == (2 * T, 3, 64, 64) and fake.dtype == torch.uint8
    media = model.media_samples(batch)
    (name, video), = media.items()
    assert name in ("cmmnet_posed", "cmmnet_spontaneous")
    assert video.shape == (T, 128, 64 * 5, 3) and video.dtype == np.uint8  # faces: real+cond+3; marks: 5 rows


def test_generate_to_files(tmp_path):
    model = small()
    points = FaceRig.landmarks_2d(np.zeros(58), None, 128)
    image = np.full((128, 128, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), image)
    np.save(tmp_path / "face.npy", points)
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=2)
    CMMNet.add_generate_arguments(parser)
    args = parser.parse_args(["--neutral-image", str(tmp_path / "face.png"), "--neutral-landmarks",
                              str(tmp_path / "face.npy"), "--label", "posed", "--num-frames", "6", "--grid"])
    out = tmp_path / "out"
    out.mkdir()
    written = model.generate_to_files(args, out)
    assert [p.name for p in written] == ["posed_mode1.mp4", "posed_mode2.mp4", "posed_grid.png"]
    assert cv2.imread(str(written[-1])).shape == (2 * 64, 6 * 64, 3)
    bad = parser.parse_args(["--neutral-image", str(tmp_path / "face.png")])
    with pytest.raises(ValueError, match="--neutral-landmarks"):
        model.generate_to_files(bad, out)


def test_best_of_k_reconstruction_hand_computed(monkeypatch):
    model = small(best_of_k_weight=1.0)
    # a stand-in decoder: every pixel of a frame gets the embedding's first value as its logit
    monkeypatch.setattr(model, "decode", lambda h, neutral=None: h[..., :1, None, None].expand(*h.shape[:-1], 1, 64, 64))
    modes = torch.zeros(2, 3, T, 8)
    modes[0, :, :, 0] = torch.tensor([-4.0, 0.0, 4.0])[:, None]  # sequence 0: mode 0 is the closest to all-zero
    modes[1, :, :, 0] = torch.tensor([3.0, 2.0, 5.0])[:, None]  # sequence 1: mode 1 (logit 2) is the closest
    targets = torch.zeros(2, T, 1, 64, 64)
    softplus = lambda v: float(np.log1p(np.exp(v)))  # noqa: E731  BCE of logit v against 0
    expected = 64 * 64 * (softplus(-4.0) + softplus(2.0)) / 2
    assert model.best_of_k_reconstruction(modes, targets).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="best_of_k_reconstruction"):
        model.best_of_k_reconstruction(modes, targets[:, :2])
    with pytest.raises(ValueError, match="best_of_k_weight"):
        small(best_of_k_weight=-1.0)


def test_phase_lr_scales_the_recurrent_optimiser(tmp_path):
    L.seed_everything(0)
    model = small(phases=["vae", "clstm", "clstm"], phase_epochs=[1, 1, 1], phase_lr=[1.0, 1.0, 0.25],
                  optimizer=lambda p: torch.optim.Adam(p, lr=2e-3))
    seen = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            seen.append((pl_module.phase_index, trainer.optimizers[0].param_groups[0]["lr"],
                         trainer.optimizers[1].param_groups[0]["lr"]))

    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0,
                        limit_train_batches=1, callbacks=[Record()])
    trainer.fit(model, DataLoader(Sequences(), batch_size=2))
    # the second clstm entry runs at a quarter of the rate; the translator's optimiser is untouched
    assert [(i, pytest.approx(lr)) for i, lr, _ in seen] == [(0, 2e-3), (1, 2e-3), (2, 5e-4)]
    assert all(g == pytest.approx(2e-4) for *_, g in seen)
    assert small().hparams.phase_lr is None
    with pytest.raises(ValueError, match="phase_lr"):
        small(phase_lr=[1.0, 1.0])
    with pytest.raises(ValueError, match="phase_lr"):
        small(phase_lr=[1.0, 0.0, 1.0, 1.0])


def test_relaxed_best_of_k_hand_computed(monkeypatch):
    model = small(best_of_k_weight=1.0, best_of_k_epsilon=0.2)
    monkeypatch.setattr(model, "decode", lambda h, neutral=None: h[..., :1, None, None].expand(*h.shape[:-1], 1, 64, 64))
    modes = torch.zeros(1, 3, T, 8)
    modes[0, :, :, 0] = torch.tensor([-4.0, 0.0, 4.0])[:, None]  # mode 0 is the closest to the all-zero target
    targets = torch.zeros(1, T, 1, 64, 64)
    softplus = lambda v: float(np.log1p(np.exp(v)))  # noqa: E731  BCE of logit v against 0
    # Rupprecht et al. 2017: (1 - eps) for the winner, eps / (K - 1) = 0.1 for each loser
    expected = 64 * 64 * (0.8 * softplus(-4.0) + 0.1 * softplus(0.0) + 0.1 * softplus(4.0))
    loss, winners = model.best_of_k_reconstruction(modes, targets, return_winners=True)
    assert loss.item() == pytest.approx(expected, rel=1e-5) and winners.tolist() == [0]
    plain = small(best_of_k_weight=1.0)
    monkeypatch.setattr(plain, "decode", model.decode)
    assert plain.best_of_k_reconstruction(modes, targets).item() == pytest.approx(64 * 64 * softplus(-4.0), rel=1e-5)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="best_of_k_epsilon"):
            small(best_of_k_epsilon=bad)


def test_best_of_k_off_by_default_and_trained_when_on(tmp_path):
    batch = next(iter(DataLoader(Sequences(), batch_size=2)))
    assert "best_of_k" not in small().recurrent_losses(batch["landmark_images"], batch["label"], "multimode")
    L.seed_everything(0)
    model = small(phases=["multimode"], phase_epochs=[1], best_of_k_weight=1.0)
    assert set(model.state_dict()) == set(small().state_dict())  # no new weights: old checkpoints still load
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(Sequences(), batch_size=2))
    assert _changed(before, model) == {"encoder", "decoder", "clstm", "modes"}
    assert torch.isfinite(trainer.callback_metrics["train/best_of_k"])
    # share of the batch won by the most frequent mode (1 = winner-take-all collapse), logged
    assert 0 < trainer.callback_metrics["train/best_of_k_top_share"] <= 1


def test_landmark_pos_weight_bce_hand_computed():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]]]])  # one 2x2 "image"
    target = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    softplus = lambda v: float(np.log1p(np.exp(v)))  # noqa: E731  -log sigmoid(-v) = BCE of logit v against 0
    plain = softplus(-2.0) + softplus(-1.0) + softplus(-0.5) + softplus(0.0)
    assert small().reconstruction(logits, target).item() == pytest.approx(plain, rel=1e-6)  # paper BCE by default
    # lit pixels (target 1) weighted by 4, dark ones unchanged: -[4 y log p + (1 - y) log(1 - p)]
    weighted = 4 * softplus(-2.0) + softplus(-1.0) + 4 * softplus(-0.5) + softplus(0.0)
    assert small(landmark_pos_weight=4.0).reconstruction(logits, target).item() == pytest.approx(weighted, rel=1e-6)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="landmark_pos_weight"):
            small(landmark_pos_weight=bad)
    with pytest.raises(ValueError, match="landmark_pos_weight"):
        small(variant="cranet", landmark_pos_weight=2.0)


def test_landmark_pos_weight_reaches_best_of_k(monkeypatch):
    model = small(best_of_k_weight=1.0, landmark_pos_weight=3.0)
    monkeypatch.setattr(model, "decode", lambda h, neutral=None: h[..., :1, None, None].expand(*h.shape[:-1], 1, 64, 64))
    modes = torch.zeros(1, 3, T, 8)
    modes[0, :, :, 0] = torch.tensor([-1.0, 1.0, 3.0])[:, None]
    targets = torch.ones(1, T, 1, 64, 64)  # all lit: BCE of logit v against 1 = softplus(-v), times 3
    expected = 3 * 64 * 64 * float(np.log1p(np.exp(-3.0)))
    assert model.best_of_k_reconstruction(modes, targets).item() == pytest.approx(expected, rel=1e-5)


def test_vae_frames_subsamples_vae_steps_only(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="vae_frames"):
        small(vae_frames=0)
    assert set(small(vae_frames=2, landmark_pos_weight=2.0).state_dict()) == set(small().state_dict())  # no new weights
    seen = []
    model = small(phases=["vae"], phase_epochs=[1], vae_frames=2)
    original = model.vae_losses
    monkeypatch.setattr(model, "vae_losses", lambda frames, neutral: seen.append(frames.shape) or original(frames, neutral))
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(Sequences(), batch_size=2))
    assert seen == [torch.Size([2, 2, 1, 64, 64])]  # 2 sequences x 2 of their T = 4 frames
    marks = Sequences().marks[:2]
    picked = CMMNet.random_frames(marks, torch.tensor([[3, 1], [0, 2]]))
    assert torch.equal(picked[0, 0], marks[0, 3]) and torch.equal(picked[1, 1], marks[1, 2])


def test_teacher_forcing_feeds_real_embeddings():
    torch.manual_seed(0)
    lstm = ConditionalLSTM(latent_dim=8, num_classes=2, label_dim=4, hidden_size=16)
    torch.nn.init.normal_(lstm.out.weight)  # non-zero output layer: steps depend on their inputs
    h0, label, teacher = torch.randn(2, 8), torch.tensor([0, 1]), torch.randn(2, T - 1, 8)
    # reference: the LSTM run once over the inputs [h_0, teacher_1, ..., teacher_{T-1}]
    inputs = torch.cat([h0[:, None], teacher], dim=1)
    context = torch.cat([h0, lstm.label(label)], dim=-1)
    out, _ = lstm.lstm(torch.cat([inputs, repeat_context(context, T)], dim=-1))
    expected = h0[:, None] + lstm.out(out)
    assert torch.allclose(lstm(h0, label, T, teacher, 1.0), expected, atol=1e-6)
    free = lstm(h0, label, T)
    assert torch.allclose(lstm(h0, label, T, teacher, 0.0), free)  # ratio 0 = free running
    assert torch.allclose(free[:, 0], expected[:, 0], atol=1e-6) and not torch.allclose(free, expected, atol=1e-3)
    with pytest.raises(ValueError, match="teacher"):
        lstm(h0, label, T, teacher[:, :1])
    with pytest.raises(ValueError, match="teacher_ratio"):
        lstm(h0, label, T, teacher, 1.5)


def test_class_trajectory_adds_a_learned_offset_per_class_and_frame():
    torch.manual_seed(0)
    lstm = ConditionalLSTM(latent_dim=8, num_classes=2, label_dim=4, hidden_size=16, trajectory_frames=3)
    h0, label = torch.randn(2, 8), torch.tensor([0, 1])
    assert torch.equal(lstm(h0, label, 5), h0[:, None].expand(-1, 5, -1))  # zero at start: h_t = h_0
    with torch.no_grad():
        lstm.trajectory.normal_()
    h = lstm(h0, label, 5)  # zero output layer: h_t = h_0 + a_label(t), the last frame held after 3
    expected = h0[:, None] + lstm.trajectory[label][:, [0, 1, 2, 2, 2]]
    assert torch.allclose(h, expected, atol=1e-6)
    # the trajectory of a class that is not in the batch gets no gradient
    torch.nn.init.normal_(lstm.out.weight)
    lstm(h0, torch.tensor([0, 0]), 5).square().sum().backward()
    assert lstm.trajectory.grad[0].abs().sum() > 0 and lstm.trajectory.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="trajectory_frames"):
        ConditionalLSTM(8, trajectory_frames=-1)
    with pytest.raises(ValueError, match="class_trajectory_frames"):
        small(class_trajectory_frames=-2)
    assert "clstm.trajectory" in small(class_trajectory_frames=T).state_dict()
    assert "clstm.trajectory" not in small().state_dict()  # off by default: published weights load as before


def repeat_context(context: torch.Tensor, steps: int) -> torch.Tensor:
    return context[:, None].expand(-1, steps, -1)


def test_teacher_forcing_option_training_only(monkeypatch):
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="teacher_forcing"):
            small(teacher_forcing=bad)
    assert set(small(teacher_forcing=1.0).state_dict()) == set(small().state_dict())  # no new weights
    batch = next(iter(DataLoader(Sequences(), batch_size=2)))
    marks, label = batch["landmark_images"], batch["label"]
    calls = []
    for tf, training, fed in ((0.0, True, False), (1.0, True, True), (1.0, False, False)):
        model = small(teacher_forcing=tf, vae_weight=0.0).train(training)
        original = model.clstm.forward
        monkeypatch.setattr(model.clstm, "forward", lambda *a, _o=original: calls.append(a) or _o(*a))
        model.recurrent_losses(marks, label, "clstm")
        teacher = calls[-1][3]
        assert (teacher is not None) == fed
        if fed:  # the encoder's means of the real frames 0..T-2 (inputs of steps 2..T)
            mu = model.encoder(marks[:, :-1].flatten(0, 1))[0].view(2, T - 1, -1)
            assert torch.allclose(teacher, mu, atol=1e-6) and not teacher.requires_grad
            assert calls[-1][4] == 1.0


def test_translator_neutral_landmarks_option(tmp_path, monkeypatch):
    model = small(translator_neutral_landmarks=True, phases=["translation"], phase_epochs=[1])
    assert model.translator.down[0][0].in_channels == 5  # neutral face, landmark image, neutral landmark image
    assert small().translator.down[0][0].in_channels == 4  # the paper's four channels by default
    data = Sequences(2)
    neutral, marks = data.video[:, 0], data.marks[:, 0]
    model.eval()
    frames = data.marks[:, 1]
    # the neutral landmark image is read: changing it changes the face drawn for the same landmarks
    assert not torch.allclose(model.translate(frames, neutral, marks), model.translate(frames, neutral, 1 - marks))
    with pytest.raises(ValueError, match="neutral_landmark_image"):
        model.translate(frames, neutral, marks[:1])
    with pytest.raises(ValueError, match="neutral_landmark_image"):
        model.translate(frames, neutral, None)  # the option on: the image is required
    paper = small().eval()  # the option off: the image is not read, and generation does not build it
    assert torch.equal(paper.translate(frames, neutral, None), paper.translate(frames, neutral, marks))
    handed = []
    paper_translate = paper.translate
    monkeypatch.setattr(paper, "translate",
                        lambda m, z, first, label: handed.append(first) or paper_translate(m, z, first, label))
    paper.generate(neutral, 0, 1, marks, num_frames=2)
    assert handed == [None]
    # generation passes the neutral face's landmark image to every frame of every mode
    seen = []
    original = model.translate
    monkeypatch.setattr(model, "translate", lambda m, z, first, label: seen.append(first) or original(m, z, first, label))
    assert model.generate(neutral, 0, 2, marks, num_frames=3).shape == (2, 2, 3, 3, 64, 64)
    assert torch.equal(seen[0], marks.repeat_interleave(2 * 3, dim=0))
    # training: frame 0 of each sequence's landmarks, for each drawn frame
    model = small(translator_neutral_landmarks=True, phases=["translation"], phase_epochs=[1], translation_frames=2)
    _, _, landmarks, first, no_au, no_label = model.train()._pairs(data.video[:, 0], data.video, data.marks)
    assert no_au is None and no_label is None
    assert landmarks.shape == first.shape == (4, 1, 64, 64)
    assert torch.equal(first, data.marks[:, 0].repeat_interleave(2, dim=0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(Sequences(), batch_size=2))
    assert _changed(before, model) == {"translator", "discriminator"}
    with pytest.raises(ValueError, match="translator_neutral_landmarks"):
        small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1], translator_neutral_landmarks=True)


def test_translator_label_reads_the_class_as_stargan_planes(monkeypatch, tmp_path):
    torch.manual_seed(0)
    paper = small().state_dict()
    torch.manual_seed(0)
    model = small(translator_label=True)
    # one new weight, drawn apart: every other weight, and what is drawn after the model, as without it
    assert set(model.state_dict()) - set(paper) == {"translator.label_in.weight"}
    assert all(torch.equal(paper[k], model.state_dict()[k]) for k in paper)
    after = []
    for kw in ({}, {"translator_label": True}):
        torch.manual_seed(0)
        small(**kw)
        after.append(torch.rand(3))
    assert torch.equal(*after)
    # the split first layer is one convolution over [neutral, landmark image, one-hot planes]
    translator = model.translator.eval()
    neutral, marks, label = torch.rand(3, 3, 64, 64) * 2 - 1, (torch.rand(3, 1, 64, 64) > 0.9).float(), torch.tensor([0, 1, 1])
    first = translator.down[0][0]
    joint = torch.nn.Conv2d(3 + 1 + 2, first.out_channels, 4, 2, 1)
    joint.weight.data = torch.cat([first.weight, translator.label_in.weight], dim=1)
    joint.bias.data = first.bias.detach().clone()
    planes = torch.zeros(3, 2, 64, 64)
    planes[torch.arange(3), label] = 1.0
    features = []
    handle = first.register_forward_hook(lambda module, inputs, output: features.append(inputs[0]))
    translator(marks, neutral, label)
    handle.remove()
    expected = torch.nn.functional.leaky_relu(joint(torch.cat([neutral, marks, planes], dim=1)), 0.2)
    assert torch.allclose(translator.down[0][1:](first(features[0]) + translator.label_in(planes)), expected, atol=1e-6)
    # the class changes the face; without it, or with a wrong one, a clear error
    assert not torch.allclose(translator(marks, neutral, label), translator(marks, neutral, 1 - label))
    for bad, match in ((None, "translator_label|label_classes"), (torch.tensor([0, 1]), r"\(3,\)"),
                       (torch.tensor([0.0, 1.0, 1.0]), "integer"), (torch.tensor([0, 1, 2]), "0..1")):
        with pytest.raises(ValueError, match=match):
            translator(marks, neutral, bad)
    with pytest.raises(ValueError, match="translator_label"):
        model.translate_sequences(marks[:, None], neutral)
    assert model.translate_sequences(marks[:, None], neutral, None, "spontaneous").shape == (3, 1, 3, 64, 64)
    # generation hands the requested class to every frame of every mode
    seen = []
    original = model.translate
    monkeypatch.setattr(model, "translate", lambda m, z, f, lab: seen.append(lab) or original(m, z, f, lab))
    model.generate(neutral[:2], torch.tensor([1, 0]), 2, marks[:2], num_frames=3)
    assert torch.equal(seen[0], torch.tensor([1, 0]).repeat_interleave(2 * 3))
    monkeypatch.undo()
    # training: each drawn frame keeps its sequence's label, and the label weight learns
    model = small(translator_label=True, phases=["translation"], phase_epochs=[1], translation_frames=2)
    data = Sequences()
    *_, labels = model.train()._pairs(data.video[:2, 0], data.video[:2], data.marks[:2], label=torch.tensor([0, 1]))
    assert torch.equal(labels, torch.tensor([0, 0, 1, 1]))
    before = model.translator.label_in.weight.detach().clone()
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(data, batch_size=2))
    assert not torch.equal(before, model.translator.label_in.weight)
    with pytest.raises(ValueError, match="translator_label"):
        small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1], translator_label=True)
    with pytest.raises(ValueError, match="label_classes"):
        UNetTranslator(4, label_classes=-1)


def test_translator_label_learns_what_the_landmarks_do_not_show():
    """Faces that differ by class only (as the world's cheek raise hardly moves the landmarks): with
    the class as input the translator's L1 falls far below the best a class-blind one can do."""
    neutral, marks = torch.zeros(4, 3, 64, 64), torch.zeros(4, 1, 64, 64)
    label = torch.tensor([0, 1, 0, 1])
    target = (label.float() - 0.5).view(4, 1, 1, 1).expand(4, 3, 64, 64)  # -0.5 posed, +0.5 spontaneous
    errors = {}
    for classes in (0, 2):
        torch.manual_seed(0)
        translator = UNetTranslator(4, label_classes=classes)
        optimiser = torch.optim.Adam(translator.parameters(), lr=2e-3)
        for _ in range(150):
            loss = (translator(marks, neutral, label if classes else None) - target).abs().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        errors[classes] = float(loss)
    assert errors[0] > 0.45  # class-blind: the same input, two targets 1 apart -> L1 >= 0.5 at best
    assert errors[2] < 0.1, errors


class SequencesWithAU(Sequences):
    """AU6 = the frame index, AU12 = 10 x it: a drawn frame's intensities name the frame."""

    def __getitem__(self, i: int) -> dict:
        steps = torch.arange(T, dtype=torch.float32)
        return dict(super().__getitem__(i), au=torch.stack([steps, 10 * steps], dim=-1))


def test_translator_au_weight_trains_an_au_head_and_a_generator_term(tmp_path):
    torch.manual_seed(0)
    paper = small().state_dict()
    assert not any("au_head" in k for k in paper)  # off by default: the paper's D, same keys
    torch.manual_seed(0)
    with_head = small(translator_au_weight=1.0).state_dict()
    # the head does not shift the random stream: every other weight is initialised as without it
    assert set(with_head) - set(paper) == {"discriminator.au_head.weight", "discriminator.au_head.bias"}
    assert all(torch.equal(paper[k], with_head[k]) for k in paper)
    after = []
    for kw in ({}, {"translator_au_weight": 1.0}):
        torch.manual_seed(0)
        small(**kw)
        after.append(torch.rand(3))
    assert torch.equal(*after)  # nor what is drawn after the model (the data order)
    with pytest.raises(RuntimeError, match="no AU head"):
        small().discriminator.patches_and_aus(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    model = small(translator_au_weight=2.0, phases=["translation"], phase_epochs=[1], translation_frames=2)
    pair = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    patches, aus = model.discriminator.eval().patches_and_aus(*pair)
    assert patches.shape == (3, 1, 6, 6) and aus.shape == (3, 2)
    assert torch.equal(patches, model.discriminator(*pair))  # one pass gives the usual patch logits too
    # the drawn frames' intensities travel with them
    data = SequencesWithAU(2)
    batch = {k: torch.stack([data[i][k] for i in range(2)]) for k in ("video", "landmark_images", "au")}
    _, real, _, _, au, _ = model.train()._pairs(batch["video"][:, 0], batch["video"], batch["landmark_images"], batch["au"])
    assert au.shape == (4, 2) and torch.equal(au[:, 1], 10 * au[:, 0])
    frame = au[:, 0].long()
    assert torch.equal(real, batch["video"][torch.arange(2).repeat_interleave(2), frame])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(model, DataLoader(SequencesWithAU(), batch_size=2))  # one batch: D step, G step
    assert _changed(before, model) == {"translator", "discriminator"}
    # only D's loss reaches the AU head (its patch logits do not depend on it)
    assert not torch.equal(before["discriminator.au_head.weight"], model.discriminator.au_head.weight)
    logged = trainer.callback_metrics
    assert logged["train/discriminator_au"] > 0 and logged["train/translation_au"] > 0
    expected = 100 * logged["train/translation_l1"] + logged["train/generator_adversarial"] + 2.0 * logged["train/translation_au"]
    assert torch.isclose(logged["train/loss"], expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"batch\['au'\]"):  # the option needs AU labels
        trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
        trainer.fit(small(translator_au_weight=1.0, phases=["translation"], phase_epochs=[1]),
                    DataLoader(Sequences(), batch_size=2))
    with pytest.raises(ValueError, match="translator_au_weight"):
        small(translator_au_weight=-1.0)
    with pytest.raises(ValueError, match="translator_au_weight"):
        small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1], translator_au_weight=1.0)


def test_latent_recurrent_losses_hand_computed():
    """``recurrent_loss: latent``: h_t against the frozen encoder's means of the real frames."""
    torch.manual_seed(0)
    model = small(recurrent_loss="latent", vae_weight=0.0, best_of_k_weight=1.0).train()
    batch = next(iter(DataLoader(Sequences(), batch_size=2)))
    marks, label = batch["landmark_images"], batch["label"]
    running = model.encoder.features[3].running_mean.clone()  # first BatchNorm of the encoder
    losses = model.recurrent_losses(marks, label, "multimode")
    assert torch.equal(model.encoder.features[3].running_mean, running)  # frozen: eval mode, no statistics update
    model.eval()
    goal = model.encoder(marks.flatten(0, 1))[0].view(2, T, -1)
    h = model.clstm(goal[:, 0], label, T)
    assert losses["sequence_latent"].item() == pytest.approx(((h - goal) ** 2).sum(-1).mean().item(), rel=1e-5)
    modes = model.modes(h)
    per_mode = ((modes - goal[:, None]) ** 2).sum(-1).mean(-1)  # (B, K)
    assert losses["best_of_k"].item() == pytest.approx(per_mode.min(1).values.mean().item(), rel=1e-5)
    assert {"pull", "push", "best_of_k_top_share"} <= set(losses) and "sequence_reconstruction" not in losses
    expected = losses["sequence_latent"] + losses["pull"] + losses["push"] + losses["best_of_k"]
    assert model.weighted(losses, "multimode").item() == pytest.approx(expected.item(), rel=1e-5)
    assert not any(p.grad is not None for p in model.encoder.parameters())
    losses["sequence_latent"].backward()
    assert all(p.grad is None for p in [*model.encoder.parameters(), *model.decoder.parameters()])
    with pytest.raises(ValueError, match="vae_weight"):
        small(recurrent_loss="latent")  # default vae_weight 1 would fine-tune what the targets come from
    with pytest.raises(ValueError, match="recurrent_loss"):
        small(recurrent_loss="pixel")
    with pytest.raises(ValueError, match="recurrent_loss"):
        small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1], recurrent_loss="latent", vae_weight=0.0)


@pytest.mark.parametrize("phase,trained", [("clstm", {"clstm"}), ("multimode", {"clstm", "modes"})])
def test_latent_recurrent_phases_leave_the_vae_alone(phase, trained, tmp_path):
    L.seed_everything(0)
    model = small(recurrent_loss="latent", vae_weight=0.0, best_of_k_weight=1.0, phases=[phase], phase_epochs=[1])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=1)
    trainer.fit(model, DataLoader(Sequences(), batch_size=2), DataLoader(Sequences(), batch_size=2))
    assert _changed(before, model) == trained
    assert all(torch.equal(buffers[n], b) for n, b in model.named_buffers() if n.startswith(("encoder", "decoder")))
    assert torch.isfinite(trainer.callback_metrics["train/sequence_latent"])
    assert torch.isfinite(trainer.callback_metrics["val/loss"])


def test_step_benchmark_prints_and_writes_its_figures(tmp_path, capsys):
    """benchmarks/cmmnet_step.py (the issue's step-time and memory script), at its smallest: one
    timed VAE step of one sequence, with the decoder that reads the neutral landmark image."""
    import json
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "cmmnet_step.py"), run_name="benchmark")
    out = tmp_path / "step.json"
    assert script["main"](["--phases", "vae", "--steps", "1", "--warmup", "0", "--batch", "1",
                           "--decoder-neutral-landmarks", "--json", str(out)]) == 0
    assert "vae +neutral" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    assert row["phase"] == "vae" and row["decoder_neutral_landmarks"] and row["batch"] == 1
    assert row["step_s_median"] > 0 and row["peak_rss_mb"] > 0
    plain = CMMNet(**script["PRESETS"]["demo"]["model"])
    assert row["parameters"] > sum(p.numel() for p in plain.parameters())  # the condition encoder's weights
    assert script["main"](["--phases", "translation", "--steps", "1", "--warmup", "0", "--batch", "1",
                           "--translator-label", "--json", str(out)]) == 0
    assert "translation +label" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    assert row["translator_label"] and row["parameters"] > sum(p.numel() for p in plain.parameters())


def test_translate_sequences_is_translate_frame_by_frame_with_each_sequence_neutral():
    torch.manual_seed(0)
    model = small(translator_neutral_landmarks=True).eval()
    data = Sequences(2)
    neutral, marks = data.video[:, 0], data.marks
    faces = model.translate_sequences(marks, neutral, marks[:, 0])
    assert faces.shape == (2, T, 3, 64, 64)
    with torch.no_grad():
        for b in range(2):
            by_hand = model.translate(marks[b], neutral[b:b + 1].expand(T, -1, -1, -1), marks[b, :1].expand(T, -1, -1, -1))
            assert torch.allclose(faces[b], by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="neutral_landmark_image"):
        model.translate_sequences(marks, neutral)  # this translator reads the neutral landmark image


def test_vae_mirror_flips_whole_sequences_in_vae_steps(tmp_path, monkeypatch):
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="vae_mirror"):
            small(vae_mirror=bad)
    assert set(small(vae_mirror=0.5).state_dict()) == set(small().state_dict())  # no new weights
    for p, expect_mirrored in ((1.0, True), (0.0, False)):
        seen = []
        model = small(phases=["vae"], phase_epochs=[1], vae_mirror=p)
        original = model.vae_losses
        monkeypatch.setattr(model, "vae_losses",
                            lambda frames, neutral, seen=seen, original=original:
                            seen.append((frames, neutral)) or original(frames, neutral))
        trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
        trainer.fit(model, DataLoader(Sequences(), batch_size=2))
        marks = Sequences().marks[:2]
        expected = marks.flip(-1) if expect_mirrored else marks
        (frames, neutral), = seen
        assert torch.equal(frames, expected) and torch.equal(neutral, expected[:, 0])  # frames and condition together


@pytest.mark.parametrize("phase", ["clstm", "multimode"])
def test_recurrent_mirror_flips_whole_sequences_in_recurrent_steps(phase, tmp_path, monkeypatch):
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="recurrent_mirror"):
            small(recurrent_mirror=bad)
    with pytest.raises(ValueError, match="recurrent_mirror"):
        small(variant="cranet", phases=["vae", "clstm"], phase_epochs=[1, 1], recurrent_mirror=0.5)
    assert set(small(recurrent_mirror=0.5).state_dict()) == set(small().state_dict())  # no new weights
    for p, expect_mirrored in ((1.0, True), (0.0, False)):
        seen = []
        model = small(phases=[phase], phase_epochs=[1], recurrent_mirror=p, recurrent_loss="latent", vae_weight=0.0,
                      best_of_k_weight=1.0)
        original = model.recurrent_losses
        monkeypatch.setattr(model, "recurrent_losses",
                            lambda targets, label, phase, seen=seen, original=original:
                            seen.append(targets) or original(targets, label, phase))
        trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
        trainer.fit(model, DataLoader(Sequences(), batch_size=2))
        marks = Sequences().marks[:2]
        targets, = seen
        assert torch.equal(targets, marks.flip(-1) if expect_mirrored else marks)
    state = torch.get_rng_state()
    assert torch.equal(model.mirrored(marks, 0.0), marks)
    assert torch.equal(torch.get_rng_state(), state)  # p = 0 draws nothing: runs without it stay bit-identical


def test_mirroring_leaves_the_global_stream_and_so_the_translator_untouched(tmp_path):
    """The mirror draws come from the module's own generator: a run with ``vae_mirror`` and
    ``recurrent_mirror`` draws the same global random numbers as one without, so its translator
    (trained after, never reading the landmark path) is bit-identical while its VAE differs."""
    def run(p: float) -> CMMNet:
        L.seed_everything(0)
        model = small(phases=["vae", "clstm", "translation"], phase_epochs=[1, 1, 1], vae_mirror=p,
                      recurrent_mirror=p, recurrent_loss="latent", vae_weight=0.0, translation_frames=2)
        trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
        trainer.fit(model, DataLoader(Sequences(), batch_size=2, shuffle=True))
        return model

    plain, mirrored = run(0.0), run(1.0)
    # the VAE saw mirrored faces ...
    assert any(not torch.equal(a, b) for a, b in zip(plain.decoder.parameters(), mirrored.decoder.parameters()))
    # ... the translator trained on the same random numbers
    for (name, a), b in zip(plain.translator.state_dict().items(), mirrored.translator.state_dict().values()):
        assert torch.equal(a, b), name
    model = small(vae_mirror=0.5)
    L.seed_everything(3)
    before = torch.get_rng_state()
    flipped = model.mirrored(torch.arange(4.0).view(1, 1, 1, 1, 4).expand(4, T, 1, 4, 4), 1.0)
    assert torch.equal(torch.get_rng_state(), before)  # no global draw
    assert torch.equal(flipped[:, :, 0, 0], torch.arange(4.0).flip(0).expand(4, T, 4))  # columns reversed


def test_mirror_generator_survives_a_checkpoint():
    model = small(vae_mirror=0.5)
    model.mirror_generator().manual_seed(5)
    torch.rand(3, generator=model.mirror_generator())
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    expected = torch.rand(4, generator=model.mirror_generator())
    resumed = small(vae_mirror=0.5)
    resumed.on_load_checkpoint(checkpoint)
    assert torch.equal(torch.rand(4, generator=resumed.mirror_generator()), expected)
    fresh: dict = {}
    small().on_save_checkpoint(fresh)
    assert "cmmnet_mirror_generator" not in fresh  # nothing drawn, nothing stored
