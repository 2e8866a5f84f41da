"""Building blocks of ``facezoo prepare``: frame-rate maps, smoothing, crops, audio, AU/affect rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.features import audio_features as af
from datamodules.features.blendshape_estimates import (
    BLENDSHAPE_AU_RULES,
    affect_from_blendshapes,
    au_from_blendshapes,
)
from datamodules.features.face_crops import apply_affine, crop_affines, crop_quads, warp_crop
from datamodules.features.face_state import AFFECT_CLASSES, EXPRESSION_CLASSES
from datamodules.features.temporal import Smoothing, one_euro, output_frame_count, resample_indices


@pytest.mark.parametrize("n, fps_in, fps_out", [(10, 50, 25), (7, 25, 50), (30, 30, 25), (25, 25, 30), (12, 29.97, 25)])
def test_resampling_picks_the_nearest_source_frame(n, fps_in, fps_out):
    idx = resample_indices(n, fps_in, fps_out)
    assert len(idx) == output_frame_count(n, fps_in, fps_out) and (np.diff(idx) >= 0).all()
    t_out = np.arange(len(idx)) / fps_out
    inside = t_out <= (n - 1) / fps_in
    gap = np.abs(idx / fps_in - t_out)[inside]
    assert (gap <= 0.5 / fps_in + 1e-9).all()
    assert idx.min() == 0 and n - 1 - fps_in / fps_out < idx.max() <= n - 1  # the whole decoded duration is covered


def test_resampling_hand_cases():
    np.testing.assert_array_equal(resample_indices(10, 50, 25), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(resample_indices(5, 25, 25), np.arange(5))
    assert output_frame_count(751, 25, 25) == 751 and output_frame_count(0, 25, 30) == 0


def test_savgol_keeps_quadratics_and_never_crosses_gaps():
    t = np.arange(20, dtype=float)
    x = (0.1 * t**2 - t)[:, None]
    np.testing.assert_allclose(Smoothing("savgol", 5, 2)(x, 25.0), x, atol=1e-9)
    steps = np.concatenate([np.zeros(6), [np.nan], np.full(6, 10.0)])[:, None]
    out = Smoothing("savgol", 5, 2)(steps, 25.0)
    np.testing.assert_allclose(out[:6], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[7:], 10.0, atol=1e-12)  # a gap-bridging filter would pull these apart
    assert np.isnan(out[6]).all()
    short = np.array([[1.0], [np.nan], [2.0], [4.0]])
    np.testing.assert_array_equal(Smoothing("savgol", 5, 2)(short, 25.0)[[0, 2, 3]], short[[0, 2, 3]])  # runs < 3 stay raw


def test_one_euro_follows_a_step_without_overshoot_and_damps_noise():
    step = np.concatenate([np.zeros(5), np.ones(60)])[:, None]
    out = one_euro(step, 25.0, min_cutoff=1.0)
    assert (np.diff(out[:, 0]) >= -1e-12).all() and out.max() <= 1.0 and out[-1, 0] > 0.99
    noise = np.random.default_rng(0).normal(size=(400, 1))
    assert one_euro(noise, 25.0, min_cutoff=1.0).std() < 0.5 * noise.std()
    with pytest.raises(ValueError, match="smoothing method"):
        Smoothing("kalman")
    with pytest.raises(ValueError, match="odd window"):
        Smoothing("savgol", 4)


def _face(eye_right, eye_left, mouth) -> np.ndarray:
    points = np.zeros((68, 2))
    points[36:42], points[42:48] = eye_right, eye_left
    points[[48, 54]] = mouth[0], mouth[1]
    return points


def test_crop_square_follows_the_ffhq_rule_by_hand():
    # eyes at (4, 10) and (6, 10): d = (2, 0), e = (5, 10); mouth mid-point (5, 13): m = (0, 3)
    face = _face((4.0, 10.0), (6.0, 10.0), ((4.0, 13.0), (6.0, 13.0)))
    # x = d - rot90(m) = (5, 0) -> unit * max(2*2, 1.8*3) = (5.4, 0); y = (0, 5.4); c = e + 0.3 y-hat
    quad = crop_quads(face)
    np.testing.assert_allclose(quad, [[-0.4, 4.9], [-0.4, 15.7], [10.4, 15.7], [10.4, 4.9]], atol=1e-12)
    affine = crop_affines(face, 108)
    # 10 crop pixels per source pixel; the eye mid-point lands on the crop's vertical centre line
    np.testing.assert_allclose(apply_affine(affine, np.array([[5.0, 10.0]])), [[53.5, 50.5]], atol=1e-9)
    np.testing.assert_allclose(apply_affine(affine, quad[:1]), [[-0.5, -0.5]], atol=1e-9)


def test_crop_undoes_in_plane_rotation_and_warps_the_pixels():
    angle = np.radians(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    face = _face((40.0, 50.0), (60.0, 50.0), ((42.0, 80.0), (58.0, 80.0)))
    turned = (face - 50) @ rot.T + 50
    a, b = crop_affines(face, 64), crop_affines(turned, 64)
    np.testing.assert_allclose(apply_affine(a, face), apply_affine(b, turned), atol=1e-9)
    frame = np.zeros((100, 100, 3), dtype=np.uint8)
    frame[48:53, 38:43] = 255  # a bright patch on the right eye
    crop = warp_crop(frame, a, 64)
    eye = apply_affine(a, face[36:37])[0]
    assert crop[int(round(eye[1])), int(round(eye[0]))].min() > 200 and crop.mean() < 20
    big = np.zeros((2000, 2000, 3), dtype=np.uint8)
    assert warp_crop(big, crop_affines(face * 20, 64), 64).shape == (64, 64, 3)  # shrink path


def test_mel_filterbank_matches_transformers_reference():
    audio_utils = pytest.importorskip("transformers.audio_utils")
    ours = af.mel_filterbank(400, 80, 16000)
    reference = audio_utils.mel_filter_bank(201, 80, 0.0, 8000.0, 16000, norm=None, mel_scale="htk")
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_log_mel_is_frame_aligned_and_finds_a_tone():
    fps, frames = 30.0, 9
    t = np.arange(int(16000 * frames / fps)) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    log_mel = af.log_mel_spectrogram(tone, frames, fps)
    assert log_mel.shape == (frames * 4, 80)
    centres = af.mel_to_hz(np.linspace(af.hz_to_mel(0), af.hz_to_mel(8000), 82)[1:-1])
    peak = centres[log_mel[4:-4].argmax(axis=1)]
    assert np.all(np.abs(peak - 1000) < 60)
    silent = af.log_mel_spectrogram(np.zeros(1000), 2, 25.0)
    np.testing.assert_allclose(silent, np.log(af.LOG_EPS), rtol=1e-6)
    coefficients = af.mfcc(log_mel, 13)
    # orthonormal DCT-II: c0 = sum(log_mel) / sqrt(n_mels)
    np.testing.assert_allclose(coefficients[:, 0], log_mel.sum(axis=1) / np.sqrt(80), rtol=1e-5)


def test_wav2vec2_input_and_resampling():
    rng = np.random.default_rng(0)
    audio = 0.1 * rng.normal(size=44100).astype(np.float32) + 0.05
    x = af.wav2vec2_input(af.to_16k(audio, 44100))
    assert x.shape == (16000,) and abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4
    with pytest.raises(ValueError, match="mono"):
        af.wav2vec2_input(np.zeros((2, 10)))


def test_au_rules_equal_the_metric_rules_in_zoo():
    au_rules = pytest.importorskip("datamodules.features.au_rules")
    scores = np.random.default_rng(0).uniform(size=(50, 52))
    shared = [a for a in au_rules.BLENDSHAPE_AU_RULES]
    assert {a: BLENDSHAPE_AU_RULES[a] for a in shared} == au_rules.BLENDSHAPE_AU_RULES
    np.testing.assert_allclose(au_from_blendshapes(scores, shared), au_rules.au_from_blendshapes(scores, shared))
    torch_out = au_from_blendshapes(torch.from_numpy(scores).float(), ("AU6", "AU12"))
    np.testing.assert_allclose(torch_out.numpy(), au_from_blendshapes(scores)[:, :2], atol=1e-6)


def test_affect_rule_recognises_the_embedded_worlds_prototypes():
    from datamodules.synthetic.behaviour import AFFECT_TEMPLATES

    affect = affect_from_blendshapes(AFFECT_TEMPLATES)
    np.testing.assert_allclose(affect.sum(axis=1), 1.0, atol=1e-6)
    react_to_dyadgan = {"Neutral": "neutral", "Happy": "joy", "Sad": "sadness", "Surprise": "surprise", "Fear": "fear",
                        "Disgust": "disgust", "Anger": "anger", "Contempt": "contempt"}
    predicted = [AFFECT_CLASSES[i] for i in affect.argmax(axis=1)]
    assert predicted == [react_to_dyadgan[c] for c in EXPRESSION_CLASSES]
    # a faint smile is mostly neutral, a full one mostly joy
    faint = AFFECT_TEMPLATES[1] * 0.1
    assert affect_from_blendshapes(faint)[-1] > 0.8 and affect[1, 0] > 0.9
    with pytest.raises(ValueError, match="NaN"):
        affect_from_blendshapes(np.full(52, np.nan))
    with pytest.raises(ValueError, match="52"):
        au_from_blendshapes(np.zeros(51))
