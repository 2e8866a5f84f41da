"""``facezoo score`` through argparse (``zoo.metrics.cli``) and through ``python -m zoo``."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.metrics import cli, score


def _files(tmp_path: Path, n: int = 4, k: int = 2, t: int = 60, d: int = 5, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    arrays = {
        "predictions": rng.random((n, k, t, d)).astype(np.float32),
        "listeners": rng.random((n, t, d)).astype(np.float32),
        "speakers": rng.random((n, t, d)).astype(np.float32),
        "neighbours": (rng.random((n, n)) < 0.5) | np.eye(n, dtype=bool),
    }
    paths = {}
    for name, value in arrays.items():
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], value)
    return paths


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return cli.run(parser.parse_args(argv))


def _argv(paths: dict[str, Path], out: Path, *extra: str) -> list[str]:
    argv = []
    for name, path in paths.items():
        argv += [f"--{name}", str(path)]
    return argv + ["--json", str(out), "--no-progress", *extra]


def test_score_writes_all_six_metrics_matching_the_api(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "out" / "scores.json"
    assert _run(_argv(paths, out, "--protocol", "react2023")) == 0
    got = json.loads(out.read_text())
    assert list(got) == ["FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"]
    arrays = {name: np.load(p) for name, p in paths.items()}
    expected = score(arrays["predictions"], arrays["listeners"], arrays["speakers"], arrays["neighbours"],
                     protocol="react2023", progress=False)
    assert got == pytest.approx(expected, rel=1e-12)
    assert not list(out.parent.glob(".*.tmp"))  # no temp file left behind


def test_score_subset_and_null_for_undefined(tmp_path):
    paths = _files(tmp_path, k=1)
    out = tmp_path / "subset.json"
    assert _run(_argv(paths, out, "--protocol", "facezoo", "--metrics", "S-MSE", "frvar")) == 0
    got = json.loads(out.read_text())
    assert list(got) == ["S-MSE", "FRVar"]
    assert got["S-MSE"] is None  # K = 1: undefined under facezoo
    assert math.isclose(got["FRVar"], float(np.load(paths["predictions"]).astype(np.float64).var(2, ddof=1).mean()),
                        rel_tol=1e-9)


def test_score_rejects_bad_files_with_the_argument_named(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "bad.json"
    missing = dict(paths, neighbours=tmp_path / "nope.npy")
    with pytest.raises(FileNotFoundError, match="--neighbours"):
        _run(_argv(missing, out))
    np.save(tmp_path / "wrong.npy", np.ones((3, 3), dtype=bool))
    with pytest.raises(ValueError, match=r"neighbours: expected an \(N, N\)"):
        _run(_argv(dict(paths, neighbours=tmp_path / "wrong.npy"), out))
    only_preds = {"predictions": paths["predictions"]}
    with pytest.raises(ValueError, match="--listeners is required for FRC, FRD"):
        _run(_argv(only_preds, out))
    assert not out.exists()


@pytest.mark.slow  # a fresh interpreter importing Lightning: ~15-50 s on 2 cores
@pytest.mark.skipif(not (Path(__file__).parents[1] / "zoo" / "__main__.py").exists(), reason="no zoo/__main__.py")
def test_python_m_zoo_score(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "zoo", "score", *_argv(paths, out, "--metrics", "FRC", "TLCC")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(out.read_text())) == {"FRC", "TLCC"}
    bad = subprocess.run([sys.executable, "-m", "zoo", "score", *_argv(dict(paths, speakers=tmp_path / "x.npy"),
                                                                        tmp_path / "b.json")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--speakers" in bad.stderr
