"""Published weights into zoo models: ``zoo.load_model``, ``zoo.list_models`` and the
``pretrained`` init argument of every zoo LightningModule (fine-tuning from a manifest name).

A *source* is a manifest name (``reactface.demo``; see :mod:`checkpoints.manifest`) or the path
of a weights file: a facezoo ``.safetensors`` (``facezoo export``), a Lightning ``.ckpt`` or a
plain state dict (both read with ``weights_only=True``). Loading is strict: every tensor of the
model must be in the file and nothing else, with the same shape; a mismatch names the tensor
and both shapes. fp16 tensors on disk become the model's dtype (float32).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from checkpoints.manifest import ManifestEntry, UnknownModelError, load_manifest
from checkpoints.resolve import fetch
from checkpoints.weights import EXTRAS_PREFIX, TORCH_SUFFIXES, read_weights, split_extras

__all__ = ["build_model", "config_from_hparams", "list_models", "load_into", "load_model", "load_pretrained",
           "resolve_source", "collect_extras", "attach_extras", "self_contained_config", "UnknownModelError"]

_WEIGHT_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)
# Data-derived state a model needs to generate that its state_dict does not hold, by the
# model classes that need it: DyadGAN's shape parameters live in the interview data's point
# distribution model (z -> landmarks), which the DataModule fits (datamodules/interview.py).
DATA_EXTRAS: dict[str, tuple[str, ...]] = {"shape_model": ("zoo.dyadgan.module.DyadGAN",)}
_PDM_FIELDS = ("mean", "modes", "eigenvalues", "param_mean", "param_std")


def list_models() -> list[str]:
    """Names in the manifest (``$FACEZOO_MANIFEST`` or the shipped ``checkpoints/manifest.json``)."""
    return load_manifest().names()


# ---------------------------------------------------------------------- configs
def _primitive(value: Any, where: str) -> Any:
    """A JSON/YAML-primitive copy (tuples become lists); anything else is an error."""
    if isinstance(value, Mapping):
        return {str(k): _primitive(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_primitive(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"{where}: {type(value).__name__} is not a YAML primitive (keep model hyperparameters "
                     "primitive so weights load without unpickling)")


def config_from_hparams(hparams: Mapping[str, Any], class_path: str | None = None) -> dict[str, Any]:
    """``{class_path, init_args}`` from a checkpoint's ``hyper_parameters`` (LightningCLI stores
    the class in ``_class_path``); ``pretrained`` is cleared, the weights replace it."""
    args = dict(hparams)
    class_path = args.pop("_class_path", None) or class_path
    args.pop("_instantiator", None)
    if not class_path:
        raise ValueError("the checkpoint's hyper_parameters name no model class (no '_class_path': it was not "
                         "trained through LightningCLI); pass the class path, e.g. --class-path zoo.reactface.ReactFace")
    if "pretrained" in args:
        args["pretrained"] = None
    return {"class_path": class_path, "init_args": _primitive(args, "init_args")}


def _model_section(config: Mapping[str, Any] | str | os.PathLike) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    import yaml

    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config {path}: no such file (expected a zoo yaml)")
    data = yaml.safe_load(path.read_text())
    if isinstance(data, Mapping) and "model" in data:
        data = data["model"]
    if not isinstance(data, Mapping) or "class_path" not in data:
        raise ValueError(f"config {path}: expected a 'model: {{class_path, init_args}}' section")
    return dict(data)


def build_model(config: Mapping[str, Any] | str | os.PathLike) -> nn.Module:
    """The LightningModule of ``{class_path, init_args}`` (or of a zoo yaml's ``model`` section),
    built as LightningCLI builds it (typed init args: optimiser dicts become callables), with
    ``pretrained`` cleared."""
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningModule

    section = _model_section(config)
    init_args = dict(section.get("init_args") or {})
    if "pretrained" in init_args:
        init_args["pretrained"] = None
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningModule, "model", fail_untyped=False)
    try:
        parsed = parser.parse_object({"model": {"class_path": section["class_path"], "init_args": init_args}})
        return parser.instantiate_classes(parsed).model
    except (ValueError, TypeError, ImportError) as err:
        raise ValueError(f"cannot build {section['class_path']} from its config: {err}") from err


def self_contained_config(model: nn.Module, config: dict[str, Any]) -> dict[str, Any]:
    """The config with a pretrained wav2vec 2.0 replaced by its architecture (``audio_config``,
    ``audio_pretrained: null``): the weights file holds its weights, so loading it needs no Hub."""
    init_args = dict(config.get("init_args") or {})
    if not init_args.get("audio_pretrained"):
        return config
    from zoo.common.audio_encoder import Wav2Vec2Encoder

    encoders = [m for m in model.modules() if isinstance(m, Wav2Vec2Encoder)]
    if len(encoders) != 1:
        return config
    from transformers import Wav2Vec2Config

    fields = set(Wav2Vec2Config().to_dict())
    architecture = {k: v for k, v in encoders[0].model.config.to_dict().items()
                    if k in fields and not k.startswith("_") and k not in ("architectures", "transformers_version",
                                                                            "dtype", "torch_dtype")}
    init_args["audio_config"] = _primitive(architecture, "audio_config")
    init_args["audio_pretrained"] = None
    return {**config, "init_args": init_args}


# ---------------------------------------------------------------------- extras
def _class_names(model: nn.Module) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__}


def collect_extras(model: nn.Module, datamodule: Any) -> dict[str, torch.Tensor]:
    """``extras.<name>.<field>`` tensors (float32) of the data-derived state ``model`` needs."""
    out: dict[str, torch.Tensor] = {}
    names = _class_names(model)
    if names & set(DATA_EXTRAS["shape_model"]):
        pdm = getattr(datamodule, "shape_model", None) if datamodule is not None else None
        if pdm is None:
            raise ValueError(f"{type(model).__name__} needs its data's shape model (point distribution model) to "
                             "turn generated shape parameters into landmarks: export it with its DataModule "
                             "(InterviewDataModule) or pass --shape-model PDM.npz")
        for fieldname in _PDM_FIELDS:
            out[f"{EXTRAS_PREFIX}shape_model.{fieldname}"] = torch.as_tensor(getattr(pdm, fieldname), dtype=torch.float32)
    return out


def attach_extras(model: nn.Module, extras: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    """Set ``model.shape_model`` (a :class:`~datamodules.features.shape_model.PointDistributionModel`)
    etc. from the file's extras; unknown extras are an error (a newer facezoo wrote the file)."""
    for name, fields in extras.items():
        if name != "shape_model":
            raise ValueError(f"weights carry an unknown extra {name!r} (written by a newer facezoo?)")
        missing = [f for f in _PDM_FIELDS if f not in fields]
        if missing:
            raise ValueError(f"weights extra 'shape_model' lacks {missing}")
        from datamodules.features.shape_model import PointDistributionModel

        model.shape_model = PointDistributionModel(*(fields[f].double().numpy() for f in _PDM_FIELDS))


# ---------------------------------------------------------------------- sources
def _looks_like_path(source: str) -> bool:
    return source.endswith(_WEIGHT_SUFFIXES) or os.sep in source or source.startswith((".", "~"))


def resolve_source(source: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                   progress: bool = True) -> tuple[Path, ManifestEntry | None]:
    """(verified local file, its manifest entry or None) of a manifest name or a path."""
    if isinstance(source, os.PathLike) or Path(str(source)).expanduser().is_file() or _looks_like_path(str(source)):
        path = Path(source).expanduser()
        if not path.is_file():
            try:
                known = ", ".join(load_manifest().names()) or "none"
            except (FileNotFoundError, ValueError):
                known = "none (no manifest)"
            raise FileNotFoundError(f"{path}: no such weights file (expected a manifest name or the path of a "
                                    f".safetensors / .ckpt file; known models: {known})")
        return path, None
    if not isinstance(source, str) or not source:
        raise ValueError(f"expected a manifest name or a weights path, got {source!r}")
    entry = load_manifest().get(source)  # UnknownModelError lists the known names
    return fetch(entry, cache_dir=cache_dir, progress=progress), entry


_SIZE_MISMATCH = re.compile(r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from "
                            r"checkpoint, the shape in current model is torch\.Size\((\[.*?\])\)")


def load_into(module: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Strictly load ``tensors`` (+ extras) into ``module``, casting to the module's dtypes."""
    model_tensors, extras = split_extras(tensors)
    own = module.state_dict()
    missing = sorted(set(own) - set(model_tensors))
    unexpected = sorted(set(model_tensors) - set(own))
    name = type(module).__name__
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit this {name}: {len(missing)} tensors missing from the weights {missing[:6]}, "
            f"{len(unexpected)} unexpected {unexpected[:6]} (weights of another model or configuration? "
            "zoo.load_model builds the model from the weights' own config)")
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v
            for k, v in model_tensors.items()}
    try:
        module.load_state_dict(cast, strict=True)
    except RuntimeError as err:
        found = _SIZE_MISMATCH.findall(str(err))
        detail = "; ".join(f"{key}: weights {shape_w}, model {shape_m}" for key, shape_w, shape_m in found) or str(err)
        raise ValueError(f"{source} does not fit this {name} as configured (shape mismatch): {detail}") from err
    attach_extras(module, extras)


def _config_of(path: Path, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    if "config" in metadata:
        return metadata["config"]
    checkpoint = metadata.get("lightning_checkpoint")
    if checkpoint is not None and "hyper_parameters" in checkpoint:
        return config_from_hparams(checkpoint["hyper_parameters"])
    return None


def load_pretrained(module: nn.Module, pretrained: str | os.PathLike, *, argument: str = "pretrained") -> None:
    """The ``pretrained`` init argument: load a manifest name's (or a file's) weights into the
    freshly built ``module`` (strict; for fine-tuning with ``--model.init_args.pretrained``, and
    ``facezoo generate --ckpt``). ``argument`` names the option in error messages."""
    path, entry = resolve_source(pretrained)
    tensors, _ = read_weights(path)
    load_into(module, tensors, f"{argument}={os.fspath(pretrained)!r} ({path})")


def load_model(name_or_path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """A ready-to-generate model: built from the weights' config, weights loaded, float32, eval.

    ``name_or_path``: a manifest name (see :func:`list_models`) or a weights file. The model gets
    ``model.facezoo_weights = {"name", "path", "sha256"}`` (the manifest name is None for files).
    """
    from checkpoints.resolve import sha256_file

    path, entry = resolve_source(name_or_path)
    tensors, metadata = read_weights(path)
    if entry is not None:
        config: Any = entry.config_path() or entry.config
    else:
        config = _config_of(path, metadata)
        if config is None:
            raise ValueError(f"{path}: carries no model config (a plain state dict?); build the model yourself "
                             "and use zoo.common.pretrained.load_into, or export it with `facezoo export`")
    model = build_model(config)
    load_into(model, tensors, str(name_or_path))
    model = model.float().to(map_location).eval()
    model.facezoo_weights = {"name": entry.name if entry else None, "path": str(path),
                             "sha256": entry.sha256 if entry else sha256_file(path)}
    return model
