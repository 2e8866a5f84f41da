"""zoo.transae: the Trans-AE LightningModule (shapes, losses, training, ablations, Trainer runs)."""

from __future__ import annotations

import functools
import inspect

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from tiny_configs import TINY_W2V

from zoo.transae import TransAE, reactface_adamw


def tiny_model(**kwargs) -> TransAE:
    torch.manual_seed(0)
    args = dict(feature_dim=32, num_heads=4, period=4, audio_pretrained=None, audio_config=TINY_W2V)
    args.update(kwargs)
    return TransAE(**args)


def lagged_batch(batch: int = 4, frames: int = 24, size: int = 32, lag: int = 2, seed: int = 0) -> dict:
    """Speaker video shows a latent s_t (3 fixed spatial patterns); the speaker's face state is
    a linear function of s_t and the listener's a different linear function of s_{t-lag}."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(batch, frames, 3, generator=g).cumsum(1) * 0.3
    basis = torch.randn(3, size, size, generator=g)
    frame = torch.tanh(torch.einsum("btc,chw->bthw", s, basis))
    video = frame[:, :, None].expand(batch, frames, 3, size, size).contiguous()
    speaker_map, listener_map = torch.randn(2, 3, 58, generator=g) * 0.5
    lagged = torch.cat([torch.zeros(batch, lag, 3), s[:, :-lag]], dim=1)
    return {
        "speaker_video": video,
        "speaker_audio": torch.randn(batch, frames * 640, generator=g),
        "speaker_3dmm": s @ speaker_map,
        "listener_3dmm": lagged @ listener_map,
        "speaker_emotion": torch.rand(batch, frames, 25, generator=g),
        "listener_emotion": torch.rand(batch, frames, 25, generator=g),
        "index": torch.arange(batch),
        "start": torch.zeros(batch, dtype=torch.long),
    }


def no_logging(model: TransAE) -> TransAE:
    model.log = lambda *args, **kwargs: None
    model.log_dict = lambda *args, **kwargs: None
    return model


def test_shapes_and_deterministic_samples():
    model = tiny_model().eval()
    batch = lagged_batch(batch=2, frames=16)
    assert model(batch).shape == (2, 16, 58)
    samples = model.generate_from_batch(batch, num_samples=3)
    assert samples.shape == (2, 3, 16, 58) and samples.dtype == torch.float32
    torch.testing.assert_close(samples[:, 0], samples[:, 2])  # deterministic: K copies
    torch.testing.assert_close(samples[:, 0], model(batch))
    direct = model.generate(batch["speaker_video"], batch["speaker_audio"], num_samples=2)
    torch.testing.assert_close(direct, samples[:, :2])
    out = model.predict_step(batch, 0)
    assert out["prediction"].shape == (2, 10, 16, 58)  # REACT protocol: 10 per speaker
    assert torch.equal(out["index"], batch["index"]) and torch.equal(out["start"], batch["start"])


def test_generate_keeps_training_mode_and_gradients_off():
    model = tiny_model()
    model.train()
    batch = lagged_batch(batch=1, frames=8)
    out = model.generate(batch["speaker_video"], batch["speaker_audio"])
    assert model.training and not out.requires_grad


def test_loss_matches_hand_computation():
    model = no_logging(tiny_model(use_audio=False)).eval()
    batch = lagged_batch(batch=2, frames=12)
    torch.manual_seed(1)
    loss = model.training_step(batch, 0)
    out = model.net(batch["speaker_video"], reconstruct_speaker=True)
    pred, target = out.listener, batch["listener_3dmm"]
    expected = (F.smooth_l1_loss(pred[..., :52], target[..., :52])
                + 10 * F.smooth_l1_loss(pred[..., 52:], target[..., 52:])
                + 1.0 * F.smooth_l1_loss(out.speaker, batch["speaker_3dmm"]))
    torch.testing.assert_close(loss, expected)
    mean = model.listener_loss(torch.zeros_like(target), target)["listener_loss"]
    torch.testing.assert_close(mean, F.smooth_l1_loss(torch.zeros(2, 12, 52), target[..., :52])
                               + 10 * F.smooth_l1_loss(torch.zeros(2, 12, 6), target[..., 52:]))


def test_loss_decreases_on_a_lagged_linear_listener():
    model = no_logging(tiny_model(optimizer=functools.partial(torch.optim.AdamW, lr=3e-3)))
    optimizer = model.configure_optimizers()
    batch = lagged_batch()
    losses = []
    for step in range(30):
        optimizer.zero_grad()
        loss = model.training_step(batch, step)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0], losses
    model.eval()
    with torch.no_grad():
        listener = model.listener_loss(model(batch), batch["listener_3dmm"])["listener_loss"]
        mean = model.listener_loss(torch.zeros_like(batch["listener_3dmm"]), batch["listener_3dmm"])
    assert listener < mean["listener_loss"]  # beats the mean reaction


@pytest.mark.parametrize(
    ("kwargs", "dropped_key"),
    [({}, None), ({"use_audio": False}, "speaker_audio"), ({"use_video": False}, "speaker_video"),
     ({"speaker_reconstruction_weight": 0.0}, "speaker_3dmm")],
)
def test_ablations_drop_modules_keys_and_leave_no_unused_parameters(kwargs, dropped_key):
    model = no_logging(tiny_model(**kwargs))
    net = model.net
    if kwargs.get("use_audio") is False:
        assert net.speaker_encoder.audio_encoder is None
    if kwargs.get("use_video") is False:
        assert net.speaker_encoder.video_encoder is None and net.speaker_encoder.video_layer is None
    if "speaker_reconstruction_weight" in kwargs:
        assert net.speaker_head is None
    batch = lagged_batch(batch=2, frames=12)
    if dropped_key:
        del batch[dropped_key]
    model.training_step(batch, 0).backward()
    # plain DDP (find_unused_parameters=False) needs a gradient for every trainable parameter
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused


def test_both_modalities_off_is_an_error():
    with pytest.raises(ValueError, match="at least one speaker modality"):
        tiny_model(use_video=False, use_audio=False)


def test_bad_batches_raise_clear_errors():
    model = no_logging(tiny_model())
    batch = lagged_batch(batch=2, frames=8)
    missing_video = {k: v for k, v in batch.items() if k != "speaker_video"}
    with pytest.raises(ValueError, match=r"'speaker_video'.*load_video: true"):
        model.training_step(missing_video, 0)
    missing_audio = {k: v for k, v in batch.items() if k != "speaker_audio"}
    with pytest.raises(ValueError, match=r"'speaker_audio'.*load_audio: true"):
        model(missing_audio)
    with pytest.raises(ValueError, match=r"'listener_3dmm'"):
        model.training_step({k: v for k, v in batch.items() if k != "listener_3dmm"}, 0)
    with pytest.raises(ValueError, match=r"listener_3dmm'\] must have shape \(2, 8, 58\)"):
        model.training_step({**batch, "listener_3dmm": torch.zeros(2, 8, 25)}, 0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model(dict(batch, speaker_video=batch["speaker_video"] * 127.5 + 127.5))
    with pytest.raises(ValueError, match="dict batch"):
        model.training_step([batch["speaker_video"]], 0)
    with pytest.raises(ValueError, match="needs? 5120"):
        model(dict(batch, speaker_audio=batch["speaker_audio"][:, :3000]))


def test_bad_init_args():
    with pytest.raises(ValueError, match="loss must be one of"):
        tiny_model(loss="huber")
    with pytest.raises(ValueError, match="query_encoding"):
        tiny_model(query_encoding="learned")


def test_optimizer_defaults_to_the_reactface_recipe():
    model = tiny_model(use_audio=False)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 2e-5 and optimizer.defaults["weight_decay"] == 5e-4
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    assert all(id(p) not in frozen for group in optimizer.param_groups for p in group["params"])
    assert "optimizer" not in model.hparams and model.hparams.feature_dim == 32
    assert inspect.signature(TransAE.__init__).parameters["optimizer"].default is reactface_adamw
    sched = tiny_model(use_audio=False, lr_scheduler=functools.partial(
        torch.optim.lr_scheduler.StepLR, step_size=1)).configure_optimizers()
    assert sched["lr_scheduler"]["monitor"] == "val/loss"


def _loader(frames: int = 16, size: int = 32, n: int = 4) -> torch.utils.data.DataLoader:
    batch = lagged_batch(batch=n, frames=frames, size=size)
    items = [{k: v[i] for k, v in batch.items()} for i in range(n)]
    return torch.utils.data.DataLoader(items, batch_size=2)


def test_fast_dev_run_bf16_mixed_and_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    trainer = L.Trainer(
        fast_dev_run=True, accelerator="cpu", precision="bf16-mixed", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, _loader(), _loader())
    metrics = trainer.callback_metrics
    for name in ("train/loss", "val/loss", "val/listener_loss", "val/mean_reaction_loss", "val/speaker_loss"):
        assert name in metrics and torch.isfinite(metrics[name]), name
    out = trainer.predict(model, _loader())
    assert out[0]["prediction"].shape == (2, 10, 16, 58) and out[0]["prediction"].dtype == torch.float32
    test = trainer.test(model, _loader(), verbose=False)[0]
    assert {"test/loss", "test/listener_loss", "test/mean_reaction_loss"} <= test.keys()

    path = tmp_path / "transae.ckpt"
    trainer.save_checkpoint(path)
    restored = TransAE.load_from_checkpoint(path, weights_only=True)  # YAML-primitive hparams only
    batch = lagged_batch(batch=2, frames=16)
    model.eval()
    torch.testing.assert_close(restored.generate_from_batch(batch), model.generate_from_batch(batch))
