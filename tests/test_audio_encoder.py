"""zoo.common.audio_encoder: tiny random wav2vec2, token alignment, loading and its errors."""

from __future__ import annotations

import pytest
import torch

from zoo.common.audio_encoder import Wav2Vec2Encoder

TINY = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
}




def tiny(**kwargs) -> Wav2Vec2Encoder:
    torch.manual_seed(0)
    return Wav2Vec2Encoder(None, TINY, out_dim=24, **kwargs).eval()


def test_two_tokens_per_frame_with_rf_padding():
    enc = tiny()
    assert (enc.hop, enc.samples_per_frame, enc.receptive_field) == (320, 640, 400)
    audio = torch.randn(2, 16 * 640)
    with torch.no_grad():
        out = enc(audio)
        hidden = enc.model(audio).last_hidden_state
    # 16 frames * 640 samples -> floor((10240 - 400) / 320) + 1 = 31 tokens; RF pads one zero token
    assert hidden.shape[1] == 31
    assert out.shape == (2, 32, 24)
    torch.testing.assert_close(out[:, :31], enc.proj(hidden))
    torch.testing.assert_close(out[:, 31], enc.proj.bias.expand(2, -1))  # Linear(0) = bias


def test_longer_audio_is_truncated_to_k_tokens_per_frame():
    enc = tiny()
    with torch.no_grad():
        assert enc(torch.randn(1, 20 * 640), num_frames=12).shape == (1, 24, 24)
        assert enc(torch.randn(1, 12 * 640 + 500)).shape == (1, 24, 24)  # T = S // 640


def test_bad_audio_input():
    enc = tiny()
    with pytest.raises(ValueError, match=r"needs? .*12800"):
        enc(torch.randn(1, 10 * 640), num_frames=20)
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        enc(torch.randn(640 * 4))
    with pytest.raises(ValueError, match="floating point"):
        enc(torch.zeros(1, 640 * 4, dtype=torch.int16))
    with pytest.raises(ValueError, match="less than one frame"):
        enc(torch.randn(1, 300))


def test_only_the_cnn_feature_encoder_is_frozen():
    enc = tiny()
    enc.train()
    cnn = list(enc.model.feature_extractor.parameters())
    assert cnn and not any(p.requires_grad for p in cnn)
    enc(torch.randn(2, 8 * 640)).sum().backward()
    assert all(p.grad is None for p in cnn)
    layer = enc.model.encoder.layers[0].attention.q_proj.weight
    assert layer.requires_grad and layer.grad is not None and layer.grad.abs().sum() > 0
    unfrozen = Wav2Vec2Encoder(None, TINY, freeze_feature_encoder=False, out_dim=8)
    assert all(p.requires_grad for p in unfrozen.model.feature_extractor.parameters())


def test_layerdrop_override_and_validation():
    assert tiny().model.config.layerdrop == 0.0  # DDP-safe default
    assert Wav2Vec2Encoder(None, {**TINY, "layerdrop": 0.1}, layerdrop=None).model.config.layerdrop == 0.1
    with pytest.raises(ValueError, match="tokens_per_frame=3"):
        Wav2Vec2Encoder(None, TINY, tokens_per_frame=3)
    with pytest.raises(ValueError, match="needs `pretrained`"):
        Wav2Vec2Encoder(None, None)
    with pytest.raises(ValueError, match="invalid wav2vec2 config"):
        Wav2Vec2Encoder(None, {"no_such_field_layout": 1, "conv_dim": [8, 8]})


def test_local_directory_round_trip_with_overrides(tmp_path):
    enc = tiny()
    enc.model.save_pretrained(tmp_path / "w2v")
    loaded = Wav2Vec2Encoder(str(tmp_path / "w2v"), out_dim=24).eval()
    assert loaded.model.config.hidden_size == 32
    assert enc.model.state_dict().keys() == loaded.model.state_dict().keys()
    for name, value in enc.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value, msg=name)
    audio = torch.randn(1, 6 * 640)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(audio).last_hidden_state, enc.model(audio).last_hidden_state)
    # with a pretrained model, `config` overrides its config
    no_spec = Wav2Vec2Encoder(str(tmp_path / "w2v"), {"mask_time_prob": 0.0, "layerdrop": 0.05}, layerdrop=None)
    assert no_spec.model.config.mask_time_prob == 0.0 and no_spec.model.config.layerdrop == 0.05


def test_offline_missing_model_error_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    name = "facezoo-tests/not-a-cached-wav2vec2"
    with pytest.raises(FileNotFoundError) as info:
        Wav2Vec2Encoder(name, cache_dir=str(tmp_path))
    message = str(info.value)
    for needed in (name, "config.json", "model.safetensors", "MB", "huggingface-cli download",
                   str(tmp_path), "HF_HUB_OFFLINE", "audio_pretrained"):
        assert needed in message


def test_missing_local_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Wav2Vec2Encoder(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        Wav2Vec2Encoder(str(tmp_path / "empty"))


def test_runs_under_bf16_autocast():
    enc = tiny()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(torch.randn(1, 8 * 640))
    assert out.shape == (1, 16, 24) and torch.isfinite(out.float()).all()


def test_log_mel_encoder_tokens_are_aligned_and_causal():
    from zoo.common.audio_encoder import LogMelEncoder, build_audio_encoder

    torch.manual_seed(0)
    encoder = LogMelEncoder(out_dim=16, n_mels=32).eval()
    wave = torch.randn(2, 20 * 640)
    tokens = encoder(wave, 20)
    assert tokens.shape == (2, 40, 16)  # 2 tokens per 25 fps frame at 16 kHz
    changed = wave.clone()
    changed[:, 10 * 640:] = torch.randn(2, 10 * 640)
    after = encoder(changed, 20)
    # token j sees samples [320 j, 320 j + 400): tokens 0..18 end before frame 10 starts
    torch.testing.assert_close(tokens[:, :19], after[:, :19])
    assert not torch.allclose(tokens[:, 20:], after[:, 20:])
    with pytest.raises(ValueError, match="frames need"):
        encoder(torch.randn(1, 5 * 640), 20)
    with pytest.raises(ValueError, match="audio_frontend"):
        build_audio_encoder("mfcc", 16, None, None, True, 0.0)


def test_log_mel_encoder_follows_loudness():
    from zoo.common.audio_encoder import LogMelEncoder

    encoder = LogMelEncoder(out_dim=8, n_mels=16)
    quiet, loud = 0.01 * torch.randn(1, 4 * 640), torch.randn(1, 4 * 640)
    log_energy = lambda wave: torch.log(  # noqa: E731
        (torch.fft.rfft(wave.unfold(-1, 400, 320) * encoder.window).abs().pow(2) @ encoder.filterbank) + 1e-6)
    assert (log_energy(loud) - log_energy(quiet)).mean() > 5  # 40 dB louder
