"""The DataModule's 3DMM mean, kept in the model's buffers so checkpoints carry it.

REACT models predict mean-subtracted face states (B23/RF subtract FaceVerse's ``mean_face``);
``facezoo generate`` and rendering add the mean back, so a checkpoint must know it without
the training data at hand.
"""

from __future__ import annotations

import torch

from datamodules.features.face_state import FACE_STATE_DIM


class StoresFaceMean:
    """Mixin for LightningModules: call :meth:`register_face_mean` in ``__init__``; on
    ``setup("fit")`` the trainer's DataModule ``face_mean`` (58,) is copied in."""

    def register_face_mean(self) -> None:
        self.register_buffer("face_mean", torch.zeros(FACE_STATE_DIM))
        self.register_buffer("face_mean_known", torch.zeros((), dtype=torch.bool))

    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and datamodule is not None and hasattr(datamodule, "face_mean"):
            mean = torch.as_tensor(datamodule.face_mean, dtype=torch.float32).reshape(-1)
            if mean.shape == (FACE_STATE_DIM,):
                self.face_mean.copy_(mean)
                self.face_mean_known.fill_(True)
