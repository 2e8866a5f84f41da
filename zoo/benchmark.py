"""``facezoo benchmark``: run a leaderboard suite, or render the leaderboard.

    facezoo benchmark --suite react|smile|interview [--models NAME ...] [--ckpt RUN.ckpt --config C.yaml ...]
                      [--data.root DIR] [--seed 0] [--out benchmarks/results] [--no-references]
    facezoo benchmark --leaderboard [--results benchmarks/results] [--out docs/leaderboard.md] [--img-dir docs/img]

(also ``python -m zoo.benchmark ...``). A suite scores every chosen model (default: every
published model of the suite's methods in the checkpoint manifest, ``$FACEZOO_MANIFEST`` or the
shipped one) and the naive references, on the embedded world (default) or ``--data.root``, and
writes one JSON per row to ``<out>/<suite>/<name>.json`` (:mod:`zoo.benchmarks.results`).

* ``react``: K = 10 reactions per speaker on the test split's first 750 frames, every REACT
  metric under the ``facezoo`` and ``react2023`` protocols (:mod:`zoo.benchmarks.react_suite`);
  references ground truth, random, mime, mean sequence, mean frame
  (:mod:`zoo.benchmarks.references`, B23 ``run_baselines.py``).
* ``smile``: ``zoo.cmmnet.evaluate.evaluate_cmmnet(model, datamodule, k=3, seed, split="test")``;
* ``interview``: ``zoo.dyadgan.evaluate.evaluate_dyadgan(model, datamodule, num_samples=3, seed,
  split="test")``; for both, reference rows from the evaluation's model-independent figures
  (:mod:`zoo.benchmarks.paper_suites`).

``--leaderboard`` renders ``docs/leaderboard.md`` and ``docs/img/leaderboard_<suite>.png`` from
the results and the manifest only (:mod:`zoo.benchmarks.leaderboard`).

Runs are deterministic on the CPU: every model and reference is seeded with ``--seed`` before it
runs and torch uses ``--threads`` (default 1) intra-op threads, so re-running reproduces the
JSON metrics (speed figures aside, which the page leaves out) and the rendered leaderboard.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from zoo.benchmarks.paper_suites import EVALUATORS, evaluator, reference_metrics, split_evaluation
from zoo.benchmarks.results import (
    BenchmarkResult,
    git_commit,
    package_versions,
    read_results,
    write_result,
)
from zoo.benchmarks.sources import (
    SUITES,
    ModelSource,
    SuiteSpec,
    build_datamodule,
    check_model_class,
    describe_data,
    local_model_source,
    manifest_model_sources,
    suite_spec,
)

__all__ = ["configure_parser", "main", "render_leaderboard", "run", "run_suite"]

DEFAULT_RESULTS = Path("benchmarks/results")
DEFAULT_LEADERBOARD = Path("docs/leaderboard.md")
DEFAULT_IMG_DIR = Path("docs/img")
PAPER_PROTOCOL = "paper"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--suite", choices=sorted(SUITES), help="run one benchmark suite")
    mode.add_argument("--leaderboard", action="store_true", help="render docs/leaderboard.md and its plots")
    parser.add_argument("--models", nargs="+", metavar="NAME", default=None,
                        help="published model names (default: every manifest model of the suite's methods)")
    parser.add_argument("--ckpt", action="append", type=Path, default=[], metavar="RUN.ckpt",
                        help="a local Lightning checkpoint (repeatable; pair each with a --config)")
    parser.add_argument("--config", action="append", type=Path, default=[], metavar="YAML",
                        help="the zoo config a --ckpt was trained with (same order as --ckpt)")
    parser.add_argument("--name", action="append", default=[], metavar="NAME",
                        help="row names for the --ckpt models (default <config stem>-<ckpt stem>)")
    parser.add_argument("--data.root", dest="data_root", default=None, metavar="DIR",
                        help="a real dataset in the suite's layout (default: the embedded world)")
    parser.add_argument("--data.world", dest="data_world", default=None, metavar="JSON",
                        help="embedded-world settings replacing the suite's default, as JSON")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every model and reference (default 0)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results folder (suite; default {DEFAULT_RESULTS}) or page (--leaderboard; "
                             f"default {DEFAULT_LEADERBOARD})")
    parser.add_argument("--references", action=argparse.BooleanOptionalAction, default=True,
                        help="also score the naive references (default on)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="samples per input (default: react 10, smile 3, interview 3)")
    parser.add_argument("--frames", type=int, default=None,
                        help="react: frames scored per clip (the protocol's 750; lower only for smoke tests)")
    parser.add_argument("--device", default="cpu", help="torch device for generation (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: the committed numbers' setting)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help=f"--leaderboard: the results folder (default {DEFAULT_RESULTS})")
    parser.add_argument("--img-dir", type=Path, default=DEFAULT_IMG_DIR,
                        help=f"--leaderboard: where the plots go (default {DEFAULT_IMG_DIR})")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="--leaderboard: markdown only")


# ------------------------------------------------------------------------------------------ runs


def _provenance() -> dict[str, Any]:
    return {"versions": package_versions(), "git_commit": git_commit()}


def _seed(seed: int) -> None:
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)


def _emit(log: Callable[[str], None] | None, text: str) -> None:
    if log is not None:
        log(text)


def _format_metrics(metrics: Mapping[str, float | None], limit: int = 8) -> str:
    items = list(metrics.items())[:limit]
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in items)


def _react_suite(spec: SuiteSpec, models: Sequence[ModelSource], *, root, data_overrides: dict, seed: int,
                 num_samples: int, frames: int, references: bool, device: str, results_dir: Path,
                 log) -> list[Path]:
    from zoo.benchmarks import react_suite as rs

    overrides = {**data_overrides, "eval_clip_length": frames}
    common = dict(seed=seed, **_provenance())
    protocol = {"num_samples": num_samples, "frames": frames, "split": rs.SPLIT,
                "feature_space": "face_state_58 (mean-subtracted)"}
    written: list[Path] = []
    for source in models:
        start = time.perf_counter()
        model = source.load()
        check_model_class(model, spec, source.name)
        # decode the speaker's frames only for models that read them (face-state and audio-only don't)
        reads_frames = bool(getattr(model, "reads_speaker_frames", True))
        datamodule = build_datamodule(source.data_config, spec, root=root,
                                      overrides={**overrides, "load_video": reads_frames})
        datamodule.prepare_data()
        datamodule.setup("test")
        _seed(seed)
        generate_start = time.perf_counter()
        collected = rs.collect_predictions(model, datamodule.test_dataloader(), num_samples, device)
        score_start = time.perf_counter()
        scores = rs.score_all_protocols(collected, datamodule.neighbour_matrix(rs.SPLIT))
        end = time.perf_counter()
        result = BenchmarkResult(
            suite=spec.name, name=source.name, kind="model", metrics=scores,
            leaderboard_protocol=rs.LEADERBOARD_PROTOCOL, data=describe_data(datamodule, rs.SPLIT),
            method=source.method or type(model).__name__.lower(), weights_sha256=source.weights_sha256,
            source=source.source, protocol={**protocol, "samples": int(collected["indices"].numel())},
            wall_time_s={"load": round(generate_start - start, 3), "generate": round(score_start - generate_start, 3),
                         "score": round(end - score_start, 3), "total": round(end - start, 3)},
            **common)
        written.append(write_result(result, results_dir))
        _emit(log, f"{spec.name} {source.name}: {_format_metrics(result.shown)}  ({end - start:.1f} s)")
        del model, collected
    if references:
        datamodule = build_datamodule(spec.default_data_config(), spec, root=root, overrides=overrides)
        datamodule.prepare_data()
        data, indices = rs.reference_data(datamodule, frames)
        neighbours = datamodule.neighbour_matrix(rs.SPLIT)
        description = describe_data(datamodule, rs.SPLIT)
        for name in rs.REFERENCE_NAMES:
            _seed(seed)
            scores, times = rs.run_reference(name, data, indices, neighbours, num_samples=num_samples, seed=seed)
            result = BenchmarkResult(
                suite=spec.name, name=name, kind="reference", metrics=scores,
                leaderboard_protocol=rs.LEADERBOARD_PROTOCOL, data=description, method=None,
                source={"reference": name, "definition": "B23 run_baselines.py::get_baseline"},
                protocol={**protocol, "samples": int(indices.numel())},
                wall_time_s={k: round(v, 3) for k, v in {**times, "total": sum(times.values())}.items()},
                **common)
            written.append(write_result(result, results_dir))
            _emit(log, f"{spec.name} {name}: {_format_metrics(result.shown)}  ({sum(times.values()):.1f} s)")
    return written


def _paper_suite(spec: SuiteSpec, models: Sequence[ModelSource], *, root, data_overrides: dict, seed: int,
                 num_samples: int, references: bool, results_dir: Path, log) -> list[Path]:
    evaluate = evaluator(spec.name)
    module_name, function, samples_keyword, _ = EVALUATORS[spec.name]
    protocol = {samples_keyword: num_samples, "split": "test", "evaluate": f"{module_name}.{function}"}
    written = []
    first: tuple[str, dict, dict] | None = None
    for source in models:
        start = time.perf_counter()
        datamodule = build_datamodule(source.data_config, spec, root=root, overrides=data_overrides)
        datamodule.prepare_data()
        model = source.load()
        check_model_class(model, spec, source.name)
        _seed(seed)
        eval_start = time.perf_counter()
        metrics, notes = split_evaluation(evaluate(model, datamodule, **{samples_keyword: num_samples}, seed=seed,
                                                   split="test"))
        end = time.perf_counter()
        if not metrics:
            raise ValueError(f"{function} returned no figures for {source.name}")
        data = describe_data(datamodule, "test")
        result = BenchmarkResult(
            suite=spec.name, name=source.name, kind="model", metrics={PAPER_PROTOCOL: metrics},
            leaderboard_protocol=PAPER_PROTOCOL, data=data, method=source.method or type(model).__name__.lower(),
            weights_sha256=source.weights_sha256, source=source.source, protocol=protocol,
            wall_time_s={"load": round(eval_start - start, 3), "evaluate": round(end - eval_start, 3),
                         "total": round(end - start, 3)},
            notes=notes, seed=seed, **_provenance())
        written.append(write_result(result, results_dir))
        _emit(log, f"{spec.name} {source.name}: {_format_metrics(result.shown)}  ({end - start:.1f} s)")
        first = first or (source.name, metrics, data)
        del model
    if references and first is not None:
        # Model-independent figures of the first model's evaluation (the real data measured alone).
        name, metrics, data = first
        for reference, values in reference_metrics(spec.name, metrics).items():
            result = BenchmarkResult(
                suite=spec.name, name=reference, kind="reference", metrics={PAPER_PROTOCOL: values},
                leaderboard_protocol=PAPER_PROTOCOL, data=data, source={"reference": reference,
                                                                         "figures_of": name, "evaluate": function},
                protocol=protocol, seed=seed, **_provenance())
            written.append(write_result(result, results_dir))
            _emit(log, f"{spec.name} {reference}: {_format_metrics(result.shown)}")
    return written


def run_suite(suite: str, models: Sequence[ModelSource], *, root: str | Path | None = None,
              world: Mapping[str, Any] | None = None, seed: int = 0, num_samples: int | None = None,
              frames: int | None = None, references: bool = True, device: str = "cpu",
              results_dir: str | Path = DEFAULT_RESULTS, log: Callable[[str], None] | None = print) -> list[Path]:
    """Score ``models`` (and the references) on ``suite``; returns the JSON files written.

    ``root``: a real dataset (default: the suite's embedded world); ``world``: other embedded-world
    settings (a dict of the world generator's keyword arguments); ``frames``: react only."""
    spec = suite_spec(suite)
    if root is not None and world is not None:
        raise ValueError("--data.root and --data.world exclude each other (a real dataset or an embedded world)")
    if root is not None and not Path(root).expanduser().is_dir():
        raise FileNotFoundError(f"--data.root {root}: not a directory")
    data_overrides = {"world": dict(world)} if world is not None else {}
    if seed < 0:
        raise ValueError(f"--seed: expected >= 0, got {seed}")
    results_dir = Path(results_dir)
    if suite == "react":
        from zoo.benchmarks.react_suite import NUM_SAMPLES, PROTOCOL_FRAMES

        k = NUM_SAMPLES if num_samples is None else num_samples
        t = PROTOCOL_FRAMES if frames is None else frames
        if k < 1:
            raise ValueError(f"--num-samples: expected >= 1, got {k}")
        if not models and not references:
            raise ValueError("nothing to score: no models and --no-references")
        if t < 51:
            raise ValueError(f"--frames: TLCC's lags up to 49 frames need at least 51 frames, got {t}")
        return _react_suite(spec, models, root=root, data_overrides=data_overrides, seed=seed, num_samples=k,
                            frames=t, references=references, device=device, results_dir=results_dir, log=log)
    if frames is not None:
        raise ValueError(f"--frames applies to the react suite only (suite {suite!r})")
    k = EVALUATORS[suite][3] if num_samples is None else num_samples
    if k < 1:
        raise ValueError(f"--num-samples: expected >= 1, got {k}")
    if not models:
        raise ValueError(f"suite {suite!r}: no models to evaluate (the manifest lists none of the methods "
                         f"{list(spec.methods)}; pass --models NAME or --ckpt RUN.ckpt --config YAML)")
    return _paper_suite(spec, models, root=root, data_overrides=data_overrides, seed=seed, num_samples=k,
                        references=references, results_dir=results_dir, log=log)


def model_sources(spec: SuiteSpec, *, names: Sequence[str] | None, ckpts: Sequence[Path],
                  configs: Sequence[Path], row_names: Sequence[str]) -> list[ModelSource]:
    """The models a command line asks for: ``--models`` (or, with neither ``--models`` nor
    ``--ckpt``, every manifest model of the suite) plus the ``--ckpt``/``--config`` pairs."""
    if len(ckpts) != len(configs):
        raise ValueError(f"--ckpt and --config come in pairs: got {len(ckpts)} --ckpt and {len(configs)} --config")
    if row_names and len(row_names) != len(ckpts):
        raise ValueError(f"--name: give one per --ckpt ({len(ckpts)}), got {len(row_names)}")
    sources: list[ModelSource] = []
    if names is not None or not ckpts:
        sources += manifest_model_sources(spec, list(names) if names is not None else None)
    for i, (ckpt, config) in enumerate(zip(ckpts, configs, strict=True)):
        sources.append(local_model_source(ckpt, config, row_names[i] if row_names else None))
    seen = [s.name for s in sources]
    duplicates = sorted({n for n in seen if seen.count(n) > 1})
    if duplicates:
        raise ValueError(f"two models share the row name(s) {duplicates}; give --name for the --ckpt models")
    return sources


def render_leaderboard(results_dir: str | Path = DEFAULT_RESULTS, out: str | Path = DEFAULT_LEADERBOARD,
                       img_dir: str | Path = DEFAULT_IMG_DIR, *, plots: bool = True) -> list[Path]:
    """Render ``out`` (markdown) and the per-suite plots from the results and the manifest."""
    from zoo.benchmarks.leaderboard import write_leaderboard
    from zoo.benchmarks.sources import load_manifest_or_none

    results = read_results(results_dir)
    return write_leaderboard(results, out, img_dir, load_manifest_or_none(), plots=plots)


# ------------------------------------------------------------------------------------------ CLI


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads < 1:
        raise ValueError(f"--threads: expected >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.leaderboard:
        for path in render_leaderboard(args.results, args.out or DEFAULT_LEADERBOARD, args.img_dir, plots=args.plots):
            print(path)
        return 0
    world = None
    if args.data_world is not None:
        try:
            world = json.loads(args.data_world)
        except json.JSONDecodeError as err:
            raise ValueError(f"--data.world: not valid JSON ({err})") from err
        if not isinstance(world, dict):
            raise ValueError(f"--data.world: expected a JSON object of world settings, got {args.data_world!r}")
    if args.data_root is not None and not Path(args.data_root).expanduser().is_dir():
        raise FileNotFoundError(f"--data.root {args.data_root}: not a directory")
    spec = suite_spec(args.suite)
    sources = model_sources(spec, names=args.models, ckpts=args.ckpt, configs=args.config, row_names=args.name)
    if not sources and args.suite == "react":
        print(f"facezoo benchmark: the manifest lists no {args.suite} models (methods {list(spec.methods)}); "
              "scoring the references only", file=sys.stderr)
    written = run_suite(args.suite, sources, root=args.data_root, world=world, seed=args.seed,
                        num_samples=args.num_samples, frames=args.frames, references=args.references,
                        device=args.device, results_dir=args.out or DEFAULT_RESULTS)
    for path in written:
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m zoo.benchmark``: the same program as ``facezoo benchmark``."""
    parser = argparse.ArgumentParser(prog="python -m zoo.benchmark", description="run a leaderboard benchmark suite")
    configure_parser(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
