"""The leaderboard renders from fixture result JSONs: exact tables, reproducible page, plots."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from zoo import benchmark
from zoo.benchmarks import leaderboard, paper_suites
from zoo.benchmarks.results import SCHEMA_VERSION, read_results

WORLD = {"kind": "embedded", "generator": "react-world-2", "settings": {"sessions": 12, "seed": 0},
         "split": "test", "id": "react-world-2#abc123", "datamodule": "datamodules.react.REACTDataModule"}
PROTOCOL = {"num_samples": 10, "frames": 750, "split": "test", "samples": 8}


def _record(suite, name, kind, metrics, protocol="facezoo", **extra):
    record = {"schema": SCHEMA_VERSION, "suite": suite, "name": name, "kind": kind, "metrics": metrics,
              "leaderboard_protocol": protocol, "data": WORLD, "seed": 0, "protocol": PROTOCOL,
              "versions": {"torch": "2.x"}, "git_commit": "deadbeef", "wall_time_s": {"total": 12.5}}
    record.update(extra)
    return record


REACT = {"FRC": 0.5, "FRD": 18.25, "S-MSE": 0.0, "FRVar": 4.2e-05, "FRDvs": 0.01, "TLCC": 37.5}
FIXTURES = [
    _record("react", "transae.demo", "model", {"facezoo": REACT, "react2023": {**REACT, "FRC": 5.0}},
            method="transae", weights_sha256="a" * 64),
    _record("react", "reactface.demo", "model",
            {"facezoo": {**REACT, "FRC": 0.61, "FRD": 17.0, "S-MSE": 0.002, "TLCC": None}},
            method="reactface", weights_sha256="b" * 64),
    _record("react", "random", "reference", {"facezoo": {**REACT, "FRC": 0.1, "FRD": 30.0, "S-MSE": 0.1667}}),
    _record("react", "ground_truth", "reference", {"facezoo": {**REACT, "FRC": 1.0, "FRD": 0.0}}),
    _record("interview", "dyadgan.demo", "paper",
            {"paper": {"lstm_overlap_mse": 0.1, "dictionary_jerk": 0.02, "fid_world": 3.5, "dictionary_fps": 900.0}},
            protocol="paper", method="dyadgan", weights_sha256="c" * 64),
]
FIXTURES[4]["kind"] = "model"

EXPECTED_REACT = """\
| model | method | weights | data | FRC ↑ | FRD ↓ | S-MSE ↑ | FRVar ↑ | FRDvs ↑ | TLCC ↓ |
|---|---|---|---|---|---|---|---|---|---|
| `reactface.demo` | reactface | `bbbbbbbbbbbb` (stale: manifest has `dddddddddddd`) | `react-world-2#abc123` | **0.61** | **17** | **0.002** | 4.200e-05 | 0.01 | – |
| `transae.demo` | transae | `aaaaaaaaaaaa` | `react-world-2#abc123` | 0.5 | 18.25 | 0 | 4.200e-05 | 0.01 | 37.5 |
| *ground truth* | reference | – | `react-world-2#abc123` | 1 | 0 | 0 | 4.200e-05 | 0.01 | 37.5 |
| *random* | reference | – | `react-world-2#abc123` | 0.1 | 30 | 0.1667 | 4.200e-05 | 0.01 | 37.5 |

- data `react-world-2#abc123`: embedded world `react-world-2` (seed=0, sessions=12), split `test`
- protocol `facezoo` (frames=750, num_samples=10, samples=8, split=test), seed 0"""

EXPECTED_INTERVIEW = """\
| model | method | weights | data | lstm_overlap_mse ↓ | dictionary_jerk | fid_world ↓ |
|---|---|---|---|---|---|---|
| `dyadgan.demo` | dyadgan | `cccccccccccc` (local) | `react-world-2#abc123` | 0.1 | 0.02 | 3.5 |

- data `react-world-2#abc123`: embedded world `react-world-2` (seed=0, sessions=12), split `test`
- protocol `paper` (frames=750, num_samples=10, samples=8, split=test), seed 0"""


def _manifest():
    entries = {n: SimpleNamespace(name=n, sha256=h) for n, h in (("transae.demo", "a" * 64),
                                                                 ("reactface.demo", "d" * 64))}
    return SimpleNamespace(entries=entries)


@pytest.fixture
def results_dir(tmp_path):
    root = tmp_path / "results"
    for record in FIXTURES:
        path = root / record["suite"] / f"{record['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    return root


def test_tables_are_exact(results_dir):
    results = read_results(results_dir)
    published = leaderboard._manifest_hashes(_manifest())
    react = [r for r in results if r.suite == "react"]
    assert "\n".join(leaderboard.suite_table("react", react, published)).rstrip() == EXPECTED_REACT
    interview = [r for r in results if r.suite == "interview"]
    # the speed figure (dictionary_fps) is not shown: it changes from run to run
    assert "\n".join(leaderboard.suite_table("interview", interview, published)).rstrip() == EXPECTED_INTERVIEW


def test_page_is_a_pure_function_of_results_and_manifest(results_dir, tmp_path, monkeypatch):
    from zoo.benchmarks import sources

    monkeypatch.setattr(sources, "_manifest", _manifest)
    out, img = tmp_path / "docs" / "leaderboard.md", tmp_path / "docs" / "img"
    written = benchmark.render_leaderboard(results_dir, out, img)
    assert sorted(p.name for p in written) == ["leaderboard.md", "leaderboard_interview.png", "leaderboard_react.png"]
    page = out.read_text()
    assert page.startswith("# facezoo leaderboard\n")
    assert EXPECTED_REACT in page and EXPECTED_INTERVIEW in page
    assert page.index("## REACT") < page.index("## Dyadic interview")  # suites in a fixed order
    assert "![react leaderboard](img/leaderboard_react.png)" in page
    assert "12.5" not in page and "deadbeef" not in page  # wall time and commit stay in the JSON
    for name in ("leaderboard_react.png", "leaderboard_interview.png"):
        assert (img / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    benchmark.render_leaderboard(results_dir, out, img, plots=False)
    assert out.read_text() == page  # re-rendering changes nothing
    assert leaderboard.render_markdown(read_results(results_dir), _manifest()) == \
        leaderboard.render_markdown(list(reversed(read_results(results_dir))), _manifest())


def test_directions_and_formatting():
    assert leaderboard.metric_direction("FRC") is True and leaderboard.metric_direction("TLCC") is False
    assert leaderboard.metric_direction("posed/au6_curve_distance") is False
    assert leaderboard.metric_direction("spontaneous/class_consistency") is True
    assert leaderboard.metric_direction("dictionary_jerk") is None
    assert [leaderboard._fmt(v) for v in (None, 0.0, 18.2549, 1e-5, 123456.0)] == [
        "–", "0", "18.25", "1.000e-05", "1.235e+05"]


def test_paper_suite_references_come_from_model_independent_figures():
    figures = {"jerk_real": 0.5, "fid_world_real_reference": 1.25, "mean_shape_mse": 1.0, "hold_last_mse": 0.3,
               "hold_last_next_mse": 0.01, "lstm_overlap_mse": 0.02}
    refs = paper_suites.reference_metrics("interview", figures)
    assert refs["ground_truth"] == {"dictionary_jerk": 0.5, "lstm_jerk": 0.5, "lstm_nonoverlap_jerk": 0.5,
                                    "fid_world": 1.25, "fid_world_dictionary": 1.25}
    assert refs["mean_face"] == {"lstm_nonoverlap_mse": 1.0, "lstm_overlap_rollout_mse": 1.0}
    assert refs["hold_last"] == {"lstm_overlap_mse": 0.01, "lstm_nonoverlap_mse": 0.3,
                                 "lstm_overlap_rollout_mse": 0.3}
    smile = paper_suites.reference_metrics("smile", {"posed/classifier_accuracy_real": 0.9, "posed/ssim": 0.4})
    assert smile == {"ground_truth": {"posed/class_consistency": 0.9}}
    # the classifier's AUC on real test smiles is the ceiling of a generator's class_auc
    assert paper_suites.reference_metrics("smile", {"classifier_auc_real": 0.96}) == {"ground_truth": {"class_auc": 0.96}}
    assert leaderboard.metric_direction("class_auc") is True
    same = paper_suites.reference_metrics("smile", {"spontaneous/diversity_au_same_person": 0.38,
                                                    "spontaneous/diversity_landmarks_px_same_person": 0.28})
    assert same == {"same_person": {"spontaneous/diversity_au": 0.38, "spontaneous/diversity_landmarks_px": 0.28}}
    assert paper_suites.reference_metrics("smile", {"posed/ssim": 0.4}) == {}


def test_bad_results_are_refused(tmp_path):
    bad = _record("react", "x", "model", {"facezoo": REACT})
    bad["schema"] = 0
    (tmp_path / "react").mkdir()
    (tmp_path / "react" / "x.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="x.json: schema 0"):
        read_results(tmp_path)
    bad["schema"], bad["suite"] = SCHEMA_VERSION, "smile"
    (tmp_path / "react" / "x.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="suite 'smile' does not match its folder 'react'"):
        read_results(tmp_path)
