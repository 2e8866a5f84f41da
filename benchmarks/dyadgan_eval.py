"""The Interactive-GAN paper's comparison for trained DyadGAN checkpoints: two-stage vs one-stage
realism (Fig. 8), the z strategies (Table 1) and the C-LSTMs (Table 2), by
:func:`zoo.dyadgan.evaluate.evaluate_dyadgan`.

    python benchmarks/dyadgan_eval.py \
        --two-stage runs/demo-dyadgan/dyadgan/version_0/checkpoints/last.ckpt \
        --one-stage runs/demo-dyadgan-one-stage/dyadgan_one_stage/version_0/checkpoints/last.ckpt \
        [--two-stage-config zoo/demo/dyadgan.yaml] [--one-stage-config zoo/demo/dyadgan_one_stage.yaml] \
        [--split test] [--num-samples 3] [--seed 0] [--threads 1] [--json OUT]

Each model and its DataModule are built from its config exactly as ``fit`` builds them (``ZooCLI``,
``run=False``), then the checkpoint's weights (and fitted dictionary) are loaded with
``weights_only=True``. FID_world is a Fréchet distance in a small face network's features trained
on the real training faces (:mod:`zoo.metrics.world_features`): **not FID**, comparable only
between these two models. Real FID is printed too when pytorch-fid's Inception weights are found.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from datamodules.features.drawing import oval_mask, sketch
from datamodules.features.io import atomic_path

DEFAULT_CONFIGS = {"two_stage": Path("zoo/demo/dyadgan.yaml"), "one_stage": Path("zoo/demo/dyadgan_one_stage.yaml")}


def build(config: Path, ckpt: Path):
    """(model with the checkpoint's weights, datamodule) of a zoo config."""
    from zoo.generate import load_weights
    from zoo.lightning_cli import ZooCLI

    if not config.is_file():
        raise FileNotFoundError(f"config {config}: no such file")
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt}: no such file")
    argv, sys.argv = sys.argv, sys.argv[:1]  # LightningCLI warns when both args and sys.argv are given
    try:
        cli = ZooCLI(args=["--config", str(config), "--trainer.logger", "false", "--trainer.callbacks", "[]"],
                     run=False, save_config_callback=None)
    finally:
        sys.argv = argv
    load_weights(cli.model, ckpt)
    return cli.model, cli.datamodule


def _row(name: str, values: dict[str, dict[str, float]], digits: int = 4) -> str:
    cells = []
    for arch in values:
        v = values[arch].get(name)
        cells.append("—" if v is None else f"{v:.{digits}f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def report(results: dict[str, dict[str, float]]) -> str:
    """Markdown tables of the paper's comparisons."""
    archs = list(results)
    header = "| figure | " + " | ".join(a.replace("_", "-") for a in archs) + " |\n|---|" + "---|" * len(archs)
    realism = ["ssim", "fid_world", "fid_world_dictionary", "fid_world_real_reference", "fid", "fid_dictionary",
               "sketch_l1", "stage2_ssim", "stage2_fid_world", "world_net_landmark_error_px", "render_fps", "num_images"]
    table1 = ["jerk_real", "dictionary_jerk", "lstm_jerk", "lstm_nonoverlap_jerk", "dictionary_diversity",
              "lstm_diversity", "lstm_nonoverlap_diversity", "dictionary_mse", "dictionary_min_mse",
              "dictionary_fps", "lstm_fps", "lstm_nonoverlap_fps"]
    table2 = ["lstm_overlap_mse", "lstm_nonoverlap_mse", "lstm_overlap_rollout_mse", "hold_last_next_mse",
              "hold_last_mse", "mean_shape_mse", "num_windows"]
    blocks = []
    for title, names in (("Realism (Fig. 8: two-stage vs one-stage; FID_world is not FID)", realism),
                         ("Table 1: z strategies (jerk: parameter units / frame^3)", table1),
                         ("Table 2: C-LSTM MSE (standardised shape parameters)", table2)):
        rows = [_row(n, results, 1 if n.endswith("fps") or n.startswith("num_") else 4) for n in names
                if any(n in r for r in results.values())]
        blocks.append(f"{title}\n\n{header}\n" + "\n".join(rows))
    return "\n\n".join(blocks)


@torch.no_grad()
def comparison_image(models: dict, datamodule, split: str = "test", count: int = 8, spacing: int = 15, seed: int = 0,
                     scale: int = 2) -> np.ndarray:
    """uint8 (H, W, 3) grid, one column per frame of the split's first session (every ``spacing``-th
    after the history): real face, real sketch, then per model its sketch (two-stage) and face
    from the real z, and its face from a dictionary z sequence (affect only)."""
    from zoo.dyadgan.module import _to_uint8, affect_windows

    session = datamodule.sessions(split)[0]
    params = datamodule.shape_parameters(split)[0]
    first = next(iter(models.values()))
    h, size = first.hparams.history, first.hparams.image_size
    frames = [h + k * spacing for k in range(count) if h + k * spacing < session.length]
    affect = torch.from_numpy(np.ascontiguousarray(session.affect)).float()[None]
    windows = affect_windows(affect, h)[0, frames]
    z = torch.from_numpy(params[frames]).float()
    mask = oval_mask(size)
    rows = [("real face", np.stack([session.frames[t] for t in frames])),
            ("real sketch", np.stack([np.repeat(sketch(session.landmarks[t], size, oval_mask=mask)[..., None], 3, -1)
                                      for t in frames]))]
    for name, model in models.items():
        model.eval()
        device = model.device
        generator = torch.Generator(device=device).manual_seed(seed)
        dictionary_z = model.sample_z(affect.to(device), "dictionary", 1, generator=generator)[0, 0, frames]
        made_sketch, made_face = model.render(z.to(device), windows.to(device))
        label = name.replace("_", "-")

        def hwc(images: torch.Tensor) -> np.ndarray:
            return _to_uint8(images).expand(-1, 3, -1, -1).permute(0, 2, 3, 1).cpu().numpy()

        if made_sketch is not None:
            rows.append((f"{label} sketch", hwc(made_sketch)))
        rows.append((f"{label} face", hwc(made_face)))
        rows.append((f"{label} dict. z", hwc(model.render(dictionary_z, windows.to(device))[1])))
    margin, cell = 150, size * scale
    grid = np.full((len(rows) * cell, margin + len(frames) * cell, 3), 255, dtype=np.uint8)
    for r, (label, images) in enumerate(rows):
        cv2.putText(grid, label, (4, r * cell + cell // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for c, image in enumerate(images):
            big = cv2.resize(np.ascontiguousarray(image), (cell, cell), interpolation=cv2.INTER_NEAREST)
            grid[r * cell:(r + 1) * cell, margin + c * cell:margin + (c + 1) * cell] = big
    return grid


def write_png(path: str, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:  # keeps the .png suffix, which cv2.imwrite needs
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: could not write the PNG")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--two-stage", type=Path, help="checkpoint of the two-stage model")
    parser.add_argument("--one-stage", type=Path, help="checkpoint of the one-stage baseline")
    parser.add_argument("--two-stage-config", type=Path, default=DEFAULT_CONFIGS["two_stage"])
    parser.add_argument("--one-stage-config", type=Path, default=DEFAULT_CONFIGS["one_stage"])
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--num-samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window-stride", type=int, default=10)
    parser.add_argument("--image-stride", type=int, default=1)
    parser.add_argument("--max-images", type=int, default=4000)
    parser.add_argument("--fid-weights", default=None, help="pytorch-fid Inception weights (else the usual search)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--png", default=None, help="write a grid of real, two-stage and one-stage faces here")
    args = parser.parse_args(argv)
    if args.two_stage is None and args.one_stage is None:
        parser.error("give --two-stage CKPT and/or --one-stage CKPT")
    torch.set_num_threads(args.threads)
    from zoo.dyadgan.evaluate import evaluate_dyadgan

    results, seconds, models = {}, {}, {}
    for arch, ckpt, config in (("two_stage", args.two_stage, args.two_stage_config),
                               ("one_stage", args.one_stage, args.one_stage_config)):
        if ckpt is None:
            continue
        start = time.perf_counter()
        model, datamodule = build(config, ckpt)
        if model.hparams.architecture != arch:
            raise SystemExit(f"--{arch.replace('_', '-')} {ckpt}: its config {config} builds a "
                             f"{model.hparams.architecture} model")
        results[arch] = evaluate_dyadgan(model.to(args.device), datamodule, num_samples=args.num_samples, seed=args.seed,
                                         split=args.split, window_stride=args.window_stride,
                                         image_stride=args.image_stride, max_images=args.max_images,
                                         fid_weights=args.fid_weights)
        seconds[arch] = time.perf_counter() - start
        models[arch] = (model, datamodule)
        print(f"{arch}: evaluated in {seconds[arch]:.0f} s", file=sys.stderr)
    print(report(results))
    if args.png:
        datamodule = next(iter(models.values()))[1]
        write_png(args.png, comparison_image({k: m for k, (m, _) in models.items()}, datamodule, args.split, seed=args.seed))
        print(f"wrote {args.png}", file=sys.stderr)
    if args.json:
        payload = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
                   "split": args.split, "seed": args.seed, "checkpoints": {"two_stage": str(args.two_stage),
                                                                           "one_stage": str(args.one_stage)},
                   "seconds": seconds, "results": results}
        with atomic_path(args.json) as tmp, open(tmp, "w") as f:
            json.dump(payload, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
