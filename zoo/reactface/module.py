"""ReactFace (Luo et al.; paper Sec. 4) as a LightningModule: losses, training stages, generation.

Training (paper Sec. 4.4), with ``training_schedule="two_stage"``:

* stage 1, epochs ``< stage1_epochs`` (Eq. 14)::

      L = L_rec(listener GT) + speaker_weight * L_rec(speaker)  [Eq. 12]
          + kl_weight * L_kl [Eq. 7] + smooth_weight * L_smo(listener GT) [Eq. 13]

* stage 2 (Eq. 15), ``num_diversity_samples`` = M rollouts per speaker (paper M = 2)::

      L = L_rec^a [Eq. 5] + kl_weight * L_kl + smooth_weight * L_smo(closest reaction)
          + div_weight * L_div [Eq. 6]  (+ stage2_speaker_weight * L_rec(speaker), 0 in the paper)

``training_schedule="single_stage"`` is RF ``train.py``: the stage-2 loss from the first epoch,
with the speaker term at ``speaker_weight``. The switches of Table 5 are the weights
(``kl_weight``/``div_weight``/``smooth_weight`` = 0) and ``appropriate_reconstruction=False``
(stage 2 reconstructs the GT listener instead of the closest appropriate reaction); Table 4's are
``use_audio``/``use_video``/``use_vim``/``use_mim``.

L_rec^a reads ``batch["neighbour_3dmm"]`` (B, N, T, 58) and ``batch["neighbour_mask"]`` (B, N)
(``REACTDataModule(num_neighbours=N)``; RF uses up to 80) and always counts the sample's own
listener as appropriate. L_rec^a and L_smo are averaged over the M samples. The speaker term is
computed in every stage (weight 0 when off), so DDP always sees every parameter used.

Loss weights (the paper gives none): RF ``train.py`` / README: kl 1e-5, div 100 with sigma_d 100,
smoothness 10, speaker 1, pose channels x10.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from datamodules.features.face_state import FACE_STATE_DIM
from zoo.common.audio_encoder import DEFAULT_WAV2VEC2
from zoo.common.eval_mode import evaluation_mode
from zoo.common.face_mean import StoresFaceMean
from zoo.common.pretrained import load_pretrained
from zoo.common.react_batch import REACTBatchMixin, reactface_adamw, require
from zoo.common.react_io import add_react_generate_arguments, react_generate_to_files
from zoo.reactface.losses import (
    LOSS_KINDS,
    appropriate_reconstruction_loss,
    diversity_loss,
    face_state_distance,
    kl_loss,
    smooth_loss,
)
from zoo.reactface.nets import (
    GENERATION_MODES,
    GENERATION_PRECISIONS,
    ReactFaceNet,
    generate_reactions,
)

__all__ = ["ReactFace", "reactface_adamw", "SCHEDULES"]

SCHEDULES = ("two_stage", "single_stage")


class ReactFace(REACTBatchMixin, StoresFaceMean, L.LightningModule):
    """ReactFace: K appropriate listener reactions (B, K, T, 58) to a speaker's video and speech.

    Args (YAML primitives): the network's (see :class:`~zoo.reactface.nets.ReactFaceNet`) and
        window: w of the training rollout (RF trains with 64).
        eval_window: w for validation and generation (RF 8; paper: "less than half a second").
        audio_context_frames: waveform frames before each window that wav2vec 2.0 sees when
            streaming (it is bidirectional; 25 = 1 s).
        training_schedule: ``"two_stage"`` (paper Sec. 4.4) or ``"single_stage"`` (RF).
        stage1_epochs: epochs of stage 1 (Eq. 14) before stage 2 (Eq. 15).
        appropriate_reconstruction: L_rec^a (Eq. 5) in stage 2; False = the GT listener only.
        kl_weight, div_weight, smooth_weight: lambda_kl, lambda_div, lambda_smo (0 = ablated).
        speaker_weight: the speaker term of Eq. 12; stage2_speaker_weight: the same in stage 2 of
            the two-stage schedule (0: Eq. 15 has none).
        num_diversity_samples: M of Eq. 6 (paper 2; RF 3).
        diversity_sigma: sigma_d of Eq. 6 (RF 100).
        pose_weight, loss: face-state distance (RF x10 pose, smooth L1).
        predict_num_samples: K of ``predict_step`` (REACT: 10).
        standardise_output: the decoder predicts standardised coefficients, scaled by the training
            split's per-channel standard deviation (``REACTDataModule.face_std``, copied into
            ``net.output_scale`` at ``setup("fit")`` and saved with the weights). Not in the paper
            (RF predicts raw coefficients): channel scales differ ~30x, and a channel that never moves
            in training then stays exactly at the mean; without it the sampling noise and L_div move
            every channel (used by the CPU demo, docs/reactface.md).
        optimizer, lr_scheduler: ``OptimizerCallable`` (default AdamW 2e-5, wd 5e-4) / optional.
        pretrained: a manifest name or weights file loaded (strictly) at construction, to fine-tune.
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
        window: int = 64,
        eval_window: int = 8,
        audio_context_frames: int = 25,
        training_schedule: str = "two_stage",
        stage1_epochs: int = 50,
        appropriate_reconstruction: bool = True,
        kl_weight: float = 1e-5,
        div_weight: float = 100.0,
        smooth_weight: float = 10.0,
        speaker_weight: float = 1.0,
        stage2_speaker_weight: float = 0.0,
        num_diversity_samples: int = 2,
        diversity_sigma: float = 100.0,
        pose_weight: float = 10.0,
        loss: str = "smooth_l1",
        predict_num_samples: int = 10,
        standardise_output: bool = False,
        optimizer: OptimizerCallable = reactface_adamw,
        lr_scheduler: LRSchedulerCallable | None = None,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        if training_schedule not in SCHEDULES:
            raise ValueError(f"training_schedule must be one of {SCHEDULES}, got {training_schedule!r}")
        if loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {loss!r}")
        for name, value in (("window", window), ("eval_window", eval_window),
                            ("predict_num_samples", predict_num_samples)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if stage1_epochs < 0 or audio_context_frames < 0:
            raise ValueError("stage1_epochs and audio_context_frames must be >= 0")
        for name, value in (("kl_weight", kl_weight), ("div_weight", div_weight),
                            ("smooth_weight", smooth_weight), ("speaker_weight", speaker_weight),
                            ("stage2_speaker_weight", stage2_speaker_weight), ("pose_weight", pose_weight)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if num_diversity_samples < 2 and div_weight > 0:
            raise ValueError(f"num_diversity_samples must be >= 2 for the diversity loss, got {num_diversity_samples}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.net = ReactFaceNet(
            feature_dim=feature_dim, num_heads=num_heads, period=period, dropout=dropout,
            head_slopes=head_slopes, use_video=use_video, use_audio=use_audio, speaker_motion=speaker_motion,
            use_vim=use_vim,
            use_mim=use_mim, context_frames=context_frames, momentum=momentum,
            time_encoding=time_encoding, num_sampling_layers=num_sampling_layers, cie_heads=cie_heads,
            cie_layers=cie_layers, cie_feedforward=cie_feedforward, video_causal=video_causal,
            video_stem_channels=video_stem_channels, audio_frontend=audio_frontend, audio_pretrained=audio_pretrained,
            audio_config=audio_config, freeze_audio_feature_encoder=freeze_audio_feature_encoder,
            audio_layerdrop=audio_layerdrop, audio_attention=audio_attention, speaker_reconstruction=True,
        )
        # The DataModule's 3DMM mean, stored with the weights so `facezoo generate` can add it back.
        self.register_face_mean()
        if pretrained is not None:  # fine-tune from published weights (zoo/common/pretrained.py)
            load_pretrained(self, pretrained)

    def setup(self, stage: str) -> None:
        super().setup(stage)  # StoresFaceMean: the DataModule's face mean
        if stage != "fit" or not self.hparams.standardise_output:
            return
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        std = getattr(datamodule, "face_std", None)
        if std is None:
            raise ValueError("ReactFace(standardise_output=True) scales its outputs by the training split's "
                             "per-channel 3DMM standard deviation: fit it with a DataModule that has `face_std` "
                             "(datamodules.react.REACTDataModule)")
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if std.shape != (FACE_STATE_DIM,) or not bool(torch.isfinite(std).all()) or bool((std < 0).any()):
            raise ValueError(f"DataModule face_std must be {FACE_STATE_DIM} finite values >= 0, got shape {tuple(std.shape)}")
        self.net.output_scale.copy_(std)

    # ------------------------------------------------------------------ stages
    def stage_for_epoch(self, epoch: int) -> int:
        """1 (Eq. 14) or 2 (Eq. 15); the single-stage schedule is always 2 (RF's loss)."""
        if self.hparams.training_schedule == "single_stage":
            return 2
        return 1 if epoch < self.hparams.stage1_epochs else 2

    @property
    def stage(self) -> int:
        epoch = self.trainer.current_epoch if self._trainer is not None else 0
        return self.stage_for_epoch(epoch)

    # ------------------------------------------------------------------ batch handling
    def _candidates(self, batch: Mapping[str, Any], listener: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sample's own listener followed by its appropriate neighbours, and their mask."""
        batch_size, frames = listener.shape[:2]
        own = torch.ones(batch_size, 1, dtype=torch.bool, device=listener.device)
        if batch.get("neighbour_3dmm") is None:
            raise ValueError(
                "batch has no 'neighbour_3dmm': the appropriate reconstruction loss (Eq. 5) needs the "
                "appropriate reactions; set the DataModule's `num_neighbours` (e.g. 80, as RF) or the "
                "model's `appropriate_reconstruction: false`")
        neighbours = batch["neighbour_3dmm"]
        mask = require(batch, "neighbour_mask", "neighbour_3dmm comes with neighbour_mask (B, N)")
        if neighbours.ndim != 4 or tuple(neighbours.shape[::2]) != (batch_size, frames) or neighbours.shape[3] != FACE_STATE_DIM:
            raise ValueError(f"batch['neighbour_3dmm'] must be ({batch_size}, N, {frames}, {FACE_STATE_DIM}), "
                             f"got {tuple(neighbours.shape)}")
        if tuple(mask.shape) != tuple(neighbours.shape[:2]):
            raise ValueError(f"batch['neighbour_mask'] must be {tuple(neighbours.shape[:2])}, got {tuple(mask.shape)}")
        return (torch.cat([listener[:, None], neighbours.to(listener.dtype)], dim=1),
                torch.cat([own, mask.bool()], dim=1))

    # ------------------------------------------------------------------ forward / losses
    def forward(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """One sampled reaction (B, T, 58) from a training-style rollout with ``window``."""
        video, audio, frames = self._speaker_inputs(batch)
        encoding = self.net.encode_speaker(video, audio, frames)
        return self.net.rollout(encoding, self.hparams.window)[0]

    def loss_terms(self, batch: Mapping[str, Any], stage: int, *, window: int | None = None,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Every term of the stage's loss and the weighted total (``"loss"``)."""
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        hp = self.hparams
        video, audio, frames = self._speaker_inputs(batch)
        batch_size = (video if video is not None else audio).shape[0]
        listener = self._target(batch, "listener_3dmm", batch_size, frames)
        speaker = self._target(batch, "speaker_3dmm", batch_size, frames)
        samples = hp.num_diversity_samples if stage == 2 and hp.div_weight > 0 else 1
        encoding = self.net.encode_speaker(video, audio, frames)
        reactions, windows = self.net.rollout(encoding, window or hp.window, repeats=samples, generator=generator)
        reactions = reactions.reshape(batch_size, samples, frames, FACE_STATE_DIM)
        distance = dict(pose_weight=hp.pose_weight, kind=hp.loss)
        terms: dict[str, torch.Tensor] = {}
        terms["kl_loss"] = torch.stack([kl_loss(w.mu, w.logvar) for w in windows]).mean()
        terms["speaker_loss"] = face_state_distance(self.net.reconstruct_speaker(encoding), speaker, **distance).mean()
        if stage == 1 or not hp.appropriate_reconstruction:
            terms["reconstruction_loss"] = face_state_distance(reactions, listener[:, None].expand_as(reactions),
                                                               **distance).mean()
            smooth_targets = listener[:, None].expand_as(reactions)
        else:
            candidates, mask = self._candidates(batch, listener)
            losses, chosen = [], []
            for m in range(samples):
                value, index = appropriate_reconstruction_loss(reactions[:, m], candidates, mask, **distance)
                losses.append(value)
                chosen.append(candidates[torch.arange(batch_size, device=index.device), index])
            terms["appropriate_loss"] = torch.stack(losses).mean()
            smooth_targets = torch.stack(chosen, dim=1)
        if frames >= 3:
            terms["smooth_loss"] = smooth_loss(reactions.flatten(0, 1), smooth_targets.flatten(0, 1))
        else:
            terms["smooth_loss"] = reactions.new_zeros(())
        if samples > 1:
            terms["diversity_loss"] = diversity_loss(reactions, hp.diversity_sigma)
        speaker_weight = hp.speaker_weight if stage == 1 or hp.training_schedule == "single_stage" \
            else hp.stage2_speaker_weight
        total = terms.get("reconstruction_loss", terms.get("appropriate_loss"))
        total = (total + hp.kl_weight * terms["kl_loss"] + hp.smooth_weight * terms["smooth_loss"]
                 + speaker_weight * terms["speaker_loss"])
        if "diversity_loss" in terms:
            total = total + hp.div_weight * terms["diversity_loss"]
        terms["loss"] = total
        return terms

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        stage = self.stage
        terms = self.loss_terms(batch, stage)
        batch_size = _batch_size(batch)
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "loss"},
                      on_step=True, on_epoch=True, batch_size=batch_size)
        self.log("train/stage", float(stage), on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("train/loss", terms["loss"].detach(), on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=batch_size)
        return terms["loss"]

    def _evaluate(self, batch: Mapping[str, Any], stage: str) -> torch.Tensor:
        """RF ``VAELoss`` at the evaluation window: L(GT listener) + kl_weight * KL for one sample."""
        hp = self.hparams
        video, audio, frames = self._speaker_inputs(batch)
        batch_size = (video if video is not None else audio).shape[0]
        listener = self._target(batch, "listener_3dmm", batch_size, frames)
        encoding = self.net.encode_speaker(video, audio, frames)
        reaction, windows = self.net.rollout(encoding, hp.eval_window)
        distance = dict(pose_weight=hp.pose_weight, kind=hp.loss)
        parts = {
            "listener_loss": face_state_distance(reaction, listener, **distance).mean(),
            "kl_loss": torch.stack([kl_loss(w.mu, w.logvar) for w in windows]).mean(),
            "mean_reaction_loss": face_state_distance(torch.zeros_like(listener), listener, **distance).mean(),
        }
        if batch.get("neighbour_3dmm") is not None:
            candidates, mask = self._candidates(batch, listener)
            parts["appropriate_loss"] = appropriate_reconstruction_loss(reaction, candidates, mask, **distance)[0]
        loss = parts["listener_loss"] + hp.kl_weight * parts["kl_loss"]
        self.log_dict({f"{stage}/{k}": v for k, v in parts.items()}, on_epoch=True, batch_size=batch_size,
                      sync_dist=True)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._evaluate(batch, "test")

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        speaker_video: torch.Tensor | None = None,
        speaker_audio: torch.Tensor | None = None,
        num_samples: int = 1,
        window: int | None = None,
        *,
        mode: str = "stream",
        num_frames: int | None = None,
        generator: torch.Generator | None = None,
        audio_context_frames: int | None = None,
        precision: str = "32-true",
        audio_feature_cache: bool = False,
    ) -> torch.Tensor:
        """(B, K, T, 58) reactions (mean-subtracted space), online, window by window.

        ``speaker_video`` (B, T, 3, H, W) in [-1, 1], or for ``speaker_motion="face_state"`` the
        speaker's mean-subtracted face state (B, T, 58) (the batch's ``speaker_3dmm``);
        ``speaker_audio`` (B, T*640) normalised 16 kHz. ``mode="stream"`` (default): constant cost per window; ``"prefix"``: RF's
        re-encoding of the whole prefix for each window. ``window`` defaults to ``eval_window``.
        ``precision="bf16-mixed"`` runs under bf16 autocast (about 2x faster on CPUs with
        AVX512-BF16), ``audio_feature_cache=True`` caches wav2vec 2.0's CNN features of past audio
        (an approximation with wav2vec2-base; docs/reactface.md measures both). Runs in eval mode
        and restores the previous mode.
        """
        if mode not in GENERATION_MODES:
            raise ValueError(f"mode must be one of {GENERATION_MODES}, got {mode!r}")
        with evaluation_mode(self):
            return generate_reactions(
                self.net, speaker_video, speaker_audio, num_samples=num_samples,
                window=window or self.hparams.eval_window, mode=mode, num_frames=num_frames,
                audio_context_frames=(self.hparams.audio_context_frames if audio_context_frames is None
                                      else audio_context_frames),
                generator=generator, precision=precision, audio_feature_cache=audio_feature_cache,
            )

    @torch.no_grad()
    def generate_from_batch(self, batch: Mapping[str, Any], num_samples: int = 1) -> torch.Tensor:
        """(B, K, T, 58) streaming reactions for a DataModule batch (``REACTMetricsCallback``)."""
        video, audio, frames = self._speaker_inputs(batch)
        return self.generate(video, audio, num_samples, num_frames=frames)

    @classmethod
    def add_generate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """``facezoo generate`` inputs: --speaker-video, --speaker-audio, rendering, --window, --mode."""
        add_react_generate_arguments(parser)
        parser.add_argument("--window", type=int, default=None, help="reaction window w (default: eval_window)")
        parser.add_argument("--mode", choices=GENERATION_MODES, default="stream",
                            help="stream (cached state, constant cost per window) or prefix (RF)")
        parser.add_argument("--precision", choices=GENERATION_PRECISIONS, default="32-true",
                            help="bf16-mixed: bf16 autocast, about 2x faster on CPUs with AVX512-BF16")
        parser.add_argument("--audio-feature-cache", action="store_true",
                            help="stream: cache wav2vec2's CNN features of past audio (docs/reactface.md)")

    def generate_to_files(self, args: argparse.Namespace, out_dir: Path) -> list[Path]:
        def run(video, audio, k):
            return self.generate(video, audio, k, window=getattr(args, "window", None),
                                 mode=getattr(args, "mode", "stream"),
                                 precision=getattr(args, "precision", "32-true"),
                                 audio_feature_cache=getattr(args, "audio_feature_cache", False))

        return react_generate_to_files(self, args, out_dir, run, needs_audio=self.net.use_audio)


def _batch_size(batch: Mapping[str, Any]) -> int:
    for key in ("listener_3dmm", "speaker_video", "speaker_audio"):
        if isinstance(batch.get(key), torch.Tensor):
            return int(batch[key].shape[0])
    return 1
