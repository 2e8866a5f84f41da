"""Every zoo model class through export -> load_model -> generate (identical to the trained model
with its weights rounded to fp16), a real LightningCLI run exported with `facezoo export`,
fine-tuning through `--model.init_args.pretrained`, and the shipped demo weights."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from tiny_configs import TINY_W2V
from torch.utils.data import DataLoader, Dataset

from checkpoints.export import export_model
from checkpoints.manifest import load_manifest
from checkpoints.weights import read_weights, slim_state
from datamodules.features.shape_model import PointDistributionModel
from zoo.cli import main
from zoo.common.pretrained import load_into, load_model
from zoo.lightning_cli import ZooCLI

H, F, P, S = 6, 4, 5, 16
DYADGAN_TINY = dict(shape_dim=P, history=H, horizon=F, image_size=S, condition_dim=8, ngf=4, ndf=4, unet_ngf=4,
                    patch_ndf=4, patch_layers=2, lstm_hidden=8, lstm_layers=1, dictionary_min_cluster_size=5)


def _shape_model() -> PointDistributionModel:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(68, 2)) * 30
    return PointDistributionModel.fit(base + rng.normal(size=(40, 68, 2)), num_modes=P - 4)


class TinyInterviewData(L.LightningDataModule):
    """Random interview-shaped batches with a shape model and dictionary data (DyadGAN's needs)."""

    def __init__(self, num_items: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.shape_model = _shape_model()

    def _item(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.hparams.seed + i)
        return {"affect": torch.rand(H + F, 8, generator=g).softmax(-1), "shape": torch.randn(H + F, P, generator=g),
                "sketch": torch.randint(0, 2, (1, S, S), generator=g).float() * 2 - 1,
                "face": torch.rand(3, S, S, generator=g) * 2 - 1, "target_shape": torch.randn(F, P, generator=g)}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Items([self._item(i) for i in range(self.hparams.num_items)]), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return self.train_dataloader()

    def dictionary_data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(1)
        return rng.normal(size=(200, P)).astype(np.float32), np.eye(8, dtype=np.float32)[rng.integers(0, 8, 200)]

    def shape_parameters(self, split: str) -> list[np.ndarray]:
        return [np.random.default_rng(2).normal(size=(50, P)).astype(np.float32)]


class _Items(Dataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


# ---------------------------------------------------------------------- one tiny model per class
def _build(kind: str):
    torch.manual_seed(0)
    if kind == "transae":
        from zoo.transae import TransAE

        model = TransAE(feature_dim=16, num_heads=2, period=4, num_decoder_layers=1, video_stem_channels=4,
                        audio_pretrained=None, audio_config=TINY_W2V)
        model.face_mean.copy_(torch.linspace(-1, 1, 58))
        model.face_mean_known.fill_(True)
        return model, None
    if kind == "reactface":
        from zoo.reactface import ReactFace

        return ReactFace(feature_dim=16, num_heads=4, period=3, audio_pretrained=None, audio_config=TINY_W2V,
                         context_frames=10, cie_feedforward=32, video_stem_channels=4, window=4, eval_window=4), None
    if kind in ("cmmnet", "cranet"):
        from zoo.cmmnet import CMMNet

        return CMMNet(variant="cmmnet" if kind == "cmmnet" else "cranet", base_channels=4, translator_channels=4,
                      discriminator_channels=4, lstm_hidden=16, label_dim=4, latent_dim=8, num_modes=3), None
    from zoo.dyadgan import DyadGAN

    model = DyadGAN(**DYADGAN_TINY, architecture="two_stage" if kind == "dyadgan" else "one_stage")
    data = TinyInterviewData()
    model.fit_dictionary(data)
    return model, data


def _generate(model, kind: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if kind in ("transae", "reactface"):
        video, audio = torch.rand(1, 8, 3, 32, 32, generator=g) * 2 - 1, torch.randn(1, 8 * 640, generator=g)
        kwargs = {"generator": torch.Generator().manual_seed(1)} if kind == "reactface" else {}
        return {"reactions": model.generate(video, audio, 3, **kwargs)}
    if kind in ("cmmnet", "cranet"):
        neutral = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
        marks = (torch.rand(1, 1, 64, 64, generator=g) > 0.9).float() if kind == "cmmnet" else None
        return {"videos": model.generate(neutral, "posed", 2, marks, num_frames=3)}
    out = model.generate(torch.rand(6, 8, generator=g).softmax(-1), "dictionary", 2,
                         generator=torch.Generator().manual_seed(1))
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize("kind", ["transae", "reactface", "cmmnet", "cranet", "dyadgan", "dyadgan_one_stage"])
def test_exported_model_loads_and_generates_as_the_trained_one(kind, tmp_path):
    model, data = _build(kind)
    model.eval()
    name = f"{type(model).__name__.lower()}.tiny"
    result = export_model(model, name, tmp_path, config={"class_path": f"{type(model).__module__}.{type(model).__name__}",
                                                           "init_args": dict(model.hparams)}, datamodule=data)
    loaded = load_model(result.weights)
    assert type(loaded) is type(model) and not loaded.training
    assert all(t.dtype == torch.float32 for t in loaded.state_dict().values() if t.is_floating_point())
    # identical to the trained model with its weights rounded as they are on disk
    rounded = copy.deepcopy(model)
    load_into(rounded, slim_state(model.state_dict()), "rounded")
    expected, got, original = _generate(rounded, kind), _generate(loaded, kind), _generate(model, kind)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
        if got[key].is_floating_point():  # and close to the float32 model (fp16 rounding only)
            torch.testing.assert_close(got[key], original[key], atol=5e-2, rtol=0)
    if data is not None:
        np.testing.assert_allclose(loaded.shape_model.mean, data.shape_model.mean, atol=1e-6)
        assert loaded.dictionary.fitted
    if kind == "transae":
        assert torch.equal(loaded.face_mean, model.face_mean)
    tensors, metadata = read_weights(result.weights)
    assert metadata["config"]["class_path"].endswith(type(model).__name__)
    big = [k for k, v in tensors.items() if v.numel() > 4096 and v.is_floating_point()]
    assert (big or kind == "dyadgan_one_stage") and all(tensors[k].dtype == torch.float16 for k in big)
    assert result.entry.size == result.weights.stat().st_size and result.card.read_text().startswith(f"# {name}")


def test_a_pretrained_speech_encoder_is_written_into_the_config(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from zoo.transae import TransAE

    local = tmp_path / "w2v"
    Wav2Vec2Model(Wav2Vec2Config(**TINY_W2V)).save_pretrained(local)
    model = TransAE(feature_dim=16, num_heads=2, period=4, num_decoder_layers=1, video_stem_channels=4,
                    audio_pretrained=str(local))
    result = export_model(model, "transae.local_w2v", tmp_path / "out",
                          config={"class_path": "zoo.transae.TransAE", "init_args": dict(model.hparams)})
    init_args = result.entry.config["init_args"]
    assert init_args["audio_pretrained"] is None and init_args["audio_config"]["hidden_size"] == TINY_W2V["hidden_size"]
    for file in local.iterdir():
        file.unlink()
    loaded = load_model(result.weights)  # no speech model needed: the architecture is in the config
    on_disk = slim_state(model.state_dict())
    audio = [k for k in on_disk if "audio" in k]
    assert audio and all(torch.equal(loaded.state_dict()[k], on_disk[k].to(loaded.state_dict()[k].dtype)) for k in audio)


# ---------------------------------------------------------------------- a real CLI run
def _config(tmp_path: Path, **model_args) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "limit_train_batches": 1,
                    "limit_val_batches": 0, "logger": False, "enable_progress_bar": False,
                    "enable_model_summary": False, "default_root_dir": str(tmp_path / "run"),
                    "callbacks": [{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                                   "init_args": {"dirpath": str(tmp_path / "ckpt"), "save_last": True}}]},
        "model": {"class_path": "zoo.dyadgan.DyadGAN", "init_args": {**DYADGAN_TINY, **model_args}},
        "data": {"class_path": f"{__name__}.TinyInterviewData"},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_run_exported_then_fine_tuned_from_its_name(tmp_path, monkeypatch, capsys):
    config = _config(tmp_path)
    assert main(["fit", "--config", str(config)]) == 0
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    (tmp_path / "scores.json").write_text(json.dumps({"react2023": {"FRC": 0.5}}))
    manifest = tmp_path / "pub" / "manifest.json"
    assert main(["export", "--ckpt", str(ckpt), "--name", "dyadgan.tiny", "--out", str(tmp_path / "pub" / "files"),
                 "--metrics", str(tmp_path / "scores.json"), "--license", "CC-BY-4.0",
                 "--manifest", str(manifest)]) == 0
    printed = capsys.readouterr().out
    assert "dyadgan.tiny.safetensors" in printed and str(manifest) in printed
    entry = load_manifest(manifest)["dyadgan.tiny"]
    assert entry.url == "files/dyadgan.tiny.safetensors" and entry.card == "files/dyadgan.tiny.md"
    assert entry.metrics == {"react2023": {"FRC": 0.5}} and entry.license == "CC-BY-4.0"
    assert entry.data["datamodule"]["class_path"].endswith("TinyInterviewData")
    assert entry.config["init_args"]["ngf"] == 4 and "_instantiator" not in entry.config["init_args"]
    assert set(entry.versions) >= {"torch", "lightning", "facezoo"}
    monkeypatch.setenv("FACEZOO_MANIFEST", str(manifest))
    loaded = load_model("dyadgan.tiny")
    trained = torch.load(ckpt, weights_only=True)["state_dict"]
    for key, value in loaded.state_dict().items():  # the run's weights, rounded to fp16
        assert torch.equal(value, slim_state({key: trained[key]})[key].float() if value.is_floating_point()
                           else trained[key]), key
    assert loaded.shape_model.num_params == P  # rebuilt from the run's DataModule
    assert _generate(loaded, "dyadgan")["face"].shape == (1, 2, 6, S, S, 3)

    # fine-tune: --model.init_args.pretrained NAME loads the weights at construction
    cli = ZooCLI(args=["--config", str(config), "--model.init_args.pretrained", "dyadgan.tiny"], run=False)
    for key, value in cli.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert cli.model.dictionary.fitted
    with pytest.raises(Exception) as error:  # another configuration: names the tensor and both shapes
        ZooCLI(args=["--config", str(config), "--model.init_args.ngf", "8",
                     "--model.init_args.pretrained", str(tmp_path / "pub" / "files" / "dyadgan.tiny.safetensors")],
               run=False)
    assert "generator" in str(error.value) and "weights [" in str(error.value) and "model [" in str(error.value)


def test_export_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--ckpt", str(tmp_path / "none.ckpt"), "--name", "x.y"])
    assert exit_info.value.code == 2 and "none.ckpt: no such file" in capsys.readouterr().err
    torch.save({"state_dict": {}}, tmp_path / "bare.ckpt")
    with pytest.raises(SystemExit):
        main(["export", "--ckpt", str(tmp_path / "bare.ckpt"), "--name", "x.y"])
    assert "hyper_parameters" in capsys.readouterr().err
    model, _ = _build("cranet")
    with pytest.raises(ValueError, match="method.tag"):
        export_model(model, "CRANet", tmp_path, config={"class_path": "zoo.cmmnet.CMMNet", "init_args": dict(model.hparams)})
    assert not list(tmp_path.glob("*.safetensors"))


# ---------------------------------------------------------------------- the shipped weights
SHIPPED = [e.name for e in load_manifest()]


@pytest.mark.skipif(not SHIPPED, reason="no shipped weights yet (python -m checkpoints.build)")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_and_generate_without_training(name):
    from checkpoints.build import smoke_generate

    model = load_model(name)
    entry = load_manifest()[name]
    image_size = entry.data.get("datamodule", {}).get("init_args", {}).get("image_size", 64)
    shapes = smoke_generate(model, image_size=image_size, frames=8)
    assert all(all(n > 0 for n in shape) for shape in shapes.values())
