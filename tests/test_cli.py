"""The CLI through its real entry points: the `facezoo` and `lightning` scripts and `python -m zoo`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zoo.cli import lightning_main, main

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# A tiny world and model so a CLI `fit` finishes in seconds.
TINY = [
    "--data.init_args.world", "{sessions: 3, clips_per_session: 1, clip_frames: 64, image_size: 32}",
    "--data.init_args.clip_length", "16", "--data.init_args.eval_clip_length", "60",
    "--data.init_args.image_size", "32", "--data.init_args.batch_size", "2",
    "--trainer.logger", "false",
    "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "1",
]


def _script(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"console script {name} not installed in {BIN} (pip install -e .)")
    return str(path)


def _run(args: list[str], tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**(env or os.environ), "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_facezoo_help_lists_lightning_and_zoo_commands(tmp_path):
    result = _run([_script("facezoo"), "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("fit", "validate", "test", "predict", "make-data", "score"):
        assert command in result.stdout


def test_lightning_print_config_resolves_the_zoo_config(tmp_path):
    result = _run([_script("lightning"), "fit", "--config", "zoo/demo/transae.yaml", "--print_config"], tmp_path)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["model"]["class_path"] == "zoo.transae.TransAE"
    assert config["data"]["class_path"] == "datamodules.react.REACTDataModule"
    assert config["trainer"]["max_epochs"] >= 1


def _print_config(args: list[str], capsys) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", sorted(str(p.relative_to(REPO)) for p in (REPO / "zoo").rglob("*.yaml")))
def test_every_zoo_config_parses(config, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    resolved = _print_config(["--config", config], capsys)
    assert resolved["model"]["class_path"].startswith("zoo.")
    assert resolved["data"]["class_path"].startswith("datamodules.")


def test_class_path_can_be_swapped_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    config = _print_config(["--config", "zoo/demo/transae.yaml",
                            "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
                            "--trainer.logger.save_dir", str(tmp_path)], capsys)
    assert config["trainer"]["logger"]["class_path"] == "lightning.pytorch.loggers.CSVLogger"


def test_unknown_lightning_command_points_to_lightning_sdk(capsys, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert lightning_main(["login"]) == 2
    err = capsys.readouterr().err
    assert "'login' is not a facezoo command" in err and "lightning-sdk" in err


def test_unknown_lightning_command_is_forwarded_when_lightning_sdk_exists(monkeypatch):
    calls = []
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object() if name == "lightning_sdk" else None)
    monkeypatch.setattr("subprocess.call", lambda cmd, env=None: calls.append(cmd) or 0)
    assert lightning_main(["login", "--help"]) == 0
    assert calls and calls[0][1:] == ["-m", "lightning_sdk.cli.entrypoint", "login", "--help"]


def test_unknown_facezoo_command_fails_clearly(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_make_data_through_python_m_zoo(tmp_path):
    out = tmp_path / "react"
    result = _run([sys.executable, "-m", "zoo", "make-data", "react", "--out", str(out), "--sessions", "3",
                   "--clips-per-session", "1", "--clip-frames", "20", "--image-size", "32"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "train.csv").is_file() and (out / "neighbour_emotion_val.npy").is_file()
    again = _run([sys.executable, "-m", "zoo", "make-data", "react", "--out", str(out)], tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_make_data_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["make-data", "react", "--out", str(tmp_path / "x"), "--sessions", "2"])
    assert exit_info.value.code == 2 and "sessions=2" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--clip-frames must be positive"):
        main(["make-data", "react", "--out", str(tmp_path / "y"), "--clip-frames", "0"])
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_lightning_fit_trains_from_the_demo_config(tmp_path):
    result = _run([_script("lightning"), "fit", "--config", "zoo/demo/transae.yaml", *TINY,
                   "--trainer.default_root_dir", str(tmp_path / "runs")],
                  tmp_path, env={**os.environ, "FACEZOO_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "finished fitting TransAE" in result.stdout


def test_paper_scale_config_offline_names_the_speech_weights_it_needs(monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(REPO / "tests" / "__no_hf_cache__"))
    with pytest.raises(Exception) as error:
        main(["fit", "--config", "zoo/transae.yaml", "--trainer.fast_dev_run", "true",
              "--trainer.logger", "false"])
    message = str(error.value)
    assert "facebook/wav2vec2-base-960h" in message
    assert "huggingface-cli download" in message or "download" in message
