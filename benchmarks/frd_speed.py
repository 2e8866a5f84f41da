"""FRD speed: zoo.metrics.react.frd against calling tslearn's ``dtw`` per pair (B23 ``metric/FRD.py``).

    python benchmarks/frd_speed.py --n 8 --k 2 --t 750 --d 25 --neighbours-per-row 8 --pairs 16 --rounds 3 --json OUT.json
    ... --precision float32 --threads 1      # float32 arithmetic, one thread
    ... --precision float64 mixed float32    # all three in one process, interleaved round by round

Data: emotion-like sequences (15 binary AUs, valence/arousal random walks, 8 softmax expression
probabilities; ``--soft-au``: the samples' AUs are probabilities instead) rounded to float32 as B23 does, or uniform noise for D != 25; each speaker gets
``--neighbours-per-row`` random appropriate listeners. tslearn is timed on ``--pairs`` (query,
neighbour) pairs exactly as B23's ``_func`` computes one (three block DTWs for D = 25), in this one
process; ours is the whole FRD (min over neighbours, lower-bound pruning included; ``--no-prune``: every
pair in full), per pair = elapsed / (N K J). The two are timed in ``--rounds`` interleaved rounds (ours for
every ``--precision`` given, then tslearn) so all see the same machine load; medians, per-round ratios and
the load average are reported, in wall-clock time and in this process's CPU time (``time.process_time``:
what a busy machine steals from the process does not count; comparable to wall time at ``--threads 1``).
How much pruning saves depends on the data: ``--near-neighbour w`` makes each speaker's samples
blends of one appropriate listener and noise. The projection scales both per-pair times by
(750 / T)^2 (DTW is quadratic in T) to the REACT test set: N = 1612, K = 10, T = 750, D = 25.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from zoo.metrics.dtw import PRECISIONS, available_backends, min_block_dtw  # noqa: E402
from zoo.metrics.react import feature_blocks, frd  # noqa: E402

FULL_N, FULL_K, FULL_T = 1612, 10, 750


def make_data(n: int, k: int, t: int, d: int, neighbours: int, seed: int, near_neighbour: float = 0.0,
              soft_au: bool = False):
    rng = np.random.default_rng(seed)

    def seqs(shape):
        if d != 25:
            return rng.random(shape)
        x = np.empty(shape)
        x[..., :15] = rng.random(shape[:-1] + (15,)) < 0.2
        x[..., 15:17] = np.tanh(np.cumsum(rng.normal(0, 0.1, shape[:-1] + (2,)), axis=-2))
        logits = np.cumsum(rng.normal(0, 0.3, shape[:-1] + (8,)), axis=-2)
        x[..., 17:] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return x

    pred = seqs((n, k, t, d))
    lis = seqs((n, t, d))
    m = np.zeros((n, n), dtype=bool)
    for row in range(n):
        m[row, rng.choice(n, size=min(neighbours, n), replace=False)] = True
        if near_neighbour > 0:
            # a model that learnt something: speaker k's K samples are blends of one of its
            # appropriate listener reactions with noise of weight ``near_neighbour``
            target = lis[rng.choice(np.flatnonzero(m[row]))]
            pred[row] = (1 - near_neighbour) * target + near_neighbour * pred[row]
    if soft_au and d == 25:
        # a network's action-unit probabilities instead of 0/1 occurrences: smoothed, mostly low
        pred[..., :15] = 1 / (1 + np.exp(-np.cumsum(rng.normal(0, 0.3, pred.shape[:-1] + (15,)), axis=-2) + 1.5))
    return pred.astype(np.float32), lis.astype(np.float32), m


def timed_pairs(pred, m, pairs: int) -> list[tuple[int, int, int]]:
    n, k = pred.shape[:2]
    return [(q, i, j) for q in range(n) for i in range(k) for j in np.flatnonzero(m[q])][:pairs]


def time_tslearn(pred, lis, m, pairs: int, blocks) -> tuple[float, float, list[float]]:
    """(wall s per pair, CPU s per pair, values) of tslearn's dtw on the first ``pairs`` pairs."""
    from tslearn.metrics import dtw as tslearn_dtw

    todo = timed_pairs(pred, m, pairs)
    a, b = pred[0, 0].astype(np.float32), lis[0].astype(np.float32)
    for s, e, _ in blocks:  # compile tslearn's numba kernel before timing
        tslearn_dtw(a[:5, s:e], b[:5, s:e])
    values = []
    start, cpu = time.perf_counter(), time.process_time()
    for q, i, j in todo:
        values.append(sum(w * tslearn_dtw(pred[q, i].astype(np.float32)[:, s:e], lis[j].astype(np.float32)[:, s:e])
                          for s, e, w in blocks))
    return (time.perf_counter() - start) / len(todo), (time.process_time() - cpu) / len(todo), values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="speakers")
    parser.add_argument("--k", type=int, default=2, help="samples per speaker")
    parser.add_argument("--t", type=int, default=750, help="frames")
    parser.add_argument("--d", type=int, default=25, help="channels (25 = REACT emotion, weighted blocks)")
    parser.add_argument("--neighbours-per-row", type=int, default=8, help="appropriate listeners per speaker")
    parser.add_argument("--full-neighbours", type=int, default=20,
                        help="mean neighbours per speaker assumed for the full test-set projection")
    parser.add_argument("--near-neighbour", type=float, default=0.0,
                        help="0: independent random predictions (hardest for pruning); w in (0, 1]: each "
                             "speaker's samples = (1 - w) * one appropriate listener + w * noise")
    parser.add_argument("--soft-au", action="store_true",
                        help="the samples' 15 action units are probabilities (a network's sigmoid outputs) instead "
                             "of 0/1 occurrences; the listeners' stay 0/1 (the 0/1 popcount path is then not taken)")
    parser.add_argument("--pairs", type=int, default=16, help="pairs to time tslearn on")
    parser.add_argument("--backend", default="auto", choices=("auto", "numba", "torch"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", nargs="+", default=["float64"], choices=PRECISIONS,
                        help="FRD's DTW arithmetic, one or more (timed in this order every round): float64 "
                             "(default) and mixed = tslearn's numbers; float32 = faster, ~1e-7 relative error")
    parser.add_argument("--no-prune", action="store_true",
                        help="compute every (sample, neighbour) DTW in full (measures the kernel alone; same FRD)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for our kernel (torch.set_num_threads); default: torch's default")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved (ours, tslearn) rounds; medians reported")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads: expected a positive number")
        torch.set_num_threads(args.threads)
    precisions = list(dict.fromkeys(args.precision))
    pred, lis, m = make_data(args.n, args.k, args.t, args.d, args.neighbours_per_row, args.seed, args.near_neighbour,
                             args.soft_au)
    blocks = feature_blocks(args.d)
    triples = int(m.sum()) * args.k
    device = torch.device(args.device)
    p_t, l_t = torch.from_numpy(pred).to(device), torch.from_numpy(lis).to(device)

    def ours(p, lis_, m_, precision):
        if not args.no_prune:
            return frd(p, lis_, m_, "react2023", backend=args.backend, progress=False, precision=precision)
        # FRD as react.frd computes it (react2023: sum over K, mean over speakers), pruning off
        n, k, t, d = p.shape
        nbrs = [np.flatnonzero(row) for row in m_]
        offsets = np.concatenate([[0], np.cumsum(np.repeat([len(js) for js in nbrs], k))])
        cands = np.concatenate([js for js in nbrs for _ in range(k)])
        dist = min_block_dtw(p.reshape(n * k, t, d).double(), lis_.double(), offsets, cands, feature_blocks(d),
                             backend=args.backend, precision=precision, prune=False)
        return float(dist.reshape(n, k).sum(1).mean())

    for precision in precisions:  # warm-up (numba compilation) on a tiny problem
        ours(p_t[:2, :1, :8], l_t[:2, :8], np.ones((2, 2), dtype=bool), precision)
    # interleave ours and tslearn round by round, so all see the same machine load
    wall = {p: [] for p in precisions}
    cpu = {p: [] for p in precisions}
    values = {}
    tslearn_wall, tslearn_cpu = [], []
    for _ in range(args.rounds):
        for precision in precisions:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            values[precision] = ours(p_t, l_t, m, precision)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[precision].append(time.perf_counter() - start)
            cpu[precision].append(time.process_time() - cpu_start)
        tslearn_time, tslearn_cpu_time, tslearn_values = time_tslearn(pred, lis, m, args.pairs, blocks)
        tslearn_wall.append(tslearn_time)
        tslearn_cpu.append(tslearn_cpu_time)
    todo = timed_pairs(pred, m, args.pairs)
    q_idx = torch.tensor([q * args.k + i for q, i, _ in todo])
    tslearn_pair, tslearn_pair_cpu = float(np.median(tslearn_wall)), float(np.median(tslearn_cpu))
    scale = (FULL_T / args.t) ** 2
    full_triples = FULL_N * FULL_K * args.full_neighbours
    print(f"FRD on N={args.n} K={args.k} T={args.t} D={args.d}, {args.neighbours_per_row} neighbours/speaker "
          f"({triples} (sample, neighbour) pairs), {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    print(f"  tslearn dtw per pair (one process): {tslearn_pair * 1e3:9.3f} ms wall, {tslearn_pair_cpu * 1e3:9.3f} ms CPU")
    per_precision = {}
    for precision in precisions:
        # accuracy: our block DTW of the timed pairs (one candidate per query) against tslearn's values
        ours_pairs = min_block_dtw(p_t.reshape(-1, args.t, args.d)[q_idx.to(device)], l_t,
                                   np.arange(len(todo) + 1), [j for _, _, j in todo], blocks, backend=args.backend,
                                   precision=precision).cpu().numpy()
        rel_err = np.abs(ours_pairs - np.array(tslearn_values)) / np.abs(np.array(tslearn_values))
        ours_pair = float(np.median(wall[precision])) / triples
        ours_pair_cpu = float(np.median(cpu[precision])) / triples
        ratios = [t / (o / triples) for t, o in zip(tslearn_wall, wall[precision], strict=True)]
        ratios_cpu = [t / (o / triples) for t, o in zip(tslearn_cpu, cpu[precision], strict=True)]
        per_precision[precision] = {
            "ours_total_s": float(np.median(wall[precision])),
            "ours_per_pair_ms": ours_pair * 1e3,
            "ours_cpu_per_pair_ms": ours_pair_cpu * 1e3,
            "speedup": tslearn_pair / ours_pair,
            "speedup_per_round": ratios,
            "speedup_cpu": tslearn_pair_cpu / ours_pair_cpu,
            "speedup_cpu_per_round": ratios_cpu,
            "ours_total_s_per_round": wall[precision],
            "ours_cpu_s_per_round": cpu[precision],
            "frd_value": values[precision],
            "max_relative_error_vs_tslearn": float(rel_err.max()),
            "projection": {
                "n": FULL_N, "k": FULL_K, "t": FULL_T, "d": args.d, "neighbours_per_speaker": args.full_neighbours,
                "pairs": full_triples,
                "ours_hours": ours_pair * scale * full_triples / 3600,
                "tslearn_one_process_hours": tslearn_pair * scale * full_triples / 3600,
            },
        }
        print(f"  facezoo FRD, precision {precision:7s}: {ours_pair * 1e3:7.3f} ms wall, {ours_pair_cpu * 1e3:7.3f} ms CPU "
              f"per pair; speed-up {tslearn_pair / ours_pair:5.1f} x wall (rounds: "
              f"{', '.join(f'{r:.1f}' for r in ratios)}), {tslearn_pair_cpu / ours_pair_cpu:5.1f} x CPU; "
              f"max rel. error vs tslearn {rel_err.max():.1e}; FRD {values[precision]:.12g}")
    if "float64" in per_precision:
        for precision, fig in per_precision.items():
            fig["vs_float64_cpu"] = per_precision["float64"]["ours_cpu_per_pair_ms"] / fig["ours_cpu_per_pair_ms"]
            fig["vs_float64_per_round"] = [f / o for f, o in zip(wall["float64"], wall[precision], strict=True)]
            fig["same_frd_as_float64"] = fig["frd_value"] == per_precision["float64"]["frd_value"]
            print(f"  {precision:7s} vs float64: {fig['vs_float64_cpu']:.3f} x CPU, wall per round "
                  f"{', '.join(f'{r:.3f}' for r in fig['vs_float64_per_round'])}; "
                  f"FRD identical: {fig['same_frd_as_float64']}")
    first = per_precision[precisions[0]]
    print(f"  load average (1, 5, 15 min) at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"  projected full REACT test set (N={FULL_N}, K={FULL_K}, T={FULL_T}, "
          f"{args.full_neighbours} neighbours/speaker = {full_triples} pairs): tslearn "
          f"{first['projection']['tslearn_one_process_hours']:.2f} h; facezoo " + ", ".join(
              f"{p} {fig['projection']['ours_hours']:.2f} h" for p, fig in per_precision.items()))
    result = {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "backend": args.backend if args.backend != "auto" else available_backends()[0],
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "processor": platform.processor()},
        "triples": triples,
        "tslearn_per_pair_ms": tslearn_pair * 1e3,
        "tslearn_cpu_per_pair_ms": tslearn_pair_cpu * 1e3,
        "tslearn_per_pair_ms_per_round": [t * 1e3 for t in tslearn_wall],
        "load_average_1_5_15": list(os.getloadavg()),
        **first,  # the first precision's figures at the top level, as before
        "by_precision": per_precision,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{args.json.name}.", suffix=".tmp", dir=args.json.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(result, handle, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
