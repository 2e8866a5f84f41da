"""``facezoo export``: publish a trained run as slim weights, a manifest entry and a model card.

    facezoo export --ckpt RUN.ckpt --name method.tag [--out DIR] [--metrics scores.json]
                   [--license SPDX] [--data TEXT] [--url URL] [--description TEXT]
                   [--manifest checkpoints/manifest.json] [--shape-model PDM.npz] [--class-path C]

Writes ``DIR/<name>.safetensors`` (:mod:`checkpoints.weights`: fp16, no optimiser or trainer
state), ``DIR/<name>.md`` (model card) and ``DIR/<name>.json`` (the manifest entry: sha256,
size, config from the checkpoint's hyper_parameters, metrics, data, versions), each through a
temporary file; the entry is written last. ``--manifest`` also merges the entry into a manifest
(its url relative to the manifest, or ``--url`` where the file will be published).

The model is rebuilt from the checkpoint's config and its weights loaded strictly before export,
so an exported file always loads. Models that need data-derived state to generate (DyadGAN: the
interview data's shape model) get it from the DataModule in the checkpoint's
``datamodule_hyper_parameters`` or from ``--shape-model``.

The weights' torch side (models, DataModules) is imported lazily: this is publishing tooling
on top of the zoo (``zoo -> checkpoints`` stays the import direction of the library code).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkpoints.manifest import NAME_PATTERN, Manifest, ManifestEntry, load_manifest
from checkpoints.resolve import sha256_file
from datamodules.features.io import atomic_path

__all__ = ["ExportResult", "export_model", "export_checkpoint", "framework_versions", "configure_parser", "run"]

REPO = Path(__file__).resolve().parents[1]


@dataclass
class ExportResult:
    weights: Path
    entry_file: Path
    card: Path
    entry: ManifestEntry
    manifest: Path | None = None


def framework_versions() -> dict[str, str]:
    """torch / lightning / facezoo / python versions, and the git commit when run from a checkout."""
    import lightning
    import torch

    try:
        facezoo = importlib.metadata.version("facezoo")
    except importlib.metadata.PackageNotFoundError:
        facezoo = "unknown"
    versions = {"torch": torch.__version__.split("+")[0], "lightning": lightning.__version__, "facezoo": facezoo,
                "python": platform.python_version()}
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        if commit:
            dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            versions["commit"] = commit + ("+dirty" if dirty else "")  # uncommitted changes at export
    except (OSError, subprocess.SubprocessError):
        pass
    return versions


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key} / ")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def model_card(entry: ManifestEntry, weights_name: str) -> str:
    """A markdown model card for ``entry``."""
    import yaml

    config = entry.config if isinstance(entry.config, str) else yaml.safe_dump(
        {"model": entry.config}, sort_keys=False, default_flow_style=False)
    lines = [f"# {entry.name}", ""]
    if entry.description:
        lines += [entry.description, ""]
    lines += [
        "| field | value |", "|---|---|",
        f"| method | `{entry.method}` |",
        f"| class | `{entry.config['class_path'] if isinstance(entry.config, dict) else entry.config}` |",
        f"| weights | `{weights_name}` ({entry.size / 1e6:.2f} MB, {entry.format}) |",
        f"| sha256 | `{entry.sha256}` |",
        f"| license | {entry.license or 'not stated'} |",
        f"| trained on | {entry.data.get('description', 'not stated')} |",
        f"| fine-tuned from | {entry.finetuned_from or '-'} |",
        f"| exported | {entry.created} with " + ", ".join(f"{k} {v}" for k, v in entry.versions.items()) + " |",
        "",
        "## Use", "",
        "```python",
        "import zoo",
        f'model = zoo.load_model("{entry.name}")   # eval mode, float32',
        "```", "",
        "```bash",
        f"facezoo download {entry.name}",
        f"lightning fit --config CONFIG.yaml --model.init_args.pretrained {entry.name}   # fine-tune",
        "```", "",
    ]
    rows = _metric_rows(entry.metrics)
    if rows:
        lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    datamodule = entry.data.get("datamodule")
    if datamodule:
        lines += ["## Training data", "", "```yaml", yaml.safe_dump({"data": datamodule}, sort_keys=False).rstrip(),
                  "```", ""]
    lines += ["## Config", "", "```yaml", config.rstrip(), "```", ""]
    return "\n".join(lines)


def export_model(model, name: str, out_dir: str | os.PathLike, *, config: dict[str, Any],
                 datamodule: Any = None, extras: dict | None = None, metrics: dict[str, Any] | None = None,
                 license: str = "", data: dict[str, Any] | None = None, url: str | None = None,
                 description: str = "", manifest: str | os.PathLike | None = None) -> ExportResult:
    """Write ``<out_dir>/<name>.{safetensors,md,json}`` for an in-memory model and its config."""
    from checkpoints.weights import save_weights, slim_state
    from zoo.common.pretrained import collect_extras, config_from_hparams, self_contained_config

    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"--name {name!r}: expected 'method.tag' (lower case letters, digits, _ and -), e.g. reactface.mylab")
    init_args = config.get("init_args") or {}
    finetuned_from = init_args.get("pretrained")
    config = config_from_hparams({"_class_path": config["class_path"], **init_args})  # clears pretrained
    config = self_contained_config(model, config)
    if extras is None:
        extras = collect_extras(model, datamodule)
    face_mean_known = getattr(model, "face_mean_known", None)
    if face_mean_known is not None and not bool(face_mean_known):
        print(f"facezoo export: warning: {name} has no data face mean (it was never fitted on a REACT DataModule); "
              "generated face states will be mean-subtracted", file=sys.stderr)
    tensors = {**slim_state(model.state_dict()), **extras}
    out = Path(out_dir)
    weights = out / f"{name}.safetensors"
    versions = framework_versions()
    save_weights(weights, tensors, name=name, config=config, versions=versions,
                 finetuned_from=str(finetuned_from) if finetuned_from else None)
    entry = ManifestEntry(
        name=name, method=name.split(".", 1)[0], config=config, url=url or weights.name,
        sha256=sha256_file(weights), size=weights.stat().st_size, data=dict(data or {}),
        metrics=dict(metrics or {}), license=license, versions=versions, description=description,
        card=f"{name}.md", finetuned_from=str(finetuned_from) if finetuned_from else None,
        created=datetime.date.today().isoformat(), base_dir=out)
    card = out / f"{name}.md"
    _write_text(card, model_card(entry, weights.name))
    entry_file = out / f"{name}.json"
    _write_text(entry_file, json.dumps(entry.to_dict(), indent=2) + "\n")
    merged = None
    if manifest is not None:
        merged = Path(manifest)
        target = load_manifest(merged) if merged.is_file() else Manifest(path=merged)
        target.add(entry)
        target.save()
    return ExportResult(weights=weights, entry_file=entry_file, card=card, entry=entry, manifest=merged)


def _datamodule_config(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """``{class_path, init_args}`` of the run's DataModule (LightningCLI saves it when the
    DataModule calls ``save_hyperparameters``), else None."""
    hparams = checkpoint.get("datamodule_hyper_parameters")
    if not hparams or "_class_path" not in hparams:
        return None
    init_args = {k: v for k, v in hparams.items() if k not in ("_class_path", "_instantiator")}
    return {"class_path": hparams["_class_path"], "init_args": init_args}


def _build_datamodule(config: dict[str, Any]):
    from jsonargparse import ArgumentParser
    from lightning.pytorch import LightningDataModule

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data", fail_untyped=False)
    return parser.instantiate_classes(parser.parse_object({"data": config})).data


def export_checkpoint(ckpt: str | os.PathLike, name: str, out_dir: str | os.PathLike, *,
                      class_path: str | None = None, datamodule: Any = None,
                      shape_model: str | os.PathLike | None = None, metrics: dict[str, Any] | None = None,
                      license: str = "", data_description: str | None = None, url: str | None = None,
                      description: str = "", manifest: str | os.PathLike | None = None) -> ExportResult:
    """Export a Lightning checkpoint (read with ``weights_only=True``); see the module docstring."""
    import torch

    from checkpoints.weights import read_weights
    from zoo.common.pretrained import build_model, collect_extras, config_from_hparams, load_into

    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {ckpt}: no such file")
    tensors, metadata = read_weights(ckpt)
    checkpoint = metadata.get("lightning_checkpoint")
    if checkpoint is None or "hyper_parameters" not in checkpoint:
        raise ValueError(f"--ckpt {ckpt}: not a Lightning checkpoint with hyper_parameters")
    config = config_from_hparams(checkpoint["hyper_parameters"], class_path)
    original_pretrained = checkpoint["hyper_parameters"].get("pretrained")
    model = build_model(config)
    load_into(model, tensors, f"--ckpt {ckpt}")
    model.eval()
    data_config = _datamodule_config(checkpoint)
    extras = None
    if shape_model is not None:
        from datamodules.features.shape_model import PointDistributionModel

        holder = type("ShapeModelHolder", (), {"shape_model": PointDistributionModel.load(shape_model)})()
        extras = collect_extras(model, holder)
    elif datamodule is None and data_config is not None and collect_extras_needed(model):
        datamodule = _build_datamodule(data_config)
    data = {"description": data_description or (f"{data_config['class_path']} (see datamodule)" if data_config
                                                else "not stated")}
    if data_config is not None:
        data["datamodule"] = data_config
    if original_pretrained:
        config["init_args"]["pretrained"] = original_pretrained  # recorded as finetuned_from
    with torch.no_grad():
        return export_model(model, name, out_dir, config=config, datamodule=datamodule, extras=extras,
                            metrics=metrics, license=license, data=data, url=url, description=description,
                            manifest=manifest)


def collect_extras_needed(model) -> bool:
    from zoo.common.pretrained import DATA_EXTRAS, _class_names

    return any(_class_names(model) & set(classes) for classes in DATA_EXTRAS.values())


# ---------------------------------------------------------------------- CLI
def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", type=Path, required=True, help="Lightning checkpoint of the run (RUN.ckpt)")
    parser.add_argument("--name", required=True, help="published name, method.tag (e.g. reactface.mylab_v1)")
    parser.add_argument("--out", type=Path, default=Path("exported"), help="output folder (default ./exported)")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="JSON object of the metrics it reached (e.g. facezoo score --json output)")
    parser.add_argument("--license", default="", help="license of the weights (SPDX id, e.g. CC-BY-4.0)")
    parser.add_argument("--data", default=None, help="one line on the training data (default: the DataModule class)")
    parser.add_argument("--description", default="", help="one paragraph for the model card")
    parser.add_argument("--url", default=None,
                        help="where the file will be published (https://..., hf://org/repo/file); default: a path "
                             "relative to the entry / manifest")
    parser.add_argument("--manifest", type=Path, default=None, help="also merge the entry into this manifest.json")
    parser.add_argument("--shape-model", type=Path, default=None,
                        help="DyadGAN: the interview data's shape model (.npz) if the DataModule cannot be rebuilt")
    parser.add_argument("--class-path", default=None,
                        help="model class when the checkpoint was not written by LightningCLI (e.g. zoo.reactface.ReactFace)")


def run(args: argparse.Namespace) -> int:
    metrics = None
    if args.metrics is not None:
        if not args.metrics.is_file():
            raise FileNotFoundError(f"--metrics {args.metrics}: no such file")
        try:
            metrics = json.loads(args.metrics.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"--metrics {args.metrics}: not valid JSON ({err})") from err
        if not isinstance(metrics, dict):
            raise ValueError(f"--metrics {args.metrics}: expected a JSON object, got {type(metrics).__name__}")
    result = export_checkpoint(args.ckpt, args.name, args.out, class_path=args.class_path,
                               shape_model=args.shape_model, metrics=metrics, license=args.license,
                               data_description=args.data, url=args.url, description=args.description,
                               manifest=args.manifest)
    print(f"weights   {result.weights} ({result.entry.size / 1e6:.2f} MB, sha256 {result.entry.sha256})")
    print(f"card      {result.card}")
    print(f"entry     {result.entry_file}")
    if result.manifest is not None:
        print(f"manifest  {result.manifest}")
    return 0
