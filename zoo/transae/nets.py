"""Trans-AE (ReactFace paper Sec. 5.2, Table 2): "a transformer-based Autoencoder that has the same
architecture of our speaker behaviour encoding network, which directly maps the speaker
behaviour features to its corresponding listener reaction".

The paper gives no more detail; this follows RF's pieces: the speaker encoder
(:class:`~zoo.common.speaker_encoder.SpeakerEncoder`), then RF's listener ``Decoder`` pattern
(positional time queries, causal biased self-attention, cross-attention to the speaker
embeddings with B^VIM) and a Linear(C -> 58) face-state head. It is deterministic: one speaker
behaviour gives one reaction (S-MSE = 0 by construction).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from datamodules.features.face_state import FACE_STATE_DIM
from zoo.common.audio_encoder import DEFAULT_WAV2VEC2, build_audio_encoder
from zoo.common.face_state_encoder import build_motion_encoder
from zoo.common.positional import PeriodicPositionalEncoding, SinusoidalPositionalEncoding
from zoo.common.speaker_encoder import (
    BiasedMasks,
    SpeakerEncoder,
    SpeakerReconstructionHead,
    UsesSpeakerEncoder,
    decoder_layer,
)

__all__ = ["TransAENet", "TransAEOutput", "QUERY_ENCODINGS"]

QUERY_ENCODINGS = ("periodic", "sinusoidal")


class TransAEOutput(NamedTuple):
    listener: torch.Tensor  # (B, T, 58) predicted listener face state (mean-subtracted space)
    speaker: torch.Tensor | None  # (B, T, 58) reconstructed speaker face state, None if not asked


class ListenerDecoder(nn.Module):
    """Time queries -> ``num_layers`` causal decoder layers over the speaker embeddings -> (B, T, 58).

    ``query_encoding="sinusoidal"`` is RF's ``Decoder`` (Eq. 4 over the absolute frame index);
    ``"periodic"`` (default) uses the period-p encoding of the speaker encoder, which does not
    depend on the absolute position, so a model trained on 256-frame crops sees no unseen
    positions on 750-frame test clips.
    """

    def __init__(
        self, feature_dim: int, num_heads: int, period: int, num_layers: int, dropout: float,
        head_slopes: bool, query_encoding: str, output_dim: int = FACE_STATE_DIM,
    ) -> None:
        super().__init__()
        if query_encoding not in QUERY_ENCODINGS:
            raise ValueError(f"query_encoding must be one of {QUERY_ENCODINGS}, got {query_encoding!r}")
        if num_layers < 1:
            raise ValueError(f"num_decoder_layers must be >= 1, got {num_layers}")
        self.feature_dim = feature_dim
        self.queries = (
            PeriodicPositionalEncoding(feature_dim, period, dropout=dropout)
            if query_encoding == "periodic"
            else SinusoidalPositionalEncoding(feature_dim, dropout=dropout)
        )
        self.masks = BiasedMasks(num_heads, period, head_slopes)
        self.layers = nn.ModuleList(decoder_layer(feature_dim, num_heads, dropout) for _ in range(num_layers))
        self.out = nn.Linear(feature_dim, output_dim)
        # Zero-initialised like RF's speaker head: training starts from the mean reaction
        # (targets are mean-subtracted) instead of from random offsets.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, speaker_embeddings: torch.Tensor) -> torch.Tensor:
        batch, frames = speaker_embeddings.shape[:2]
        x = self.queries(speaker_embeddings.new_zeros(batch, frames, self.feature_dim))
        mask = self.masks(x, frames)  # same T for queries and keys: one B^VIM for both attentions
        for layer in self.layers:
            x = layer(x, speaker_embeddings, tgt_mask=mask, memory_mask=mask)
        return self.out(x)


class TransAENet(UsesSpeakerEncoder, nn.Module):
    """Speaker video/audio -> listener face state (B, T, 58); optional speaker reconstruction (Eq. 12).

    Argument defaults are RF's paper-scale values (feature_dim 128, 8 heads, period 8,
    wav2vec2-base-960h with the CNN frozen); ``video_causal`` is on so the whole path is online.
    ``speaker_motion="face_state"`` reads the speaker's motion from its tracked 3DMM coefficients
    instead of frames (:mod:`zoo.common.face_state_encoder`; the CPU demo).
    """

    def __init__(
        self,
        feature_dim: int = 128,
        num_heads: int = 8,
        period: int = 8,
        dropout: float = 0.1,
        head_slopes: bool = True,
        num_decoder_layers: int = 2,
        query_encoding: str = "periodic",
        use_video: bool = True,
        use_audio: bool = True,
        speaker_motion: str = "video",
        video_causal: bool = True,
        video_stem_channels: int | None = None,
        audio_frontend: str = "wav2vec2",
        audio_pretrained: str | None = DEFAULT_WAV2VEC2,
        audio_config: dict[str, Any] | None = None,
        freeze_audio_feature_encoder: bool = True,
        audio_layerdrop: float | None = 0.0,
        audio_attention: str = "mim",
        speaker_reconstruction: bool = True,
    ) -> None:
        super().__init__()
        if not (use_video or use_audio):
            raise ValueError("TransAE needs at least one speaker modality: use_video or use_audio")
        video = build_motion_encoder(speaker_motion, feature_dim, enabled=use_video,
                                     video_stem_channels=video_stem_channels, video_causal=video_causal)
        audio = (
            build_audio_encoder(audio_frontend, feature_dim, audio_pretrained, audio_config,
                                freeze_audio_feature_encoder, audio_layerdrop)
            if use_audio else None
        )
        self.speaker_encoder = SpeakerEncoder(
            video, audio, feature_dim=feature_dim, num_heads=num_heads, period=period,
            dropout=dropout, head_slopes=head_slopes, audio_attention=audio_attention,
        )
        self.listener_decoder = ListenerDecoder(
            feature_dim, num_heads, period, num_decoder_layers, dropout, head_slopes, query_encoding
        )
        self.speaker_head = (
            SpeakerReconstructionHead(feature_dim, num_heads, period, dropout, head_slopes)
            if speaker_reconstruction else None
        )

    def forward(
        self,
        speaker_video: torch.Tensor | None = None,
        speaker_audio: torch.Tensor | None = None,
        *,
        num_frames: int | None = None,
        reconstruct_speaker: bool = False,
    ) -> TransAEOutput:
        encoding = self.speaker_encoder(speaker_video, speaker_audio, num_frames=num_frames)
        listener = self.listener_decoder(encoding.embeddings)
        speaker = None
        if reconstruct_speaker:
            if self.speaker_head is None:
                raise RuntimeError("built with speaker_reconstruction=False: no speaker head")
            speaker = self.speaker_head(encoding.speaker_vector)
        return TransAEOutput(listener, speaker)
