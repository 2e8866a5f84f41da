"""Render the leaderboard: a markdown table per suite and a PNG plot per suite, from the result
JSONs and the checkpoint manifest only (no clock, no machine state), so re-rendering the same
results gives the same page byte for byte.

Rows: models sorted by name, then the naive references in their fixed order. Columns: model,
method, weights (sha256 prefix; flagged when the manifest now publishes other weights under that
name), data (a short id; its full description follows the table), then the metrics the suite's
leaderboard protocol gives, with arrows for the better direction. The best model value of a
column is bold (references are not ranked).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from datamodules.features.io import atomic_path
from zoo.benchmarks.results import BenchmarkResult

__all__ = [
    "METRIC_DIRECTIONS",
    "SUITE_TITLES",
    "SUITE_COLUMNS",
    "metric_direction",
    "plot_suite",
    "render_markdown",
    "write_leaderboard",
]

HASH_PREFIX = 12
SUITE_ORDER = ("react", "smile", "interview")
SUITE_TITLES = {
    "react": "REACT: listener reactions to a speaker (Trans-AE, ReactFace)",
    "smile": "Smiles from one neutral face (CMM-Net, CRA-Net)",
    "interview": "Dyadic interview faces (DyadGAN, one-stage baseline)",
}
REFERENCE_ORDER = ("ground_truth", "random", "mime", "mean_sequence", "mean_frame", "mean_face", "hold_last")
REFERENCE_LABELS = {
    "ground_truth": "ground truth", "random": "random", "mime": "mime", "mean_sequence": "mean sequence",
    "mean_frame": "mean frame", "mean_face": "mean face", "hold_last": "hold last frame",
}
# True: higher is better. REACT: docs/metrics.md (B23 metric/*.py, ReactFace Table 2 header);
# smile: zoo/cmmnet/evaluate.py (CMM-Net Tables 1, 3; Delta-IS = |IS - IS_real|, lower is better);
# interview: zoo/dyadgan/evaluate.py (Interactive-GAN Tables 1-2, Fig. 8).
METRIC_DIRECTIONS: dict[str, bool] = {
    "FRC": True, "FRD": False, "S-MSE": True, "FRVar": True, "FRDvs": True, "TLCC": False,
    "Div_c": True, "Div_f": True,
    "ssim": True, "is": True, "delta_is": False, "au6_curve_distance": False, "au12_curve_distance": False,
    "class_consistency": True, "class_auc": True, "diversity_video": True, "diversity_au": True, "diversity_landmarks_px": True,
    "lstm_overlap_mse": False, "lstm_nonoverlap_mse": False, "lstm_overlap_rollout_mse": False,
    "dictionary_mse": False, "dictionary_min_mse": False, "dictionary_diversity": True,
    "fid_world": False, "fid_world_dictionary": False, "fid": False, "fid_dictionary": False,
    "sketch_l1": False, "stage2_ssim": True, "stage2_fid_world": False,
}
# The columns each suite's table shows, in order (a column no row has is dropped); every other
# figure stays in the JSON. Speed figures (``*_fps``) are never shown: they change from run to
# run, and the page must be reproducible.
SUITE_COLUMNS: dict[str, tuple[str, ...]] = {
    "react": ("FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"),
    "smile": tuple(f"{c}/{m}" for c in ("posed", "spontaneous")
                   for m in ("ssim", "au6_curve_distance", "class_consistency", "diversity_au", "is", "delta_is"))
    + ("class_auc",),
    "interview": ("lstm_overlap_mse", "lstm_nonoverlap_mse", "lstm_overlap_rollout_mse", "dictionary_jerk", "lstm_jerk",
                  "dictionary_diversity", "ssim", "fid_world", "fid_world_dictionary", "fid", "stage2_fid_world"),
}

SUITE_INTROS = {
    "react": "K reactions per speaker on the test split, scored in the 58-d face state (mean-subtracted), as "
             "ReactFace scores. Shown: the `facezoo` protocol (FRC and FRD are means over the K reactions; "
             "docs/metrics.md); the challenge code's `react2023` numbers (sums over K) are in each JSON. "
             "References as the REACT 2023 baseline paper defines them (B23 `run_baselines.py`): *ground truth* "
             "(the real listener, K times), *random* (uniform over each channel's training range), *mime* (the "
             "speaker's own face), *mean sequence* / *mean frame* (training-split means).",
    "smile": "`zoo.cmmnet.evaluate.evaluate_cmmnet` per class (posed / spontaneous): SSIM and Delta-IS (Table 1), "
             "AU6 curve distance (Table 3), class consistency and diversity across the K modes, and class_auc (does the "
             "requested label still rank the classifier's verdicts, whatever its threshold). *ground truth*: "
             "the real test smiles measured alone (the classifier's accuracy on them in the class-consistency "
             "column, their IS, their spread across sequences in diversity_au).",
    "interview": "`zoo.dyadgan.evaluate.evaluate_dyadgan`: C-LSTM MSE (Table 2), jerk and diversity of the z "
                 "strategies (Table 1), realism of the faces (Fig. 8). fid_world is FID_world, a Fréchet distance "
                 "in a small face network trained on the world's real faces: **not FID**, not comparable to "
                 "published FIDs. Jerk has no arrow: closer to the real jerk is better. *ground truth*: the real "
                 "interviewer's jerk, FID_world of real training against real test faces; *mean face*: the "
                 "training mean shape; *hold last frame*: the last real frame repeated.",
}


def metric_direction(name: str) -> bool | None:
    """True when higher is better, False when lower is, None when unknown (no arrow). A smile
    figure ``<class>/<figure>`` has its figure's direction; jerk: closer to the real jerk is
    better, so no arrow."""
    return METRIC_DIRECTIONS.get(name, METRIC_DIRECTIONS.get(name.rsplit("/", 1)[-1]))


def _arrow(name: str) -> str:
    direction = metric_direction(name)
    return "" if direction is None else (" ↑" if direction else " ↓")


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _label(result: BenchmarkResult) -> str:
    if result.kind == "reference":
        return f"*{REFERENCE_LABELS.get(result.name, result.name.replace('_', ' '))}*"
    return f"`{result.name}`"


def _ordered(results: Iterable[BenchmarkResult]) -> list[BenchmarkResult]:
    models = sorted((r for r in results if r.kind == "model"), key=lambda r: r.name)
    refs = sorted((r for r in results if r.kind == "reference"),
                  key=lambda r: (REFERENCE_ORDER.index(r.name) if r.name in REFERENCE_ORDER else len(REFERENCE_ORDER),
                                 r.name))
    return models + refs


def _columns(suite: str, results: Sequence[BenchmarkResult]) -> list[str]:
    names = {m for r in results for m in r.shown}
    if suite in SUITE_COLUMNS:
        return [m for m in SUITE_COLUMNS[suite] if m in names]
    return sorted(m for m in names if not m.endswith("_fps"))


def _manifest_hashes(manifest) -> dict[str, str]:
    if manifest is None:
        return {}
    entries = getattr(manifest, "entries", manifest)
    if isinstance(entries, Mapping):
        entries = entries.values()
    return {entry.name: entry.sha256 for entry in entries}


def _weights_cell(result: BenchmarkResult, published: Mapping[str, str]) -> str:
    if result.kind == "reference" or not result.weights_sha256:
        return "–"
    cell = f"`{result.weights_sha256[:HASH_PREFIX]}`"
    if result.name in published and published[result.name] != result.weights_sha256:
        cell += f" (stale: manifest has `{published[result.name][:HASH_PREFIX]}`)"
    elif result.name not in published:
        cell += " (local)"
    return cell


def _data_id(result: BenchmarkResult) -> str:
    return str(result.data.get("id") or result.data.get("root") or "?")


def _data_note(data: Mapping) -> str:
    if data.get("kind") == "embedded":
        settings = ", ".join(f"{k}={v}" for k, v in sorted((data.get("settings") or {}).items()))
        return f"embedded world `{data.get('generator')}` ({settings}), split `{data.get('split')}`"
    files = ", ".join(f"{k} sha256 `{v[:HASH_PREFIX]}`" for k, v in sorted((data.get("files_sha256") or {}).items()))
    return f"dataset at `{data.get('root')}`, split `{data.get('split')}`" + (f" ({files})" if files else "")


def _protocol_note(result: BenchmarkResult) -> str:
    parts = [f"{k}={v}" for k, v in sorted(result.protocol.items())]
    return f"protocol `{result.leaderboard_protocol}`" + (f" ({', '.join(parts)})" if parts else "") + \
        f", seed {result.seed}"


def _best(results: Sequence[BenchmarkResult], metric: str) -> float | None:
    direction = metric_direction(metric)
    values = [r.shown.get(metric) for r in results if r.kind == "model" and r.shown.get(metric) is not None]
    if direction is None or len(set(values)) < 2:  # one model, or all tied: nothing to mark
        return None
    return max(values) if direction else min(values)


def suite_table(suite: str, results: Sequence[BenchmarkResult], published: Mapping[str, str]) -> list[str]:
    """The markdown lines of one suite's table and its notes."""
    rows = _ordered(results)
    columns = _columns(suite, rows)
    header = ["model", "method", "weights", "data"] + [f"{m}{_arrow(m)}" for m in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {m: _best(rows, m) for m in columns}
    for r in rows:
        cells = [_label(r), r.method or ("reference" if r.kind == "reference" else "–"), _weights_cell(r, published),
                 f"`{_data_id(r)}`"]
        for m in columns:
            value = r.shown.get(m)
            text = _fmt(value)
            if r.kind == "model" and value is not None and best[m] is not None and value == best[m]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for data_id, data in sorted({_data_id(r): r.data for r in rows}.items()):
        lines.append(f"- data `{data_id}`: {_data_note(data)}")
    for note in sorted({_protocol_note(r) for r in rows}):
        lines.append(f"- {note}")
    return lines


def render_markdown(results: Sequence[BenchmarkResult], manifest=None, *,
                    images: Mapping[str, str] | None = None) -> str:
    """The leaderboard page. ``images`` maps a suite to its plot's path relative to the page."""
    published = _manifest_hashes(manifest)
    by_suite: dict[str, list[BenchmarkResult]] = {}
    for r in results:
        by_suite.setdefault(r.suite, []).append(r)
    suites = [s for s in SUITE_ORDER if s in by_suite] + sorted(s for s in by_suite if s not in SUITE_ORDER)
    lines = [
        "# facezoo leaderboard",
        "",
        "<!-- Generated by `facezoo benchmark --leaderboard` from benchmarks/results/*/*.json and "
        "checkpoints/manifest.json. Do not edit: run `make leaderboard`. -->",
        "",
        "Every zoo model scored by `facezoo benchmark --suite <suite>` next to naive references. "
        "`make leaderboard` re-runs every suite (fixed seeds, CPU, one torch thread) and re-renders this page; "
        "the JSON of each row (package versions, git commit, wall time, every figure) is "
        "`benchmarks/results/<suite>/<name>.json`. Arrows give the better direction; the best model value is "
        "bold; references (in italics) are not ranked.",
        "",
    ]
    if not suites:
        lines += ["No results yet: run `facezoo benchmark --suite react` (and smile, interview).", ""]
    for suite in suites:
        lines += [f"## {SUITE_TITLES.get(suite, suite)}", ""]
        if suite in SUITE_INTROS:
            lines += [SUITE_INTROS[suite], ""]
        lines += suite_table(suite, by_suite[suite], published)
        if images and suite in images:
            lines += ["", f"![{suite} leaderboard]({images[suite]})"]
        lines.append("")
    lines += HOW_TO
    return "\n".join(lines).rstrip("\n") + "\n"


HOW_TO = [
    "## How to reproduce or extend this page",
    "",
    "```bash",
    "make leaderboard                                   # every suite, then this page",
    "facezoo benchmark --suite react                    # every published react model + the references",
    "facezoo benchmark --suite react --models reactface.demo --no-references",
    "facezoo benchmark --suite react --ckpt RUN.ckpt --config zoo/demo/reactface.yaml --name reactface.mine",
    "facezoo benchmark --suite react --data.root /data/REACT   # a real REACT copy (B23 or ReactFace layout)",
    "facezoo benchmark --suite smile                    # CMM-Net / CRA-Net (zoo.cmmnet.evaluate)",
    "facezoo benchmark --suite interview                # DyadGAN two-stage / one-stage (zoo.dyadgan.evaluate)",
    "facezoo benchmark --leaderboard [--results benchmarks/results] [--out docs/leaderboard.md]",
    "```",
    "",
    "A suite writes one JSON per row to `--out` (default `benchmarks/results`): model name, weights sha256, "
    "data (embedded-world generator and settings, or the real root with its split files' sha256), seed, "
    "protocol, package versions, git commit, wall time and every figure. Published models come from the "
    "checkpoint manifest (`$FACEZOO_MANIFEST` or `checkpoints/manifest.json`); a row whose weights hash is no "
    "longer the manifest's is marked *stale*. Every model of a suite is scored on the same data: the suite's "
    "demo world (`zoo/demo/transae.yaml`, `cmmnet.yaml`, `dyadgan.yaml`) or `--data.root`; a model's own "
    "config only sets its preprocessing. Runs use `--seed 0` and one torch thread on the CPU by default, so "
    "they reproduce the numbers above; `--device cuda` or more `--threads` may change the last digits.",
]


def plot_suite(suite: str, results: Sequence[BenchmarkResult], path: str | os.PathLike) -> Path:
    """One horizontal bar chart per metric (models coloured, references grey), written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = _ordered(results)
    columns = _columns(suite, rows)
    if not columns:
        raise ValueError(f"suite {suite!r}: no metrics to plot")
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    height = max(2.2, 0.32 * len(rows) + 1.0)
    fig = Figure(figsize=(4.2 * ncols, height * nrows))
    FigureCanvasAgg(fig)
    labels = [_label(r).strip("*`") for r in rows]
    colours = ["#4c72b0" if r.kind == "model" else "#b0b0b0" for r in rows]
    for i, metric in enumerate(columns):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = [r.shown.get(metric) for r in rows]
        ys = list(range(len(rows)))
        ax.barh(ys, [0.0 if v is None else v for v in values], color=colours)
        for y, v in zip(ys, values, strict=True):
            if v is None:
                ax.text(0, y, " n/a", va="center", fontsize=7)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels if i % ncols == 0 else [""] * len(rows), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{metric}{_arrow(metric)}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.axvline(0, color="black", linewidth=0.5)
    fig.suptitle(SUITE_TITLES.get(suite, suite), fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        tmp.chmod(0o644)  # mkstemp makes 0600
    return path


def write_leaderboard(results: Sequence[BenchmarkResult], out: str | os.PathLike, img_dir: str | os.PathLike,
                      manifest=None, *, plots: bool = True) -> list[Path]:
    """Write the markdown page ``out`` and (``plots``) ``<img_dir>/leaderboard_<suite>.png``."""
    out, img_dir = Path(out), Path(img_dir)
    written: list[Path] = []
    images: dict[str, str] = {}
    for suite in sorted({r.suite for r in results}):
        image = img_dir / f"leaderboard_{suite}.png"
        if plots:
            written.append(plot_suite(suite, [r for r in results if r.suite == suite], image))
        images[suite] = os.path.relpath(image, out.parent if str(out.parent) else ".")
    text = render_markdown(results, manifest, images=images)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
        tmp.chmod(0o644)
    written.append(out)
    return written
