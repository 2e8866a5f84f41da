"""facezoo benchmark: the naive REACT references by hand, a REACT suite run end to end on a tiny
embedded world, and clear errors on bad input."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from tiny_configs import TINY_W2V

from zoo import benchmark
from zoo.benchmarks import paper_suites, sources
from zoo.benchmarks import references as refs
from zoo.benchmarks.results import BenchmarkResult, read_results, write_result

TINY_WORLD = {"sessions": 3, "clips_per_session": 2, "clip_frames": 64, "image_size": 32}
FRAMES = 60


# ------------------------------------------------------------------------------ references by hand


def test_ground_truth_and_mime_repeat_the_real_tracks():
    listeners = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (N=1, T=2, D=2)
    speakers = torch.tensor([[[5.0, 6.0], [7.0, 8.0]]])
    gt = refs.ground_truth(listeners, 3)
    assert gt.shape == (1, 3, 2, 2)
    for k in range(3):
        assert torch.equal(gt[0, k], listeners[0])
    assert torch.equal(refs.mime(speakers, 2)[0, 1], torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    gt[0, 0, 0, 0] = 99.0  # copies, not views of the inputs
    assert listeners[0, 0, 0] == 1.0


def test_mean_sequence_and_mean_frame_by_hand():
    # Two training tracks of 3 frames, 1 channel: [0, 2, 4] and [2, 4, 9].
    training = torch.tensor([[[0.0], [2.0], [4.0]], [[2.0], [4.0], [9.0]]])
    seq = refs.mean_sequence(training, num_samples=2, num_speakers=3, frames=2)
    assert seq.shape == (3, 2, 2, 1)
    assert seq[2, 1, :, 0].tolist() == [1.0, 3.0]  # per-frame means of the first T=2 frames
    frame = refs.mean_frame(training, num_samples=2, num_speakers=3, frames=2)
    assert frame.shape == (3, 2, 2, 1)
    assert frame[0, 0, :, 0].tolist() == [2.0, 2.0]  # (0 + 2 + 2 + 4) / 4, frame 3 left out
    with pytest.raises(ValueError, match="fewer than the 4 evaluated"):
        refs.mean_sequence(training, 1, 1, frames=4)


def test_random_reference_range_and_seed():
    training = torch.tensor([[[0.0, -1.0, 5.0], [1.0, 3.0, 5.0]]])
    low, high = refs.training_range(training)
    assert low.tolist() == [0.0, -1.0, 5.0] and high.tolist() == [1.0, 3.0, 5.0]
    data = refs.ReferenceData(torch.zeros(2, 2, 3), torch.zeros(2, 2, 3), training)
    a = refs.reference_predictions("random", data, num_samples=4, seed=7)
    b = refs.reference_predictions("random", data, num_samples=4, seed=7)
    assert a.shape == (2, 4, 2, 3) and torch.equal(a, b)
    assert not torch.equal(a, refs.reference_predictions("random", data, num_samples=4, seed=8))
    assert (a[..., 0] >= 0).all() and (a[..., 0] <= 1).all()
    assert (a[..., 1] >= -1).all() and (a[..., 1] <= 3).all() and a[..., 1].max() > 1  # uses the channel's range
    assert (a[..., 2] == 5).all()  # a constant channel stays constant
    # B23: U(0, 1) when the range is given (the 25-d emotion vector)
    data01 = refs.ReferenceData(torch.zeros(2, 2, 3), torch.zeros(2, 2, 3), training, uniform_range=(0.0, 1.0))
    c = refs.reference_predictions("random", data01, 4, seed=7)
    assert (c >= 0).all() and (c <= 1).all() and (c[..., 2] < 1).all()


def test_reference_bad_input():
    with pytest.raises(ValueError, match="num_samples"):
        refs.ground_truth(torch.zeros(1, 2, 3), 0)
    with pytest.raises(ValueError, match=r"listeners: expected a \(N, T, D\)"):
        refs.ground_truth(torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match="reference: expected one of"):
        refs.reference_predictions("oracle", refs.ReferenceData(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3),
                                                                 torch.zeros(1, 2, 3)), 1)
    with pytest.raises(ValueError, match="high must be >= its low"):
        refs.random_uniform((1, 1, 1, 1), 1.0, 0.0)


# ------------------------------------------------------------------------------ REACT suite end to end


def _tiny_transae():
    from zoo.transae import TransAE

    torch.manual_seed(0)
    model = TransAE(feature_dim=32, num_heads=4, period=4, audio_pretrained=None, audio_config=TINY_W2V)
    # Zero-initialised heads make an untrained model's reactions constant; randomise them so the
    # predictions move and every metric is defined.
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 2 and bool((p == 0).all()):
                p.normal_(0.0, 0.5)
    return model.eval()


def _tiny_source(name: str = "transae.tiny") -> sources.ModelSource:
    data_config = sources.SUITES["react"].default_data_config()
    data_config["init_args"].update(image_size=32, clip_length=FRAMES)
    return sources.ModelSource(name=name, load=_tiny_transae, data_config=data_config, weights_sha256="ab" * 32,
                               method="transae", source={"test": True})


def test_react_suite_end_to_end(tmp_path):
    out = tmp_path / "results"
    written = benchmark.run_suite("react", [_tiny_source()], world=TINY_WORLD, frames=FRAMES, seed=0,
                                  results_dir=out, log=None)
    names = sorted(p.stem for p in written)
    assert names == sorted(["transae.tiny", "ground_truth", "random", "mime", "mean_sequence", "mean_frame"])
    record = json.loads((out / "react" / "transae.tiny.json").read_text())
    for key in ("name", "weights_sha256", "data", "seed", "versions", "git_commit", "wall_time_s", "metrics",
                "protocol", "method"):
        assert key in record, key
    assert record["weights_sha256"] == "ab" * 32 and record["seed"] == 0
    assert {"torch", "lightning", "facezoo"} <= set(record["versions"])
    assert record["data"]["kind"] == "embedded" and record["data"]["generator"].startswith("react-world")
    assert record["data"]["settings"]["sessions"] == 3 and record["data"]["split"] == "test"
    assert record["protocol"] == {"num_samples": 10, "frames": FRAMES, "split": "test", "samples": 4,
                                  "feature_space": "face_state_58 (mean-subtracted)"}
    assert set(record["metrics"]) == {"facezoo", "react2023"}
    for protocol in ("facezoo", "react2023"):
        values = record["metrics"][protocol]
        assert sorted(values) == sorted(["FRC", "FRD", "S-MSE", "FRVar", "FRDvs", "TLCC"])
        for metric in ("FRC", "FRD", "FRVar", "FRDvs", "TLCC"):
            assert values[metric] is not None and math.isfinite(values[metric]), (protocol, metric)
    assert record["wall_time_s"]["total"] > 0

    results = {r.name: r for r in read_results(out)}
    gt, rnd = results["ground_truth"].shown, results["random"].shown
    assert gt["FRC"] == pytest.approx(1.0) and gt["FRD"] == pytest.approx(0.0, abs=1e-9)
    assert gt["FRC"] > rnd["FRC"] and gt["FRD"] < rnd["FRD"]
    assert results["mean_frame"].shown["FRVar"] == 0.0  # one frame repeated
    assert results["random"].shown["S-MSE"] > 0 and results["mime"].shown["S-MSE"] == 0.0
    # the challenge protocol sums FRC over the K = 10 samples (a mean of CCCs is at most 1)
    assert results["ground_truth"].metrics["react2023"]["FRC"] > 1

    # deterministic: a second run gives the same numbers
    again = tmp_path / "again"
    benchmark.run_suite("react", [_tiny_source()], world=TINY_WORLD, frames=FRAMES, seed=0, results_dir=again,
                        log=None)
    for path in (out / "react").glob("*.json"):
        first, second = json.loads(path.read_text()), json.loads((again / "react" / path.name).read_text())
        assert first["metrics"] == second["metrics"], path.name


def test_published_model_by_name_through_the_cli(tmp_path, monkeypatch, capsys):
    """A model exported into a manifest is benchmarked by name (zoo.load_model), with the
    manifest's hash and the DataModule it was trained with."""
    from checkpoints.export import export_model

    model = _tiny_transae()
    init_args = dict(feature_dim=32, num_heads=4, period=4, audio_pretrained=None, audio_config=TINY_W2V)
    data_config = _tiny_source().data_config
    manifest = tmp_path / "weights" / "manifest.json"
    exported = export_model(model, "transae.tiny", tmp_path / "weights",
                            config={"class_path": "zoo.transae.TransAE", "init_args": init_args},
                            data={"description": "tiny world", "datamodule": data_config}, manifest=manifest)
    monkeypatch.setenv("FACEZOO_MANIFEST", str(manifest))
    out = tmp_path / "results"
    assert _cli("--suite", "react", "--data.world", json.dumps(TINY_WORLD), "--frames", str(FRAMES),
                "--no-references", "--out", str(out)) == 0
    assert capsys.readouterr().out.strip().endswith("transae.tiny.json")
    (result,) = read_results(out)
    assert result.name == "transae.tiny" and result.method == "transae"
    assert result.weights_sha256 == exported.entry.sha256
    assert result.source == {"manifest": "transae.tiny", "data_config": "manifest"}
    assert math.isfinite(result.shown["FRC"]) and math.isfinite(result.shown["FRD"])


# ------------------------------------------------------------------------------ bad input


def _fake_manifest(monkeypatch, *entries):
    manifest = SimpleNamespace(entries=[SimpleNamespace(name=n, method=m, sha256=h, config=None, data=None,
                                                        metrics={}) for n, m, h in entries])
    monkeypatch.setattr(sources, "_manifest", lambda: manifest)
    return manifest


def _cli(*argv):
    from zoo.cli import main

    return main(["benchmark", *argv])


def test_unknown_suite_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        _cli("--suite", "speech")
    assert info.value.code == 2 and "invalid choice: 'speech'" in capsys.readouterr().err


def test_unknown_and_wrong_suite_models_are_named(monkeypatch, capsys):
    _fake_manifest(monkeypatch, ("transae.demo", "transae", "1" * 64), ("cmmnet.demo", "cmmnet", "2" * 64))
    with pytest.raises(SystemExit) as info:
        _cli("--suite", "react", "--models", "reactface.big", "--out", "unused")
    err = capsys.readouterr().err
    assert info.value.code == 2 and "unknown model(s) ['reactface.big']" in err and "transae.demo" in err
    with pytest.raises(ValueError, match="'cmmnet.demo'] are not 'react' models"):
        sources.manifest_model_sources(sources.SUITES["react"], ["cmmnet.demo"])
    chosen = sources.manifest_model_sources(sources.SUITES["react"])
    assert [s.name for s in chosen] == ["transae.demo"] and chosen[0].weights_sha256 == "1" * 64


def test_missing_data_root_and_files_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _cli("--suite", "react", "--data.root", str(tmp_path / "nope"), "--no-references", "--ckpt",
             str(tmp_path / "x.ckpt"), "--config", "zoo/demo/transae.yaml")
    assert info.value.code == 2 and "--data.root" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="--data.root"):
        benchmark.run_suite("react", [], root=tmp_path / "nope", results_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="--ckpt .*x.ckpt: no such file"):
        sources.local_model_source(tmp_path / "x.ckpt", "zoo/demo/transae.yaml")
    (tmp_path / "x.ckpt").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="--config .*missing.yaml"):
        sources.local_model_source(tmp_path / "x.ckpt", tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="come in pairs"):
        benchmark.model_sources(sources.SUITES["react"], names=None, ckpts=[tmp_path / "x.ckpt"], configs=[],
                                row_names=[])


def test_other_bad_arguments():
    spec_react = sources.SUITES["react"]
    with pytest.raises(ValueError, match="--suite: expected one of"):
        sources.suite_spec("speech")
    with pytest.raises(ValueError, match="--frames: TLCC"):
        benchmark.run_suite("react", [_tiny_source()], frames=20, log=None)
    with pytest.raises(ValueError, match="nothing to score"):
        benchmark.run_suite("react", [], references=False, log=None)
    with pytest.raises(ValueError, match="--frames applies to the react suite only"):
        benchmark.run_suite("smile", [], frames=100, log=None)
    with pytest.raises(ValueError, match="exclude each other"):
        benchmark.run_suite("react", [], root=".", world={"sessions": 3}, log=None)
    other = {"class_path": "datamodules.smile.NEMODataModule", "init_args": {}}
    with pytest.raises(ValueError, match="suite 'react' reads datamodules.react.REACTDataModule"):
        sources.build_datamodule(other, spec_react)
    with pytest.raises(ValueError, match="is a Linear; suite 'react' takes TransAE, ReactFace"):
        sources.check_model_class(torch.nn.Linear(1, 1), spec_react, "x")


def test_paper_suite_without_its_evaluate_function_says_so(monkeypatch, tmp_path):
    monkeypatch.setitem(paper_suites.EVALUATORS, "smile", ("zoo.cmmnet.no_such_module", "evaluate_cmmnet", "k", 3))
    source = sources.ModelSource(name="cmmnet.x", load=lambda: None,
                                 data_config=sources.SUITES["smile"].default_data_config(), weights_sha256=None)
    with pytest.raises(ValueError, match=r"suite 'smile' needs zoo.cmmnet.no_such_module.evaluate_cmmnet\(model"):
        benchmark.run_suite("smile", [source], results_dir=tmp_path, log=None)


class _FakeDyadGAN(torch.nn.Module):
    pass


_FakeDyadGAN.__name__ = "DyadGAN"
_CALLS: list[dict] = []


def fake_evaluate_dyadgan(model, datamodule, *, num_samples, seed, split):
    _CALLS.append({"num_samples": num_samples, "seed": seed, "split": split, "rng": float(torch.rand(()))})
    return {"lstm_overlap_mse": 0.25, "jerk_real": 0.5, "mean_shape_mse": 1.0, "hold_last_next_mse": 0.125,
            "hold_last_mse": 0.75, "fid_world_real_reference": 2.0, "dictionary_fps": 123.0, "has_sketches": True}


def test_interview_suite_writes_models_and_the_references_of_their_figures(monkeypatch, tmp_path):
    """The orchestration of a paper suite with a stand-in evaluation function and DataModule."""
    world = tmp_path / "world"
    world.mkdir()
    (world / "facezoo_world.json").write_text(json.dumps({"generator": "interview-world-1", "settings": {"seed": 0}}))
    datamodule = SimpleNamespace(root=None, data_root=world, prepare_data=lambda: None)
    monkeypatch.setattr(benchmark, "build_datamodule", lambda config, spec, root=None, overrides=None: datamodule)
    monkeypatch.setitem(paper_suites.EVALUATORS, "interview",
                        ("test_benchmark", "fake_evaluate_dyadgan", "num_samples", 3))
    _CALLS.clear()
    config = sources.SUITES["interview"].default_data_config()
    models = [sources.ModelSource(name=f"dyadgan.{tag}", load=_FakeDyadGAN, data_config=config,
                                  weights_sha256=str(i) * 64, method="dyadgan") for i, tag in enumerate(("a", "b"))]
    written = benchmark.run_suite("interview", models, seed=3, results_dir=tmp_path / "out", log=None)
    assert sorted(p.stem for p in written) == ["dyadgan.a", "dyadgan.b", "ground_truth", "hold_last", "mean_face"]
    # seeded before each model: the evaluation sees the same random stream every time
    assert _CALLS[0] == _CALLS[1] and _CALLS[0]["num_samples"] == 3 and _CALLS[0]["split"] == "test"
    results = {r.name: r for r in read_results(tmp_path / "out")}
    model = results["dyadgan.a"]
    assert model.shown["has_sketches"] == 1.0 and model.shown["dictionary_fps"] == 123.0
    assert model.data["kind"] == "embedded" and model.data["generator"] == "interview-world-1"
    assert model.protocol == {"num_samples": 3, "split": "test",
                              "evaluate": "test_benchmark.fake_evaluate_dyadgan"} and model.seed == 3
    assert results["mean_face"].shown == {"lstm_nonoverlap_mse": 1.0, "lstm_overlap_rollout_mse": 1.0}
    assert results["hold_last"].shown["lstm_overlap_mse"] == 0.125
    assert results["ground_truth"].kind == "reference" and results["ground_truth"].shown["fid_world"] == 2.0
    with pytest.raises(ValueError, match="is a Linear; suite 'interview' takes DyadGAN"):
        benchmark.run_suite("interview", [sources.ModelSource("x.y", lambda: torch.nn.Linear(1, 1), config, None)],
                            results_dir=tmp_path / "bad", log=None)


def test_evaluation_split_and_result_files(tmp_path):
    metrics, notes = paper_suites.split_evaluation({"SSIM/posed": 0.5, "IS": None, "count": 3,
                                                 "notes": ["IS left out: no Inception weights"]})
    assert metrics == {"SSIM/posed": 0.5, "IS": None, "count": 3} and notes == [
        "notes: IS left out: no Inception weights"]
    with pytest.raises(ValueError, match="expected numbers or notes"):
        paper_suites.split_evaluation({"curve": {"a": 1}})
    result = BenchmarkResult(suite="react", name="x/y z", kind="model", metrics={"facezoo": {"FRC": float("nan")}},
                             leaderboard_protocol="facezoo", data={}, seed=0)
    path = write_result(result, tmp_path)
    assert path.name == "x_y_z.json" and json.loads(path.read_text())["metrics"]["facezoo"]["FRC"] is None
    assert not list(tmp_path.rglob(".*tmp*"))  # no temporary left behind
    (tmp_path / "react" / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        read_results(tmp_path)
    with pytest.raises(ValueError, match="leaderboard_protocol 'paper' is not a key"):
        BenchmarkResult(suite="react", name="x", kind="model", metrics={}, leaderboard_protocol="paper", data={},
                        seed=0)
    with pytest.raises(FileNotFoundError, match="--results"):
        read_results(tmp_path / "none")
