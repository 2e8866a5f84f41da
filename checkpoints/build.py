"""``make checkpoints``: train every zoo demo config on the embedded world and ship the weights.

    python -m checkpoints.build [--only transae reactface ...] [--runs runs/checkpoints-build]
                                [--out checkpoints/weights] [--manifest checkpoints/manifest.json]

For each demo config (``zoo/demo/<stem>.yaml``; its ``seed_everything`` fixes the seed) this
trains the model exactly as ``facezoo fit --config`` would (its callbacks included; a CSV logger
under ``--runs``), validates the final weights, saves the final checkpoint, exports it with
:func:`checkpoints.export.export_checkpoint` to ``<out>/<name>.safetensors`` (+ model card),
loads the exported file back with ``zoo.load_model`` and generates from it, and merges the entry
into the manifest (other entries are kept). Sizes are printed at the end; the shipped weights
must stay under 25 MB in all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SIZE_BUDGET = 25_000_000

# config stem -> (manifest name, one line for the card)
BUILDS: dict[str, tuple[str, str]] = {
    "transae": ("transae.demo", "Trans-AE (ReactFace Table 2 baseline), CPU-demo size, speaker motion from the tracked 3DMM coefficients, trained on the embedded REACT world."),
    "reactface": ("reactface.demo", "ReactFace, CPU-demo size, speaker motion from the tracked 3DMM coefficients, standardised outputs, trained on the embedded REACT world."),
    "cmmnet": ("cmmnet.demo", "CMM-Net (all four phases), CPU-demo size, trained on the embedded UvA-NEMO world."),
    "cmmnet_cranet": ("cmmnet.cranet_demo", "CRA-Net baseline of CMM-Net, CPU-demo size, trained on the embedded UvA-NEMO world."),
    "dyadgan": ("dyadgan.demo", "DyadGAN two-stage (sketch, then face), CPU-demo size, trained on the embedded interview world."),
    "dyadgan_one_stage": ("dyadgan.one_stage_demo", "DyadGAN one-stage baseline (Figure 8), CPU-demo size, trained on the embedded interview world."),
}


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        try:
            out[key] = round(float(value), 6)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items()))


def smoke_generate(model, image_size: int = 64, frames: int = 16, seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Generate from small synthetic inputs with any zoo model; returns the output shapes.
    Used to prove that a loaded model generates without a Trainer or a dataset."""
    import torch

    from datamodules.features.face_state import AFFECT_CLASSES

    g = torch.Generator().manual_seed(seed)
    name = type(model).__name__
    with torch.no_grad():
        if name in ("TransAE", "ReactFace"):
            video = torch.rand(1, frames, 3, image_size, image_size, generator=g) * 2 - 1
            if model.net.motion_input == "face_state":
                video = torch.randn(1, frames, 58, generator=g) * 0.1  # tracked 3DMM coefficients
            audio = torch.randn(1, frames * 640, generator=g)
            out = model.generate(video if model.net.use_video else None, audio if model.net.use_audio else None,
                                  2, num_frames=frames)
            if not torch.isfinite(out).all():
                raise ValueError(f"{name}.generate returned NaN/inf")
            return {"reactions": tuple(out.shape)}
        if name == "CMMNet":
            neutral = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
            marks = None if model.is_cranet else (torch.rand(1, 1, 64, 64, generator=g) > 0.9).float()
            out = model.generate(neutral, "spontaneous", None, marks, num_frames=4)
            return {"videos": tuple(out.shape)}
        if name == "DyadGAN":
            affect = torch.rand(frames, len(AFFECT_CLASSES), generator=g).softmax(-1)
            out = model.generate(affect, "dictionary", 2, generator=g)
            return {k: tuple(v.shape) for k, v in out.items() if v is not None}
    raise ValueError(f"smoke_generate: no example inputs for {name}")


def build_one(stem: str, runs: Path, out: Path, manifest: Path, threads: int) -> dict[str, Any]:
    import lightning as L
    import torch

    from checkpoints.export import export_checkpoint
    from zoo.common.pretrained import load_model
    from zoo.lightning_cli import ZooCLI

    name, description = BUILDS[stem]
    config = REPO / "zoo" / "demo" / f"{stem}.yaml"
    torch.set_num_threads(threads)
    run_dir = runs / stem
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(run_dir), "name": stem}}
    args = ["--config", str(config), "--trainer.default_root_dir", str(run_dir), "--trainer.logger", json.dumps(logger),
            "--trainer.enable_progress_bar", "false"]
    started = time.perf_counter()
    cli = ZooCLI(args=args, run=False, save_config_callback=None)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    train_s = time.perf_counter() - started
    final = run_dir / "final.ckpt"
    cli.trainer.save_checkpoint(final)
    metrics = _floats(cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0])
    import yaml

    data_section = yaml.safe_load(config.read_text())["data"]
    result = export_checkpoint(
        final, name, out, datamodule=cli.datamodule, metrics={"embedded_val": metrics}, license="Apache-2.0",
        data_description=f"the embedded world ({data_section['class_path']}, settings of zoo/demo/{stem}.yaml), "
                         f"seed {cli.config.get('seed_everything')}",
        description=description + f" Reproduce: python -m checkpoints.build --only {stem}.", manifest=manifest)
    L.seed_everything(0, verbose=False)
    model = load_model(result.weights)
    image_size = (data_section.get("init_args") or {}).get("image_size", 64)
    shapes = smoke_generate(model, image_size=image_size)
    print(f"checkpoints.build: {name}: trained in {train_s:.0f} s, {result.entry.size / 1e6:.2f} MB, "
          f"generates {shapes}", flush=True)
    return {"name": name, "train_s": round(train_s, 1), "size": result.entry.size, "sha256": result.entry.sha256,
            "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m checkpoints.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=None, metavar="STEM",
                        help=f"config stems or names to build (default all: {', '.join(BUILDS)})")
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "checkpoints-build", help="training runs folder")
    parser.add_argument("--out", type=Path, default=REPO / "checkpoints" / "weights", help="weights folder")
    parser.add_argument("--manifest", type=Path, default=REPO / "checkpoints" / "manifest.json")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="write the build summary here")
    args = parser.parse_args(argv)
    by_name = {name: stem for stem, (name, _) in BUILDS.items()}
    stems = list(BUILDS) if args.only is None else [by_name.get(s, s) for s in args.only]
    unknown = [s for s in stems if s not in BUILDS]
    if unknown:
        parser.error(f"--only: unknown {unknown}; known: {', '.join(BUILDS)} (or their names {', '.join(by_name)})")
    summary = [build_one(stem, args.runs, args.out, args.manifest, args.threads) for stem in stems]
    from checkpoints.manifest import load_manifest

    shipped = [e for e in load_manifest(args.manifest) if not e.is_remote]
    total = sum(e.size for e in shipped)
    for entry in shipped:
        print(f"{entry.name:28s} {entry.size / 1e6:6.2f} MB")
    print(f"{'total':28s} {total / 1e6:6.2f} MB (budget {SIZE_BUDGET / 1e6:.0f} MB)")
    if args.json is not None:
        args.json.write_text(json.dumps({"built": summary, "total_bytes": total}, indent=2) + "\n")
    if total > SIZE_BUDGET:
        print(f"checkpoints.build: the shipped weights take {total / 1e6:.1f} MB, over the {SIZE_BUDGET / 1e6:.0f} MB "
              "budget: shrink a demo config", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
