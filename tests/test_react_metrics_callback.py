"""REACTMetricsCallback with a tiny LightningModule and DataModule on CPU."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from callbacks.react_metrics import REACTMetricsCallback
from zoo.metrics import score

N, T, D, K = 6, 52, 58, 3


class _Split(Dataset):
    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.speaker = torch.randn(N, T, D, generator=g)
        self.listener = torch.randn(N, T, D, generator=g)

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict:
        return {"speaker_3dmm": self.speaker[i], "listener_3dmm": self.listener[i],
                "index": torch.tensor(i, dtype=torch.long)}


class _Data(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.split = _Split(0)
        rng = np.random.default_rng(0)
        self.matrix = rng.random((N, N)) < 0.5

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.split, batch_size=4, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.split, batch_size=4, shuffle=False)

    def neighbour_matrix(self, split: str) -> np.ndarray:
        assert split in ("val", "test")
        return self.matrix


class _Model(pl.LightningModule):
    """A deterministic 'generator': the speaker's motion delayed by 2 frames, scaled per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def generate_from_batch(self, batch: dict, num_samples: int = 1) -> torch.Tensor:
        spk = batch["speaker_3dmm"]
        delayed = torch.roll(spk, 2, dims=1)
        factors = torch.arange(1, num_samples + 1, dtype=spk.dtype)[None, :, None, None]
        return self.scale * delayed[:, None] * factors

    def validation_step(self, batch, batch_idx):
        return None

    def test_step(self, batch, batch_idx):
        return None

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(callback) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[callback])


def _expected(data: _Data, model: _Model, rows: np.ndarray, protocol: str, metrics) -> dict:
    batch = {"speaker_3dmm": data.split.speaker[rows]}
    preds = model.generate_from_batch(batch, num_samples=K).detach()
    m = data.matrix[np.ix_(rows, rows)]
    return score(preds, data.split.listener[rows], data.split.speaker[rows], m, protocol=protocol,
                 metrics=metrics, progress=False)


@pytest.mark.parametrize("protocol", ["facezoo", "react2023"])
def test_validation_logs_metrics_equal_to_the_functional_score(protocol):
    data, model = _Data(), _Model()
    if protocol == "react2023":
        data.matrix |= np.eye(N, dtype=bool)  # react2023 needs a neighbour in every row
    metrics = ["FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"]
    callback = REACTMetricsCallback(num_samples=K, protocol=protocol, metrics=metrics,
                                    score_kwargs={"backend": "torch"})
    trainer = _trainer(callback)
    trainer.validate(model, datamodule=data, verbose=False)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    expected = _expected(data, model, np.arange(N), protocol, metrics)
    assert set(logged) == {f"val/{m}" for m in metrics}
    for name, value in expected.items():
        assert logged[f"val/{name}"] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    # the predictions lag the speaker by exactly 2 frames
    assert logged["val/TLCC"] == pytest.approx(2.0)


def test_max_batches_restricts_the_neighbour_matrix_to_seen_samples():
    data, model = _Data(), _Model()
    callback = REACTMetricsCallback(num_samples=K, max_batches=1, metrics=["FRC", "S-MSE"], stage="both")
    trainer = _trainer(callback)
    trainer.test(model, datamodule=data, verbose=False)
    logged = {k: float(v) for k, v in trainer.callback_metrics.items()}
    expected = _expected(data, model, np.arange(4), "facezoo", ["FRC", "S-MSE"])  # batch 0 = samples 0..3
    assert logged["test/FRC"] == pytest.approx(expected["FRC"], rel=1e-5)
    assert logged["test/S-MSE"] == pytest.approx(expected["S-MSE"], rel=1e-5)


def test_every_n_epochs_skips_and_bad_arguments_are_rejected():
    data, model = _Data(), _Model()
    callback = REACTMetricsCallback(num_samples=K, every_n_epochs=2, metrics=["FRVar"])
    trainer = _trainer(callback)
    trainer.validate(model, datamodule=data, verbose=False)  # epoch 0: (0 + 1) % 2 != 0
    assert "val/FRVar" not in trainer.callback_metrics
    with pytest.raises(ValueError, match="num_samples"):
        REACTMetricsCallback(num_samples=0)
    with pytest.raises(ValueError, match="protocol"):
        REACTMetricsCallback(protocol="react2030")
    with pytest.raises(ValueError, match="stage"):
        REACTMetricsCallback(stage="train")
    with pytest.raises(ValueError, match="unknown metric"):
        REACTMetricsCallback(metrics=["FVD"])


def test_wrong_generation_shape_is_reported():
    class _Bad(_Model):
        def generate_from_batch(self, batch, num_samples=1):
            return super().generate_from_batch(batch, num_samples)[:, :1]

    trainer = _trainer(REACTMetricsCallback(num_samples=K, metrics=["FRVar"]))
    with pytest.raises(ValueError, match="generate_from_batch: expected shape"):
        trainer.validate(_Bad(), datamodule=_Data(), verbose=False)
