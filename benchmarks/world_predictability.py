"""How predictable is the listener from the speaker in a REACT-layout dataset?

A reference point for baselines such as Trans-AE: ridge regression from the speaker's *true*
face state over the last ``--max-lag`` frames to the listener's face state, fitted on the
training split and scored on the validation split with Trans-AE's loss (smooth L1 on the 52
expression channels + 10 x on the 6 pose channels, RF ``VAELoss``), next to the loss of
predicting the training-mean reaction. Reads the files directly (``3D_FV_files`` + split csvs),
mirrored as the DataModule does.

    python benchmarks/world_predictability.py [--root DIR | --sessions 12 --image-size 128] --json OUT
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from datamodules.react_files import split_base


def load_split(root: Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(speakers, listeners) face states in the mirrored order of the split."""
    with open(root / f"{split}.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    base = split_base(root, split)
    load = lambda path: np.load(base / "3D_FV_files" / f"{path}.npy").reshape(-1, 58).astype(np.float64)  # noqa: E731
    speakers, listeners = [], []
    for _, a, b in rows:
        fa, fb = load(a), load(b)
        speakers += [fa, fb]
        listeners += [fb, fa]
    return speakers, listeners


def lagged(x: np.ndarray, lags: list[int]) -> np.ndarray:
    """Concatenate ``x`` delayed by each lag (causal: frame t sees t - lag)."""
    out = [np.concatenate([np.repeat(x[:1], lag, axis=0), x[: len(x) - lag]]) if lag else x for lag in lags]
    return np.concatenate(out, axis=1)


def smooth_l1(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 1, 0.5 * d**2, np.abs(d) - 0.5)


def reaction_loss(prediction: np.ndarray, target: np.ndarray, pose_weight: float = 10.0) -> float:
    diff = prediction - target
    return float(smooth_l1(diff[:, :52]).mean() + pose_weight * smooth_l1(diff[:, 52:]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="a REACT-layout dataset (default: the embedded world)")
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--clips-per-session", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-lag", type=int, default=25, help="frames of speaker history (default 25 = 1 s)")
    parser.add_argument("--ridge", type=float, default=1.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = args.root
    if root is None:
        from datamodules.synthetic.react_world import cached_react_dataset

        root = cached_react_dataset(sessions=args.sessions, clips_per_session=args.clips_per_session,
                                    image_size=args.image_size)
    start = time.perf_counter()
    lags = list(range(0, args.max_lag + 1, 5))
    train_s, train_l = load_split(root, "train")
    val_s, val_l = load_split(root, "val")
    mean = np.concatenate(train_l).mean(axis=0)
    x = np.concatenate([lagged(s, lags) for s in train_s])
    x_mean = x.mean(axis=0)
    x -= x_mean
    y = np.concatenate(train_l) - mean
    weights = np.linalg.solve(x.T @ x + args.ridge * np.eye(x.shape[1]), x.T @ y)
    xv = np.concatenate([lagged(s, lags) for s in val_s]) - x_mean
    yv = np.concatenate(val_l) - mean
    result = {
        "root": str(root), "train_samples": len(train_s), "val_samples": len(val_s), "lags": lags,
        "mean_reaction_loss": reaction_loss(np.zeros_like(yv), yv),
        "ridge_loss": reaction_loss(xv @ weights, yv),
        "ridge_expression_r2": float(1 - ((xv @ weights - yv)[:, :52] ** 2).sum() / (yv[:, :52] ** 2).sum()),
        "seconds": time.perf_counter() - start,
    }
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
