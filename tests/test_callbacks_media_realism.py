"""Realism, dyadic and sample-media callbacks with a tiny LightningModule and small random
feature networks: logged values equal the functional metrics on the same samples, schedules,
checkpoint size, media files and logger calls."""

from __future__ import annotations

import contextlib
import importlib.util
import types
from pathlib import Path

import cv2
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from torch import nn
from torch.utils.data import DataLoader

from callbacks.dyadic import DyadicMetricsCallback
from callbacks.media import SampleMediaCallback, check_media, frame_strip
from callbacks.realism import RealismCallback
from datamodules.features.io import read_video
from zoo.metrics.dyadic import best_of_k_mse, mean_jerk, sample_diversity, sequence_mse
from zoo.metrics.realism import (
    delta_inception_score,
    frechet_inception_distance,
    inception_score,
    structural_similarity,
)

T, P, K = 6, 3, 3


class TinyImageNet(nn.Module):
    def __init__(self, out: int) -> None:
        super().__init__()
        self.num_features = out
        self.conv = nn.Conv2d(3, out, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x.float() / 255.0)).mean(dim=(2, 3)) * 3


def make_items(n: int = 12, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        real = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g)
        fake = (real.int() + torch.randint(-40, 40, (3, 16, 16), generator=g)).clamp(0, 255).to(torch.uint8)
        items.append({
            "x": torch.randn(4, generator=g),
            "real": real,
            "fake": fake,
            "target_shape": torch.randn(T, P, generator=g),
            "noise": torch.randn(K, T, P, generator=g) * 0.3,
        })
    return items


class ToyGenerator(pl.LightningModule):
    """Implements the three callback interfaces from batch contents, so results are known."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.image_pair_calls: dict[int, int] = {}

    def training_step(self, batch, batch_idx):
        return self.layer(batch["x"]).square().mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch["x"]).square().mean())

    def test_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def image_pairs(self, batch):
        epoch = self.trainer.current_epoch
        self.image_pair_calls[epoch] = self.image_pair_calls.get(epoch, 0) + 1
        return batch["fake"], batch["real"]

    def generate_sequences(self, batch, num_samples):
        return batch["target_shape"][:, None] + batch["noise"][:, :num_samples]

    def media_samples(self, batch):
        frames = batch["fake"][:1].expand(5, -1, -1, -1)  # 5-frame "video" of the first sample
        return {
            "video": frames.permute(0, 2, 3, 1).contiguous().numpy(),
            "grid": torch.cat(list(batch["fake"][:2]), dim=2).permute(1, 2, 0).contiguous().numpy(),
        }


def loader(items, batch_size: int = 4) -> DataLoader:
    return DataLoader(items, batch_size=batch_size, shuffle=False)


def trainer(tmp_path: Path, callbacks, **kw) -> pl.Trainer:
    defaults = dict(
        default_root_dir=tmp_path, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1,
    )
    defaults.update(kw)
    return pl.Trainer(callbacks=callbacks, **defaults)


def stacked(items, key: str) -> torch.Tensor:
    return torch.stack([it[key] for it in items])


# ---------------------------------------------------------------- RealismCallback


def test_realism_callback_logs_functional_values(tmp_path):
    torch.manual_seed(0)
    fid_net, is_net = TinyImageNet(6).eval(), TinyImageNet(9).eval()
    items = make_items(12)
    cb = RealismCallback(metrics=("fid", "ssim", "is", "delta_is"), is_splits=2,
                         feature_extractors={"fid": fid_net, "is": is_net})
    model = ToyGenerator()
    trainer(tmp_path, [cb]).validate(model, loader(items), verbose=False)
    logged = model.trainer.callback_metrics
    fake, real = stacked(items, "fake"), stacked(items, "real")
    assert float(logged["val/FID"]) == pytest.approx(frechet_inception_distance(fake, real, fid_net), rel=1e-5)
    assert float(logged["val/SSIM"]) == pytest.approx(float(structural_similarity(fake, real)), rel=1e-5)
    is_mean, is_std = inception_score(fake, 2, is_net)
    assert float(logged["val/IS"]) == pytest.approx(is_mean, rel=1e-5)
    assert float(logged["val/IS_std"]) == pytest.approx(is_std, rel=1e-4, abs=1e-6)
    delta = delta_inception_score(fake, real, 2, is_net)
    assert float(logged["val/delta_IS"]) == pytest.approx(delta["delta_IS"], rel=1e-4, abs=1e-6)
    assert float(logged["val/IS_real"]) == pytest.approx(delta["IS_real"], rel=1e-5)


def test_realism_callback_max_batches_and_every_n_epochs(tmp_path):
    items, net = make_items(12), TinyImageNet(6).eval()
    cb = RealismCallback(metrics=("fid",), every_n_epochs=2, max_batches=2, feature_extractors={"fid": net})
    model = ToyGenerator()
    trainer(tmp_path, [cb], max_epochs=3, limit_train_batches=1).fit(model, loader(items), loader(items))
    # validation runs every epoch; the callback only in epoch 1 ((1 + 1) % 2 == 0), on 2 batches
    assert model.image_pair_calls == {1: 2}
    fake, real = stacked(items[:8], "fake"), stacked(items[:8], "real")
    # callback_metrics keep the epoch-1 value (epoch 2 logged nothing new for val/FID)
    assert float(model.trainer.callback_metrics["val/FID"]) == pytest.approx(frechet_inception_distance(fake, real, net), rel=1e-5)


def test_feature_network_stays_out_of_checkpoints(tmp_path):
    big = TinyImageNet(64)
    cb = RealismCallback(metrics=("fid",), feature_extractors={"fid": big})
    model = ToyGenerator()
    t = trainer(tmp_path, [cb], max_epochs=1, limit_train_batches=1, limit_val_batches=2)
    t.fit(model, loader(make_items(8)), loader(make_items(8)))
    path = tmp_path / "model.ckpt"
    t.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=False)

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from tensors(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from tensors(v)

    assert set(ckpt["state_dict"]) == {"layer.weight", "layer.bias"}
    assert not any(t.shape == big.conv.weight.shape for t in tensors(ckpt))


def test_realism_callback_validates_module_outputs(tmp_path):
    class FloatPairs(ToyGenerator):
        def image_pairs(self, batch):
            return batch["fake"].float(), batch["real"]

    cb = RealismCallback(metrics=("ssim",))
    with pytest.raises(ValueError, match=r"image_pairs\(batch\): generated must be uint8"):
        trainer(tmp_path, [cb]).validate(FloatPairs(), loader(make_items(4)), verbose=False)

    class NoPairs(pl.LightningModule):
        def validation_step(self, batch, batch_idx):
            return None

    with pytest.raises(TypeError, match="video_pairs"):
        trainer(tmp_path, [RealismCallback(metrics=("fvd",))]).validate(NoPairs(), loader(make_items(4)), verbose=False)
    with pytest.raises(ValueError, match="metrics"):
        RealismCallback(metrics=("fid", "kid"))
    with pytest.raises(ValueError, match="feature_weights"):
        RealismCallback(feature_weights={"inception": "x.pth"})


def test_realism_callback_warns_instead_of_logging_too_few_samples(tmp_path):
    cb = RealismCallback(metrics=("fid", "ssim"), max_batches=1, feature_extractors={"fid": TinyImageNet(6)})
    model = ToyGenerator()
    with pytest.warns(UserWarning, match="fid not logged"):
        trainer(tmp_path, [cb]).validate(model, loader(make_items(4), batch_size=1), verbose=False)
    assert "val/FID" not in model.trainer.callback_metrics and "val/SSIM" in model.trainer.callback_metrics


# ---------------------------------------------------------------- DyadicMetricsCallback


def test_dyadic_callback_logs_functional_values(tmp_path):
    items = make_items(10)
    model = ToyGenerator()
    trainer(tmp_path, [DyadicMetricsCallback(num_samples=K)]).validate(model, loader(items), verbose=False)
    logged = model.trainer.callback_metrics
    target = stacked(items, "target_shape")
    samples = target[:, None] + stacked(items, "noise")
    assert float(logged["val/MSE"]) == pytest.approx(float(sequence_mse(samples, target)), rel=1e-5)
    assert float(logged["val/minMSE"]) == pytest.approx(float(best_of_k_mse(samples, target)), rel=1e-5)
    assert float(logged["val/jerk"]) == pytest.approx(float(mean_jerk(samples)), rel=1e-5)
    assert float(logged["val/jerk_real"]) == pytest.approx(float(mean_jerk(target)), rel=1e-5)
    assert float(logged["val/diversity"]) == pytest.approx(float(sample_diversity(samples)), rel=1e-5)


def test_dyadic_callback_on_test_stage_and_bad_outputs(tmp_path):
    model = ToyGenerator()
    trainer(tmp_path, [DyadicMetricsCallback(num_samples=1, stage="test")]).test(model, loader(make_items(4)), verbose=False)
    assert "test/MSE" in model.trainer.callback_metrics and "test/diversity" not in model.trainer.callback_metrics

    class WrongK(ToyGenerator):
        def generate_sequences(self, batch, num_samples):
            return batch["target_shape"][:, None]

    with pytest.raises(ValueError, match=r"expected \(B, K, T, P\)"):
        trainer(tmp_path, [DyadicMetricsCallback(num_samples=2)]).validate(WrongK(), loader(make_items(4)), verbose=False)
    with pytest.raises(ValueError, match="no 'listener_shape' entry"):
        trainer(tmp_path, [DyadicMetricsCallback(target_key="listener_shape")]).validate(
            ToyGenerator(), loader(make_items(4)), verbose=False)


# ---------------------------------------------------------------- SampleMediaCallback


def test_media_callback_writes_files_and_tensorboard(tmp_path):
    items = make_items(8)
    logger = TensorBoardLogger(tmp_path, name="tb")
    cb = SampleMediaCallback(fps=10)
    model = ToyGenerator()
    no_moviepy = importlib.util.find_spec("moviepy") is None
    with pytest.warns(UserWarning, match="moviepy") if no_moviepy else contextlib.nullcontext():
        trainer(tmp_path, [cb], logger=logger).validate(model, loader(items), verbose=False)

    media = Path(logger.log_dir) / "media" / "epoch=0"
    assert sorted(p.name for p in media.iterdir()) == ["grid.png", "video.mp4"]
    assert cb.written == [media / "video.mp4", media / "grid.png"]
    video = read_video(media / "video.mp4")
    assert video.shape == (5, 16, 16, 3) and video.dtype == np.uint8
    grid = cv2.cvtColor(cv2.imread(str(media / "grid.png")), cv2.COLOR_BGR2RGB)
    expected_grid = model.media_samples({"fake": stacked(items[:4], "fake")})["grid"]
    np.testing.assert_array_equal(grid, expected_grid)  # PNG is lossless
    # mp4 is lossy (and the frames are noise): compare each frame's mean colour
    source = items[0]["fake"].permute(1, 2, 0).numpy().astype(float)
    np.testing.assert_allclose(video.mean(axis=(1, 2)), np.broadcast_to(source.mean(axis=(0, 1)), (5, 3)), atol=12)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(logger.log_dir)
    events.Reload()
    tags = set(events.Tags()["images"])
    assert "media/grid" in tags
    assert ("media/video" in tags) or ("media/video_frames" in tags)


def test_media_callback_wandb_path_and_rank_zero(tmp_path):
    class RecordingWandb(WandbLogger):
        def __init__(self):
            super().__init__(offline=True, save_dir=str(tmp_path))
            self.calls = []

        def log_image(self, key, images, step=None, **kwargs):
            self.calls.append(("image", key, images, step, kwargs))

        def log_video(self, key, videos, step=None, **kwargs):
            self.calls.append(("video", key, videos, step, kwargs))

    wandb_logger = RecordingWandb()
    fake_trainer = types.SimpleNamespace(
        loggers=[wandb_logger], global_step=7, current_epoch=2, log_dir=str(tmp_path / "logs"),
        default_root_dir=str(tmp_path), sanity_checking=False, is_global_zero=True,
    )
    cb = SampleMediaCallback(every_n_epochs=3, out_dir=tmp_path / "out")
    model = ToyGenerator()
    batch = {"fake": stacked(make_items(2), "fake")}
    cb.on_validation_batch_end(fake_trainer, model, None, batch, batch_idx=0)
    kinds = {c[0]: c for c in wandb_logger.calls}
    video_call, image_call = kinds["video"], kinds["image"]
    assert video_call[1] == "media/video" and video_call[3] == 7
    assert video_call[2][0].endswith("epoch=2/video.mp4") and Path(video_call[2][0]).is_file()
    assert image_call[1] == "media/grid" and image_call[2][0].dtype == np.uint8 and image_call[2][0].shape == (16, 32, 3)

    # batch 1 (num_batches=1), other ranks and off-schedule epochs log nothing
    wandb_logger.calls.clear()
    cb.on_validation_batch_end(fake_trainer, model, None, batch, batch_idx=1)
    cb.on_validation_batch_end(types.SimpleNamespace(**{**vars(fake_trainer), "is_global_zero": False}), model, None, batch, 0)
    cb.on_validation_batch_end(types.SimpleNamespace(**{**vars(fake_trainer), "current_epoch": 0}), model, None, batch, 0)
    assert wandb_logger.calls == [] and not (tmp_path / "out" / "epoch=0").exists()


def test_media_checks_name_the_bad_key():
    good = np.zeros((4, 8, 8, 3), np.uint8)
    assert check_media({"ok": good})["ok"] is good
    with pytest.raises(ValueError, match=r"\['clip'\]: expected dtype uint8"):
        check_media({"clip": good.astype(np.float32)})
    with pytest.raises(ValueError, match=r"\['clip'\]: expected a video"):
        check_media({"clip": np.zeros((4, 8, 8), np.uint8)})
    with pytest.raises(ValueError, match="safe file name"):
        check_media({"../x": good})
    with pytest.raises(ValueError, match=r"\['t'\]: expected a numpy array"):
        check_media({"t": torch.zeros(8, 8, 3, dtype=torch.uint8)})
    assert frame_strip(np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1).repeat(3, -1), 4).shape == (1, 4, 3)


@pytest.mark.slow
def test_media_callback_with_real_offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(offline=True, save_dir=str(tmp_path), project="facezoo-test")
    try:
        trainer(tmp_path, [SampleMediaCallback()], logger=logger).validate(ToyGenerator(), loader(make_items(4)), verbose=False)
    finally:
        logger.experiment.finish()
    run_media = list((tmp_path / "wandb").glob("offline-run-*/files/media"))
    assert len(run_media) == 1
    assert list(run_media[0].rglob("video_*.mp4")) and list(run_media[0].rglob("grid_*.png"))
