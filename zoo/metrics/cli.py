"""``facezoo score``: the REACT metrics on ``.npy`` files a user brings.

    facezoo score --predictions P.npy --listeners L.npy --speakers S.npy --neighbours M.npy \\
        --protocol react2023 [--metrics FRD TLCC] --json OUT.json

P (N, K, T, D), L and S (N, T, D), M (N, N) bool or 0/1, in the role-swapped sample order of the
split. A (N, T, D) prediction file is read as K = 1 (as RF ``evaluate_metric.py`` does). The JSON
object maps metric names to numbers (null where a value is undefined, e.g. S-MSE with K = 1 under
``facezoo``) and is written atomically (temp file, then ``os.replace``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from zoo.metrics.dtw import PRECISIONS
from zoo.metrics.react import _NEEDS, METRIC_NAMES, PROTOCOLS, _metric_list, score

__all__ = ["configure_parser", "run"]


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--predictions", required=True, type=Path, help="(N, K, T, D) .npy of generated reactions")
    parser.add_argument("--listeners", type=Path, help="(N, T, D) .npy of real listener reactions (FRC, FRD)")
    parser.add_argument("--speakers", type=Path, help="(N, T, D) .npy of real speaker behaviour (TLCC)")
    parser.add_argument("--neighbours", type=Path, help="(N, N) .npy appropriate-reaction matrix (FRC, FRD)")
    parser.add_argument("--protocol", default="react2023", choices=sorted(PROTOCOLS),
                        help="react2023: the challenge code's numbers; facezoo: corrected (docs/metrics.md)")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help=f"subset of {', '.join(METRIC_NAMES)} (default: the six REACT metrics)")
    parser.add_argument("--feature-space", default="auto", choices=("auto", "emotion", "plain"),
                        help="FRD blocks: emotion = challenge weights (D=25), plain = one DTW (auto: by D)")
    parser.add_argument("--backend", default="auto", choices=("auto", "numba", "torch"), help="DTW backend")
    parser.add_argument("--precision", default="float64", choices=PRECISIONS,
                        help="FRD's DTW arithmetic: float64 (default) and mixed give tslearn's numbers "
                             "exactly (mixed: float32 search, float64 minimum; faster unless pruning already "
                             "skips almost every candidate); float32 = fastest, ~1e-7 relative error")
    parser.add_argument("--device", default="cpu", help="torch device for the computation, e.g. cuda")
    parser.add_argument("--json", required=True, type=Path, help="where to write the JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _load(path: Path | None, name: str) -> np.ndarray | None:
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"--{name}: {path} does not exist or is not a file")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"--{name}: {path} is not a plain numeric .npy array ({err})") from err


def _write_json_atomic(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    import torch

    names = _metric_list(args.metrics)
    needed = {arg for m in names for arg in _NEEDS.get(m, ())}
    for arg in sorted(needed):
        if getattr(args, arg) is None:
            users = [m for m in names if arg in _NEEDS.get(m, ())]
            raise ValueError(f"--{arg} is required for {', '.join(users)}")
    arrays = {name: _load(getattr(args, name), name) for name in ("predictions", "listeners", "speakers", "neighbours")}
    preds = arrays["predictions"]
    if preds.ndim == 3:
        preds = preds[:, None]
    device = torch.device(args.device)

    def to_tensor(a: np.ndarray | None):
        if a is None:
            return None
        if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
            return a  # score() names the input and the dtype
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    results = score(to_tensor(preds), to_tensor(arrays["listeners"]), to_tensor(arrays["speakers"]),
                    to_tensor(arrays["neighbours"]), protocol=args.protocol, metrics=names,
                    feature_space=args.feature_space, backend=args.backend, precision=args.precision,
                    progress=False if args.no_progress else None)
    payload = {k: (None if not math.isfinite(v) else v) for k, v in results.items()}
    _write_json_atomic(args.json, payload)
    print(json.dumps(payload), file=sys.stdout)
    return 0
