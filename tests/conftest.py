"""Shared test set-up: everything a test writes goes under pytest's temp dirs, wandb is offline."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("facezoo_home")
    saved = {k: os.environ.get(k) for k in ("FACEZOO_HOME", "WANDB_MODE", "WANDB_DIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ["FACEZOO_HOME"] = str(home)
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_DIR"] = str(home / "wandb")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests use tiny tensors: on a 2-core machine extra intra-op threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
