"""Can a CMM-Net checkpoint's landmark VAE carry a smile over to held-out people? (zoo.cmmnet.latent_probe)

    python benchmarks/cmmnet_latent_probe.py --ckpt RUN.ckpt [--config zoo/demo/cmmnet.yaml] [--steps 2000]
                                             [--sequences 30] [--identity-blind] [--json OUT]

Trains a fresh conditional LSTM in the frozen VAE's latent space and prints the last-frame Chamfer
figures on training and held-out people next to the copy-the-neutral baseline. A held-out
conditional figure at or above its neutral baseline means that the recurrent part will memorise
its training people whatever the schedule (docs/cmmnet.md, session 6).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.cmmnet_eval import load_run, write_report  # noqa: E402
from zoo.cmmnet.latent_probe import latent_probe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", type=Path, required=True, help="Lightning checkpoint of a CMM-Net run (its VAE is probed)")
    parser.add_argument("--config", type=Path, default=ROOT / "zoo/demo/cmmnet.yaml", help="the run's zoo config")
    parser.add_argument("--steps", type=int, default=2000, help="training steps of the probe's LSTM (default 2000)")
    parser.add_argument("--sequences", type=int, default=30, help="sequences per split that are scored (default 30)")
    parser.add_argument("--identity-blind", action="store_true", help="an LSTM that does not see h_0 (module doc)")
    parser.add_argument("--split", default="test", choices=("val", "test"), help="the held-out split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args(argv)
    model, datamodule = load_run(args)
    started = time.perf_counter()
    result = latent_probe(model, datamodule, steps=args.steps, sequences=args.sequences,
                          identity_blind=args.identity_blind, seed=args.seed, split=args.split)
    seconds = time.perf_counter() - started
    print(f"latent probe ({'identity-blind' if args.identity_blind else 'conditional'} LSTM, {args.steps} steps, "
          f"{seconds:.0f} s); latent loss {result['loss_first']:.2f} -> {result['loss_last']:.2f}")
    print(f"{'last-frame Chamfer px':<24}{'neutral frame':>15}{'probe LSTM':>12}")
    for name, suffix in (("training people", "_train"), (f"held-out ({args.split})", "")):
        print(f"{name:<24}{result[f'last_frame_px_neutral{suffix}']:>15.3f}{result[f'last_frame_px_conditional{suffix}']:>12.3f}")
    if args.json is not None:
        write_report(args, seconds, {"steps": args.steps, "sequences": args.sequences,
                                     "identity_blind": args.identity_blind, "metrics": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
