"""The heavy-core path on CPU: bf16-mixed, 2-process DDP (gloo), exact mid-epoch resume, learning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from tiny_configs import TINY_W2V

from callbacks.resume import RNGStateCheckpoint
from datamodules.react import REACTDataModule
from zoo.transae import TransAE

REPO = Path(__file__).resolve().parents[1]
WORLD = {"sessions": 4, "clips_per_session": 2, "clip_frames": 48, "image_size": 32}


def tiny_model(**overrides) -> TransAE:
    settings = dict(feature_dim=16, num_heads=2, num_decoder_layers=1, audio_pretrained=None,
                    audio_config=TINY_W2V, freeze_audio_feature_encoder=False,
                    optimizer=lambda p: torch.optim.AdamW(p, lr=1e-3))
    return TransAE(**{**settings, **overrides})


def tiny_data(tmp_path: Path, **overrides) -> REACTDataModule:
    settings = dict(world=WORLD, clip_length=16, eval_clip_length=32, image_size=32, batch_size=2,
                    cache_dir=str(tmp_path / "cache"))
    return REACTDataModule(**{**settings, **overrides})


def _trainer(**overrides) -> L.Trainer:
    settings = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    return L.Trainer(**{**settings, **overrides})


def test_bf16_mixed_trains_on_cpu(tmp_path):
    L.seed_everything(0)
    model, data = tiny_model(), tiny_data(tmp_path)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _trainer(precision="bf16-mixed", max_steps=3, enable_checkpointing=False)
    trainer.fit(model, data)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > len(before) // 2


class _CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")


def _final_weights(model: L.LightningModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    L.seed_everything(0)
    model, data = tiny_model(dropout=0.1), tiny_data(tmp_path)
    _trainer(max_epochs=2, callbacks=[RNGStateCheckpoint()], enable_checkpointing=False).fit(model, data)
    uninterrupted = _final_weights(model)
    per_epoch = len(data.train_dataloader())
    assert per_epoch >= 2
    crash_step = per_epoch + per_epoch // 2  # mid-epoch, in the second epoch

    L.seed_everything(0)
    model, data = tiny_model(dropout=0.1), tiny_data(tmp_path)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=1, save_last=True, save_top_k=0)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(max_epochs=2, callbacks=[RNGStateCheckpoint(), checkpoints, _CrashAt(step=crash_step)]).fit(model, data)
    last = tmp_path / "ckpt" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True)["global_step"]  # ModelCheckpoint runs after _CrashAt
    assert saved_step == crash_step - 1 and saved_step % per_epoch != 0  # a mid-epoch checkpoint

    L.seed_everything(123)  # a different fresh state: everything must come from the checkpoint
    model, data = tiny_model(dropout=0.1), tiny_data(tmp_path)
    _trainer(max_epochs=2, callbacks=[RNGStateCheckpoint()], enable_checkpointing=False).fit(
        model, data, ckpt_path=str(last))
    resumed = _final_weights(model)
    assert resumed.keys() == uninterrupted.keys()
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=0, msg=key)


def test_two_process_ddp_on_cpu(tmp_path):
    script = Path(sys.executable).parent / "facezoo"
    if not script.exists():
        pytest.skip("facezoo console script not installed")
    args = [str(script), "fit", "--config", "zoo/demo/transae.yaml",
            "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
            "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1",
            "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--data.init_args.world", "{sessions: 4, clips_per_session: 2, clip_frames: 64, image_size: 32}",
            "--data.init_args.clip_length", "16", "--data.init_args.eval_clip_length", "60",
            "--data.init_args.image_size", "32", "--data.init_args.batch_size", "2",
            "--data.init_args.cache_dir", str(tmp_path / "cache")]
    env = {**os.environ, "FACEZOO_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "finished fitting TransAE" in result.stdout
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
