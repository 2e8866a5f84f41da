"""Reading a REACT DataModule batch in the REACT LightningModules (Trans-AE, ReactFace):
the speaker modalities a model was built with, and checked face-state targets, each missing or
misshapen key reported with the DataModule option that provides it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from datamodules.features.face_state import FACE_STATE_DIM


def reactface_adamw(params: Iterable) -> torch.optim.Optimizer:
    """RF README recipe: AdamW, lr 2e-5, weight decay 5e-4, betas (0.9, 0.999), constant LR."""
    return torch.optim.AdamW(params, lr=2e-5, weight_decay=5e-4)


def require(batch: Mapping[str, Any], key: str, why: str) -> Any:
    """``batch[key]``, or a ValueError naming the key, the keys present and ``why`` it is needed."""
    if key not in batch or batch[key] is None:
        present = ", ".join(sorted(str(k) for k in batch)) or "none"
        raise ValueError(f"batch has no '{key}' (keys: {present}). {why}.")
    return batch[key]


class REACTBatchMixin:
    """For LightningModules whose ``self.net`` has ``use_video``, ``use_audio``, ``motion_input`` and
    ``samples_per_frame``: the speaker inputs of a batch, checked targets, ``predict_step``, and
    ``configure_optimizers`` from the ``optimizer`` / ``lr_scheduler`` callables."""

    @property
    def reads_speaker_frames(self) -> bool:
        """Whether this model's input includes the speaker's video frames (a DataModule serving it
        needs ``load_video: true``); False for audio-only and ``speaker_motion="face_state"`` models."""
        return self.net.motion_input == "video"

    def _speaker_inputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor | None, torch.Tensor | None, int]:
        """Speaker motion and audio this model uses (None for a switched-off modality) and T, from
        the motion input, a face-state track or the audio. The motion input is ``speaker_video``
        (B, T, 3, H, W), or ``speaker_3dmm`` (B, T, 58) for ``speaker_motion="face_state"``."""
        name = type(self).__name__
        if not isinstance(batch, Mapping):
            raise ValueError(f"{name} expects a dict batch (REACT DataModule), got {type(batch).__name__}")
        video = audio = None
        if self.net.motion_input == "face_state":
            # the motion input is the speaker's tracked face state, which every REACT batch carries
            video = require(batch, "speaker_3dmm", f"{name}(speaker_motion='face_state') reads the speaker's "
                            "motion from its 3DMM coefficients (the DataModule's `speaker_3dmm`)")
        elif self.net.use_video:
            video = require(batch, "speaker_video", f"{name}(use_video=True) needs the speaker's frames: set "
                            "the DataModule's `load_video: true` or the model's `use_video: false`")
        if self.net.use_audio:
            audio = require(batch, "speaker_audio", f"{name}(use_audio=True) needs the speaker's 16 kHz "
                            "waveform: set the DataModule's `load_audio: true` or the model's `use_audio: false`")
        if video is not None:
            frames = video.shape[1]
        elif isinstance(batch.get("listener_3dmm"), torch.Tensor):
            frames = batch["listener_3dmm"].shape[1]
        elif isinstance(batch.get("speaker_3dmm"), torch.Tensor):
            frames = batch["speaker_3dmm"].shape[1]
        else:
            frames = audio.shape[-1] // self.net.samples_per_frame
        return video, audio, frames

    def _target(self, batch: Mapping[str, Any], key: str, batch_size: int, frames: int) -> torch.Tensor:
        """``batch[key]`` checked to be a (B, T, 58) mean-subtracted face-state tensor."""
        expected = (batch_size, frames, FACE_STATE_DIM)
        value = require(batch, key, f"{type(self).__name__}'s loss needs the mean-subtracted {key} {expected}")
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"batch['{key}'] must have shape {expected}, got {got}")
        return value

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``{"prediction": (B, K, T, 58), "index": (B,), "start": (B,)}`` with K =
        ``predict_num_samples`` (index/start when the batch has them)."""
        result = {"prediction": self.generate_from_batch(batch, self.hparams.predict_num_samples)}
        for key in ("index", "start"):
            if key in batch:
                result[key] = batch[key]
        return result

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]  # frozen wav2vec2 CNN excluded
        optimizer = self.optimizer(params)
        if self.lr_scheduler is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.lr_scheduler(optimizer), "monitor": "val/loss"}}
