"""Random-number state in checkpoints, so a resumed run continues exactly where it stopped.

Lightning checkpoints hold the model, optimisers, schedulers and loop progress, but not the
global RNG streams (dropout masks, wav2vec2's SpecAugment, sampling noise). With this callback
in ``trainer.callbacks`` a run stopped mid-epoch and resumed with ``--ckpt_path last.ckpt``
draws the same random numbers as an uninterrupted run (together with the DataModules'
resumable training loaders, see ``datamodules/resumable.py``).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback


class RNGStateCheckpoint(Callback):
    """Save the Python, NumPy and torch (CPU and CUDA) RNG states of this rank in checkpoints.

    States are stored as tensors and plain tuples so checkpoints still load with
    ``torch.load(weights_only=True)``.
    """

    def state_dict(self) -> dict[str, Any]:
        version, mt_state, gauss = random.getstate()
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state: dict[str, Any] = {
            "python": (version, torch.tensor(mt_state, dtype=torch.int64), gauss),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        version, mt_state, gauss = state_dict["python"]
        random.setstate((version, tuple(int(x) for x in mt_state.tolist()), gauss))
        kind, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
