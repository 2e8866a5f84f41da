"""``facezoo prepare`` end to end on embedded-world videos with known geometry."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from datamodules.features import prepare as prep
from datamodules.features.blendshape_estimates import au_from_blendshapes
from datamodules.features.face_state import BLENDSHAPE_INDEX, FACE_STATE_DIM
from datamodules.features.io import read_video, write_video, write_wav
from datamodules.features.mediapipe_landmarks import GroundTruthLandmarker
from datamodules.features.rig import FaceRig
from datamodules.features.temporal import Smoothing
from datamodules.synthetic.appearance import sample_identity
from datamodules.synthetic.face_renderer import FaceRenderer

SIZE, FPS_SOURCE, FRAMES = 128, 50.0, 20
NO_FACE = slice(8, 12)  # source frames without a face -> output frames 4 and 5 at 25 fps


def _world_states() -> np.ndarray:
    t = np.linspace(0.0, 1.0, FRAMES)
    states = np.zeros((FRAMES, FACE_STATE_DIM))
    for name in ("mouthSmileLeft", "mouthSmileRight"):
        states[:, BLENDSHAPE_INDEX[name]] = 0.8 * t
    for name in ("cheekSquintLeft", "cheekSquintRight"):
        states[:, BLENDSHAPE_INDEX[name]] = 0.5 * t
    states[:, 53] = 0.25 * np.sin(2 * np.pi * t)  # yaw
    states[:, 54] = 0.1 * t  # roll
    states[:, 55] = 0.05 * t
    return states


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 50 fps mp4 of one embedded-world person, with four face-less frames, and its truth."""
    root = tmp_path_factory.mktemp("raw")
    identity = sample_identity(np.random.default_rng(3))
    states = _world_states()
    frames = FaceRenderer(SIZE).render_sequence(states, identity)
    frames[NO_FACE] = frames[0, :4, :4].mean(axis=(0, 1)).astype(np.uint8)  # an empty room
    truth = states.copy()
    truth[NO_FACE] = np.nan
    write_video(root / "session" / "p1.mp4", frames, fps=FPS_SOURCE)
    t = np.arange(int(FRAMES / FPS_SOURCE * 44100)) / 44100
    write_wav(root / "session" / "p1.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 44100)
    return root, truth, identity.shape_coefficients


def _factory(truth, identity, fps=FPS_SOURCE, made=None):
    def factory(video):
        landmarker = GroundTruthLandmarker(truth, identity, SIZE, fps)
        if made is not None:
            made.append(landmarker)
        return landmarker
    return factory


def test_pipeline_recovers_the_known_geometry_and_marks_missing_faces(world, tmp_path):
    root, truth, identity = world
    config = prep.PrepareConfig(size=64, fps=25.0, smoothing=Smoothing("none"))
    made = []
    [summary] = prep.prepare_videos(root, tmp_path / "out", _factory(truth, identity, made=made), config, show_progress=False)
    assert summary.status == "done" and summary.frames_decoded == FRAMES and summary.frames_out == 10
    data = prep.load_prepared(tmp_path / "out" / "session" / "p1")
    np.testing.assert_array_equal(data["source_index"], np.arange(0, FRAMES, 2))  # 50 -> 25 fps: every other frame
    assert made[0].calls == 10  # only the frames the output uses go through the landmarker
    mask = data["face_mask"]
    np.testing.assert_array_equal(np.flatnonzero(~mask), [4, 5])
    assert data["meta"]["no_face_runs"] == [[4, 6]] and data["meta"]["frames_without_face"] == 2
    for key in ("landmarks_68", "face_state", "au", "affect", "landmarks_478"):
        assert np.isnan(data[key][~mask]).all() and np.isfinite(data[key][mask]).all(), key

    kept = truth[data["source_index"]][mask]
    expected_68 = FaceRig.landmarks_2d(kept, identity, SIZE)
    np.testing.assert_allclose(data["landmarks_68"][mask], expected_68, atol=2e-3)
    np.testing.assert_allclose(data["face_state"][mask], kept, atol=1e-5)
    np.testing.assert_allclose(data["au"][mask], au_from_blendshapes(kept[:, :52], tuple(data["au_names"])), atol=1e-5)
    au = dict(zip(data["au_names"], data["au"][mask].T, strict=True))
    assert au["AU12"][-1] > au["AU12"][0] + 2.5  # the smile ramp reads as a rising lip-corner puller
    np.testing.assert_allclose(data["affect"][mask].sum(axis=1), 1.0, atol=1e-6)
    assert data["affect"][mask][-1].argmax() == 0  # joy at the end of the smile

    crops = read_video(tmp_path / "out" / "session" / "p1" / "crops.mp4")
    assert crops.shape == (10, 64, 64, 3)
    assert crops[~mask].max() <= 8 and crops[mask].mean(axis=(1, 2, 3)).min() > 40  # black (mp4 noise) vs face
    # crops are eye-aligned: the eye line is level in crop coordinates despite roll and yaw
    crop_points = data["landmarks_68_crop"][mask]
    eye_vector = crop_points[:, 42:48].mean(1) - crop_points[:, 36:42].mean(1)
    assert np.abs(np.degrees(np.arctan2(eye_vector[:, 1], eye_vector[:, 0]))).max() < 3.0
    assert set(np.unique(data["sketches"])) == {0, 255} and set(np.unique(data["landmark_images"])) == {0, 1}
    assert data["sketches"].shape == (10, 64, 64) and data["landmark_images"].shape == (10, 64, 64)
    assert not data["sketches"][~mask].any() and (data["sketches"][mask].reshape(8, -1).sum(1) > 0).all()

    assert data["log_mel"].shape == (40, 80) and data["mfcc"].shape == (40, 13)
    assert data["audio_16k"].shape == (16000 * 10 // 25,)
    assert abs(float(data["wav2vec2_input"].mean())) < 1e-4 and abs(float(data["wav2vec2_input"].std()) - 1) < 1e-3


def test_rerun_skips_finished_videos_and_changed_settings_redo_them(world, tmp_path):
    root, truth, identity = world
    config = prep.PrepareConfig(size=64, fps=25.0)
    made = []
    prep.prepare_videos(root, tmp_path / "out", _factory(truth, identity, made=made), config, show_progress=False)
    first = (tmp_path / "out" / "session" / "p1" / "features.npz").stat().st_mtime_ns
    [again] = prep.prepare_videos(root, tmp_path / "out", _factory(truth, identity, made=made), config, show_progress=False)
    assert again.status == "skipped" and len(made) == 1 and again.frames_without_face == 2
    assert (tmp_path / "out" / "session" / "p1" / "features.npz").stat().st_mtime_ns == first
    [redone] = prep.prepare_videos(root, tmp_path / "out", _factory(truth, identity, made=made),
                                   prep.PrepareConfig(size=32, fps=25.0), show_progress=False)
    assert redone.status == "done" and len(made) == 2
    assert prep.load_prepared(tmp_path / "out" / "session" / "p1")["sketches"].shape == (10, 32, 32)


class _Crashing(GroundTruthLandmarker):
    def detect(self, frame, timestamp_ms):
        if self.calls == 6:
            raise RuntimeError("killed")
        return super().detect(frame, timestamp_ms)


def test_interrupted_video_leaves_no_finished_marker_or_temp_files_and_resumes(world, tmp_path):
    root, truth, identity = world
    config = prep.PrepareConfig(size=64, fps=25.0)
    out = tmp_path / "out"
    prep.prepare_videos(root, out, _factory(truth, identity), config, show_progress=False)
    # a later run with other settings dies half-way: the old outputs must no longer count as finished
    [failed] = prep.prepare_videos(root, out, lambda v: _Crashing(truth, identity, SIZE, FPS_SOURCE),
                                   prep.PrepareConfig(size=32, fps=25.0), show_progress=False)
    assert failed.status == "failed" and "killed" in failed.error
    leftovers = [p.name for p in (out / "session" / "p1").iterdir() if ".tmp" in p.name or p.name.startswith(".")]
    assert leftovers == []
    [resumed] = prep.prepare_videos(root, out, _factory(truth, identity), prep.PrepareConfig(size=32, fps=25.0), show_progress=False)
    assert resumed.status == "done"
    summary = json.loads((out / "prepare_summary.json").read_text())
    assert [s["status"] for s in summary] == ["done"]


def test_decoded_frame_count_wins_over_the_container_and_the_mismatch_is_reported(world, tmp_path, monkeypatch):
    root, truth, identity = world
    monkeypatch.setattr(prep, "probe", lambda video, default: (FPS_SOURCE, FRAMES + 7, False))
    [summary] = prep.prepare_videos(root, tmp_path / "out", _factory(truth, identity),
                                    prep.PrepareConfig(size=32, fps=None), show_progress=False)
    meta = json.loads((tmp_path / "out" / "session" / "p1" / "meta.json").read_text())
    assert meta["frames_metadata"] == FRAMES + 7 and meta["frames_decoded"] == FRAMES
    assert meta["frame_count_mismatch"] and meta["frames"] == FRAMES and meta["fps"] == FPS_SOURCE
    assert "count differs" in prep.format_summary([summary])


def test_upsampling_reuses_nearest_frames_and_frame_folders_work(world, tmp_path):
    _, truth, identity = world
    identity_states = truth[:6].copy()
    frames = FaceRenderer(SIZE).render_sequence(identity_states, sample_identity(np.random.default_rng(3)))
    write_video(tmp_path / "raw" / "clip", frames)  # a REACT-style folder 1.png ... 6.png
    config = prep.PrepareConfig(size=32, fps=50.0, source_fps=25.0, smoothing=Smoothing("none"))
    [summary] = prep.prepare_videos(tmp_path / "raw", tmp_path / "out", _factory(identity_states, identity, fps=25.0),
                                    config, show_progress=False)
    data = prep.load_prepared(tmp_path / "out" / "clip")
    assert summary.frames_out == 12
    np.testing.assert_array_equal(data["source_index"], [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5])
    np.testing.assert_allclose(data["face_state"], identity_states[data["source_index"]], atol=1e-5)


def test_smoothing_reduces_landmark_jitter_without_bridging_gaps(world, tmp_path):
    root, truth, identity = world
    rng = np.random.default_rng(0)

    class Jittery(GroundTruthLandmarker):
        def detect(self, frame, timestamp_ms):
            obs = super().detect(frame, timestamp_ms)
            if obs is None:
                return None
            noisy = obs.landmarks.copy()
            noisy[:, :2] += rng.normal(0, 0.004, size=(478, 2))
            return type(obs)(noisy, obs.blendshapes, obs.transform)

    errors = {}
    for method in ("none", "savgol"):
        out = tmp_path / method
        prep.prepare_videos(root, out, lambda v: Jittery(truth, identity, SIZE, FPS_SOURCE),
                            prep.PrepareConfig(size=32, fps=None, smoothing=Smoothing(method)), show_progress=False)
        data = prep.load_prepared(out / "session" / "p1")
        mask = data["face_mask"]
        expected = FaceRig.landmarks_2d(truth[mask], identity, SIZE)
        errors[method] = np.abs(data["landmarks_68"][mask] - expected).mean()
        assert np.isnan(data["landmarks_68"][~mask]).all()
    assert errors["savgol"] < 0.8 * errors["none"]


def test_cli_run_with_injected_landmarker_and_bad_input(world, tmp_path, capsys):
    root, truth, identity = world
    parser = argparse.ArgumentParser()
    prep.configure_parser(parser)
    args = parser.parse_args([str(root), "--out", str(tmp_path / "out"), "--size", "32", "--quiet"])
    assert prep.run(args, factory=_factory(truth, identity)) == 0
    assert "1 videos, 10 frames, 2 without a face" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="VIDEO_OR_DIR"):
        prep.run(parser.parse_args([str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]))
    with pytest.raises(ValueError, match="size"):
        prep.PrepareConfig(size=30)


def test_prepare_is_registered_in_the_facezoo_cli():
    from zoo.cli import ZOO_COMMANDS

    assert ZOO_COMMANDS["prepare"][0] == "datamodules.features.prepare"
