"""What a benchmark suite runs: its models (published names from the checkpoint manifest, or a
local ``--ckpt`` + ``--config`` pair) and its data (the embedded world or a real ``--data.root``).

Every model of a suite is scored on the same data: the suite's default world (the demo configs'
world, so the published demo weights are scored on the test split of the world they were trained
on) or ``--data.root``; a model's own config only decides its preprocessing (image size, audio
rate, sequence length...).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from zoo.benchmarks.results import file_sha256

__all__ = [
    "SUITES",
    "ModelSource",
    "SuiteSpec",
    "build_datamodule",
    "describe_data",
    "load_manifest_or_none",
    "local_model_source",
    "manifest_model_sources",
    "read_yaml_config",
]

ZOO_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SuiteSpec:
    """A suite: the manifest methods and model classes it takes, and the zoo config whose
    ``data`` section is its default data."""

    name: str
    methods: tuple[str, ...]
    model_classes: tuple[str, ...]
    default_config: Path
    description: str

    def default_data_config(self) -> dict[str, Any]:
        return data_section(read_yaml_config(self.default_config), self.default_config)


SUITES: dict[str, SuiteSpec] = {
    "react": SuiteSpec("react", ("transae", "reactface"), ("TransAE", "ReactFace"),
                       ZOO_DIR / "demo" / "transae.yaml",
                       "REACT protocol: K=10 reactions per speaker on the test split (750 frames)"),
    "smile": SuiteSpec("smile", ("cmmnet", "cranet", "cmmnet_cranet"), ("CMMNet",),
                       ZOO_DIR / "demo" / "cmmnet.yaml", "CMM-Net's evaluation (Tables 1 and 3)"),
    "interview": SuiteSpec("interview", ("dyadgan", "dyadgan_one_stage"), ("DyadGAN",),
                           ZOO_DIR / "demo" / "dyadgan.yaml", "DyadGAN's evaluation (Tables 1-2, realism)"),
}


def suite_spec(name: str) -> SuiteSpec:
    if name not in SUITES:
        raise ValueError(f"--suite: expected one of {sorted(SUITES)}, got {name!r}")
    return SUITES[name]


# ---------------------------------------------------------------------------------------- configs


def read_yaml_config(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file (expected a zoo config, e.g. zoo/demo/transae.yaml)")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"--config {path}: not valid YAML ({err})") from err
    if not isinstance(config, dict):
        raise ValueError(f"--config {path}: expected a mapping with model/data sections")
    return config


def data_section(config: Mapping[str, Any], where: object) -> dict[str, Any]:
    """The ``data: {class_path, init_args}`` of a LightningCLI config, copied."""
    data = config.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("class_path"), str):
        raise ValueError(f"{where}: no data section with a class_path (expected `data: {{class_path: ..., "
                         "init_args: {...}}}` as in zoo/demo/*.yaml)")
    return {"class_path": data["class_path"], "init_args": copy.deepcopy(dict(data.get("init_args") or {}))}


def _import(class_path: str) -> type:
    module_name, _, attr = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"class_path {class_path!r}: cannot be imported ({err})") from err


def build_datamodule(data_config: Mapping[str, Any], suite: SuiteSpec, *, root: str | os.PathLike | None = None,
                     overrides: Mapping[str, Any] | None = None):
    """The DataModule of ``data_config`` on the suite's data: ``root`` when given (it must be a
    directory), otherwise the suite's default world; ``overrides`` set further init arguments."""
    args = copy.deepcopy(dict(data_config.get("init_args") or {}))
    default = suite.default_data_config()
    if default["class_path"] != data_config["class_path"]:
        raise ValueError(f"suite {suite.name!r} reads {default['class_path']}; the model's config uses "
                         f"{data_config['class_path']}")
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"--data.root {path}: not a directory (expected a dataset in the layout "
                                    f"{default['class_path']} reads)")
        args["root"] = str(path.resolve())
    else:
        args["root"] = None
        args["world"] = copy.deepcopy(default["init_args"].get("world"))
    args.update(overrides or {})
    return _import(data_config["class_path"])(**args)


def _stable_hash(value: Any) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def describe_data(datamodule, split: str = "test") -> dict[str, Any]:
    """Where the scored data came from: the embedded world's generator and settings (its
    ``facezoo_world.json``), or the real root; plus the DataModule class and split."""
    root = Path(datamodule.data_root)
    description: dict[str, Any] = {"datamodule": f"{type(datamodule).__module__}.{type(datamodule).__name__}",
                                   "split": split}
    world_file = root / "facezoo_world.json"
    if getattr(datamodule, "root", None) is None and world_file.is_file():
        meta = json.loads(world_file.read_text())
        description.update(kind="embedded", generator=meta.get("generator"), settings=meta.get("settings"))
        description["id"] = f"{meta.get('generator')}#{_stable_hash(meta.get('settings'))}"
    else:
        description.update(kind="dataset", root=str(root.resolve()))
        fingerprints = {}
        for name in (f"{split}.csv", f"neighbour_emotion_{split}.npy", "sessions.csv"):
            if (root / name).is_file():
                fingerprints[name] = file_sha256(root / name)
        description["files_sha256"] = fingerprints
        description["id"] = f"{root.name}#{_stable_hash(fingerprints)}" if fingerprints else root.name
    return description


# ---------------------------------------------------------------------------------------- models


@dataclass
class ModelSource:
    """A model to benchmark, loaded only when its turn comes."""

    name: str
    load: Callable[[], Any]
    data_config: dict[str, Any]
    weights_sha256: str | None
    method: str | None = None
    source: dict[str, Any] = field(default_factory=dict)


def local_model_source(ckpt: str | os.PathLike, config: str | os.PathLike, name: str | None = None) -> ModelSource:
    """A Lightning checkpoint + the zoo config it was trained with (``facezoo generate``'s loader)."""
    ckpt, config = Path(ckpt), Path(config)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {ckpt}: no such file")
    data_config = data_section(read_yaml_config(config), f"--config {config}")

    def load():
        import sys

        from zoo.generate import build_model, load_weights

        # LightningCLI warns when it gets args while sys.argv holds others (ours: `benchmark ...`).
        argv, sys.argv = sys.argv, sys.argv[:1]
        try:
            model = build_model([config])
        finally:
            sys.argv = argv
        load_weights(model, ckpt)
        return model.eval()

    return ModelSource(name=name or f"{config.stem}-{ckpt.stem}", load=load, data_config=data_config,
                       weights_sha256=file_sha256(ckpt), method=None,
                       source={"ckpt": str(ckpt.resolve()), "config": str(config)})


def _entries(manifest) -> list:
    """The entries of a checkpoints manifest, whatever container it keeps them in."""
    entries = getattr(manifest, "entries", manifest)
    if isinstance(entries, Mapping):
        entries = list(entries.values())
    return list(entries)


def _entry_data_config(entry, suite: SuiteSpec) -> tuple[dict[str, Any], str]:
    """The data config a manifest entry was trained with: ``data["datamodule"]`` (what ``facezoo
    export`` records), else the ``data`` section of its zoo yaml, else the suite's default config."""
    data = getattr(entry, "data", None)
    module = data.get("datamodule") if isinstance(data, Mapping) else None
    if isinstance(module, Mapping) and isinstance(module.get("class_path"), str):
        return {"class_path": module["class_path"],
                "init_args": copy.deepcopy(dict(module.get("init_args") or {}))}, "manifest"
    config_path = entry.config_path() if hasattr(entry, "config_path") else None
    if config_path is not None and config_path.is_file():
        config = read_yaml_config(config_path)
        if isinstance(config.get("data"), Mapping):
            return data_section(config, config_path), str(entry.config)
    return suite.default_data_config(), str(suite.default_config.relative_to(ZOO_DIR.parent))


def _manifest():
    """The manifest ``zoo.load_model`` reads: ``$FACEZOO_MANIFEST`` or the shipped one."""
    try:
        from checkpoints.manifest import load_manifest
    except ImportError as err:
        raise ValueError("the checkpoint manifest (checkpoints.manifest) is not available in this checkout; "
                         "benchmark local weights with --ckpt RUN.ckpt --config zoo/<name>.yaml") from err
    return load_manifest()


def load_manifest_or_none():
    """The checkpoint manifest, or None when this checkout has no checkpoints package."""
    try:
        return _manifest()
    except ValueError:
        return None


def manifest_model_sources(suite: SuiteSpec, names: list[str] | None = None) -> list[ModelSource]:
    """Published models of ``suite``: ``names`` (manifest names), or every entry whose method
    belongs to the suite. Weights hashes are the manifest's (``zoo.load_model`` verifies the file
    against it before loading; ``checkpoints.weights_sha256(name)`` returns the same)."""
    entries = {entry.name: entry for entry in _entries(_manifest())}
    if names is None:
        chosen = sorted(name for name, entry in entries.items() if entry.method in suite.methods)
    else:
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise ValueError(f"--models: unknown model(s) {unknown}; the manifest lists {sorted(entries)}")
        wrong = [n for n in names if entries[n].method not in suite.methods]
        if wrong:
            raise ValueError(f"--models: {wrong} are not {suite.name!r} models (suite {suite.name!r} takes methods "
                             f"{list(suite.methods)}; {', '.join(f'{n} is {entries[n].method}' for n in wrong)})")
        chosen = list(dict.fromkeys(names))
    sources = []
    for name in chosen:
        entry = entries[name]
        data_config, data_from = _entry_data_config(entry, suite)

        def load(name: str = name):
            import zoo

            return zoo.load_model(name, map_location="cpu").eval()

        sources.append(ModelSource(name=name, load=load, data_config=data_config,
                                   weights_sha256=entry.sha256, method=entry.method,
                                   source={"manifest": name, "data_config": data_from}))
    return sources


def check_model_class(model, suite: SuiteSpec, name: str) -> None:
    if type(model).__name__ not in suite.model_classes:
        raise ValueError(f"model {name!r} is a {type(model).__name__}; suite {suite.name!r} takes "
                         f"{', '.join(suite.model_classes)} models")
