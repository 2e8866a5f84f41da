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
  With ``audio_feature_cache`` the CNN feature encoder of that segment is streamed
  (:class:`Wav2Vec2FeatureStream`: each sample convolved once; exact for layer-norm wav2vec2
  models, an approximation for wav2vec2-base's group norm); the transformer still re-reads the
  segment's features.

:func:`decoder_layer_forward` is ``nn.TransformerDecoderLayer.forward`` with separate self-attention
keys, so the same parameters serve whole-clip and streaming calls.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from zoo.common.speaker_encoder import SpeakerEncoder, SpeakerEncoding
from zoo.common.video_encoder import ConvNormReLU3d, Moments, VideoEncoder, check_video

__all__ = [
    "decoder_layer_forward", "History", "VideoEncoderStream", "Wav2Vec2FeatureStream", "SpeakerEncoderStream",
]


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
        self._norms: dict[str, Moments] = {}

    def _block(self, name: str, block: ConvNormReLU3d, x: torch.Tensor, pool: bool = False) -> torch.Tensor:
        if block.time_pad:
            past = self._buffers.get(name)
            if past is None:  # the zero frames the whole-clip forward pads before frame 0
                past = x.new_zeros(*x.shape[:2], block.time_pad, *x.shape[3:])
            x = torch.cat([past, x], dim=2)
            self._buffers[name] = x[:, :, x.shape[2] - block.time_pad:]
        # CausalInstanceNorm3d continuing the running sums of the frames already seen
        out, self._norms[name] = block.normalise(block.conv(x), pool=pool, past=self._norms.get(name))
        return out

    def __call__(self, chunk: torch.Tensor) -> torch.Tensor:
        """(B, L, 3, H, W) in [-1, 1] -> (B, L, C), the next L frames of the whole-clip output."""
        enc = self.encoder
        check_video(chunk, enc.in_channels, name="speaker_video")
        x = rearrange(chunk, "b t c h w -> b c t h w")
        x = self._block("conv1", enc.conv1, x, pool=True)
        x = self._block("conv3", enc.conv3, self._block("conv2", enc.conv2, x))
        x = x + self._block("conv4", enc.conv4, x)
        x = self._block("conv5", enc.conv5, x).mean(dim=(-2, -1))
        return enc.fc(rearrange(x, "b c t -> b t c"))


class Wav2Vec2FeatureStream:
    """wav2vec 2.0's CNN feature encoder over a stream of waveform chunks, each sample convolved once.

    The streaming speech path encodes, for every window, a segment = ``audio_context_frames`` of
    past waveform + the window (:meth:`SpeakerEncoderStream._encode_audio`). Re-running the
    7-layer CNN over the whole segment costs (context + window) / window times the new audio.
    Here every CNN layer keeps the inputs it has not consumed yet (its last k - s positions,
    standard strided-conv streaming) and the CNN features of the segment's past tokens are
    cached, so only the new samples go through layers 1-6 (receptive field 400 samples, local).

    Layer 0 still runs over the whole segment (a 1-channel conv, about 1% of the CNN's work):

    * ``feat_extract_norm="layer"`` (wav2vec2-large-lv60 etc.): every layer is local, the
      features equal those of the segment exactly.
    * ``feat_extract_norm="group"`` (wav2vec2-base, the default): layer 0's GroupNorm normalises
      each channel over the whole input, here the segment's conv-0 output, exactly as the
      segment encoding does for the new positions. The cached past features keep the statistics
      of the segment they were computed in: an approximation (``audio_feature_cache`` is
      therefore off by default; docs/reactface.md measures the difference).
    """

    def __init__(self, encoder: nn.Module) -> None:
        model = getattr(encoder, "model", None)
        extractor = getattr(model, "feature_extractor", None)
        if extractor is None or not hasattr(encoder, "tokens_from_features"):
            raise ValueError("audio_feature_cache needs the wav2vec2 speech front end (audio_frontend: wav2vec2)")
        self.layers = list(extractor.conv_layers)
        self.kernels = [int(layer.conv.kernel_size[0]) for layer in self.layers]
        self.strides = [int(layer.conv.stride[0]) for layer in self.layers]
        first_norm = getattr(self.layers[0], "layer_norm", None)
        self.group_norm = first_norm if isinstance(first_norm, nn.GroupNorm) else None
        self.exact = self.group_norm is None
        self.samples = 0  # waveform samples seen
        self.first_outputs = 0  # outputs layer 0 has produced
        self.tails: list[torch.Tensor | None] = [None] * len(self.layers)
        self.features: torch.Tensor | None = None  # (B, C, n) CNN features of the segment's tokens
        self._raw: torch.Tensor | None = None  # group norm: raw conv-0 outputs of the segment

    def _outputs(self, layer: int, length: int) -> int:
        k, s = self.kernels[layer], self.strides[layer]
        return 0 if length < k else (length - k) // s + 1

    def _first_layer(self, segment: torch.Tensor, first: int, new: int) -> torch.Tensor:
        """Layer-0 outputs ``first ... first+new-1`` (indices into the segment's own output grid)."""
        layer, k, s = self.layers[0], self.kernels[0], self.strides[0]
        samples = segment[:, None, first * s: (first + new - 1) * s + k]  # only what these outputs read
        if self.group_norm is None:  # local
            return layer(samples)
        # GroupNorm(C groups) = per-channel statistics over the segment's conv-0 outputs: keep the
        # raw conv outputs of the segment (each sample convolved once), take the statistics over them
        raw = layer.conv(samples)
        cached = raw if self._raw is None else torch.cat([self._raw, raw], dim=-1)
        self._raw = cached = cached[..., max(0, cached.shape[-1] - self._outputs(0, segment.shape[1])):]
        count = cached.shape[-1]
        flat = cached.float()
        mean = flat.sum(dim=-1, keepdim=True) / count
        var = (torch.linalg.vecdot(flat, flat)[..., None] / count - mean.square()).clamp_min(0.0)
        norm = self.group_norm
        scale = torch.rsqrt(var + norm.eps) * norm.weight.float()[:, None]
        y = (raw.float() - mean) * scale + norm.bias.float()[:, None]
        return layer.activation(y.to(raw.dtype))

    def __call__(self, segment: torch.Tensor, new_samples: int) -> torch.Tensor:
        """``segment`` (B, S) float: the waveform the segment encoding sees, ending with the
        ``new_samples`` samples not passed before and starting on the CNN's hop grid. Returns the
        CNN features of every token inside the segment (B, C, (S - receptive_field) // hop + 1)."""
        if not 0 <= new_samples <= segment.shape[1]:
            raise ValueError(f"new_samples={new_samples} must be in [0, {segment.shape[1]}] (the segment length)")
        self.samples += new_samples
        segment_start = self.samples - segment.shape[1]
        if segment_start < 0 or segment_start % self._hop():
            raise ValueError(f"the segment starts at sample {segment_start}, which is not on the CNN's "
                             f"{self._hop()}-sample grid (or before the stream's start)")
        new = self._outputs(0, self.samples) - self.first_outputs
        first = self.first_outputs * self.strides[0] - segment_start
        if new and first < 0:
            raise ValueError("audio_feature_cache needs audio_context_frames >= 1: the first CNN layer's "
                             "window reaches before the segment")
        x = self._first_layer(segment, first // self.strides[0], new) if new else None
        self.first_outputs += new
        for i in range(1, len(self.layers)):
            if x is not None:
                x = x if self.tails[i] is None else torch.cat([self.tails[i], x], dim=-1)
                count = self._outputs(i, x.shape[-1])
                s = self.strides[i]
                out = self.layers[i](x[..., : (count - 1) * s + self.kernels[i]]) if count else None
                self.tails[i] = x[..., count * s:]  # inputs of the outputs still to come
                x = out
        if x is not None:
            self.features = x if self.features is None else torch.cat([self.features, x], dim=-1)
        tokens = self._outputs_of_segment(segment.shape[1])
        if self.features is None or self.features.shape[-1] < tokens:
            raise RuntimeError(f"feature cache holds {0 if self.features is None else self.features.shape[-1]} "
                               f"tokens, the segment has {tokens}")
        self.features = self.features[..., self.features.shape[-1] - tokens:]
        return self.features

    def _hop(self) -> int:
        return math.prod(self.strides)

    def _outputs_of_segment(self, length: int) -> int:
        receptive = 1
        for k, s in zip(reversed(self.kernels), reversed(self.strides), strict=True):
            receptive = (receptive - 1) * s + k
        return 0 if length < receptive else (length - receptive) // self._hop() + 1


class SpeakerEncoderStream:
    """A :class:`SpeakerEncoder` evaluated window by window with cached keys (constant cost).

    Exact (up to float summation order) for the causal parts when the encoder has a bounded
    ``context_frames`` or when all history is kept (``context_frames=None``: exact, but the cost
    grows with the clip). Speech tokens: pass the window's waveform (encoded with
    ``audio_context_frames`` frames of waveform before it; ``audio_feature_cache``: through a
    :class:`Wav2Vec2FeatureStream`) or, to test exactness, precomputed tokens via ``audio_tokens``.
    """

    def __init__(self, encoder: SpeakerEncoder, audio_context_frames: int = 50, *,
                 audio_feature_cache: bool = False) -> None:
        if audio_context_frames < 0:
            raise ValueError(f"audio_context_frames must be >= 0, got {audio_context_frames}")
        if audio_feature_cache and audio_context_frames < 1:
            raise ValueError("audio_feature_cache needs audio_context_frames >= 1")
        self.encoder = encoder
        self.audio_context_frames = audio_context_frames
        keep = encoder.context_frames
        self.frames = 0  # frames encoded so far (the global index of the next frame)
        self.video = None
        if encoder.motion_input == "face_state":
            self.video = encoder.video_encoder  # per frame: a chunk's output is the clip's slice
        elif encoder.motion_input == "video":
            self.video = VideoEncoderStream(encoder.video_encoder)
        self._video_inputs = History(keep)
        self._fusion1_inputs = History(keep)
        self._fusion2_inputs = History(keep)
        self._tokens = History(keep, max(encoder.tokens_per_frame, 1))
        self._waveform: torch.Tensor | None = None
        self._cnn = (Wav2Vec2FeatureStream(encoder.audio_encoder)
                     if audio_feature_cache and encoder.audio_encoder is not None else None)

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
        if self._cnn is not None:
            tokens = audio_encoder.tokens_from_features(self._cnn(wave.float(), waveform.shape[1]), total)
        else:
            tokens = audio_encoder(wave, total)
        return tokens[:, -frames * audio_encoder.tokens_per_frame:]

    def step(
        self,
        video_chunk: torch.Tensor | None = None,
        audio_chunk: torch.Tensor | None = None,
        *,
        num_frames: int | None = None,
        audio_tokens: torch.Tensor | None = None,
    ) -> SpeakerEncoding:
        """Encode the next L frames: video (B, L, 3, H, W) or face state (B, L, 58) (``speaker_motion``),
        waveform (B, L*640) or tokens (B, k*L, C)."""
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
