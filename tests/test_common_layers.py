"""zoo.common: positional encodings, alignment-bias masks, video/speaker encoders, causality."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo.common.alignment_bias import (
    alibi_slopes,
    alignment_bias,
    alignment_mask,
    biased_causal_mask,
    expand_for_batch,
    own_tokens_mask,
    per_head,
    windowed_alignment_bias,
)
from zoo.common.eval_mode import evaluation_mode
from zoo.common.positional import (
    PeriodicPositionalEncoding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)
from zoo.common.speaker_encoder import SpeakerEncoder, SpeakerReconstructionHead
from zoo.common.video_encoder import CausalInstanceNorm3d, VideoEncoder
from zoo.transae.nets import TransAENet

INF = float("-inf")




# ---------------------------------------------------------------- positional encodings
def test_sinusoidal_table_matches_eq4_by_hand():
    table = sinusoidal_table(torch.tensor([0, 1, 5]), 4)
    # d = 4: frequencies 1 and 1/10000^(2/4) = 1/100
    expected = torch.tensor([
        [0.0, 1.0, 0.0, 1.0],
        [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)],
        [math.sin(5), math.cos(5), math.sin(0.05), math.cos(0.05)],
    ])
    torch.testing.assert_close(table, expected)


def test_positional_modules_add_their_tables():
    x = torch.randn(2, 20, 8)
    sin = SinusoidalPositionalEncoding(8)
    torch.testing.assert_close(sin(x) - x, sinusoidal_table(torch.arange(20), 8).expand(2, -1, -1))
    torch.testing.assert_close(sin(x, offset=7)[:, 0] - x[:, 0], sinusoidal_table(torch.tensor([7]), 8).expand(2, -1))
    ppe = PeriodicPositionalEncoding(8, period=3)
    added = ppe(x) - x
    torch.testing.assert_close(added[0], sinusoidal_table(torch.arange(20) % 3, 8))
    torch.testing.assert_close(added[:, :3], added[:, 3:6])  # periodic
    assert not torch.allclose(added[:, 0], added[:, 1])


def test_positional_bad_input():
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositionalEncoding(7)
    with pytest.raises(ValueError, match="period"):
        PeriodicPositionalEncoding(8, period=0)
    with pytest.raises(ValueError, match=r"\(batch, time, 8\)"):
        PeriodicPositionalEncoding(8, period=2)(torch.randn(4, 6))


# ---------------------------------------------------------------- alignment bias (Eq. 11)
def eq11_reference(num_queries, num_keys, period, k):
    """Eq. 11 as printed, with 1-indexed positions, one entry at a time."""
    out = torch.empty(num_queries, num_keys)
    for i in range(1, num_queries + 1):
        for j in range(1, num_keys + 1):
            out[i - 1, j - 1] = -math.floor((k * i - j) / (k * period)) if j <= k * i else INF
    return out


def test_vim_mask_hand_built():
    expected = torch.tensor([
        [0, INF, INF, INF, INF],
        [0, 0, INF, INF, INF],
        [-1, 0, 0, INF, INF],
        [-1, -1, 0, 0, INF],
        [-2, -1, -1, 0, 0],
    ])
    torch.testing.assert_close(biased_causal_mask(5, period=2), expected)


def test_mim_mask_hand_built():
    # k = 2 tokens per frame, p = 2: frame f owns tokens 2f, 2f+1
    expected = torch.tensor([
        [0, 0, INF, INF, INF, INF],
        [0, 0, 0, 0, INF, INF],
        [-1, -1, 0, 0, 0, 0],
    ])
    torch.testing.assert_close(alignment_bias(3, 6, 2, tokens_per_frame=2), expected)


@pytest.mark.parametrize(("queries", "keys", "period", "k"), [(12, 12, 8, 1), (9, 18, 3, 2), (7, 30, 2, 3), (10, 4, 1, 1)])
def test_alignment_bias_equals_eq11(queries, keys, period, k):
    torch.testing.assert_close(alignment_bias(queries, keys, period, tokens_per_frame=k),
                               eq11_reference(queries, keys, period, k))


@pytest.mark.parametrize("k", [1, 2])
def test_window_is_the_last_rows_of_the_full_mask(k):
    # RF init_biased_mask2: W queries aligned to the last W key frames
    full = alignment_bias(10, 10 * k, 3, tokens_per_frame=k)
    window = windowed_alignment_bias(4, 10 * k, 3, tokens_per_frame=k)
    torch.testing.assert_close(window, full[-4:])
    # W = 2, 3 keys (k = 1), p = 2, by hand: queries are frames 1 and 2
    torch.testing.assert_close(windowed_alignment_bias(2, 3, 2),
                               torch.tensor([[0, 0, INF], [-1, 0, 0]]))


def test_window_errors():
    with pytest.raises(ValueError, match="fewer than window"):
        windowed_alignment_bias(5, 4, 2)
    with pytest.raises(ValueError, match="multiple of tokens_per_frame"):
        windowed_alignment_bias(2, 7, 2, tokens_per_frame=2)
    with pytest.raises(ValueError, match="period"):
        alignment_bias(3, 3, 0)


def test_alibi_slopes():
    assert alibi_slopes(8) == [2.0 ** -(h + 1) for h in range(8)]  # RF: 2^-1 ... 2^-8
    # ALiBi's interleaving for non powers of two
    assert alibi_slopes(6) == pytest.approx([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])


def test_per_head_and_batch_layout():
    base = biased_causal_mask(6, period=2)
    heads = per_head(base, 4)
    slopes = alibi_slopes(4)
    for h in range(4):
        finite = torch.isfinite(base)
        torch.testing.assert_close(heads[h][finite], slopes[h] * base[finite])
        assert torch.isneginf(heads[h][~finite]).all()
    batched = expand_for_batch(heads, 3)
    assert batched.shape == (12, 6, 6)
    for b in range(3):  # nn.MultiheadAttention reads row b * num_heads + h
        torch.testing.assert_close(batched[b * 4:(b + 1) * 4], heads)
    assert alignment_mask(6, 6, 2, num_heads=4, head_slopes=False).shape == (6, 6)
    assert alignment_mask(6, 12, 2, num_heads=4, batch_size=3, tokens_per_frame=2).shape == (12, 6, 12)


def test_own_tokens_mask_hand_built():
    expected = torch.tensor([
        [0, 0, INF, INF, INF, INF, INF],
        [INF, INF, 0, 0, INF, INF, INF],
        [INF, INF, INF, INF, 0, 0, INF],
    ])
    torch.testing.assert_close(own_tokens_mask(3, 7, tokens_per_frame=2), expected)
    with pytest.raises(ValueError, match="fewer than num_frames"):
        own_tokens_mask(4, 7, tokens_per_frame=2)


def test_mask_in_multihead_attention_blocks_future_keys():
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    q, kv = torch.randn(2, 5, 8), torch.randn(2, 10, 8)
    mask = alignment_mask(5, 10, 2, num_heads=2, batch_size=2, tokens_per_frame=2)
    out, weights = mha(q, kv, kv, attn_mask=mask, average_attn_weights=False)
    allowed = torch.isfinite(alignment_bias(5, 10, 2, tokens_per_frame=2))
    assert (weights[..., ~allowed] == 0).all() and (weights[..., allowed] > 0).all()
    kv2 = kv.clone()
    kv2[:, 6:] += 5.0  # tokens of frames 3, 4
    out2, _ = mha(q, kv2, kv2, attn_mask=mask)
    torch.testing.assert_close(out2[:, :3], out[:, :3])
    assert not torch.allclose(out2[:, 3:], out[:, 3:])


# ---------------------------------------------------------------- video encoder
@pytest.mark.parametrize("size", [32, 48, 64])
def test_video_encoder_shapes(size):
    enc = VideoEncoder(16, causal=True)
    out = enc(torch.rand(2, 7, 3, size, size) * 2 - 1)
    assert out.shape == (2, 7, 16) and torch.isfinite(out).all()


@pytest.mark.parametrize("causal", [True, False])
def test_video_encoder_causality(causal):
    torch.manual_seed(0)
    enc = VideoEncoder(16, causal=causal).eval()
    video = torch.rand(1, 12, 3, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, 8:] = torch.rand(1, 4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = enc(video), enc(changed)
    if causal:
        torch.testing.assert_close(a[:, :8], b[:, :8])
    else:  # RF's "same" padding and clip-level instance norm see the future
        assert not torch.allclose(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_causal_instance_norm_is_instance_norm_of_the_prefix():
    x = torch.randn(2, 3, 6, 4, 5) * 2 + 0.5
    out = CausalInstanceNorm3d()(x)
    reference = nn.InstanceNorm3d(3)
    for t in range(6):  # frame t is normalised with the statistics of frames 0..t
        torch.testing.assert_close(out[:, :, t], reference(x[:, :, : t + 1])[:, :, t], atol=1e-4, rtol=1e-4)


def test_video_encoder_bad_input():
    enc = VideoEncoder(16)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        enc(torch.rand(1, 4, 3, 32, 32) * 255)
    with pytest.raises(ValueError, match="at least 32x32"):
        enc(torch.rand(1, 4, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(batch, time, 3, H, W\)"):
        enc(torch.rand(4, 3, 32, 32))
    with pytest.raises(ValueError, match="floating point"):
        enc(torch.zeros(1, 4, 3, 32, 32, dtype=torch.uint8))


# ---------------------------------------------------------------- speaker encoder
def _speaker_encoder(video: bool = True, audio_attention: str = "mim") -> SpeakerEncoder:
    torch.manual_seed(0)
    return SpeakerEncoder(VideoEncoder(32, causal=True) if video else None, None,
                          feature_dim=32, num_heads=4, period=4, audio_attention=audio_attention).eval()


class _Tokens(nn.Module):
    """Stands in for Wav2Vec2Encoder in fuse(): only tokens_per_frame and out_dim are read."""

    def __init__(self, dim: int = 32, k: int = 2):
        super().__init__()
        self.out_dim, self.tokens_per_frame = dim, k


def test_speaker_encoder_video_only_is_causal():
    enc = _speaker_encoder()
    video = torch.rand(2, 16, 3, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, 10:] = -changed[:, 10:]
    with torch.no_grad():
        a, b = enc(video), enc(changed)
    assert a.embeddings.shape == (2, 16, 32) and a.audio_tokens is None
    torch.testing.assert_close(a.embeddings[:, :10], b.embeddings[:, :10])
    torch.testing.assert_close(a.speaker_vector[:, :10], b.speaker_vector[:, :10])
    assert not torch.allclose(a.embeddings[:, 10:], b.embeddings[:, 10:])


@pytest.mark.parametrize("audio_attention", ["mim", "own_tokens"])
def test_speaker_fusion_is_causal_in_video_and_speech(audio_attention):
    torch.manual_seed(0)
    enc = SpeakerEncoder(VideoEncoder(32, causal=True), _Tokens(), feature_dim=32, num_heads=4,
                         period=4, audio_attention=audio_attention).eval()
    feats, tokens = torch.randn(2, 12, 32), torch.randn(2, 24, 32)
    with torch.no_grad():
        ref = enc.fuse(feats, tokens).embeddings
        future = tokens.clone()
        future[:, 14:] = torch.randn(2, 10, 32)  # speech of frames 7..11
        fut_feats = feats.clone()
        fut_feats[:, 7:] = torch.randn(2, 5, 32)
        out = enc.fuse(fut_feats, future).embeddings
        torch.testing.assert_close(out[:, :7], ref[:, :7])
        assert not torch.allclose(out[:, 7:], ref[:, 7:])
        # frame 0 does use its own tokens 0 and 1
        own = tokens.clone()
        own[:, :2] = torch.randn(2, 2, 32)
        assert not torch.allclose(enc.fuse(feats, own).embeddings[:, 0], ref[:, 0])


def test_speaker_encoder_ablations_build_no_unused_modules():
    video_only = _speaker_encoder(video=True)
    assert video_only.audio_encoder is None and not video_only.use_audio
    audio_only = SpeakerEncoder(None, _Tokens(), feature_dim=32, num_heads=4, period=4)
    assert audio_only.video_encoder is None and audio_only.video_layer is None
    out = audio_only.fuse(None, torch.randn(2, 20, 32), num_frames=10)
    assert out.embeddings.shape == (2, 10, 32)
    with pytest.raises(ValueError, match="at least one modality"):
        SpeakerEncoder(None, None, feature_dim=32, num_heads=4)
    with pytest.raises(ValueError, match="feature_dim"):
        SpeakerEncoder(VideoEncoder(16), None, feature_dim=32, num_heads=4)
    with pytest.raises(ValueError, match="audio_attention"):
        SpeakerEncoder(VideoEncoder(32), None, feature_dim=32, num_heads=4, audio_attention="all")
    with pytest.raises(ValueError, match="speaker video is required"):
        video_only(None, None, num_frames=4)


def test_speaker_reconstruction_head_starts_at_zero_and_is_causal():
    head = SpeakerReconstructionHead(32, 4, 4).eval()
    x = torch.randn(2, 9, 32)
    assert head(x).shape == (2, 9, 58)
    assert (head(x) == 0).all()  # zero-initialised Linear (RF)
    nn.init.normal_(head.out.weight)
    y = x.clone()
    y[:, 5:] = torch.randn(2, 4, 32)
    torch.testing.assert_close(head(x)[:, :5], head(y)[:, :5])


def test_transae_net_is_causal_end_to_end():
    torch.manual_seed(0)
    net = TransAENet(feature_dim=32, num_heads=4, period=4, use_audio=False).eval()
    # The listener head starts at zero (training starts from the mean reaction); give it
    # weights so the output reflects what the decoder saw.
    torch.nn.init.normal_(net.listener_decoder.out.weight)
    video = torch.rand(1, 16, 3, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, 11:] = torch.rand(1, 5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = net(video).listener, net(changed).listener
    assert a.shape == (1, 16, 58)
    torch.testing.assert_close(a[:, :11], b[:, :11])
    assert not torch.allclose(a[:, 11:], b[:, 11:])


def test_evaluation_mode_restores_the_callers_mode_even_on_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    for start in (True, False):
        net.train(start)
        with evaluation_mode(net) as inside:
            assert inside is net and not any(m.training for m in net.modules())
        assert all(m.training == start for m in net.modules())
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        with evaluation_mode(net):
            raise RuntimeError("boom")
    assert all(m.training for m in net.modules())
