"""zoo.reactface: module shapes, Eq. 3/5/6/7/13 against hand-computed values, streaming exactness,
two-stage schedule, ablation switches, bad input, ``facezoo generate`` outputs."""

from __future__ import annotations

import argparse
import math

import lightning as L
import numpy as np
import pytest
import torch
from tiny_configs import TINY_W2V

from zoo.common.alignment_bias import alignment_bias, windowed_alignment_bias
from zoo.common.speaker_encoder import SpeakerEncoder
from zoo.common.streaming import SpeakerEncoderStream, VideoEncoderStream
from zoo.common.video_encoder import VideoEncoder
from zoo.reactface import ReactFace
from zoo.reactface.losses import (
    appropriate_reconstruction_loss,
    diversity_loss,
    face_state_distance,
    kl_loss,
    smooth_loss,
)
from zoo.reactface.nets import (
    ConditionalInteractionEncoder,
    SamplingDecoder,
    interpolate_latents,
)

INF = float("-inf")




def tiny(**kwargs) -> ReactFace:
    torch.manual_seed(0)
    args = dict(feature_dim=16, num_heads=4, period=3, audio_pretrained=None, audio_config=TINY_W2V,
                context_frames=10, cie_feedforward=32, video_stem_channels=4, window=4, eval_window=4)
    args.update(kwargs)
    return ReactFace(**args)


def make_batch(batch: int = 2, frames: int = 12, neighbours: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, neighbours, dtype=torch.bool)
    mask[0, 0] = True
    return {
        "speaker_video": torch.rand(batch, frames, 3, 32, 32, generator=g) * 2 - 1,
        "speaker_audio": torch.randn(batch, frames * 640, generator=g),
        "listener_3dmm": torch.randn(batch, frames, 58, generator=g) * 0.1,
        "speaker_3dmm": torch.randn(batch, frames, 58, generator=g) * 0.1,
        "neighbour_3dmm": torch.randn(batch, neighbours, frames, 58, generator=g) * 0.1,
        "neighbour_mask": mask,
        "index": torch.arange(batch),
    }


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# masks and pieces
# ---------------------------------------------------------------------------------------------


def test_bounded_context_alignment_bias_matches_hand_built_matrix():
    # p = 2, C = 3: -floor((i-j)/2) for 0 <= i-j < 3, -inf otherwise
    expected = torch.tensor([
        [0, INF, INF, INF, INF],
        [0, 0, INF, INF, INF],
        [-1, 0, 0, INF, INF],
        [INF, -1, 0, 0, INF],
        [INF, INF, -1, 0, 0],
    ])
    torch.testing.assert_close(alignment_bias(5, 5, 2, context=3), expected)
    # MIM (k = 2 tokens per frame), C = 2: frame f sees the tokens of frames f-1 and f
    mim = alignment_bias(3, 6, 1, tokens_per_frame=2, context=2)
    expected_mim = torch.tensor([
        [0, 0, INF, INF, INF, INF],
        [-1, -1, 0, 0, INF, INF],
        [INF, INF, -1, -1, 0, 0],
    ])
    torch.testing.assert_close(mim, expected_mim)
    # a window of the last 2 frames is the bottom rows of the full matrix
    torch.testing.assert_close(windowed_alignment_bias(2, 5, 2, context=3), expected[3:])
    with pytest.raises(ValueError, match="context"):
        alignment_bias(3, 3, 2, context=0)


def test_eq3_interpolation_by_hand():
    z_prev, z = torch.tensor([[0.0, 4.0]]), torch.tensor([[4.0, 0.0]])
    out = interpolate_latents(z_prev, z, 4, 4)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [4.0, 0.0]]]))
    # a short last window keeps the window's slope: tau - (t-w) = 1, 2 of w = 4
    torch.testing.assert_close(interpolate_latents(z_prev, z, 2, 4), out[:, :2])


def test_module_shapes():
    torch.manual_seed(0)
    cie = ConditionalInteractionEncoder(16, 4, 2, 32, 0.0)
    mu, logvar = cie(torch.randn(3, 7, 16), 3)
    assert mu.shape == logvar.shape == (3, 16)
    assert cie(None, 5)[0].shape == (5, 16)  # first window: tokens only
    sd = SamplingDecoder(16, 4, 2, 0.0, "absolute", 3)
    assert sd(torch.randn(2, 5, 16), 40).shape == (2, 5, 16)
    # Eq. 4: the SD memory is the sinusoid of the window's global frame indices
    table = sd.positions(40, 2)
    torch.testing.assert_close(table[1, :2], torch.tensor([math.sin(41.0), math.cos(41.0)]))
    net = tiny().net.eval()
    enc = net.encode_speaker(torch.rand(2, 9, 3, 32, 32) * 2 - 1, torch.randn(2, 9 * 640), 9)
    assert enc.embeddings.shape == (2, 9, 16) and enc.audio_tokens.shape == (2, 18, 16)
    assert net.reconstruct_speaker(enc).shape == (2, 9, 58)
    reactions, windows = net.rollout(enc, 4, repeats=3)
    assert reactions.shape == (6, 9, 58) and len(windows) == 3
    assert [w.reaction.shape[1] for w in windows] == [4, 4, 1]
    assert windows[0].mu.shape == (6, 16)


# ---------------------------------------------------------------------------------------------
# losses against hand-computed values
# ---------------------------------------------------------------------------------------------


def test_face_state_distance_and_appropriate_loss_by_hand():
    pred = torch.zeros(2, 2, 58)
    far, near = torch.zeros(2, 58), torch.zeros(2, 58)
    far[:, :52] = 3.0  # smooth L1 of 3 = 2.5 on expressions
    near[:, 52:] = 0.5  # smooth L1 of 0.5 = 0.125 on pose, x10
    candidates = torch.stack([torch.stack([far, near]), torch.stack([near, far])])  # (2, 2, 2, 58)
    assert face_state_distance(pred[0], far).item() == pytest.approx(2.5)
    assert face_state_distance(pred[0], near).item() == pytest.approx(1.25)
    assert face_state_distance(pred[0], near, kind="l1", pose_weight=1.0).item() == pytest.approx(0.5)
    mask = torch.tensor([[True, True], [True, False]])  # sample 1 may only use `near`... masked
    loss, index = appropriate_reconstruction_loss(pred, candidates, mask)
    # sample 0: min(2.5, 1.25) = 1.25 (index 1); sample 1: only candidate 0 (`near`) = 1.25
    assert loss.item() == pytest.approx(1.25) and index.tolist() == [1, 0]
    mask = torch.tensor([[True, True], [False, True]])  # sample 1 must take `far` (2.5)
    loss, index = appropriate_reconstruction_loss(pred, candidates, mask)
    assert loss.item() == pytest.approx((1.25 + 2.5) / 2) and index.tolist() == [1, 1]
    with pytest.raises(ValueError, match="at least one"):
        appropriate_reconstruction_loss(pred, candidates, torch.tensor([[True, True], [False, False]]))


def test_diversity_kl_smooth_by_hand():
    samples = torch.zeros(1, 2, 2, 58)
    samples[0, 1, 0, 0] = 2.0  # ||R_1 - R_2||^2 = 4
    assert diversity_loss(samples, sigma=8.0).item() == pytest.approx(math.exp(-0.5))
    three = torch.zeros(1, 3, 1, 58)
    three[0, 1, 0, 0], three[0, 2, 0, 0] = 1.0, 3.0  # squared distances 1, 9, 4
    expected = (2 * (math.exp(-1 / 2) + math.exp(-9 / 2) + math.exp(-4 / 2))) / 6
    assert diversity_loss(three, sigma=2.0).item() == pytest.approx(expected)
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # KL per element: 0.5*(1 + 1 - 1 - 0) = 0.5 and 0.5*(4 + 0 - 1 - log 4)
    assert kl_loss(mu, logvar).item() == pytest.approx((0.5 + 0.5 * (3 - math.log(4.0))) / 2)
    target = torch.zeros(1, 4, 58)
    pred = torch.zeros(1, 4, 58)
    pred[0, :, 0] = torch.tensor([0.0, 1.0, 4.0, 9.0])  # second differences 2, 2 on channel 0
    assert smooth_loss(pred, target).item() == pytest.approx(2.0 / 58)
    with pytest.raises(ValueError, match="T >= 3"):
        smooth_loss(pred[:, :2], target[:, :2])
    with pytest.raises(ValueError, match="M >= 2"):
        diversity_loss(samples[:, :1])


# ---------------------------------------------------------------------------------------------
# streaming
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [None, 5])
def test_video_and_speaker_streams_equal_whole_clip(context):
    torch.manual_seed(0)
    video = torch.rand(2, 13, 3, 32, 32) * 2 - 1
    venc = VideoEncoder(16, stem_channels=4, causal=True).eval()
    stream = VideoEncoderStream(venc)
    chunks = torch.cat([stream(video[:, s:s + 3]) for s in range(0, 13, 3)], dim=1)
    torch.testing.assert_close(chunks, venc(video), atol=2e-5, rtol=1e-4)
    # speaker encoder with precomputed speech tokens (wav2vec2 itself is not causal)
    enc = SpeakerEncoder(VideoEncoder(16, stem_channels=4, causal=True), None, feature_dim=16,
                         num_heads=4, period=3, context_frames=context).eval()
    enc.audio_encoder = None  # the attention part with tokens is tested through fuse()
    full = enc(video)
    speaker = SpeakerEncoderStream(enc)
    out = torch.cat([speaker.step(video[:, s:s + 4]).embeddings for s in range(0, 13, 4)], dim=1)
    torch.testing.assert_close(out, full.embeddings, atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="causal"):
        VideoEncoderStream(VideoEncoder(16, stem_channels=4, causal=False))


def test_speaker_stream_with_speech_tokens_equals_fuse():
    torch.manual_seed(0)
    net = tiny().net.eval()
    enc = net.speaker_encoder
    video, tokens = torch.rand(1, 11, 3, 32, 32) * 2 - 1, torch.randn(1, 22, 16)
    full = enc.fuse(enc.encode_video(video), tokens)
    stream = SpeakerEncoderStream(enc)
    parts = [stream.step(video[:, s:s + 4], audio_tokens=tokens[:, 2 * s:2 * min(11, s + 4)])
             for s in range(0, 11, 4)]
    torch.testing.assert_close(torch.cat([p.embeddings for p in parts], 1), full.embeddings, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("context", [None, 6])
def test_streaming_equals_prefix_reencoding_and_training_rollout(context):
    model = tiny(use_audio=False, use_mim=False, context_frames=context).eval()
    video = torch.rand(2, 23, 3, 32, 32) * 2 - 1
    stream = model.generate(video, None, 3, 4, mode="stream", generator=gen())
    prefix = model.generate(video, None, 3, 4, mode="prefix", generator=gen())
    assert stream.shape == (2, 3, 23, 58)
    torch.testing.assert_close(stream, prefix, atol=2e-5, rtol=1e-4)
    with torch.no_grad():
        rollout, _ = model.net.rollout(model.net.encode_speaker(video, None, 23), 4, repeats=3, generator=gen())
    torch.testing.assert_close(stream.reshape(6, 23, 58), rollout, atol=2e-5, rtol=1e-4)
    assert stream[:, 0].sub(stream[:, 1]).abs().max() > 1e-4  # K samples differ


def test_streaming_is_causal_and_runs_with_audio():
    model = tiny().eval()
    batch = make_batch(frames=16)
    video, audio = batch["speaker_video"], batch["speaker_audio"]
    a = model.generate(video, audio, 2, 4, generator=gen())
    video2, audio2 = video.clone(), audio.clone()
    video2[:, 12:] = -video2[:, 12:]
    audio2[:, 12 * 640:] = torch.randn_like(audio2[:, 12 * 640:])
    b = model.generate(video2, audio2, 2, 4, generator=gen())
    torch.testing.assert_close(a[:, :, :12], b[:, :, :12])  # frames before 12 never saw the change
    assert (a[:, :, 12:] - b[:, :, 12:]).abs().max() > 1e-5
    prefix = model.generate(video, audio, 2, 4, mode="prefix", generator=gen())
    assert prefix.shape == a.shape and torch.isfinite(prefix).all()


# ---------------------------------------------------------------------------------------------
# training stages, ablations
# ---------------------------------------------------------------------------------------------


def test_stage_terms_and_weights():
    model = tiny()
    batch = make_batch()
    assert [model.stage_for_epoch(e) for e in (0, 49, 50)] == [1, 1, 2]
    one = model.loss_terms(batch, 1, generator=gen())
    assert {"reconstruction_loss", "speaker_loss", "kl_loss", "smooth_loss"} <= one.keys()
    assert "diversity_loss" not in one and "appropriate_loss" not in one
    hp = model.hparams
    torch.testing.assert_close(one["loss"], one["reconstruction_loss"] + hp.kl_weight * one["kl_loss"]
                               + hp.smooth_weight * one["smooth_loss"] + one["speaker_loss"])
    two = model.loss_terms(batch, 2, generator=gen())
    assert {"appropriate_loss", "diversity_loss"} <= two.keys() and "reconstruction_loss" not in two
    # Eq. 15 has no speaker term (stage2_speaker_weight 0)
    torch.testing.assert_close(two["loss"], two["appropriate_loss"] + hp.kl_weight * two["kl_loss"]
                               + hp.smooth_weight * two["smooth_loss"] + hp.div_weight * two["diversity_loss"])
    single = tiny(training_schedule="single_stage")
    assert single.stage_for_epoch(0) == 2
    terms = single.loss_terms(batch, 2, generator=gen())
    assert terms["loss"].item() == pytest.approx(
        (terms["appropriate_loss"] + 1e-5 * terms["kl_loss"] + 10 * terms["smooth_loss"]
         + 100 * terms["diversity_loss"] + terms["speaker_loss"]).item(), rel=1e-5)
    terms["loss"].backward()
    assert all(p.grad is not None for p in single.parameters() if p.requires_grad)


def test_appropriate_loss_uses_neighbours_and_ablation_uses_gt_only():
    model = tiny(div_weight=0.0).eval()  # eval: no dropout, so both models see the same rollout
    batch = make_batch()
    terms = model.loss_terms(batch, 2, generator=gen())
    assert "diversity_loss" not in terms
    # the closest of (own listener, valid neighbours) never exceeds the own-listener loss
    gt_only = tiny(div_weight=0.0, appropriate_reconstruction=False).eval().loss_terms(batch, 2, generator=gen())
    assert terms["appropriate_loss"] <= gt_only["reconstruction_loss"] + 1e-6
    del batch["neighbour_3dmm"]
    with pytest.raises(ValueError, match="num_neighbours"):
        model.loss_terms(batch, 2)
    model.loss_terms(batch, 1)  # stage 1 needs no neighbours
    tiny(div_weight=0.0, appropriate_reconstruction=False).loss_terms(batch, 2)


def test_ablation_switches_change_what_the_model_sees():
    batch = make_batch(frames=8)
    changed_video = dict(batch, speaker_video=-batch["speaker_video"])
    changed_audio = dict(batch, speaker_audio=torch.randn_like(batch["speaker_audio"]))

    def out(model, b):  # the same noise for every call
        return model.generate(b["speaker_video"], b["speaker_audio"], 1, num_frames=8, generator=gen())

    no_video = tiny(use_video=False).eval()
    assert no_video.net.speaker_encoder.video_encoder is None
    torch.testing.assert_close(out(no_video, batch), out(no_video, changed_video))
    assert (out(no_video, batch) - out(no_video, changed_audio)).abs().max() > 1e-5
    no_audio = tiny(use_audio=False, use_mim=False).eval()
    torch.testing.assert_close(out(no_audio, batch), out(no_audio, changed_audio))
    assert (out(no_audio, batch) - out(no_audio, changed_video)).abs().max() > 1e-5
    assert tiny(use_vim=False).net.reaction_decoder.interaction.kinds == ["mim"]
    assert tiny(use_mim=False).net.past_encoder.interaction.kinds == ["vim"]
    assert tiny(use_vim=False, use_mim=False).net.reaction_decoder.interaction.kinds == ["self"]
    # without VIM and MIM the speaker embeddings are added frame by frame (no attention to them)
    no_sync = tiny(use_audio=False, use_vim=False, use_mim=False).eval()
    assert (out(no_sync, batch) - out(no_sync, changed_video)).abs().max() > 1e-6


def test_two_stage_schedule_switches_inside_one_fit(tmp_path):
    model = tiny(stage1_epochs=1, window=4)
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((trainer.current_epoch, pl_module.stage))

    data = [make_batch(frames=8, seed=s) for s in range(2)]
    loader = torch.utils.data.DataLoader(data, batch_size=None)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()],
                        default_root_dir=tmp_path)
    trainer.fit(model, loader)
    assert seen == [(0, 1), (0, 1), (1, 2), (1, 2)]


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_bad_input_errors():
    with pytest.raises(ValueError, match="use_mim"):
        tiny(use_audio=False)
    with pytest.raises(ValueError, match="at least one speaker modality"):
        tiny(use_audio=False, use_video=False, use_mim=False)
    with pytest.raises(ValueError, match="momentum"):
        tiny(momentum=1.0)
    with pytest.raises(ValueError, match="training_schedule"):
        tiny(training_schedule="three")
    with pytest.raises(ValueError, match="num_diversity_samples"):
        tiny(num_diversity_samples=1)
    with pytest.raises(ValueError, match="time_encoding"):
        tiny(time_encoding="learned")
    model = tiny().eval()
    batch = make_batch(frames=8)
    with pytest.raises(ValueError, match="speaker_audio is required"):
        model.generate(batch["speaker_video"], None, 1)
    with pytest.raises(ValueError, match="mode"):
        model.generate(batch["speaker_video"], batch["speaker_audio"], 1, mode="online")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model.generate(batch["speaker_video"] * 5, batch["speaker_audio"], 1)
    with pytest.raises(ValueError, match="samples"):
        model.generate(batch["speaker_video"], batch["speaker_audio"][:, :3 * 640], 1)
    bad = dict(batch, listener_3dmm=batch["listener_3dmm"][:, :, :50])
    with pytest.raises(ValueError, match="listener_3dmm"):
        model.loss_terms(bad, 1)
    with pytest.raises(ValueError, match="neighbour_mask"):
        model.loss_terms(dict(batch, neighbour_mask=batch["neighbour_mask"][:, :1]), 2)


# ---------------------------------------------------------------------------------------------
# facezoo generate
# ---------------------------------------------------------------------------------------------


def _write_inputs(tmp_path, frames: int = 10):
    from datamodules.features.io import write_video, write_wav

    rng = np.random.default_rng(0)
    video = write_video(tmp_path / "speaker.mp4", rng.integers(0, 255, (frames, 48, 48, 3), dtype=np.uint8))
    wav = write_wav(tmp_path / "speaker.wav", rng.standard_normal(frames * 1764).astype(np.float32) * 0.1, 44100)
    return video, wav


@pytest.mark.parametrize("which", ["reactface", "transae"])
def test_generate_to_files_writes_npy_and_mp4(tmp_path, which):
    from datamodules.features.io import read_video

    video, wav = _write_inputs(tmp_path)
    if which == "reactface":
        model = tiny().eval()
        model.face_mean.fill_(0.25)
        model.face_mean_known.fill_(True)
    else:
        from zoo.transae import TransAE

        torch.manual_seed(0)
        model = TransAE(feature_dim=16, num_heads=4, period=3, audio_pretrained=None, audio_config=TINY_W2V,
                        video_stem_channels=4).eval()
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--config", action="append", default=None)
    type(model).add_generate_arguments(parser)
    args = parser.parse_args(["--speaker-video", str(video), "--speaker-audio", str(wav), "--num-samples", "2",
                              "--image-size", "32", "--render-size", "64"])
    written = model.generate_to_files(args, tmp_path / "out")
    npy = np.load(written[0])
    assert npy.shape == (2, 10, 58) and npy.dtype == np.float32
    if which == "reactface":
        assert abs(npy.mean() - 0.25) < 0.25 + np.abs(npy - 0.25).max()  # mean added back
        with torch.no_grad():
            assert not np.allclose(npy[0], npy[1])  # two different reactions
    mp4 = read_video(written[1])
    assert mp4.shape == (10, 64, 64 * 3, 3)  # speaker | reaction 1 | reaction 2
    missing = parser.parse_args(["--speaker-video", str(tmp_path / "nope.mp4"), "--speaker-audio", str(wav)])
    with pytest.raises(FileNotFoundError, match="speaker-video"):
        model.generate_to_files(missing, tmp_path / "out")
    no_audio = parser.parse_args(["--speaker-video", str(video)])
    with pytest.raises(ValueError, match="speaker-audio"):
        model.generate_to_files(no_audio, tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# fast streaming paths (benchmarks/reactface_profile.py): exact rewrites and documented options
# ---------------------------------------------------------------------------------------------


def test_frame_max_pool_and_pool_before_norm_are_exact():
    from zoo.common.video_encoder import frame_max_pool

    x = torch.randn(2, 3, 4, 17, 16)
    reference = torch.nn.functional.max_pool3d(x, (1, 3, 3), (1, 2, 2))
    assert torch.equal(frame_max_pool(x), reference)  # separable strided maxima, bit-identical
    torch.manual_seed(0)
    enc = VideoEncoder(16, stem_channels=4, causal=True).eval()
    video = torch.rand(1, 6, 3, 40, 40) * 2 - 1
    with torch.no_grad():
        fast = enc(video)
    # with autograd: max_pool3d (one gradient per window) on the same values
    torch.testing.assert_close(enc(video), fast, atol=1e-6, rtol=1e-5)
    # pool-before-normalise (monotone per channel and frame) equals RF's order, pool after ReLU
    block = enc.conv1
    y = block.conv(torch.nn.functional.pad(rearrange_video(video), (0, 0, 0, 0, block.time_pad, 0)))
    rf_order = reference_pool(torch.relu(block.norm(y)))
    torch.testing.assert_close(block.normalise(y, pool=True)[0], rf_order, atol=1e-6, rtol=1e-5)


def rearrange_video(video: torch.Tensor) -> torch.Tensor:
    return video.permute(0, 2, 1, 3, 4)


def reference_pool(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.MaxPool3d((1, 3, 3), (1, 2, 2))(x)


def _w2v(norm: str):
    from zoo.common.audio_encoder import Wav2Vec2Encoder

    torch.manual_seed(0)
    return Wav2Vec2Encoder(None, dict(TINY_W2V, feat_extract_norm=norm), out_dim=16).eval()


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_wav2vec2_feature_stream(norm):
    from zoo.common.streaming import Wav2Vec2FeatureStream

    enc = _w2v(norm)
    wave = torch.randn(2, 30 * 640)
    with torch.no_grad():
        # the transformer part on CNN features is forward() after the CNN
        torch.testing.assert_close(enc.tokens_from_features(enc.model.feature_extractor(wave), 30), enc(wave, 30))
        stream, errors = Wav2Vec2FeatureStream(enc), []
        for start in range(0, 30, 6):  # 6-frame windows, 5 frames of context, as SpeakerEncoderStream
            segment = wave[:, max(0, (start - 5) * 640):(start + 6) * 640]
            features, reference = stream(segment, 6 * 640), enc.model.feature_extractor(segment)
            assert features.shape == reference.shape  # every token of the segment, none from before
            errors.append(((features - reference).abs().max() / reference.abs().max()).item())
    assert stream.exact == (norm == "layer")
    assert errors[0] < 1e-5  # the first segment is the whole stream so far
    if norm == "layer":
        assert max(errors) < 1e-5  # local layer norms: each sample convolved once, same features
    else:  # cached features keep their own segment's group-norm statistics: close, not equal
        assert 1e-5 < max(errors) < 0.2
    stream = Wav2Vec2FeatureStream(enc)
    stream(wave[:, :640], 640)
    with pytest.raises(ValueError, match="grid"):  # a segment starting at sample 100
        stream(wave[:, 100:1280], 640)


def test_speaker_stream_feature_cache_is_exact_for_layer_norm_wav2vec2():
    from zoo.common.streaming import SpeakerEncoderStream

    torch.manual_seed(0)
    enc = SpeakerEncoder(None, _w2v("layer"), feature_dim=16, num_heads=4, period=3, context_frames=8).eval()
    audio = torch.randn(1, 20 * 640)
    outs = {}
    with torch.no_grad():
        for cache in (False, True):
            stream = SpeakerEncoderStream(enc, audio_context_frames=4, audio_feature_cache=cache)
            outs[cache] = torch.cat([stream.step(audio_chunk=audio[:, s * 640:(s + 4) * 640], num_frames=4).embeddings
                                     for s in range(0, 20, 4)], dim=1)
    torch.testing.assert_close(outs[True], outs[False], atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="audio_context_frames >= 1"):
        SpeakerEncoderStream(enc, audio_context_frames=0, audio_feature_cache=True)
    log_mel = tiny(audio_frontend="log_mel").net.speaker_encoder
    with pytest.raises(ValueError, match="wav2vec2"):
        SpeakerEncoderStream(log_mel, audio_feature_cache=True)


def test_generation_options_bf16_and_feature_cache():
    model = tiny().eval()
    batch = make_batch(frames=16)
    video, audio = batch["speaker_video"], batch["speaker_audio"]
    exact = model.generate(video, audio, 2, 4, generator=gen())
    bf16 = model.generate(video, audio, 2, 4, generator=gen(), precision="bf16-mixed")
    assert bf16.dtype == torch.float32 and bf16.shape == exact.shape
    error = (bf16 - exact).abs().max() / exact.abs().max()
    assert 0 < error < 0.1  # bf16 autocast is active and close to float32
    cached = model.generate(video, audio, 2, 4, generator=gen(), audio_feature_cache=True)
    torch.testing.assert_close(cached[:, :, :4], exact[:, :, :4])  # first window: nothing cached yet
    assert (cached - exact).abs().max() / exact.abs().max() < 0.2  # group norm: approximate
    with pytest.raises(ValueError, match="precision"):
        model.generate(video, audio, 1, precision="16-mixed")
