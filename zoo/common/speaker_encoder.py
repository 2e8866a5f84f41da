"""ReactFace's speaker behaviour encoder (paper Sec. 4.1 (i); RF ``model/speaker_former.py::SpeakFormer``).

Pipeline (RF, FaceFormer-style, post-norm ``nn.TransformerDecoderLayer`` with 8 heads, FF 2C,
dropout 0.1)::

    video features (VideoEncoder) + periodic PE (period p)
    layer 1: self-attention over video, cross-attention to video      (B^VIM masks)
    layer 2: self-attention, cross-attention to speech tokens         (B^VIM, B^MIM)  -> speaker_vector
    layer 3: the same as layer 2                                      -> embeddings

Strictly causal, unlike RF: every attention (self and cross) uses the alignment bias of Eq. 11,
so frame i only sees video frames <= i and speech tokens of frames <= i. RF's decoder1 passes
no ``memory_mask``, so its cross-attention to video sees the whole clip in training while its
inference is windowed. (The speech tokens themselves come from bidirectional wav2vec 2.0; see
``audio_encoder``. With ``VideoEncoder(causal=True)`` the video path is causal end to end.)

Ablations (paper Table 4 "Audio"/"Motion"): ``video_encoder=None`` uses periodic-PE queries and
drops layer 1; ``audio_encoder=None`` makes layers 2-3 cross-attend the video features with
B^VIM. Switched-off modalities build no modules (no unused parameters under DDP).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from datamodules.features.face_state import FACE_STATE_DIM
from zoo.common.alignment_bias import alignment_mask, expand_for_batch, own_tokens_mask, per_head
from zoo.common.audio_encoder import Wav2Vec2Encoder
from zoo.common.face_state_encoder import FaceStateEncoder
from zoo.common.positional import PeriodicPositionalEncoding
from zoo.common.video_encoder import VideoEncoder

__all__ = [
    "SpeakerEncoding",
    "SpeakerEncoder",
    "SpeakerReconstructionHead",
    "BiasedMasks",
    "decoder_layer",
]

AUDIO_ATTENTION = ("mim", "own_tokens")


def decoder_layer(feature_dim: int, num_heads: int, dropout: float) -> nn.TransformerDecoderLayer:
    """RF's layer: post-norm, ReLU, FF = 2 * feature_dim, batch first."""
    return nn.TransformerDecoderLayer(
        d_model=feature_dim, nhead=num_heads, dim_feedforward=2 * feature_dim,
        dropout=dropout, batch_first=True,
    )


class BiasedMasks:
    """Builds the float ``attn_mask``s of Eq. 11 for a batch, in the dtype of the queries."""

    def __init__(
        self, num_heads: int, period: int, head_slopes: bool = True, context: int | None = None
    ) -> None:
        self.num_heads, self.period, self.head_slopes = num_heads, period, head_slopes
        self.context = context  # bounded left context in frames (None: unbounded, the paper)

    def __call__(
        self, queries: torch.Tensor, num_keys: int, *, tokens_per_frame: int = 1, window: bool = False
    ) -> torch.Tensor:
        """Eq. 11 for the queries' frames against ``num_keys`` keys. ``window=True``: the queries
        are the *last* frames covered by the keys (a streaming chunk against its cached history)."""
        batch, length = queries.shape[:2]
        return alignment_mask(
            length, num_keys, self.period, num_heads=self.num_heads,
            batch_size=batch if self.head_slopes else None, head_slopes=self.head_slopes,
            tokens_per_frame=tokens_per_frame, window=window, context=self.context,
            device=queries.device, dtype=_mask_dtype(queries),
        )

    def own_tokens(self, queries: torch.Tensor, num_keys: int, tokens_per_frame: int) -> torch.Tensor:
        """RF ``enc_dec_mask``: each frame sees only its own k speech tokens (no bias)."""
        batch, length = queries.shape[:2]
        mask = own_tokens_mask(length, num_keys, tokens_per_frame=tokens_per_frame,
                               device=queries.device, dtype=_mask_dtype(queries))
        if not self.head_slopes:
            return mask
        return expand_for_batch(per_head(mask, self.num_heads, slopes=False), batch)


def _mask_dtype(x: torch.Tensor) -> torch.dtype:
    # float masks must match the attention dtype when the model itself runs in bf16/fp16
    return x.dtype if x.is_floating_point() else torch.float32


class SpeakerEncoding(NamedTuple):
    embeddings: torch.Tensor  # (B, T, C) per-frame speaker embeddings (RF speaker_motion)
    audio_tokens: torch.Tensor | None  # (B, k*T, C) speech tokens, None without audio
    speaker_vector: torch.Tensor  # (B, T, C) after the first speech layer (RF speaker_vector)


class SpeakerEncoder(nn.Module):
    """Video (B, T, 3, H, W) in [-1, 1] and/or audio (B, S) -> :class:`SpeakerEncoding`.

    Args:
        video_encoder: the motion encoder with ``feature_dim`` outputs: ``VideoEncoder`` (frames),
            ``FaceStateEncoder`` ((B, T, 58) face states, ``zoo.common.face_state_encoder``), or
            None (audio only).
        audio_encoder: ``Wav2Vec2Encoder`` with ``out_dim == feature_dim``, or None (video only).
        feature_dim, num_heads, period: RF 128, 8, 8.
        head_slopes: multiply the bias by per-head ALiBi slopes (RF); False uses Eq. 11 as written.
        audio_attention: ``"mim"`` (Eq. 11, frame i sees speech tokens of frames <= i with the
            alignment bias) or ``"own_tokens"`` (RF ``enc_dec_mask``: only the frame's own tokens).
        context_frames: bounded left context of every attention, in frames (None: unbounded).
            Needed for constant-cost streaming (``zoo.common.streaming.SpeakerEncoderStream``).
    """

    def __init__(
        self,
        video_encoder: VideoEncoder | FaceStateEncoder | None,
        audio_encoder: Wav2Vec2Encoder | None,
        *,
        feature_dim: int = 128,
        num_heads: int = 8,
        period: int = 8,
        dropout: float = 0.1,
        head_slopes: bool = True,
        audio_attention: str = "mim",
        context_frames: int | None = None,
    ) -> None:
        super().__init__()
        if context_frames is not None and (int(context_frames) != context_frames or context_frames < 1):
            raise ValueError(f"context_frames must be None or a positive integer, got {context_frames!r}")
        if video_encoder is None and audio_encoder is None:
            raise ValueError("SpeakerEncoder needs at least one modality: use_video and use_audio are both off")
        if feature_dim % num_heads or feature_dim % 2:
            raise ValueError(
                f"feature_dim ({feature_dim}) must be even and divisible by num_heads ({num_heads})"
            )
        if video_encoder is not None and video_encoder.feature_dim != feature_dim:
            raise ValueError(
                f"video_encoder.feature_dim={video_encoder.feature_dim} != feature_dim={feature_dim}"
            )
        if audio_encoder is not None and audio_encoder.out_dim != feature_dim:
            raise ValueError(f"audio_encoder.out_dim={audio_encoder.out_dim} != feature_dim={feature_dim}")
        if audio_attention not in AUDIO_ATTENTION:
            raise ValueError(f"audio_attention must be one of {AUDIO_ATTENTION}, got {audio_attention!r}")
        self.feature_dim, self.period = feature_dim, period
        self.audio_attention = audio_attention
        self.context_frames = context_frames
        self.video_encoder = video_encoder
        self.audio_encoder = audio_encoder
        self.ppe = PeriodicPositionalEncoding(feature_dim, period, dropout=dropout)
        self.masks = BiasedMasks(num_heads, period, head_slopes, context_frames)
        self.video_layer = decoder_layer(feature_dim, num_heads, dropout) if self.use_video else None
        self.fusion_layer1 = decoder_layer(feature_dim, num_heads, dropout)
        self.fusion_layer2 = decoder_layer(feature_dim, num_heads, dropout)

    @property
    def use_video(self) -> bool:
        return self.video_encoder is not None

    @property
    def use_audio(self) -> bool:
        return self.audio_encoder is not None

    @property
    def motion_input(self) -> str | None:
        """What the motion modality reads: ``"video"`` (frames), ``"face_state"`` (tracked 3DMM
        coefficients) or None (switched off)."""
        if self.video_encoder is None:
            return None
        return "face_state" if isinstance(self.video_encoder, FaceStateEncoder) else "video"

    @property
    def tokens_per_frame(self) -> int:
        return self.audio_encoder.tokens_per_frame if self.audio_encoder is not None else 0

    def encode_audio(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        if self.audio_encoder is None:
            raise RuntimeError("this SpeakerEncoder was built without audio (use_audio=False)")
        return self.audio_encoder(audio, num_frames)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        if self.video_encoder is None:
            raise RuntimeError("this SpeakerEncoder was built without video (use_video=False)")
        return self.video_encoder(video)

    def forward(
        self,
        video: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        *,
        num_frames: int | None = None,
    ) -> SpeakerEncoding:
        """Encode the modalities this encoder was built with. ``num_frames`` is needed only
        without video (it is ``video.shape[1]`` otherwise)."""
        if self.use_video:
            if video is None:
                raise ValueError("speaker video is required (SpeakerEncoder built with use_video=True)")
            num_frames = video.shape[1] if num_frames is None else num_frames
            if video.shape[1] != num_frames:
                raise ValueError(f"speaker video has {video.shape[1]} frames, expected {num_frames}")
        if self.use_audio and audio is None:
            raise ValueError("speaker audio is required (SpeakerEncoder built with use_audio=True)")
        if num_frames is None:
            raise ValueError("num_frames is required when the encoder has no video")
        video_features = self.encode_video(video) if self.use_video else None
        audio_tokens = self.encode_audio(audio, num_frames) if self.use_audio else None
        return self.fuse(video_features, audio_tokens, num_frames=num_frames)

    def fuse(
        self,
        video_features: torch.Tensor | None,
        audio_tokens: torch.Tensor | None,
        *,
        num_frames: int | None = None,
    ) -> SpeakerEncoding:
        """The attention part on precomputed features: video (B, T, C), audio tokens (B, k*T', C)
        with k*T' >= k*T (tokens past frame T are masked out)."""
        if self.use_video != (video_features is not None) or self.use_audio != (audio_tokens is not None):
            raise ValueError(
                f"fuse() got video={'yes' if video_features is not None else 'no'}, "
                f"audio={'yes' if audio_tokens is not None else 'no'} but the encoder was built with "
                f"use_video={self.use_video}, use_audio={self.use_audio}"
            )
        if video_features is not None:
            batch, frames = video_features.shape[:2]
            x = self.ppe(video_features)
            causal = self.masks(x, frames)
            x = self.video_layer(x, x, tgt_mask=causal, memory_mask=causal)
        else:
            if num_frames is None:
                raise ValueError("num_frames is required without video features")
            batch, frames = audio_tokens.shape[0], int(num_frames)
            zeros = audio_tokens.new_zeros(batch, frames, self.feature_dim)
            x = self.ppe(zeros)  # periodic time queries, as the listener decoder of RF
            causal = self.masks(x, frames)
        if audio_tokens is not None:
            if audio_tokens.shape[0] != batch:
                raise ValueError(f"audio tokens batch {audio_tokens.shape[0]} != video batch {batch}")
            memory, k = audio_tokens, self.tokens_per_frame
            if memory.shape[1] < k * frames:
                raise ValueError(f"{memory.shape[1]} speech tokens for {frames} frames; need {k * frames}")
            if self.audio_attention == "mim":
                memory_mask = self.masks(x, memory.shape[1], tokens_per_frame=k)
            else:
                memory_mask = self.masks.own_tokens(x, memory.shape[1], k)
        else:
            memory, memory_mask = x, causal  # motion-only ablation: layers 2-3 re-attend video
        speaker_vector = self.fusion_layer1(x, memory, tgt_mask=causal, memory_mask=memory_mask)
        embeddings = self.fusion_layer2(speaker_vector, memory, tgt_mask=causal, memory_mask=memory_mask)
        return SpeakerEncoding(embeddings, audio_tokens, speaker_vector)


class SpeakerReconstructionHead(nn.Module):
    """Eq. 12's speaker branch: one causal decoder layer over the speaker features + Linear(C -> 58),
    zero-initialised (RF ``speaker_decoder`` + ``speaker_vector_map_layer``), so training starts
    from the mean face state. RF's layer has no masks; this one is causal like the encoder."""

    def __init__(
        self, feature_dim: int = 128, num_heads: int = 8, period: int = 8, dropout: float = 0.1,
        head_slopes: bool = True, output_dim: int = FACE_STATE_DIM,
    ) -> None:
        super().__init__()
        self.masks = BiasedMasks(num_heads, period, head_slopes)
        self.layer = decoder_layer(feature_dim, num_heads, dropout)
        self.out = nn.Linear(feature_dim, output_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, speaker_features: torch.Tensor) -> torch.Tensor:
        mask = self.masks(speaker_features, speaker_features.shape[1])
        x = self.layer(speaker_features, speaker_features, tgt_mask=mask, memory_mask=mask)
        return self.out(x)



class UsesSpeakerEncoder:
    """Mixin for networks with a ``self.speaker_encoder``: the modality switches and the audio
    grid the LightningModules read (``use_video``, ``use_audio``, ``motion_input``,
    ``tokens_per_frame``, ``samples_per_frame``)."""

    speaker_encoder: SpeakerEncoder

    @property
    def use_video(self) -> bool:
        return self.speaker_encoder.use_video

    @property
    def use_audio(self) -> bool:
        return self.speaker_encoder.use_audio

    @property
    def motion_input(self) -> str | None:
        return self.speaker_encoder.motion_input

    @property
    def tokens_per_frame(self) -> int:
        return self.speaker_encoder.tokens_per_frame

    @property
    def samples_per_frame(self) -> int | None:
        encoder = self.speaker_encoder.audio_encoder
        return encoder.samples_per_frame if encoder is not None else None
