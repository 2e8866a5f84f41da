"""DyadGAN: affect-shape dictionary, both C-LSTM settings, both GAN stages, the one-stage
baseline, generation, `facezoo generate` files and bad-input errors."""

from __future__ import annotations

import argparse

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.interview import read_affect_csv
from datamodules.synthetic.interview_world import write_affect_csv
from zoo.dyadgan import AffectShapeDictionary, DyadGAN
from zoo.dyadgan.dictionary import adjacent_step_limit
from zoo.dyadgan.nets import ConditionalLSTM, PatchDiscriminator, UNetGenerator

H, F, P, S = 6, 4, 5, 16


def _model(**kwargs) -> DyadGAN:
    settings = dict(shape_dim=P, history=H, horizon=F, image_size=S, condition_dim=8, ngf=4, ndf=4, unet_ngf=4,
                    patch_ndf=4, patch_layers=2, lstm_hidden=8, lstm_layers=1, dictionary_min_cluster_size=5)
    settings.update(kwargs)
    return DyadGAN(**settings)


class _Batches(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"affect": torch.rand(H + F, 8, generator=g).softmax(-1), "shape": torch.randn(H + F, P, generator=g),
                "sketch": torch.randint(0, 2, (1, S, S), generator=g).float() * 2 - 1,
                "face": torch.rand(3, S, S, generator=g) * 2 - 1, "target_shape": torch.randn(F, P, generator=g)}


def _blobs(seed: int = 0):
    """8 affects, each a blob of two sub-blobs (40 + 50 frames) far from the others."""
    rng = np.random.default_rng(seed)
    shapes, labels = [], []
    for a in range(8):
        centre = np.zeros(3)
        centre[a % 3] = 20.0 * (1 + a // 3)
        for offset, n in ((np.array([0, 0, 2.0]), 40), (np.array([0, 0, -2.0]), 50)):
            shapes.append(centre + offset + rng.normal(0, 0.2, (n, 3)))
            labels += [a] * n
    affect = np.eye(8)[labels]
    return np.concatenate(shapes), affect


def test_dictionary_clusters_respect_the_minimum_size_and_name_affects():
    shapes, affect = _blobs()
    d = AffectShapeDictionary(3, min_cluster_size=30, max_subclusters=9).fit(shapes, affect, np.full(3, 0.5))
    assert (d.sub_sizes >= 30).all()
    assert d.subclusters_per_affect() == [2] * 8  # each affect: its two sub-blobs, 3+ would break the minimum
    for s in range(len(d.centres)):
        a = int(d.sub_affect[s])
        own = shapes[affect.argmax(1) == a].mean(0)
        assert np.linalg.norm(d.centres[s].numpy()[:2] - own[:2]) < 1.0
    strict = AffectShapeDictionary(3, min_cluster_size=70).fit(shapes, affect, np.full(3, 0.5))
    assert strict.subclusters_per_affect() == [1] * 8 and (strict.sub_sizes == 90).all()


def test_dictionary_sampling_is_smooth_diverse_and_follows_the_affect():
    shapes, affect = _blobs()
    limit = np.full(3, 0.5)
    d = AffectShapeDictionary(3, min_cluster_size=30).fit(shapes, affect, limit)
    labels = np.repeat([0, 4], 200)
    z = d.sample(torch.eye(8)[labels], num_samples=3, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 3, 400, 3)
    steps = (z[0, :, 1:] - z[0, :, :-1]).abs()
    assert (steps <= torch.tensor(limit, dtype=torch.float32) + 1e-5).all()  # never jumps
    affect4 = shapes[affect.argmax(1) == 4].mean(0)
    assert np.linalg.norm(z[0, :, -1].numpy()[:, :2] - affect4[:2], axis=-1).max() < 1.0  # arrived at affect 4
    assert (z[0, 0] - z[0, 1]).abs().max() > 0.1  # different samples differ
    again = AffectShapeDictionary(3)
    again.load_state_dict(d.state_dict())
    torch.testing.assert_close(again.sample(torch.eye(8)[labels], 3, torch.Generator().manual_seed(0)), z)


def test_dictionary_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        AffectShapeDictionary(3).sample(torch.rand(5, 8))
    with pytest.raises(ValueError, match="affect"):
        AffectShapeDictionary(3).fit(np.zeros((10, 3)), np.zeros((9, 8)), np.ones(3))
    with pytest.raises(ValueError, match="step_limit"):
        AffectShapeDictionary(3).fit(np.zeros((10, 3)), np.zeros((10, 8)), np.zeros(3))
    assert adjacent_step_limit([np.array([[0.0], [1.0], [3.0]])], 1.0).tolist() == [2.0]


def test_clstm_settings_overlapping_fifo_and_non_overlapping_blocks():
    torch.manual_seed(0)
    affect, history = torch.rand(2, H + 12 - 1, 8), torch.randn(2, H, P)
    overlap = ConditionalLSTM(P, horizon=1, hidden=8, layers=1)
    out = overlap.rollout(affect, history, 12)
    assert out.shape == (2, 12, P)
    # FIFO: frame 3 is predicted from the history's last H-3 frames and generated frames 0..2
    window = torch.cat([history[:, 3:], out[:, :3]], dim=1)
    torch.testing.assert_close(out[:, 3:4], overlap(affect[:, 3:3 + H], window))
    blocks = ConditionalLSTM(P, horizon=H, hidden=8, layers=1)
    out = blocks.rollout(affect, history, 12)
    assert out.shape == (2, 12, P)
    torch.testing.assert_close(out[:, H:], blocks(affect[:, H:2 * H], out[:, :H]))  # no overlap between blocks
    with pytest.raises(ValueError, match="affect"):
        overlap.rollout(affect[:, :5], history, 12)


@pytest.mark.slow
def test_clstm_learns_a_predictable_sequence():
    torch.manual_seed(0)
    lstm = ConditionalLSTM(2, horizon=1, hidden=16, layers=1)
    t = torch.arange(H + 1).float()
    phases = torch.rand(32, 1) * 6.28
    seq = torch.stack([torch.sin(0.5 * t + phases), torch.cos(0.5 * t + phases)], -1)
    affect = torch.zeros(32, H, 8)
    opt = torch.optim.Adam(lstm.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(lstm(affect, seq[:, :H]), seq[:, H:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_unet_and_patch_discriminator_shapes_and_size_rule():
    unet = UNetGenerator(1, 3, num_downs=4, ngf=4, image_size=16)
    out = unet(torch.randn(2, 1, 16, 16))
    assert out.shape == (2, 3, 16, 16) and out.abs().max() <= 1
    assert len(unet.downs) == len(unet.ups) == 4
    assert PatchDiscriminator(4, 4)(torch.randn(2, 1, 64, 64), torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="2 \\*\\* num_downs"):
        UNetGenerator(num_downs=8, image_size=64)
    with pytest.raises(ValueError, match="power of two"):
        _model(image_size=48)
    with pytest.raises(ValueError, match="patch_layers"):
        _model(patch_layers=3)


@pytest.mark.parametrize("architecture", ["two_stage", "one_stage"])
def test_training_updates_generators_twice_per_discriminator_update(architecture):
    model = _model(architecture=architecture)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(model, DataLoader(_Batches(), batch_size=2))
    optimizers = trainer.optimizers

    def steps(opt):
        return {int(s["step"]) for s in opt.state.values()}

    assert steps(optimizers[0]) == {1}  # C-LSTMs
    assert steps(optimizers[1]) == {2} and steps(optimizers[2]) == {1}  # stage 1 (or the one-stage GAN)
    assert len(optimizers) == (5 if architecture == "two_stage" else 3)
    if architecture == "two_stage":
        assert steps(optimizers[3]) == {2} and steps(optimizers[4]) == {1}  # stage 2
        assert {k for k in trainer.callback_metrics if k.startswith("train/translator")}


def test_generate_returns_sketches_and_faces_for_both_strategies():
    model = _model()
    shapes = torch.randn(200, P)
    model.dictionary.fit(shapes.numpy(), torch.rand(200, 8).numpy(), np.full(P, 0.3))
    affect = torch.rand(15, 8).softmax(-1)
    out = model.generate(affect, "dictionary", num_samples=2, chunk=7)
    assert out["shape"].shape == (1, 2, 15, P)
    assert out["sketch"].shape == (1, 2, 15, S, S) and out["sketch"].dtype == torch.uint8
    assert out["face"].shape == (1, 2, 15, S, S, 3) and out["face"].dtype == torch.uint8
    lstm = model.generate(affect[None].repeat(2, 1, 1), "lstm", num_samples=2)
    assert lstm["shape"].shape == (2, 2, 15, P)
    torch.testing.assert_close(lstm["shape"][:, 0], lstm["shape"][:, 1])  # the C-LSTM gives one sequence
    one = _model(architecture="one_stage")
    assert one.generate(affect, "lstm_nonoverlap")["sketch"] is None
    batch = next(iter(DataLoader(_Batches(), batch_size=2)))
    assert model.generate_sequences(batch, 3).shape == (2, 3, F, P)
    fake, real = model.image_pairs(batch)
    assert fake.shape == real.shape == (2, 3, S, S) and fake.dtype == torch.uint8
    with pytest.raises(ValueError, match="affect_sequence"):
        model.generate(torch.rand(10, 7))
    with pytest.raises(ValueError, match="strategy"):
        model.generate(affect, "random")
    with pytest.raises(ValueError, match="shape_dim"):
        model.training_step({**batch, "shape": torch.randn(2, H + F, P + 1)}, 0)


def test_generate_to_files_writes_mp4s(tmp_path):
    model = _model()
    model.dictionary.fit(np.random.default_rng(0).normal(size=(100, P)), np.eye(8)[np.arange(100) % 8], np.full(P, 0.3))
    affect = np.random.default_rng(1).dirichlet(np.ones(8), size=12)
    write_affect_csv(tmp_path / "clip.csv", affect)
    np.testing.assert_allclose(read_affect_csv(tmp_path / "clip.csv"), affect, atol=1e-5)
    parser = argparse.ArgumentParser()
    DyadGAN.add_generate_arguments(parser)
    args = parser.parse_args(["--affect", str(tmp_path / "clip.csv")])
    args.num_samples = 2
    written = model.generate_to_files(args, tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["clip_dictionary_sample0_face.mp4", "clip_dictionary_sample0_sketch.mp4",
                     "clip_dictionary_sample1_face.mp4", "clip_dictionary_sample1_sketch.mp4", "clip_dictionary_shape.npy"]
    assert np.load(tmp_path / "clip_dictionary_shape.npy").shape == (2, 12, P)
    args = parser.parse_args(["--affect", str(tmp_path / "missing.csv")])
    args.num_samples = 1
    with pytest.raises(FileNotFoundError, match="--affect"):
        model.generate_to_files(args, tmp_path)


def test_stage_two_reads_a_binarised_sketch_unless_switched_off():
    torch.manual_seed(0)
    z, window = torch.randn(3, P), torch.rand(3, H, 8)
    binary = _model().eval()
    sketch, face = binary.render(z, window)
    assert set(sketch.unique().tolist()) <= {-1.0, 1.0} and face.shape == (3, 3, S, S)
    seen = []
    binary.translator.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    binary.render(z, window)
    assert torch.equal(seen[0], sketch)  # stage 2 got exactly the binary sketch
    raw = _model(binarize_sketch=False).eval()
    raw.load_state_dict(binary.state_dict())
    raw_sketch, raw_face = raw.render(z, window)
    assert torch.equal(torch.where(raw_sketch > 0, 1.0, -1.0), sketch)
    assert not torch.equal(raw_sketch, sketch) and not torch.allclose(raw_face, face)
