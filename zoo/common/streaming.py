"""Window-by-window (streaming) evaluation of the causal speaker encoder, with cached state.

The paper's online setting (ReactFace Eq. 1-2) produces the reaction to frames t-w+1 ... t from
the speaker behaviour up to t. RF ``inference_step`` re-encodes the whole speaker prefix for
every window (O(T^2) in the clip length). Here every causal component keeps what later windows
need, so a window costs the same however long the conversation has run:

* :class:`VideoEncoderStream`: each causal 3D conv keeps the last k_t - 1 frames of its input
  (what the zero padding of the whole-clip forward stands for at the start), each causal
  instance norm keeps its running sums (statistics over frames <= t, as in
  :class:`~zoo.common.video_encoder.CausalInstanceNorm3d`).
* :class:`SpeakerEncoderStream`: each attention layer caches its last ``context_frames`` inputs
  (keys/values) and the speech tokens of the same frames; with a bounded ``context_frames`` the
  band of the alignment bias (``alignment_bias(context=C)``) makes this exact.
* wav2vec 2.0 is bidirectional and cannot be streamed exactly: each window is encoded together
  with ``audio_context_frames`` frames of waveform before it, and only the window's own tokens
  are kept (documented in ``docs/reactface.md`` with the measured effect on the REACT metrics).

:func:`decoder_layer_forward` is ``nn.TransformerDecoderLayer.forward`` with separate self-attention
keys, so the same parameters serve whole-clip and streaming calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from zoo.common.speaker_encoder import SpeakerEncoder, SpeakerEncoding
from zoo.common.video_encoder import ConvNormReLU3d, VideoEncoder, check_video

__all__ = ["decoder_layer_forward", "History", "VideoEncoderStream", "SpeakerEncoderStream"]


def decoder_layer_forward(
    layer: nn.TransformerDecoderLayer,
    x: torch.Tensor,
    keys: torch.Tensor,
    memory: torch.Tensor,
    self_mask: torch.Tensor | None = None,
    memory_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``layer(x, memory, tgt_mask, memory_mask)`` where the self-attention keys/values are ``keys``
    (the layer's inputs for the cached frames followed by ``x``) instead of ``x`` itself.

    With ``keys is x`` this is exactly ``nn.TransformerDecoderLayer.forward`` (post- or pre-norm).
    """
    def ff(h: torch.Tensor) -> torch.Tensor:
        return layer.dropout3(layer.linear2(layer.dropout(layer.activation(layer.linear1(h)))))

    def self_attn(q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        return layer.dropout1(layer.self_attn(q, kv, kv, attn_mask=self_mask, need_weights=False)[0])

    def cross_attn(q: torch.Tensor) -> torch.Tensor:
        out = layer.multihead_attn(q, memory, memory, attn_mask=memory_mask, need_weights=False)[0]
        return layer.dropout2(out)

    if layer.norm_first:
        x = x + self_attn(layer.norm1(x), layer.norm1(keys))
        x = x + cross_attn(layer.norm2(x))
        return x + ff(layer.norm3(x))
    x = layer.norm1(x + self_attn(x, keys))
    x = layer.norm2(x + cross_attn(x))
    return layer.norm3(x + ff(x))


class History:
    """The last ``keep_frames`` frames (``tokens_per_frame`` rows each) of a (B, N, C) stream.

    ``extend(chunk)`` returns the kept history followed by ``chunk`` (the keys a chunk attends)
    and keeps the last ``keep_frames`` frames of that for the next call (all when None).
    """

    def __init__(self, keep_frames: int | None, tokens_per_frame: int = 1) -> None:
        self.keep_frames, self.tokens_per_frame = keep_frames, tokens_per_frame
        self.data: torch.Tensor | None = None

    def extend(self, chunk: torch.Tensor) -> torch.Tensor:
        full = chunk if self.data is None else torch.cat([self.data, chunk], dim=1)
        if self.keep_frames is None:
            self.data = full
        else:
            self.data = full[:, max(0, full.shape[1] - self.keep_frames * self.tokens_per_frame):]
        return full

    def repeat_interleave(self, repeats: int) -> None:
        if self.data is not None:
            self.data = self.data.repeat_interleave(repeats, dim=0)


class VideoEncoderStream:
    """A causal :class:`VideoEncoder` evaluated chunk by chunk; equals the whole-clip forward."""

    def __init__(self, encoder: VideoEncoder) -> None:
        if not encoder.causal:
            raise ValueError(
                "streaming needs a causal video encoder (video_causal=True): the non-causal 3D convs "
                "and clip-level instance norm of RF look at future frames"
            )
        self.encoder = encoder
        self._buffers: dict[str, torch.Tensor] = {}
        self._norms: dict[str, tuple[torch.Tensor, torch.Tensor, int]] = {}

    def _block(self, name: str, block: ConvNormReLU3d, x: torch.Tensor) -> torch.Tensor:
        if block.time_pad:
            past = self._buffers.get(name)
            if past is None:  # the zero frames the whole-clip forward pads before frame 0
                past = x.new_zeros(*x.shape[:2], block.time_pad, *x.shape[3:])
            x = torch.cat([past, x], dim=2)
            self._buffers[name] = x[:, :, x.shape[2] - block.time_pad:]
        return F.relu(self._norm(name, block.conv(x)))

    def _norm(self, name: str, y: torch.Tensor) -> torch.Tensor:
        # CausalInstanceNorm3d with the running sums of the frames already seen
        y32 = y.float()
        area = y.shape[-2] * y.shape[-1]
        sums, squares = y32.sum(dim=(-2, -1)), y32.square().sum(dim=(-2, -1))
        previous = self._norms.get(name)
        seen = 0 if previous is None else previous[2]
        csum, csq = sums.cumsum(dim=-1), squares.cumsum(dim=-1)
        if previous is not None:
            csum, csq = csum + previous[0][..., None], csq + previous[1][..., None]
        self._norms[name] = (csum[..., -1], csq[..., -1], seen + y.shape[2])
        count = torch.arange(seen + 1, seen + y.shape[2] + 1, device=y.device, dtype=torch.float32) * area
        mean, mean_sq = csum / count, csq / count
        scale = torch.rsqrt((mean_sq - mean.square()).clamp_min(0.0) + self.encoder.conv1.norm.eps)
        return ((y32 - mean[..., None, None]) * scale[..., None, None]).to(y.dtype)

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        """(B, L, 3, H, W) in [-1, 1] -> (B, L, C), the next L frames of the whole-clip output."""
        enc = self.encoder
        check_video(chunk, enc.in_channels, name="speaker_video")
        x = rearrange(chunk, "b t c h w -> b c t h w")
        x = enc.pool(self._block("conv1", enc.conv1, x))
        x = self._block("conv3", enc.conv3, self._block("conv2", enc.conv2, x))
        x = x + self._block("conv4", enc.conv4, x)
        x = self._block("conv5", enc.conv5, x).mean(dim=(-2, -1))
        return enc.fc(rearrange(x, "b c t -> b t c"))


class SpeakerEncoderStream:
    """A :class:`SpeakerEncoder` evaluated window by window with cached keys (constant cost).

    Exact (up to float summation order) for the causal parts when the encoder has a bounded
    ``context_frames`` or when all history is kept (``context_frames=None``: exact, but the cost
    grows with the clip). Speech tokens: pass the window's waveform (encoded with
    ``audio_context_frames`` frames of waveform before it) or, to test exactness, precomputed
    tokens via ``audio_tokens``.
    """

    def __init__(self, encoder: SpeakerEncoder, audio_context_frames: int = 50) -> None:
        if audio_context_frames < 0:
            raise ValueError(f"audio_context_frames must be >= 0, got {audio_context_frames}")
        self.encoder = encoder
        self.audio_context_frames = audio_context_frames
        keep = encoder.context_frames
        self.frames = 0  # frames encoded so far (the global index of the next frame)
        self.video = VideoEncoderStream(encoder.video_encoder) if encoder.use_video else None
        self._video_inputs = History(keep)
        self._fusion1_inputs = History(keep)
        self._fusion2_inputs = History(keep)
        self._tokens = History(keep, max(encoder.tokens_per_frame, 1))
        self._waveform: torch.Tensor | None = None

    def _encode_audio(self, waveform: torch.Tensor, frames: int) -> torch.Tensor:
        audio_encoder = self.encoder.audio_encoder
        spf = audio_encoder.samples_per_frame
        if waveform.ndim != 2 or waveform.shape[1] != frames * spf:
            raise ValueError(
                f"speaker_audio chunk must be (batch, {frames * spf}) for {frames} frames, "
                f"got {tuple(waveform.shape)}"
            )
        wave = waveform if self._waveform is None else torch.cat([self._waveform, waveform], dim=1)
        keep = self.audio_context_frames * spf
        self._waveform = wave[:, max(0, wave.shape[1] - keep):] if keep else None
        total = wave.shape[1] // spf
        return audio_encoder(wave, total)[:, -frames * audio_encoder.tokens_per_frame:]

    def step(
        self,
        video_chunk: torch.Tensor | None = None,
        audio_chunk: torch.Tensor | None = None,
        *,
        num_frames: int | None = None,
        audio_tokens: torch.Tensor | None = None,
    ) -> SpeakerEncoding:
        """Encode the next L frames: video (B, L, 3, H, W), waveform (B, L*640) or tokens (B, k*L, C)."""
        enc = self.encoder
        if enc.use_video:
            if video_chunk is None:
                raise ValueError("speaker video is required (encoder built with use_video=True)")
            num_frames = video_chunk.shape[1]
        if num_frames is None or num_frames < 1:
            raise ValueError("num_frames must be a positive integer when there is no video")
        if enc.use_audio and audio_tokens is None:
            if audio_chunk is None:
                raise ValueError("speaker audio is required (encoder built with use_audio=True)")
            audio_tokens = self._encode_audio(audio_chunk, num_frames)
        start = self.frames
        masks = enc.masks
        if enc.use_video:
            x = enc.ppe(self.video(video_chunk), offset=start)
            keys = self._video_inputs.extend(x)
            causal = masks(x, keys.shape[1], window=True)
            x = decoder_layer_forward(enc.video_layer, x, keys, keys, causal, causal)
        else:
            batch = audio_tokens.shape[0]
            x = enc.ppe(audio_tokens.new_zeros(batch, num_frames, enc.feature_dim), offset=start)
        keys1 = self._fusion1_inputs.extend(x)
        mask1 = masks(x, keys1.shape[1], window=True)
        if audio_tokens is not None:
            k = enc.tokens_per_frame
            if audio_tokens.shape[1] != k * num_frames:
                raise ValueError(f"{audio_tokens.shape[1]} speech tokens for {num_frames} frames; need {k * num_frames}")
            if enc.audio_attention == "mim":
                memory = self._tokens.extend(audio_tokens)
                memory_mask = masks(x, memory.shape[1], tokens_per_frame=k, window=True)
            else:  # own tokens only: the chunk's tokens are all a chunk frame can see
                memory, memory_mask = audio_tokens, masks.own_tokens(x, audio_tokens.shape[1], k)
        else:
            memory, memory_mask = keys1, mask1  # motion-only: re-attend the video layer's outputs
        speaker_vector = decoder_layer_forward(enc.fusion_layer1, x, keys1, memory, mask1, memory_mask)
        keys2 = self._fusion2_inputs.extend(speaker_vector)
        mask2 = masks(speaker_vector, keys2.shape[1], window=True)
        embeddings = decoder_layer_forward(enc.fusion_layer2, speaker_vector, keys2, memory, mask2,
                                           memory_mask)
        self.frames += num_frames
        return SpeakerEncoding(embeddings, audio_tokens, speaker_vector)
