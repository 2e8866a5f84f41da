"""Slim weights files: safetensors with the model's tensors in fp16 and a self-describing header.

A facezoo weights file holds

* the LightningModule's ``state_dict()`` (parameters and persistent buffers: the REACT face
  mean, DyadGAN's fitted dictionary, BatchNorm statistics), floating tensors in fp16; tensors
  of at most ``SMALL_TENSOR`` elements, and any whose values fp16 cannot hold, stay float32
  (means and statistics cost nothing there and keep their precision);
* data-derived state the model needs to generate but does not keep in buffers, under
  ``extras.<name>.<field>`` (float32), e.g. the interview data's point distribution model;
* string metadata: ``format``, ``format_version``, ``name``, and JSON-encoded ``config``
  (``{class_path, init_args}``), ``versions`` and ``finetuned_from``, so a file found on its own
  still builds its model.

Lightning ``.ckpt`` files and plain state dicts (``.pt``/``.pth``/``.bin``) are read with
``torch.load(weights_only=True)``: never an unpickled object from an untrusted file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from datamodules.features.io import atomic_path

__all__ = ["FORMAT", "FORMAT_VERSION", "EXTRAS_PREFIX", "SMALL_TENSOR", "slim_state", "save_weights",
           "read_weights", "split_extras", "TORCH_SUFFIXES"]

FORMAT = "facezoo.weights"
FORMAT_VERSION = "1"
EXTRAS_PREFIX = "extras."
SMALL_TENSOR = 4096
FP16_MAX = float(torch.finfo(torch.float16).max)
TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
_JSON_KEYS = ("config", "versions", "finetuned_from")


def slim_state(state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies; floating tensors in ``dtype`` unless small or out of its range."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict[{key!r}]: expected a tensor, got {type(value).__name__}")
        tensor = value.detach().cpu()
        if tensor.is_floating_point():
            if not torch.isfinite(tensor).all():
                raise ValueError(f"state_dict[{key!r}]: contains NaN or inf (a diverged training run?)")
            fits = tensor.numel() == 0 or float(tensor.abs().max()) <= FP16_MAX
            tensor = tensor.to(dtype if tensor.numel() > SMALL_TENSOR and fits else torch.float32)
        out[key] = tensor.contiguous().clone()  # no shared storage: safetensors refuses aliases
    return out


def save_weights(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], *, name: str,
                 config: Mapping[str, Any] | None, versions: Mapping[str, str] | None = None,
                 finetuned_from: str | None = None) -> Path:
    """Write a facezoo safetensors file atomically (temporary sibling, then ``os.replace``)."""
    path = Path(path)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name}
    for key, value in (("config", config), ("versions", versions), ("finetuned_from", finetuned_from)):
        if value is not None:
            metadata[key] = json.dumps(value, sort_keys=True)
    with atomic_path(path) as tmp:
        # safetensors refuses views with strides (e.g. a transposed PCA basis added as an extra)
        save_file({key: value.contiguous() for key, value in tensors.items()}, str(tmp), metadata=metadata)
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    metadata: dict[str, Any] = dict(raw)
    for key in _JSON_KEYS:
        if key in metadata:
            try:
                metadata[key] = json.loads(metadata[key])
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: metadata {key!r} is not JSON ({err})") from err
    return tensors, metadata


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for objects weights_only refuses, RuntimeError for bad zips
        raise ValueError(f"{path}: cannot be read with torch.load(weights_only=True) ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}); facezoo never unpickles arbitrary "
                         "objects from weights files") from err
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict or a Lightning checkpoint, got {type(state).__name__}")
    metadata: dict[str, Any] = {}
    if "state_dict" in state:  # a Lightning checkpoint
        tensors = state["state_dict"]
        metadata["lightning_checkpoint"] = state
    else:
        tensors = state
    bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: entries {bad[:5]} are not tensors (expected a state dict)")
    return dict(tensors), metadata


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a ``.safetensors`` file, a Lightning ``.ckpt`` (metadata
    ``lightning_checkpoint`` = the whole checkpoint dict) or a plain state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    if path.suffix in TORCH_SUFFIXES:
        return _read_torch(path)
    with open(path, "rb") as handle:  # unknown suffix: a torch zip starts with "PK"
        head = handle.read(2)
    return _read_torch(path) if head == b"PK" else _read_safetensors(path)


def split_extras(tensors: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """(model tensors, ``{extra name: {field: tensor}}``)."""
    model, extras = {}, {}
    for key, value in tensors.items():
        if key.startswith(EXTRAS_PREFIX):
            name, _, fieldname = key[len(EXTRAS_PREFIX):].partition(".")
            if not name or not fieldname:
                raise ValueError(f"weights tensor {key!r}: expected extras.<name>.<field>")
            extras.setdefault(name, {})[fieldname] = value
        else:
            model[key] = value
    return model, extras
