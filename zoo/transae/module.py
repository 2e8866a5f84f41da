"""Trans-AE baseline (ReactFace paper Table 2) as a LightningModule.

Loss, as RF ``train.py`` / ``model/losses.py`` for the deterministic parts::

    loss = L(listener exp) + pose_weight * L(listener pose) + speaker_reconstruction_weight * L(speaker)

L is smooth L1 (RF), each term a mean over batch, time and its channels (RF ``VAELoss``:
exp = face state [0:52], pose = [52:58], pose weighted x10). Targets are mean-subtracted face
states, so predicting zeros is predicting the training-set mean reaction; validation and test
log that baseline (``val/mean_reaction_loss``) next to ``val/listener_loss``.

The model is deterministic: ``generate*`` return K identical copies so it plugs into the
K-sample REACT protocol (its S-MSE / FRDiv is 0 by construction, paper Table 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from einops import repeat
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from datamodules.features.face_state import EXPRESSION, POSE
from zoo.common.audio_encoder import DEFAULT_WAV2VEC2
from zoo.common.eval_mode import evaluation_mode
from zoo.common.face_mean import StoresFaceMean
from zoo.common.pretrained import load_pretrained
from zoo.common.react_batch import REACTBatchMixin, reactface_adamw
from zoo.common.react_io import add_react_generate_arguments, react_generate_to_files
from zoo.transae.nets import TransAENet

__all__ = ["TransAE", "reactface_adamw", "LOSSES"]

LOSSES = ("smooth_l1", "l1", "mse")


class TransAE(REACTBatchMixin, StoresFaceMean, L.LightningModule):
    """Trans-AE: speaker encoder of ReactFace + causal listener decoder -> listener face state.

    Args (all YAML primitives; see :class:`~zoo.transae.nets.TransAENet` for the network ones):
        feature_dim, num_heads, period, dropout: RF 128, 8, 8, 0.1.
        head_slopes: per-head ALiBi slopes on the alignment bias (RF).
        num_decoder_layers, query_encoding: listener decoder depth and time queries.
        use_video, use_audio: speaker modalities (paper Table 4 ablations); a switched-off
            modality builds no modules and its batch key is not read.
        speaker_motion: the motion modality's input, ``"video"`` (``speaker_video`` frames, the
            paper) or ``"face_state"`` (``speaker_3dmm``, the tracked coefficients REACT ships;
            :mod:`zoo.common.face_state_encoder`, used by the CPU demo).
        video_causal, video_stem_channels: :class:`~zoo.common.video_encoder.VideoEncoder` options.
        audio_frontend: ``"wav2vec2"`` (ReactFace) or ``"log_mel"`` (the challenge baselines' light
            front end, :class:`~zoo.common.audio_encoder.LogMelEncoder`; CPU-scale configs).
        audio_pretrained: wav2vec 2.0 name or local dir; ``None`` = random init from ``audio_config``.
        audio_config: Wav2Vec2Config fields (full config when ``audio_pretrained`` is None,
            overrides otherwise).
        freeze_audio_feature_encoder: freeze the wav2vec2 CNN only (RF).
        audio_layerdrop: wav2vec2 layerdrop override (0.0 keeps DDP free of unused parameters).
        audio_attention: ``"mim"`` (Eq. 11) or ``"own_tokens"`` (RF ``enc_dec_mask``).
        speaker_reconstruction_weight: weight of the speaker face-state reconstruction (Eq. 12,
            RF 1.0); 0 does not build the head.
        pose_weight: weight of the 6 pose channels (RF 10).
        loss: ``smooth_l1`` (RF), ``l1`` or ``mse``.
        predict_num_samples: K of ``predict_step`` (REACT protocol: 10 per speaker).
        optimizer: ``OptimizerCallable``; default :func:`reactface_adamw` (AdamW 2e-5, wd 5e-4).
        lr_scheduler: optional ``LRSchedulerCallable`` (RF uses none); monitored on ``val/loss``.
        pretrained: a manifest name or weights file loaded (strictly) at construction, to fine-tune.
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
        speaker_reconstruction_weight: float = 1.0,
        pose_weight: float = 10.0,
        loss: str = "smooth_l1",
        predict_num_samples: int = 10,
        optimizer: OptimizerCallable = reactface_adamw,
        lr_scheduler: LRSchedulerCallable | None = None,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if speaker_reconstruction_weight < 0 or pose_weight < 0:
            raise ValueError("speaker_reconstruction_weight and pose_weight must be >= 0")
        if predict_num_samples < 1:
            raise ValueError(f"predict_num_samples must be >= 1, got {predict_num_samples}")
        # callables are not YAML primitives: keep them out of the checkpoint's hparams
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.register_face_mean()  # the DataModule's 3DMM mean travels with the weights
        self.net = TransAENet(
            feature_dim=feature_dim, num_heads=num_heads, period=period, dropout=dropout,
            head_slopes=head_slopes, num_decoder_layers=num_decoder_layers,
            query_encoding=query_encoding, use_video=use_video, use_audio=use_audio,
            speaker_motion=speaker_motion,
            video_causal=video_causal, video_stem_channels=video_stem_channels,
            audio_frontend=audio_frontend, audio_pretrained=audio_pretrained, audio_config=audio_config,
            freeze_audio_feature_encoder=freeze_audio_feature_encoder,
            audio_layerdrop=audio_layerdrop, audio_attention=audio_attention,
            speaker_reconstruction=speaker_reconstruction_weight > 0,
        )
        if pretrained is not None:  # fine-tune from published weights (zoo/common/pretrained.py)
            load_pretrained(self, pretrained)

    # ------------------------------------------------------------------ batch handling
    # ------------------------------------------------------------------ forward / generate
    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Listener face state (B, T, 58), mean-subtracted space."""
        video, audio, frames = self._speaker_inputs(batch)
        return self.net(video, audio, num_frames=frames).listener

    @torch.no_grad()
    def generate(
        self,
        speaker_video: torch.Tensor | None = None,
        speaker_audio: torch.Tensor | None = None,
        num_samples: int = 1,
        *,
        num_frames: int | None = None,
    ) -> torch.Tensor:
        """(B, K, T, 58) reactions. Deterministic: the K samples are copies of one prediction.

        ``speaker_video`` (B, T, 3, H, W) in [-1, 1], ``speaker_audio`` (B, T*640) normalised
        16 kHz; pass the ones the model was built with (``num_frames`` for audio-only models
        defaults to ``samples // 640``). Runs in eval mode, then restores the previous mode.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if self.net.use_video and speaker_video is None:
            raise ValueError("speaker_video is required: this TransAE was built with use_video=True")
        if self.net.use_audio and speaker_audio is None:
            raise ValueError("speaker_audio is required: this TransAE was built with use_audio=True")
        if num_frames is None and speaker_video is None:
            num_frames = speaker_audio.shape[-1] // self.net.samples_per_frame
        with evaluation_mode(self):
            video = speaker_video if self.net.use_video else None
            audio = speaker_audio if self.net.use_audio else None
            listener = self.net(video, audio, num_frames=num_frames).listener
        # float32 out, whatever the autocast precision: predictions feed metrics and .npy files
        return repeat(listener.float(), "b t d -> b k t d", k=num_samples).contiguous()

    @torch.no_grad()
    def generate_from_batch(self, batch: Mapping[str, Any], num_samples: int = 1) -> torch.Tensor:
        """(B, K, T, 58) for a DataModule batch (K copies: the model is deterministic)."""
        video, audio, frames = self._speaker_inputs(batch)
        return self.generate(video, audio, num_samples, num_frames=frames)

    # ------------------------------------------------------------------ losses
    def _criterion(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction, target = prediction.float(), target.float()
        if self.hparams.loss == "smooth_l1":
            return F.smooth_l1_loss(prediction, target)
        if self.hparams.loss == "l1":
            return F.l1_loss(prediction, target)
        return F.mse_loss(prediction, target)

    def listener_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """RF ``VAELoss`` reconstruction part: L(exp) + pose_weight * L(pose)."""
        exp = self._criterion(prediction[..., EXPRESSION], target[..., EXPRESSION])
        pose = self._criterion(prediction[..., POSE], target[..., POSE])
        return {"listener_exp_loss": exp, "listener_pose_loss": pose,
                "listener_loss": exp + self.hparams.pose_weight * pose}

    def _step(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        video, audio, frames = self._speaker_inputs(batch)
        batch_size = video.shape[0] if video is not None else audio.shape[0]
        listener = self._target(batch, "listener_3dmm", batch_size, frames)
        weight = self.hparams.speaker_reconstruction_weight
        speaker = self._target(batch, "speaker_3dmm", batch_size, frames) if weight > 0 else None
        out = self.net(video, audio, num_frames=frames, reconstruct_speaker=weight > 0)
        parts = self.listener_loss(out.listener, listener)
        loss = parts["listener_loss"]
        if weight > 0:
            parts["speaker_loss"] = self._criterion(out.speaker, speaker)
            loss = loss + weight * parts["speaker_loss"]
        if stage != "train":
            # zeros = the training-set mean reaction in mean-subtracted space
            parts["mean_reaction_loss"] = self.listener_loss(torch.zeros_like(listener), listener)[
                "listener_loss"]
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/{name}": value.detach() for name, value in parts.items()},
            on_step=on_step, on_epoch=True, prog_bar=False, batch_size=batch_size,
            sync_dist=not on_step,
        )
        self.log(f"{stage}/loss", loss.detach(), on_step=on_step, on_epoch=True, prog_bar=True,
                 batch_size=batch_size, sync_dist=not on_step)
        return loss

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    @classmethod
    def add_generate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """``facezoo generate`` inputs: --speaker-video, --speaker-audio and rendering options."""
        add_react_generate_arguments(parser)

    def generate_to_files(self, args: argparse.Namespace, out_dir: Path) -> list[Path]:
        """Writes ``<stem>_reactions.npy`` (K, T, 58) and the speaker | reactions mp4."""
        def run(video, audio, k):
            return self.generate(video if self.net.use_video else None, audio, k,
                                 num_frames=video.shape[1])

        return react_generate_to_files(self, args, out_dir, run, needs_audio=self.net.use_audio)
