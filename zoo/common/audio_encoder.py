"""ReactFace's speech encoder: wav2vec 2.0 with k tokens per video frame (RF ``model/wav2vec2focctc.py``,
``model/speaker_former.py``).

RF loads ``facebook/wav2vec2-base-960h``, freezes only the CNN feature encoder (the 12
transformer layers are fine-tuned), takes the last hidden state (50 Hz = 2 tokens per 25 fps
frame: 640 samples per frame / hop 320), zero-pads one token when the count is odd, truncates
to 2T and maps 768 -> feature_dim with a Linear.

Input: raw 16 kHz waveform (B, S), already normalised per clip to zero mean / unit variance
(the ``Wav2Vec2Processor`` normalisation, done by the DataModule). Output: (B, k*T, out_dim).

Note on causality: wav2vec 2.0 is bidirectional (transformer + a 128-tap positional conv,
group norm over time in the base model's first conv), so every token depends on the whole
waveform passed in; feed audio prefixes for online use.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Wav2Vec2Encoder", "LogMelEncoder", "build_audio_encoder", "AUDIO_FRONTENDS", "DEFAULT_WAV2VEC2", "load_wav2vec2"]

DEFAULT_WAV2VEC2 = "facebook/wav2vec2-base-960h"
# config.json + model.safetensors (or pytorch_model.bin): 95 M float32 parameters.
_WEIGHTS_SIZE = "about 380 MB"


def _hub_cache(cache_dir: str | None) -> str:
    if cache_dir:
        return str(cache_dir)
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return os.path.expanduser("~/.cache/huggingface/hub")


def _config_errors() -> tuple[type[BaseException], ...]:
    """Exceptions a bad Wav2Vec2Config raises (huggingface_hub's strict dataclass validation
    raises its own class, not a ValueError)."""
    try:
        from huggingface_hub.errors import StrictDataclassError
    except ImportError:  # older huggingface_hub
        return (TypeError, ValueError)
    return (TypeError, ValueError, StrictDataclassError)


def _offline() -> bool:
    return any(
        os.environ.get(k, "").strip().lower() in {"1", "true", "yes", "on"}
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_wav2vec2(
    pretrained: str, overrides: dict[str, Any] | None = None, *, cache_dir: str | None = None
) -> nn.Module:
    """``transformers.Wav2Vec2Model.from_pretrained`` (hub name or local dir), float32, with
    config ``overrides``; a missing model raises FileNotFoundError that says how to get it."""
    from transformers import Wav2Vec2Model

    looks_local = os.path.isabs(pretrained) or pretrained.startswith((".", "~")) or os.path.isdir(
        os.path.expanduser(pretrained)
    )
    if looks_local:
        local = os.path.expanduser(pretrained)
        if not os.path.isdir(local):
            raise FileNotFoundError(
                f"audio encoder directory {local!r} does not exist: pass a directory with "
                "config.json and model.safetensors (or pytorch_model.bin) of a wav2vec 2.0 model, "
                f"or a Hugging Face model name such as {DEFAULT_WAV2VEC2!r}"
            )
        pretrained = local
    try:
        # local_files_only from the environment at call time: huggingface_hub reads
        # HF_HUB_OFFLINE once at import, which may predate the caller setting it
        return Wav2Vec2Model.from_pretrained(
            pretrained, cache_dir=cache_dir, dtype=torch.float32,
            local_files_only=_offline(), **(overrides or {}),
        )
    except OSError as err:
        where = (
            f"the directory {pretrained!r}" if looks_local
            else f"the Hugging Face cache ({_hub_cache(cache_dir)})"
            + (" and HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE forbids downloading" if _offline()
               else " and the download failed")
        )
        repo = pretrained if not looks_local else DEFAULT_WAV2VEC2
        raise FileNotFoundError(
            f"cannot load the wav2vec 2.0 model {pretrained!r}: not found in {where}.\n"
            f"It needs config.json and model.safetensors (or pytorch_model.bin), {_WEIGHTS_SIZE} "
            f"for {DEFAULT_WAV2VEC2}. To get them:\n"
            f"  * on a connected machine: `huggingface-cli download {repo}` (or `hf download {repo}`),"
            f" then copy {_hub_cache(cache_dir)}/models--{repo.replace('/', '--')} to the same place "
            "here (or set HF_HOME / HF_HUB_CACHE to where you put it);\n"
            "  * or put config.json + the weights in a directory and pass its path as "
            "`pretrained` (TransAE: `audio_pretrained: /path/to/dir`);\n"
            "  * or train without pretrained speech weights: `audio_pretrained: null` and "
            "`audio_config: {hidden_size: ..., num_hidden_layers: ...}` (random initialisation).\n"
            f"Original error: {err}"
        ) from err


class Wav2Vec2Encoder(nn.Module):
    """Waveform (B, S) -> (B, tokens_per_frame * T, out_dim) speech tokens aligned to T video frames.

    Args:
        pretrained: Hugging Face model name or local directory (``Wav2Vec2Model.from_pretrained``;
            HF_HUB_OFFLINE and the HF cache are honoured). ``None`` builds a randomly initialised
            model from ``config``.
        config: ``Wav2Vec2Config`` fields. With ``pretrained=None`` the whole config (e.g.
            ``{hidden_size: 64, num_hidden_layers: 2, ...}``); with a pretrained model, overrides
            of its config (e.g. ``{mask_time_prob: 0.0}``).
        freeze_feature_encoder: freeze the CNN feature encoder only (RF).
        out_dim: width of the Linear map applied to the last hidden state (RF ``audio_feature_map``).
        tokens_per_frame: k; must equal ``sample_rate / fps / hop`` of the model's conv stack.
        layerdrop: overrides the config's layerdrop (wav2vec2-base-960h ships 0.1, active in RF's
            training). Skipped layers leave parameters without gradients, which plain DDP rejects,
            hence 0.0 by default; ``None`` keeps the config value (use a
            ``ddp_find_unused_parameters_true`` strategy then).
    """

    def __init__(
        self,
        pretrained: str | None = DEFAULT_WAV2VEC2,
        config: dict[str, Any] | None = None,
        freeze_feature_encoder: bool = True,
        out_dim: int = 128,
        tokens_per_frame: int = 2,
        *,
        sample_rate: int = 16000,
        fps: float = 25.0,
        layerdrop: float | None = 0.0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        if config is not None and not isinstance(config, dict):
            raise ValueError(f"config must be a dict of Wav2Vec2Config fields, got {type(config).__name__}")
        overrides = dict(config or {})
        if layerdrop is not None:
            if not 0.0 <= layerdrop < 1.0:
                raise ValueError(f"layerdrop must be in [0, 1), got {layerdrop}")
            overrides["layerdrop"] = layerdrop
        if pretrained is not None:
            self.model = load_wav2vec2(pretrained, overrides, cache_dir=cache_dir)
        elif config is None:
            raise ValueError(
                "Wav2Vec2Encoder needs `pretrained` (a model name or directory) or, for a randomly "
                "initialised model, `config` (Wav2Vec2Config fields such as hidden_size)"
            )
        else:
            try:
                self.model = Wav2Vec2Model(Wav2Vec2Config(**overrides))
            except _config_errors() as err:
                raise ValueError(f"invalid wav2vec2 config {config!r}: {err}") from err
        if freeze_feature_encoder:
            self.model.freeze_feature_encoder()

        cfg = self.model.config
        self.hop = 1
        for stride in cfg.conv_stride:
            self.hop *= int(stride)
        self.receptive_field = 1
        for kernel, stride in reversed(list(zip(cfg.conv_kernel, cfg.conv_stride, strict=True))):
            self.receptive_field = (self.receptive_field - 1) * int(stride) + int(kernel)
        samples_per_frame = sample_rate / fps
        if samples_per_frame != int(samples_per_frame):
            raise ValueError(f"sample_rate / fps must be an integer, got {sample_rate}/{fps}")
        self.samples_per_frame = int(samples_per_frame)
        if tokens_per_frame < 1 or tokens_per_frame * self.hop != self.samples_per_frame:
            raise ValueError(
                f"tokens_per_frame={tokens_per_frame} does not match the model: "
                f"{self.samples_per_frame} samples per frame / hop {self.hop} = "
                f"{self.samples_per_frame / self.hop:g} tokens per frame"
            )
        self.tokens_per_frame = tokens_per_frame
        self.hidden_size = int(cfg.hidden_size)
        self.out_dim = out_dim
        self.proj = nn.Linear(self.hidden_size, out_dim)

    def forward(self, waveform: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B, S) normalised 16 kHz audio -> (B, k*num_frames, out_dim).

        ``num_frames`` defaults to ``S // samples_per_frame``. The waveform must reach into the
        last frame (S > (T-1)*samples_per_frame); missing tokens at the end are zero-padded
        after the transformer and extra ones are cut, as RF does.
        """
        if not isinstance(waveform, torch.Tensor) or waveform.ndim != 2:
            shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
            raise ValueError(f"speaker_audio must be a (batch, samples) waveform tensor, got {shape}")
        if not waveform.is_floating_point():
            raise ValueError(f"speaker_audio must be floating point (normalised), got {waveform.dtype}")
        samples = waveform.shape[1]
        frames = samples // self.samples_per_frame if num_frames is None else int(num_frames)
        if frames < 1:
            raise ValueError(
                f"speaker_audio has {samples} samples, less than one frame "
                f"({self.samples_per_frame} samples at the configured sample_rate/fps)"
            )
        if samples <= (frames - 1) * self.samples_per_frame or samples < self.receptive_field:
            raise ValueError(
                f"speaker_audio has {samples} samples but {frames} frames need "
                f"{frames * self.samples_per_frame} ({self.samples_per_frame} per frame)"
            )
        wanted = self.tokens_per_frame * frames
        # the waveform is normalised and so is fp32 input to the frozen CNN; autocast handles the rest
        hidden = self.model(waveform.float()).last_hidden_state
        return self._tokens(hidden, wanted)

    def _tokens(self, hidden: torch.Tensor, wanted: int) -> torch.Tensor:
        if hidden.shape[1] < wanted:
            hidden = F.pad(hidden, (0, 0, 0, wanted - hidden.shape[1]))
        return self.proj(hidden[:, :wanted])

    def tokens_from_features(self, features: torch.Tensor, num_frames: int) -> torch.Tensor:
        """:meth:`forward` after the CNN feature encoder: ``features`` (B, conv_dim[-1], N) ->
        (B, k*num_frames, out_dim), as ``Wav2Vec2Model.forward`` without an attention mask (for
        streaming with cached CNN features, :class:`~zoo.common.streaming.Wav2Vec2FeatureStream`)."""
        model = self.model
        hidden, _ = model.feature_projection(features.transpose(1, 2))
        hidden = model._mask_hidden_states(hidden)  # SpecAugment in training, identity in eval
        hidden = model.encoder(hidden).last_hidden_state
        if model.adapter is not None:
            hidden = model.adapter(hidden)
        return self._tokens(hidden, self.tokens_per_frame * int(num_frames))


class LogMelEncoder(nn.Module):
    """Waveform (B, S) -> (B, tokens_per_frame * T, out_dim) log-mel speech tokens.

    The light speech front end of the REACT challenge baselines (B23 Trans-VAE feeds 78-d MFCC
    features per frame, B23 ``dataset.py::extract_audio_features``): HTK log-mel energies of
    25 ms Hann windows every ``samples_per_frame / tokens_per_frame`` samples (20 ms at 16 kHz,
    2 tokens per 25 fps frame, the same grid as wav2vec 2.0's CNN), LayerNorm, a causal
    3-token convolution and a projection. It trains from scratch in minutes on a CPU, which a
    randomly initialised wav2vec 2.0 does not; use it for CPU-scale configs and ablations.
    Token j sees samples [j*hop, j*hop + 400): 5 ms beyond its own hop, as wav2vec 2.0's CNN.
    """

    def __init__(self, out_dim: int = 128, n_mels: int = 64, tokens_per_frame: int = 2, *,
                 sample_rate: int = 16000, fps: int = 25, n_fft: int = 400) -> None:
        super().__init__()
        from datamodules.features.audio_features import mel_filterbank

        if sample_rate % fps or (sample_rate // fps) % tokens_per_frame:
            raise ValueError(f"sample_rate/fps ({sample_rate}/{fps}) must split into {tokens_per_frame} equal hops")
        self.out_dim, self.tokens_per_frame, self.n_fft = out_dim, tokens_per_frame, n_fft
        self.samples_per_frame = sample_rate // fps
        self.hop = self.samples_per_frame // tokens_per_frame
        self.receptive_field = n_fft
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank(n_fft, n_mels, sample_rate)).float(),
                             persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.norm = nn.LayerNorm(n_mels)
        self.conv = nn.Conv1d(n_mels, out_dim, kernel_size=3)  # left-padded by 2: causal over tokens
        self.proj = nn.Sequential(nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, waveform: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(B, S) normalised 16 kHz audio -> (B, k*num_frames, out_dim)."""
        if not isinstance(waveform, torch.Tensor) or waveform.ndim != 2 or not waveform.is_floating_point():
            shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
            raise ValueError(f"speaker_audio must be a floating-point (batch, samples) waveform, got {shape}")
        samples = waveform.shape[1]
        frames = samples // self.samples_per_frame if num_frames is None else int(num_frames)
        if frames < 1 or samples <= (frames - 1) * self.samples_per_frame:
            raise ValueError(f"speaker_audio has {samples} samples but {frames} frames need "
                             f"{frames * self.samples_per_frame} ({self.samples_per_frame} per frame)")
        wanted = self.tokens_per_frame * frames
        x = F.pad(waveform.float(), (0, max(0, (wanted - 1) * self.hop + self.n_fft - samples)))
        windows = x.unfold(-1, self.n_fft, self.hop)[:, :wanted]  # (B, k*T, n_fft)
        power = torch.fft.rfft(windows * self.window, dim=-1).abs().pow(2)
        log_mel = torch.log(power @ self.filterbank + 1e-6)
        hidden = self.conv(F.pad(self.norm(log_mel).transpose(1, 2), (2, 0))).transpose(1, 2)
        return self.proj(hidden)


AUDIO_FRONTENDS = ("wav2vec2", "log_mel")


def build_audio_encoder(frontend: str, out_dim: int, pretrained: str | None, config: dict[str, Any] | None,
                        freeze_feature_encoder: bool, layerdrop: float | None) -> nn.Module:
    """The speech encoder of the REACT models: ``"wav2vec2"`` (ReactFace, paper scale) or
    ``"log_mel"`` (:class:`LogMelEncoder`; ``config`` may set ``n_mels``)."""
    if frontend == "wav2vec2":
        return Wav2Vec2Encoder(pretrained, config, freeze_feature_encoder, out_dim=out_dim, layerdrop=layerdrop)
    if frontend == "log_mel":
        return LogMelEncoder(out_dim, **{k: v for k, v in (config or {}).items() if k in ("n_mels", "n_fft")})
    raise ValueError(f"audio_frontend must be one of {AUDIO_FRONTENDS}, got {frontend!r}")
