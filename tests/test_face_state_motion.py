"""speaker_motion="face_state": Trans-AE and ReactFace reading the speaker's motion from its tracked
3DMM coefficients (zoo.common.face_state_encoder) instead of frames: shapes, what the model reads
from a batch, learning, streaming exactness, ``facezoo generate --speaker-3dmm`` and bad input."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from tiny_configs import TINY_W2V

from zoo.common.face_state_encoder import FaceStateEncoder, build_motion_encoder
from zoo.common.video_encoder import VideoEncoder
from zoo.reactface import ReactFace
from zoo.transae import TransAE


def tiny_transae(**kwargs) -> TransAE:
    torch.manual_seed(0)
    args = dict(feature_dim=32, num_heads=4, period=4, audio_pretrained=None, audio_config=TINY_W2V,
                speaker_motion="face_state")
    args.update(kwargs)
    return TransAE(**args)


def tiny_reactface(**kwargs) -> ReactFace:
    torch.manual_seed(0)
    args = dict(feature_dim=16, num_heads=4, period=3, audio_pretrained=None, audio_config=TINY_W2V,
                context_frames=10, cie_feedforward=32, window=4, eval_window=4, speaker_motion="face_state")
    args.update(kwargs)
    return ReactFace(**args)


def face_state_batch(batch: int = 4, frames: int = 24, lag: int = 2, seed: int = 0) -> dict:
    """The listener's face state is a fixed linear map of the speaker's ``lag`` frames earlier;
    no speaker frames at all (a face-state model must not need them)."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(batch, frames, 3, generator=g).cumsum(1) * 0.3
    speaker_map, listener_map = torch.randn(2, 3, 58, generator=g) * 0.3
    lagged = torch.cat([torch.zeros(batch, lag, 3), latent[:, :-lag]], dim=1)
    mask = torch.zeros(batch, 2, dtype=torch.bool)
    return {
        "speaker_audio": torch.randn(batch, frames * 640, generator=g),
        "speaker_3dmm": latent @ speaker_map,
        "listener_3dmm": lagged @ listener_map,
        "neighbour_3dmm": torch.zeros(batch, 2, frames, 58),
        "neighbour_mask": mask,
        "index": torch.arange(batch),
    }


def test_face_state_encoder_shapes_and_bad_input():
    enc = FaceStateEncoder(32)
    assert enc(torch.randn(2, 7, 58)).shape == (2, 7, 32)
    with pytest.raises(ValueError, match=r"speaker_3dmm must be a \(batch, time, 58\)"):
        enc(torch.randn(2, 7, 3, 32, 32))  # frames given to a face-state model
    with pytest.raises(ValueError, match="floating point"):
        enc(torch.zeros(2, 7, 58, dtype=torch.long))
    bad = torch.randn(1, 4, 58)
    bad[0, 2, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        enc(bad)
    assert isinstance(build_motion_encoder("video", 16, video_stem_channels=4, video_causal=True), VideoEncoder)
    with pytest.raises(ValueError, match="speaker_motion must be one of"):
        build_motion_encoder("pixels", 16, video_stem_channels=4, video_causal=True)
    with pytest.raises(ValueError, match="speaker_motion must be one of"):
        tiny_transae(speaker_motion="landmarks")


@pytest.mark.parametrize("make", [tiny_transae, tiny_reactface])
def test_models_read_speaker_3dmm_and_build_no_video_encoder(make):
    model = make()
    assert not any(isinstance(m, VideoEncoder) for m in model.modules())
    assert model.net.motion_input == "face_state" and not model.reads_speaker_frames
    assert make(speaker_motion="video", video_stem_channels=4).reads_speaker_frames
    assert make(use_video=False).net.motion_input is None
    batch = face_state_batch(batch=2, frames=12)
    video, _, frames = model._speaker_inputs(batch)
    assert video is batch["speaker_3dmm"] and frames == 12
    del batch["speaker_3dmm"]
    with pytest.raises(ValueError, match="speaker_3dmm.*speaker_motion='face_state'"):
        model._speaker_inputs(batch)


def test_transae_face_state_learns_a_lagged_map_better_than_the_mean():
    model = tiny_transae(use_audio=False, dropout=0.0)
    model.log = model.log_dict = lambda *args, **kwargs: None
    batch = face_state_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    mean_loss = batch["listener_3dmm"].pow(2).mean().item()
    for _ in range(150):
        optimizer.zero_grad()
        model.training_step(batch, 0).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        error = (model(batch) - batch["listener_3dmm"]).pow(2).mean().item()
    assert error < 0.2 * mean_loss, (error, mean_loss)


def test_reactface_face_state_streams_exactly_and_is_causal():
    model = tiny_reactface(use_audio=False, use_mim=False).eval()
    motion = face_state_batch(batch=2, frames=23)["speaker_3dmm"]
    stream = model.generate(motion, None, 3, 4, mode="stream", generator=torch.Generator().manual_seed(1))
    prefix = model.generate(motion, None, 3, 4, mode="prefix", generator=torch.Generator().manual_seed(1))
    assert stream.shape == (2, 3, 23, 58)
    torch.testing.assert_close(stream, prefix, atol=2e-5, rtol=1e-4)
    changed = motion.clone()
    changed[:, 16:] += 1.0
    later = model.generate(changed, None, 3, 4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(later[:, :, :16], stream[:, :, :16])  # frames < 16 never saw the change
    assert (later[:, :, 16:] - stream[:, :, 16:]).abs().max() > 1e-5
    with pytest.raises(ValueError, match=r"\(batch, time, 58\) face state"):
        model.generate(torch.rand(2, 23, 3, 32, 32), None, 1, 4)


def _generate_args(model, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--config", action="append", default=None)
    type(model).add_generate_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("make", [tiny_transae, tiny_reactface])
def test_generate_to_files_reads_speaker_3dmm(tmp_path, make):
    from datamodules.features.io import write_video, write_wav

    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "speaker.mp4", rng.integers(0, 255, (12, 48, 48, 3), dtype=np.uint8))
    wav = write_wav(tmp_path / "speaker.wav", rng.standard_normal(12 * 1764).astype(np.float32) * 0.1, 44100)
    coefficients = (rng.standard_normal((9, 58)) * 0.1).astype(np.float32)  # shorter than the video
    np.save(tmp_path / "speaker.npy", coefficients)
    model = make().eval()
    model.face_mean.fill_(0.5)
    model.face_mean_known.fill_(True)
    common = ["--speaker-video", str(video), "--speaker-audio", str(wav), "--render-size", "32"]
    args = _generate_args(model, common + ["--speaker-3dmm", str(tmp_path / "speaker.npy"), "--num-samples", "2"])
    written = model.generate_to_files(args, tmp_path / "out")
    reactions = np.load(written[0])
    assert reactions.shape == (2, 9, 58)  # cut to the 3DMM's 9 frames

    # the model saw the coefficients minus its face mean: the same as calling generate directly
    motion = torch.from_numpy(coefficients - 0.5)[None]
    audio_args = _generate_args(model, common)
    from zoo.common.react_io import read_speaker_inputs

    _, audio, _ = read_speaker_inputs(audio_args.speaker_video, wav, 32, max_frames=9, display_size=32)
    if isinstance(model, TransAE):
        direct = model.generate(motion, audio, 1)[0, 0].numpy() + 0.5
        np.testing.assert_allclose(reactions[0], direct, atol=1e-5)

    with pytest.raises(ValueError, match="pass --speaker-3dmm"):
        model.generate_to_files(_generate_args(model, common), tmp_path / "out2")
    np.save(tmp_path / "wrong.npy", np.zeros((9, 52), dtype=np.float32))
    with pytest.raises(ValueError, match=r"wrong.npy: expected 3DMM coefficients of shape \(T, 58\)"):
        model.generate_to_files(_generate_args(model, common + ["--speaker-3dmm", str(tmp_path / "wrong.npy")]),
                                tmp_path / "out3")
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_generate_refuses_speaker_3dmm_for_a_pixel_model(tmp_path):
    from datamodules.features.io import write_video, write_wav

    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "speaker.mp4", rng.integers(0, 255, (6, 48, 48, 3), dtype=np.uint8))
    wav = write_wav(tmp_path / "speaker.wav", rng.standard_normal(6 * 1764).astype(np.float32) * 0.1, 44100)
    np.save(tmp_path / "speaker.npy", np.zeros((6, 58), dtype=np.float32))
    model = tiny_transae(speaker_motion="video", video_stem_channels=4).eval()
    args = _generate_args(model, ["--speaker-video", str(video), "--speaker-audio", str(wav),
                                  "--speaker-3dmm", str(tmp_path / "speaker.npy")])
    with pytest.raises(ValueError, match="only read by models with speaker_motion: face_state"):
        model.generate_to_files(args, tmp_path / "out")


class _FakeTrainer:
    def __init__(self, datamodule):
        self.datamodule = datamodule


def test_reactface_standardised_output_scales_by_face_std_and_keeps_still_channels_at_the_mean():
    from types import SimpleNamespace

    std = torch.linspace(0.01, 0.3, 58)
    std[[6, 11, 12]] = 0.0
    model = tiny_reactface(standardise_output=True)
    assert torch.equal(model.net.output_scale, torch.ones(58))  # until fit's setup
    model._trainer = _FakeTrainer(SimpleNamespace(face_mean=torch.zeros(58).numpy(), face_std=std.numpy()))
    model.setup("fit")
    torch.testing.assert_close(model.net.output_scale, std)
    model.eval()
    out = model.generate(face_state_batch(batch=2, frames=12)["speaker_3dmm"], torch.randn(2, 12 * 640), 3, 4,
                         generator=torch.Generator().manual_seed(0))
    assert out[..., [6, 11, 12]].abs().max() == 0  # exactly the mean: CCC 1 against a still listener
    assert out[..., 0].std() > 0
    state = model.state_dict()
    assert "net.output_scale" in state  # travels with the weights
    plain = tiny_reactface()
    plain._trainer = _FakeTrainer(SimpleNamespace(face_mean=torch.zeros(58).numpy(), face_std=std.numpy()))
    plain.setup("fit")
    assert torch.equal(plain.net.output_scale, torch.ones(58))  # the paper's raw coefficients

    bare = tiny_reactface(standardise_output=True)
    bare._trainer = _FakeTrainer(SimpleNamespace(face_mean=torch.zeros(58).numpy()))
    with pytest.raises(ValueError, match="standardise_output=True.*face_std"):
        bare.setup("fit")
    bare._trainer = _FakeTrainer(SimpleNamespace(face_std=-std.numpy()))
    with pytest.raises(ValueError, match="face_std must be 58 finite values >= 0"):
        bare.setup("fit")
