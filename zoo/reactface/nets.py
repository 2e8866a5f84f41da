"""ReactFace networks (Luo et al., "ReactFace: Multiple Appropriate Facial Reaction Generation in
Dyadic Interactions"; paper Sec. 4, Fig. 2 and 4), as plain ``nn.Module``s.

One window of w frames, ``[s, s + w)`` with t = s + w (paper Eq. 2)::

    past reactions R^_{1:s} --PastInteractionEncoder (Fig. 4b: VIM Eq. 8, MIM Eq. 9)--> H-_{1:s}
    [mu_token, sigma_token, H-]  --ConditionalInteractionEncoder (CIE)--> N(mu_t, sigma_t)
    z*_t ~ N(mu_t, sigma_t);  z_t = a z_{t-w} + (1 - a) z*_t;  Z = lerp(z_{t-w}, z_t)   (Eq. 3)
    Z (queries) x sinusoidal PE of frames s..t-1 (keys/values) --SamplingDecoder (Eq. 4)--> R~
    R~ --ListenerReactionDecoder (Fig. 4a: VIM, MIM on the current window)--> R^_{s:t} (58-d)

Where the paper is silent, RF (lingjivoo/ReactFace) decides, and the docstrings say so. The
differences from RF, on purpose (``docs/reactface.md``):

* Past Interaction Encoder: every past frame attends the speaker frames aligned with it (Eq. 8-9,
  both in training and inference; RF's inference cross-attends the *current* window instead).
* Bounded left context ``context_frames`` (default 256 = RF's training crop) on every attention
  over history and on the CIE input, so streaming costs the same for every window and equals
  the whole-clip rollout exactly. RF's CIE sees all history in training but only the previous
  window at inference.
* VIM before MIM, as the paper (RF attends speech first).
* The first window has no past: the CIE reads only its two tokens and z_{t-w} := z_t (RF feeds
  w zero frames as "past").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.utils import parametrize

from datamodules.features.face_state import FACE_STATE_DIM
from zoo.common.audio_encoder import DEFAULT_WAV2VEC2, build_audio_encoder
from zoo.common.face_state_encoder import build_motion_encoder
from zoo.common.positional import PeriodicPositionalEncoding, sinusoidal_table
from zoo.common.speaker_encoder import (
    BiasedMasks,
    SpeakerEncoder,
    SpeakerEncoding,
    SpeakerReconstructionHead,
    UsesSpeakerEncoder,
    decoder_layer,
)
from zoo.common.streaming import History, decoder_layer_forward

__all__ = [
    "TIME_ENCODINGS",
    "InteractionLayers",
    "PastInteractionEncoder",
    "ConditionalInteractionEncoder",
    "SamplingDecoder",
    "ListenerReactionDecoder",
    "SpeakerTimeline",
    "ReactionState",
    "WindowOutput",
    "ReactFaceNet",
    "interpolate_latents",
]

TIME_ENCODINGS = ("absolute", "periodic")


class InteractionLayers(nn.Module):
    """Speaker-listener synchronisation (paper Sec. 4.3): one decoder layer per module in ``kinds``.

    Every layer runs biased causal self-attention over the reaction sequence (B^VIM, RF's
    ``tgt_mask``) and cross-attention with the alignment bias of Eq. 10-11 to:

    * ``"vim"``: the aligned speaker facial embeddings F- (k = 1),
    * ``"mim"``: the speech embeddings A (k = ``tokens_per_frame``),
    * ``"self"``: the reaction sequence itself (used when VIM and MIM are both ablated; the
      speaker embeddings of the same frames are then *added* to the reaction features, so the
      speaker still conditions the reaction without synchronisation attention, Table 4 row 3).

    Queries are the *last* L frames covered by the keys and the memories (a window against
    its history), so one code path serves whole sequences and streaming chunks.
    """

    def __init__(
        self, kinds: list[str], feature_dim: int, num_heads: int, period: int, dropout: float,
        head_slopes: bool, context_frames: int | None, tokens_per_frame: int,
    ) -> None:
        super().__init__()
        kinds = list(kinds) or ["self"]
        for kind in kinds:
            if kind not in ("vim", "mim", "self"):
                raise ValueError(f"interaction layer kind must be vim, mim or self, got {kind!r}")
        self.kinds = kinds
        self.tokens_per_frame = tokens_per_frame
        self.masks = BiasedMasks(num_heads, period, head_slopes, context_frames)
        self.layers = nn.ModuleList(decoder_layer(feature_dim, num_heads, dropout) for _ in kinds)

    def forward(
        self,
        x: torch.Tensor,
        speaker: torch.Tensor | None,
        audio: torch.Tensor | None,
        caches: list[History] | None = None,
    ) -> torch.Tensor:
        if self.kinds == ["self"] and speaker is not None:
            x = x + speaker[:, speaker.shape[1] - x.shape[1]:]  # frame-aligned, no attention
        for i, (kind, layer) in enumerate(zip(self.kinds, self.layers, strict=True)):
            keys = x if caches is None else caches[i].extend(x)
            self_mask = self.masks(x, keys.shape[1], window=True)
            if kind == "vim":
                memory, memory_mask = speaker, self.masks(x, speaker.shape[1], window=True)
            elif kind == "mim":
                memory = audio
                memory_mask = self.masks(x, audio.shape[1], tokens_per_frame=self.tokens_per_frame,
                                         window=True)
            else:
                memory, memory_mask = keys, self_mask
            x = decoder_layer_forward(layer, x, keys, memory, self_mask, memory_mask)
        return x


class PastInteractionEncoder(nn.Module):
    """Fig. 4b: past reactions R^_{1:t-w} (58-d) -> Linear + periodic PE -> VIM/MIM -> H-_{1:t-w}.

    RF ``speaker_motion_past_listener_motion_to_motion`` (``past_motion_linear`` 58 -> C, PPE,
    one cross-attention layer per modality).
    """

    def __init__(self, interaction: InteractionLayers, feature_dim: int, period: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Linear(FACE_STATE_DIM, feature_dim)
        self.ppe = PeriodicPositionalEncoding(feature_dim, period, dropout=dropout)
        self.interaction = interaction

    def forward(
        self, past: torch.Tensor, offset: int, speaker: torch.Tensor | None, audio: torch.Tensor | None,
        caches: list[History] | None = None,
    ) -> torch.Tensor:
        """``past`` (B, L, 58) = frames ``offset ... offset+L-1``; speaker/audio end at the same frame."""
        return self.interaction(self.ppe(self.embed(past), offset=offset), speaker, audio, caches)


class ConditionalInteractionEncoder(nn.Module):
    """CIE (paper Sec. 4.2): [mu_token, sigma_token, H-] -> transformer encoder -> N(mu_t, sigma_t).

    RF ``model/VAE.py::VanillaVAE``: Linear on the context, two learnable tokens prepended, a
    2-layer post-norm ``TransformerEncoder`` (4 heads, FF 1024 for C = 128, dropout 0.1); mu and
    log sigma^2 are read at the two token positions.
    """

    def __init__(
        self, feature_dim: int, num_heads: int = 4, num_layers: int = 2, feedforward: int = 1024,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if feature_dim % num_heads:
            raise ValueError(f"feature_dim ({feature_dim}) must be divisible by cie_heads ({num_heads})")
        self.mu_token = nn.Parameter(torch.randn(1, 1, feature_dim))
        self.logvar_token = nn.Parameter(torch.randn(1, 1, feature_dim))
        self.proj = nn.Linear(feature_dim, feature_dim)
        layer = nn.TransformerEncoderLayer(feature_dim, num_heads, feedforward, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def forward(self, context: torch.Tensor | None, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar), each (B, C); ``context`` (B, n, C) or None (no past yet)."""
        tokens = torch.cat([self.mu_token, self.logvar_token], dim=1).expand(batch_size, -1, -1)
        x = tokens if context is None else torch.cat([tokens.to(context.dtype), self.proj(context)], dim=1)
        out = self.encoder(x)
        return out[:, 0], out[:, 1]


def interpolate_latents(z_prev: torch.Tensor, z: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """Eq. 3: z_tau = z_{t-w} + (tau - (t-w)) (z_t - z_{t-w}) / w for tau - (t-w) = 1 ... length."""
    steps = torch.arange(1, length + 1, device=z.device, dtype=z.dtype) / window
    return z_prev[:, None] + steps[None, :, None] * (z - z_prev)[:, None]


class SamplingDecoder(nn.Module):
    """SD (paper Sec. 4.2, Eq. 4): latents Z as queries, sinusoidal PEs of the window's frames as
    keys and values -> initial reaction embeddings R~ (B, L, C). ``num_layers`` decoder layers
    (RF ``Decoder.transformer_decoder``: 2; RF swaps the roles, PE queries and z memory).

    ``time_encoding="absolute"`` is Eq. 4 over the global frame index; ``"periodic"`` uses
    ``t mod period`` (never an unseen position on clips longer than the training crops).
    """

    def __init__(
        self, feature_dim: int, num_heads: int, num_layers: int, dropout: float, time_encoding: str,
        period: int,
    ) -> None:
        super().__init__()
        if time_encoding not in TIME_ENCODINGS:
            raise ValueError(f"time_encoding must be one of {TIME_ENCODINGS}, got {time_encoding!r}")
        if num_layers < 1:
            raise ValueError(f"num_sampling_layers must be >= 1, got {num_layers}")
        self.feature_dim, self.time_encoding, self.period = feature_dim, time_encoding, period
        self.layers = nn.ModuleList(decoder_layer(feature_dim, num_heads, dropout) for _ in range(num_layers))

    def positions(self, start: int, length: int, device=None, dtype=torch.float32) -> torch.Tensor:
        frames = torch.arange(start, start + length, device=device)
        if self.time_encoding == "periodic":
            frames = frames % self.period
        return sinusoidal_table(frames, self.feature_dim, dtype=dtype)

    def forward(self, latents: torch.Tensor, start: int) -> torch.Tensor:
        batch, length = latents.shape[:2]
        memory = self.positions(start, length, latents.device, latents.dtype).expand(batch, -1, -1)
        x = latents
        for layer in self.layers:
            x = layer(x, memory)
        return x


class ListenerReactionDecoder(nn.Module):
    """Fig. 4a: R~ -> VIM with F-_{t-w+1:t} (Eq. 8) -> MIM with A_{k(t-w+1):kt} (Eq. 9) -> Linear -> 58-d.

    Only the current window's speaker behaviour is attended, as Eq. 8-9 (and RF ``Decoder``).
    """

    def __init__(self, interaction: InteractionLayers, feature_dim: int) -> None:
        super().__init__()
        self.interaction = interaction
        self.out = nn.Linear(feature_dim, FACE_STATE_DIM)  # RF listener_reaction_3dmm_map_layer

    def forward(self, reaction: torch.Tensor, speaker: torch.Tensor | None, audio: torch.Tensor | None) -> torch.Tensor:
        return self.out(self.interaction(reaction, speaker, audio))


class SpeakerTimeline:
    """Speaker embeddings F- (B, n, C) and speech tokens A (B, k*n, C) of frames ``start ... end-1``."""

    def __init__(self, tokens_per_frame: int) -> None:
        self.k = max(tokens_per_frame, 1)
        self.embeddings: torch.Tensor | None = None
        self.tokens: torch.Tensor | None = None
        self.start = self.end = 0

    def append(self, embeddings: torch.Tensor, tokens: torch.Tensor | None) -> None:
        self.embeddings = embeddings if self.embeddings is None else torch.cat([self.embeddings, embeddings], 1)
        if tokens is not None:
            self.tokens = tokens if self.tokens is None else torch.cat([self.tokens, tokens], 1)
        self.end += embeddings.shape[1]

    def frames(self, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        if a < self.start or b > self.end:
            raise RuntimeError(f"speaker frames [{a}, {b}) requested, timeline holds [{self.start}, {self.end})")
        i, j = a - self.start, b - self.start
        tokens = None if self.tokens is None else self.tokens[:, self.k * i: self.k * j]
        return self.embeddings[:, i:j], tokens

    def drop_before(self, frame: int) -> None:
        """Forget frames before ``frame`` (streaming keeps only what the next window can attend)."""
        cut = max(0, frame - self.start)
        if cut:
            self.embeddings = self.embeddings[:, cut:]
            if self.tokens is not None:
                self.tokens = self.tokens[:, self.k * cut:]
            self.start += cut


@dataclass
class ReactionState:
    """What the reaction side carries from one window to the next."""

    pie_caches: list[History]
    past_encoding: History  # H-, the CIE's context (last context_frames frames)
    pending: torch.Tensor | None = None  # last window's reactions, not yet through the PIE
    pending_start: int = 0
    z_prev: torch.Tensor | None = None
    frames: int = 0  # reaction frames generated so far
    all_reactions: list[torch.Tensor] = field(default_factory=list)  # prefix re-encoding mode only


class WindowOutput(NamedTuple):
    reaction: torch.Tensor  # (B, L, 58)
    mu: torch.Tensor  # (B, C)
    logvar: torch.Tensor  # (B, C)


class ReactFaceNet(UsesSpeakerEncoder, nn.Module):
    """Speaker encoder + reaction generator (paper Fig. 2) with the ablation switches of Tables 4-5.

    Args (RF paper-scale values as defaults):
        feature_dim, num_heads, period, dropout, head_slopes: 128, 8, 8, 0.1, ALiBi slopes (RF).
        use_video, use_audio: speaker modalities ("Motion", "Audio" of Table 4).
        speaker_motion: where the motion modality comes from: ``"video"`` (frames, the paper) or
            ``"face_state"`` (the speaker's tracked 3DMM coefficients,
            :mod:`zoo.common.face_state_encoder`; the CPU demo).
        use_vim, use_mim: the synchronisation modules of Table 4. MIM needs audio.
        context_frames: bounded left context of every attention over history and of the CIE
            (default 256, RF's training crop); None = unbounded (the paper; streaming then costs
            more for every window).
        momentum: alpha of Eq. 3 (RF 0.9; RF's ``--momentum`` flag is ignored by its train/eval).
        time_encoding: Sampling Decoder positions, ``"absolute"`` (Eq. 4) or ``"periodic"``.
        num_sampling_layers: Sampling Decoder depth (RF 2).
        cie_heads, cie_layers, cie_feedforward: CIE encoder (RF 4, 2, 1024).
        video_causal, video_stem_channels: :class:`~zoo.common.video_encoder.VideoEncoder`.
        audio_pretrained, audio_config, freeze_audio_feature_encoder, audio_layerdrop: wav2vec 2.0
            (:class:`~zoo.common.audio_encoder.Wav2Vec2Encoder`).
        audio_attention: speaker encoder speech attention, ``"mim"`` or ``"own_tokens"`` (RF).
        speaker_reconstruction: build the speaker 3D reconstruction head (Eq. 12).
    """

    def __init__(
        self,
        feature_dim: int = 128,
        num_heads: int = 8,
        period: int = 8,
        dropout: float = 0.1,
        head_slopes: bool = True,
        use_video: bool = True,
        use_audio: bool = True,
        speaker_motion: str = "video",
        use_vim: bool = True,
        use_mim: bool = True,
        context_frames: int | None = 256,
        momentum: float = 0.9,
        time_encoding: str = "absolute",
        num_sampling_layers: int = 2,
        cie_heads: int = 4,
        cie_layers: int = 2,
        cie_feedforward: int = 1024,
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
            raise ValueError("ReactFace needs at least one speaker modality: use_video or use_audio")
        if use_mim and not use_audio:
            raise ValueError("use_mim=True needs the speaker's speech: set use_audio=True or use_mim=False")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if context_frames is not None and (int(context_frames) != context_frames or context_frames < 1):
            raise ValueError(f"context_frames must be None or a positive integer, got {context_frames!r}")
        self.feature_dim, self.momentum, self.context_frames = feature_dim, momentum, context_frames
        self.use_vim, self.use_mim = use_vim, use_mim
        video = build_motion_encoder(speaker_motion, feature_dim, enabled=use_video,
                                     video_stem_channels=video_stem_channels, video_causal=video_causal)
        audio = (build_audio_encoder(audio_frontend, feature_dim, audio_pretrained, audio_config,
                                freeze_audio_feature_encoder, audio_layerdrop)
                 if use_audio else None)
        self.speaker_encoder = SpeakerEncoder(
            video, audio, feature_dim=feature_dim, num_heads=num_heads, period=period, dropout=dropout,
            head_slopes=head_slopes, audio_attention=audio_attention, context_frames=context_frames,
        )
        k = self.speaker_encoder.tokens_per_frame
        kinds = (["vim"] if use_vim else []) + (["mim"] if use_mim else [])

        def interaction() -> InteractionLayers:
            return InteractionLayers(kinds, feature_dim, num_heads, period, dropout, head_slopes,
                                     context_frames, k)

        self.past_encoder = PastInteractionEncoder(interaction(), feature_dim, period, dropout)
        self.cie = ConditionalInteractionEncoder(feature_dim, cie_heads, cie_layers, cie_feedforward, dropout)
        self.sampling_decoder = SamplingDecoder(feature_dim, num_heads, num_sampling_layers, dropout,
                                                time_encoding, period)
        self.reaction_decoder = ListenerReactionDecoder(interaction(), feature_dim)
        self.speaker_head = (SpeakerReconstructionHead(feature_dim, num_heads, period, dropout, head_slopes)
                             if speaker_reconstruction else None)
        # Per-channel scale of the generated coefficients: ones (the paper: the decoder predicts
        # coefficients directly), or the training split's standard deviation when the LightningModule
        # asks for standardised outputs (a channel that never moved in training is then exactly 0).
        self.register_buffer("output_scale", torch.ones(FACE_STATE_DIM))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before output_scale existed predicted raw coefficients: scale 1
        state_dict.setdefault(prefix + "output_scale", torch.ones(FACE_STATE_DIM))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ pieces
    def encode_speaker(
        self, video: torch.Tensor | None, audio: torch.Tensor | None, num_frames: int
    ) -> SpeakerEncoding:
        return self.speaker_encoder(video if self.use_video else None, audio if self.use_audio else None,
                                    num_frames=num_frames)

    def reconstruct_speaker(self, encoding: SpeakerEncoding) -> torch.Tensor:
        if self.speaker_head is None:
            raise RuntimeError("built with speaker_reconstruction=False: no speaker head")
        return self.speaker_head(encoding.speaker_vector)

    def new_state(self) -> ReactionState:
        n = len(self.past_encoder.interaction.kinds)
        return ReactionState([History(self.context_frames) for _ in range(n)], History(self.context_frames))

    def timeline_start(self, frame: int) -> int:
        """The first speaker frame the past encoder may still attend when its queries start at ``frame``."""
        return 0 if self.context_frames is None else max(0, frame - self.context_frames + 1)

    def step(
        self,
        state: ReactionState,
        timeline: SpeakerTimeline,
        start: int,
        stop: int,
        window: int,
        noise: torch.Tensor,
        *,
        recompute_past: bool = False,
    ) -> WindowOutput:
        """Generate reaction frames ``[start, stop)`` (paper Eq. 2) and advance ``state``.

        ``noise`` (B, C) is the standard normal draw of the reparameterised z*_t. With
        ``recompute_past`` the past encoder re-reads all past reactions (RF's prefix
        re-encoding, O(T) per window) instead of only the last window's with cached keys.
        """
        if start != state.frames:
            raise RuntimeError(f"window starts at {start} but {state.frames} frames were generated")
        batch = noise.shape[0]
        if recompute_past and state.frames > 0:
            past = torch.cat(state.all_reactions, dim=1)
            speaker, audio = timeline.frames(0, start)
            encoded = self.past_encoder(past, 0, speaker, audio, caches=None)
            keep = encoded.shape[1] if self.context_frames is None else self.context_frames
            context = encoded[:, max(0, encoded.shape[1] - keep):]
            state.pending = None
        else:
            if state.pending is not None:
                first = state.pending_start
                speaker, audio = timeline.frames(self.timeline_start(first), start)
                state.past_encoding.extend(
                    self.past_encoder(state.pending, first, speaker, audio, caches=state.pie_caches))
                state.pending = None
            context = state.past_encoding.data
        mu, logvar = self.cie(context, batch)
        z_star = mu + torch.exp(0.5 * logvar) * noise.to(mu.dtype)
        if state.z_prev is None:
            z_prev = z = z_star  # first window: no z_{t-w}, hold z_t
        else:
            z_prev = state.z_prev
            z = self.momentum * z_prev + (1.0 - self.momentum) * z_star
        latents = interpolate_latents(z_prev, z, stop - start, window)
        speaker, audio = timeline.frames(start, stop)
        reaction = self.reaction_decoder(self.sampling_decoder(latents, start), speaker, audio)
        reaction = reaction * self.output_scale.to(reaction.dtype)
        state.pending, state.pending_start, state.z_prev = reaction, start, z
        state.frames = stop
        if recompute_past:
            state.all_reactions.append(reaction)
        return WindowOutput(reaction, mu, logvar)

    def rollout(
        self,
        encoding: SpeakerEncoding,
        window: int,
        *,
        repeats: int = 1,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, list[WindowOutput]]:
        """Window-by-window generation over a whole-clip speaker encoding (training; RF ``forward``).

        Differentiable through the whole rollout (RF: no teacher forcing, no detach). ``repeats``
        samples per speaker are stacked batch-major: row ``b * repeats + m``. Returns the
        reactions (B*repeats, T, 58) and each window's output.
        """
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        embeddings, tokens = encoding.embeddings, encoding.audio_tokens
        if repeats > 1:
            embeddings = embeddings.repeat_interleave(repeats, dim=0)
            tokens = None if tokens is None else tokens.repeat_interleave(repeats, dim=0)
        timeline = SpeakerTimeline(self.tokens_per_frame)
        timeline.append(embeddings, tokens)
        state, outputs = self.new_state(), []
        frames = embeddings.shape[1]
        for start in range(0, frames, window):
            noise = standard_normal((embeddings.shape[0], self.feature_dim), generator, embeddings)
            outputs.append(self.step(state, timeline, start, min(frames, start + window), window, noise))
        return torch.cat([o.reaction for o in outputs], dim=1), outputs


def standard_normal(shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """N(0, I) noise drawn from ``generator`` (on its own device) and moved to ``like``'s device."""
    device = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(like.device)


def _check_stream_inputs(
    net: ReactFaceNet, video: torch.Tensor | None, audio: torch.Tensor | None, num_frames: int | None
) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
    if net.use_video:
        if video is None:
            raise ValueError("speaker_video is required: this ReactFace was built with use_video=True")
        face_state = net.motion_input == "face_state"
        if not isinstance(video, torch.Tensor) or video.ndim != (3 if face_state else 5):
            expected = "a (batch, time, 58) face state (speaker_motion='face_state')" if face_state \
                else "(batch, time, 3, H, W)"
            raise ValueError(f"speaker_video must be {expected}, got {getattr(video, 'shape', video)}")
        num_frames = video.shape[1] if num_frames is None else num_frames
        if video.shape[1] < num_frames:
            raise ValueError(f"speaker_video has {video.shape[1]} frames, fewer than num_frames={num_frames}")
    else:
        video = None
    if net.use_audio:
        if audio is None:
            raise ValueError("speaker_audio is required: this ReactFace was built with use_audio=True")
        if not isinstance(audio, torch.Tensor) or audio.ndim != 2:
            raise ValueError(f"speaker_audio must be a (batch, samples) waveform, got {getattr(audio, 'shape', audio)}")
        spf = net.samples_per_frame
        num_frames = audio.shape[1] // spf if num_frames is None else num_frames
        need = num_frames * spf
        if audio.shape[1] <= (num_frames - 1) * spf:
            raise ValueError(f"speaker_audio has {audio.shape[1]} samples; {num_frames} frames need {need} "
                             f"({spf} per frame at 16 kHz / 25 fps)")
        # the last frame may be short by less than a frame: pad with silence (zero after normalisation)
        audio = torch.nn.functional.pad(audio, (0, max(0, need - audio.shape[1])))[:, :need]
    else:
        audio = None
    if num_frames is None or num_frames < 1:
        raise ValueError("num_frames must be a positive integer")
    if video is not None and audio is not None and video.shape[0] != audio.shape[0]:
        raise ValueError(f"speaker_video batch {video.shape[0]} != speaker_audio batch {audio.shape[0]}")
    return video, audio, int(num_frames)


GENERATION_MODES = ("stream", "prefix")
# Lightning's precision names: "bf16-mixed" runs generation under bf16 autocast (the regime the
# paper-scale config trains in); about 2x faster on CPUs with AVX512-BF16/AMX.
GENERATION_PRECISIONS = ("32-true", "bf16-mixed")


@torch.no_grad()
def generate_reactions(
    net: ReactFaceNet,
    speaker_video: torch.Tensor | None,
    speaker_audio: torch.Tensor | None,
    *,
    num_samples: int,
    window: int,
    mode: str = "stream",
    num_frames: int | None = None,
    audio_context_frames: int = 25,
    generator: torch.Generator | None = None,
    precision: str = "32-true",
    audio_feature_cache: bool = False,
) -> torch.Tensor:
    """(B, K, T, 58) reactions, window by window (paper Eq. 1-2), in ``net``'s current mode.

    ``mode="stream"``: each window encodes only the new speaker frames with cached state
    (:class:`~zoo.common.streaming.SpeakerEncoderStream`; wav2vec 2.0 sees
    ``audio_context_frames`` frames of waveform before the window): constant cost per window.
    ``mode="prefix"``: RF ``inference_step``: the whole speaker prefix and all past reactions are
    re-encoded for every window (cost grows with the prefix).
    ``precision="bf16-mixed"``: under ``torch.autocast(bfloat16)`` (weights cast once per call:
    the autocast cache works under ``no_grad``, not ``inference_mode``); float32 reactions.
    ``audio_feature_cache`` (stream mode, wav2vec2): cache the CNN features of past audio
    (:class:`~zoo.common.streaming.Wav2Vec2FeatureStream`; exact for layer-norm wav2vec2 models,
    an approximation for wav2vec2-base's group norm).
    """
    if mode not in GENERATION_MODES:
        raise ValueError(f"mode must be one of {GENERATION_MODES}, got {mode!r}")
    if precision not in GENERATION_PRECISIONS:
        raise ValueError(f"precision must be one of {GENERATION_PRECISIONS}, got {precision!r}")
    like = speaker_video if isinstance(speaker_video, torch.Tensor) else speaker_audio
    device = like.device.type if isinstance(like, torch.Tensor) else "cpu"
    # parametrize.cached(): wav2vec2's weight-normed positional conv computes its weight once per
    # call instead of once per window (4.7 M elements for wav2vec2-base)
    with parametrize.cached(), torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        return _generate(net, speaker_video, speaker_audio, num_samples=num_samples, window=window, mode=mode,
                         num_frames=num_frames, audio_context_frames=audio_context_frames, generator=generator,
                         audio_feature_cache=audio_feature_cache)


def _generate(
    net: ReactFaceNet, speaker_video: torch.Tensor | None, speaker_audio: torch.Tensor | None, *,
    num_samples: int, window: int, mode: str, num_frames: int | None, audio_context_frames: int,
    generator: torch.Generator | None, audio_feature_cache: bool,
) -> torch.Tensor:
    from zoo.common.streaming import SpeakerEncoderStream

    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    video, audio, frames = _check_stream_inputs(net, speaker_video, speaker_audio, num_frames)
    batch = (video if video is not None else audio).shape[0]
    like = video if video is not None else audio
    spf = net.samples_per_frame or 0
    state, reactions = net.new_state(), []
    stream = (SpeakerEncoderStream(net.speaker_encoder, audio_context_frames, audio_feature_cache=audio_feature_cache)
              if mode == "stream" else None)
    timeline = SpeakerTimeline(net.tokens_per_frame)

    def repeat(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.repeat_interleave(num_samples, dim=0)

    for start in range(0, frames, window):
        stop = min(frames, start + window)
        if stream is not None:
            encoding = stream.step(None if video is None else video[:, start:stop],
                                   None if audio is None else audio[:, start * spf: stop * spf],
                                   num_frames=stop - start)
            timeline.append(repeat(encoding.embeddings), repeat(encoding.audio_tokens))
        else:
            encoding = net.encode_speaker(None if video is None else video[:, :stop],
                                          None if audio is None else audio[:, : stop * spf], stop)
            timeline = SpeakerTimeline(net.tokens_per_frame)
            timeline.append(repeat(encoding.embeddings), repeat(encoding.audio_tokens))
        noise = standard_normal((batch * num_samples, net.feature_dim), generator, like)
        out = net.step(state, timeline, start, stop, window, noise, recompute_past=mode == "prefix")
        reactions.append(out.reaction.float())
        if stream is not None:
            timeline.drop_before(net.timeline_start(start))  # the next past-encoder queries start here
    out = torch.cat(reactions, dim=1)
    return out.reshape(batch, num_samples, frames, out.shape[-1])
