"""CMM-Net / CRA-Net evaluation table (paper Tables 1 and 3, plus diversity and class consistency).

    python benchmarks/cmmnet_eval.py --ckpt RUN.ckpt [--config zoo/demo/cmmnet.yaml] [--k 3]
                                     [--seed 0] [--split test] [--json OUT] [--figure PNG]

Builds the model and the DataModule from the config exactly as ``fit`` does, loads the
checkpoint's weights (``weights_only=True``), runs :func:`zoo.cmmnet.evaluate.evaluate_cmmnet`
and prints one row per class. ``--figure`` writes a PNG of the K modes for the first test
sequence of each class: face rows real | translator on the real landmark images | mode 1..K,
then landmark rows real | mode 1..K (CMM-Net); columns every ``--stride`` frames.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datamodules.features.io import atomic_path  # noqa: E402
from datamodules.smile import SMILE_CLASSES  # noqa: E402
from zoo.cmmnet.evaluate import evaluate_cmmnet  # noqa: E402

COLUMNS = ("ssim", "ssim_neutral_copy", "is", "is_real", "delta_is", "au6_curve_distance", "au12_curve_distance", "diversity_au",
           "diversity_au_same_person", "diversity_au_real", "diversity_video", "diversity_video_same_person",
           "diversity_landmarks_px", "diversity_landmarks_px_same_person", "diversity_landmarks_px_real",
           "diversity_au_landmarks", "diversity_au_landmarks_same_person", "modes_matched_variants",
           "modes_matched_mouth_styles", "modes_matched_eye_styles",
           "class_consistency", "classifier_accuracy_real", "class_consistency_landmarks",
           "classifier_accuracy_real_landmarks", "ssim_translated_real", "au6_curve_distance_translated_real",
           "au12_curve_distance_translated_real", "classifier_accuracy_translated_real",
           "classifier_accuracy_translated_real_label_swapped")


def build(config: Path, ckpt: Path):
    """(model, datamodule) of a zoo config with the checkpoint's weights."""
    from zoo.generate import load_weights
    from zoo.lightning_cli import ZooCLI

    if not config.is_file():
        raise FileNotFoundError(f"--config {config}: no such file")
    cli = ZooCLI(args=["--config", str(config), "--trainer.logger", "false", "--trainer.callbacks", "[]"],
                 run=False, save_config_callback=None)
    load_weights(cli.model, ckpt)
    return cli.model.eval(), cli.datamodule


def _uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().numpy()


@torch.no_grad()
def mode_figure(model, datamodule, path: Path, k: int, stride: int = 4) -> Path:
    """PNG: per class, the first test sequence: faces (real, the translator on the real landmark
    images, the K modes), then landmark images (real, the K modes)."""
    import cv2
    from einops import rearrange

    dataset = datamodule.dataset("test")
    blocks = []
    for label in range(len(SMILE_CLASSES)):
        index = next((i for i in range(len(dataset)) if int(dataset.items[i].label) == label), None)
        if index is None:
            continue
        item = dataset[index]
        neutral, marks = item["neutral"][None], item["landmark_images"][:1]
        cranet = model.hparams.variant == "cranet"
        kk = k if cranet else min(k, model.hparams.num_modes)
        steps = item["video"].shape[0]
        videos = model.generate(neutral, label, kk, None if cranet else marks, steps)[0]
        rows_faces = [item["video"][None]]
        if not cranet:  # the translator alone on the real landmark images: what the faces can be at best
            rows_faces.append(model.translate_sequences(item["landmark_images"][None], neutral, marks, label))
        faces = torch.cat([*rows_faces, videos])[:, ::stride]
        rows = [rearrange(_uint8(faces), "k t c h w -> (k h) (t w) c")]
        if not cranet:
            _, modes = model.generate_landmarks(marks, label, steps)
            lm = torch.cat([item["landmark_images"][None], modes[0, :kk]])[:, ::stride]
            rows.append(np.repeat(rearrange(_uint8(lm * 2 - 1), "k t 1 h w -> (k h) (t w) 1"), 3, axis=-1))
        block = np.concatenate(rows, axis=0)
        title = np.full((14, block.shape[1], 3), 255, np.uint8)
        what = "real, then modes" if cranet else "faces: real, translator on real landmarks, modes; landmarks: real, modes"
        cv2.putText(title, f"{SMILE_CLASSES[label]}: {what} 1..{kk}", (2, 11), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (0, 0, 0), 1, cv2.LINE_AA)
        blocks.append(np.concatenate([title, block], axis=0))
    figure = np.concatenate(blocks, axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise RuntimeError(f"{path}: OpenCV could not write the figure")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="Lightning checkpoint of a CMM-Net / CRA-Net run")
    parser.add_argument("--config", type=Path, default=ROOT / "zoo/demo/cmmnet.yaml", help="the run's zoo config")
    parser.add_argument("--k", type=int, default=3, help="modes per neutral face (paper: 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the AU estimator and classifier fits")
    parser.add_argument("--split", default="test", choices=("val", "test"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures and notes here")
    parser.add_argument("--figure", type=Path, default=None, help="PNG of the K modes per class")
    parser.add_argument("--stride", type=int, default=4, help="frame step of the figure's columns")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    model, datamodule = load_run(args)
    started = time.perf_counter()
    result = evaluate_cmmnet(model, datamodule, k=args.k, seed=args.seed, split=args.split)
    seconds = time.perf_counter() - started
    print(f"{model.hparams.variant} on {type(datamodule).__name__} ({args.split}, "
          f"{int(result['num_test_sequences'])} sequences, K = {int(result['k'])}), {seconds:.0f} s")
    shown = [c for c in COLUMNS if any(f"{name}/{c}" in result for name in SMILE_CLASSES)]
    widths = [max(12, len(c)) + 2 for c in shown]  # every column header stays readable
    print(f"{'class':<12}" + "".join(f"{c:>{w}}" for c, w in zip(shown, widths)))
    for name in SMILE_CLASSES:
        print(f"{name:<12}" + "".join(f"{result.get(f'{name}/{c}', float('nan')):>{w}.4f}" for c, w in zip(shown, widths)))
    for key in ("classifier_accuracy_real", "classifier_accuracy_real_landmarks", "class_auc", "classifier_auc_real",
                "class_auc_landmarks", "classifier_auc_real_landmarks", "au_estimator_mae_real",
                "same_person_source", *(f"last_frame_px_{w}{s}" for s in ("", "_train")
                                        for w in ("neutral", "conditional", "best_mode"))):
        if key in result:
            print(f"{key}: {result[key]:.4f}")
    for note in result.notes:
        print(f"note: {note}")
    if args.figure is not None:
        print(f"figure: {mode_figure(model, datamodule, args.figure, args.k, args.stride)}")
    if args.json is not None:
        write_report(args, seconds, {"k": args.k, "metrics": dict(result), "notes": result.notes})
    return 0


def load_run(args: argparse.Namespace):
    """(model, datamodule) of ``args.config`` / ``args.ckpt`` (FileNotFoundError when the checkpoint is
    missing), with ``args.threads`` torch threads."""
    if not args.ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {args.ckpt}: no such file")
    torch.set_num_threads(args.threads)
    return build(args.config, args.ckpt)


def write_report(args: argparse.Namespace, seconds: float, figures: dict) -> None:
    """Write ``figures`` with the run's settings (config, checkpoint, split, seed, threads, versions)
    to ``args.json``, atomically."""
    payload = {"config": str(args.config), "ckpt": str(args.ckpt), "seed": args.seed, "split": args.split,
               "seconds": seconds, "threads": args.threads, "python": platform.python_version(),
               "torch": torch.__version__, **figures}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.json) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(main())
