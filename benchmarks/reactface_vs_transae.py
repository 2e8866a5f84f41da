"""Issue 4 "done when": demo ReactFace vs demo Trans-AE on the embedded world's validation split.

    python benchmarks/reactface_vs_transae.py --out runs/compare --json runs/compare/result.json

Trains ``zoo/demo/reactface.yaml`` and ``zoo/demo/transae.yaml`` with ``lightning fit`` (same world,
crops, batch size and optimiser; each config's own epochs: 200 and 240: 515 s and 264 s of training at one thread
on the shared, loaded machine), each validation scored by ``REACTMetricsCallback``
(K = 10 samples per speaker, facezoo protocol, first 750 frames of every validation clip), and
prints / writes the last validation FRC (higher is better), TLCC (lower is better), S-MSE
(diversity, higher is better; Trans-AE's is 0 by construction) and FRD of both.
``--max-epochs`` sets both runs' epochs (default: each config's own).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("FRC", "FRD", "S-MSE", "TLCC", "FRVar", "FRDvs")
CONFIGS = {"reactface": "zoo/demo/reactface.yaml", "transae": "zoo/demo/transae.yaml"}


def last_validation(metrics_csv: Path) -> dict[str, float]:
    """The last logged value of each val/<metric> in a CSVLogger metrics.csv."""
    values: dict[str, float] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            for name in (*METRICS, "loss"):
                cell = row.get(f"val/{name}", "")
                if cell not in ("", None):
                    values[name] = float(cell)
    return values


def train(name: str, config: str, out: Path, max_epochs: int | None) -> tuple[dict[str, float], float]:
    run_dir = out / name
    cmd = [sys.executable, "-m", "zoo", "fit", "--config", config,
           "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
           "--trainer.logger.save_dir", str(run_dir), "--trainer.default_root_dir", str(run_dir)]
    if max_epochs is not None:
        cmd += ["--trainer.max_epochs", str(max_epochs), "--trainer.check_val_every_n_epoch",
                str(max(1, min(5, max_epochs)))]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    csvs = sorted(run_dir.rglob("metrics.csv"), key=os.path.getmtime)
    if not csvs:
        raise FileNotFoundError(f"{run_dir}: the run wrote no metrics.csv")
    return last_validation(csvs[-1]), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/compare"))
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--only", choices=sorted(CONFIGS), default=None, help="train only one of the two")
    args = parser.parse_args(argv)
    results = {}
    for name, config in CONFIGS.items():
        if args.only and name != args.only:
            continue
        metrics, seconds = train(name, config, args.out, args.max_epochs)
        results[name] = {"config": config, "train_seconds": round(seconds, 1), **metrics}
    header = f"{'model':<10}" + "".join(f"{m:>10}" for m in (*METRICS, "loss"))
    print(header)
    for name, row in results.items():
        print(f"{name:<10}" + "".join(f"{row.get(m, math.nan):>10.4f}" for m in (*METRICS, "loss")))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
