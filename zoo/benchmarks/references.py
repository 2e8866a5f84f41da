"""The naive references of the REACT 2023 baseline paper (arXiv 2306.06583), as B23
``run_baselines.py::get_baseline`` defines them: each turns the test split into K "generated"
reactions per speaker, scored like a model.

* ``ground_truth`` (B23 "GT"): the speaker's real listener, K times;
* ``random`` (B23 "Random"): i.i.d. uniform values per frame and channel. B23 draws U(0, 1), the
  range of its 25-d emotion features; on another feature space (the 58-d face state) we draw from
  each channel's range over the training split, the same idea ("uniform over what the feature
  can be") in units the feature actually has;
* ``mime`` (B23 "Mime"): the speaker's own behaviour as the listener's, K times, no lag;
* ``mean_sequence`` (B23 "MeanSeq"): per frame, the mean over every training person-clip (B23
  averages both the speakers' and the listeners' tracks of the training split), K times;
* ``mean_frame`` (B23 "MeanFr"): the mean of ``mean_sequence`` over time, repeated for each frame.

All functions take and return torch tensors: ``listeners``/``speakers`` (N, T, D), training
tracks (M, T, D), result (N, K, T, D).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import repeat

__all__ = [
    "REFERENCES",
    "ReferenceData",
    "ground_truth",
    "mean_frame",
    "mean_sequence",
    "mime",
    "random_uniform",
    "reference_predictions",
    "training_range",
]


def _check_series(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name}: expected a (N, T, D) tensor, got {got}")


def _check_k(num_samples: int) -> None:
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected a positive integer, got {num_samples!r}")


def ground_truth(listeners: torch.Tensor, num_samples: int) -> torch.Tensor:
    """B23 "GT": the real listener reaction repeated K times -> (N, K, T, D)."""
    _check_series("listeners", listeners)
    _check_k(num_samples)
    return repeat(listeners, "n t d -> n k t d", k=num_samples).clone()


def mime(speakers: torch.Tensor, num_samples: int) -> torch.Tensor:
    """B23 "Mime": the speaker's own behaviour as the reaction, K times, no lag -> (N, K, T, D)."""
    _check_series("speakers", speakers)
    _check_k(num_samples)
    return repeat(speakers, "n t d -> n k t d", k=num_samples).clone()


def _check_training(training: torch.Tensor, frames: int) -> None:
    _check_series("training", training)
    if training.shape[0] < 1:
        raise ValueError("training: needs at least one training track")
    if training.shape[1] < frames:
        raise ValueError(f"training: tracks have {training.shape[1]} frames, fewer than the {frames} evaluated")


def mean_sequence(training: torch.Tensor, num_samples: int, num_speakers: int, frames: int) -> torch.Tensor:
    """B23 "MeanSeq": frame t of every reaction is the mean over the training tracks of their
    frame t (tracks: (M, >=T, D), speakers and listeners alike) -> (N, K, T, D)."""
    _check_k(num_samples)
    _check_training(training, frames)
    seq = training[:, :frames].double().mean(0).to(training.dtype)
    return repeat(seq, "t d -> n k t d", n=num_speakers, k=num_samples).clone()


def mean_frame(training: torch.Tensor, num_samples: int, num_speakers: int, frames: int) -> torch.Tensor:
    """B23 "MeanFr": one frame, the mean over the training tracks and their first T frames,
    repeated over time -> (N, K, T, D)."""
    _check_k(num_samples)
    _check_training(training, frames)
    frame = training[:, :frames].double().mean((0, 1)).to(training.dtype)
    return repeat(frame, "d -> n k t d", n=num_speakers, k=num_samples, t=frames).clone()


def training_range(training: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (min, max) over every frame of the training tracks (M, T, D) -> two (D,)."""
    _check_series("training", training)
    flat = training.reshape(-1, training.shape[-1])
    return flat.min(0).values, flat.max(0).values


def random_uniform(shape: tuple[int, int, int, int], low: torch.Tensor | float = 0.0,
                   high: torch.Tensor | float = 1.0, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """B23 "Random": i.i.d. U(low, high) per element of an (N, K, T, D) tensor; ``low``/``high``
    are scalars (B23: 0 and 1) or per-channel (D,) tensors."""
    if len(shape) != 4 or any(int(s) < 1 for s in shape):
        raise ValueError(f"shape: expected (N, K, T, D) with positive sizes, got {tuple(shape)}")
    low_t = torch.as_tensor(low, dtype=torch.float32)
    high_t = torch.as_tensor(high, dtype=torch.float32)
    if low_t.ndim not in (0, 1) or (low_t.ndim == 1 and low_t.shape[0] != shape[-1]) or low_t.shape != high_t.shape:
        raise ValueError(f"low/high: expected scalars or ({shape[-1]},) tensors of one shape, "
                         f"got {tuple(low_t.shape)} and {tuple(high_t.shape)}")
    if bool((high_t < low_t).any()):
        raise ValueError("low/high: every high must be >= its low")
    unit = torch.rand(tuple(int(s) for s in shape), generator=generator, dtype=torch.float32)
    return low_t + unit * (high_t - low_t)


class ReferenceData:
    """What the references need from a split: its listeners and speakers (N, T, D) and the
    training split's tracks (M, >=T, D); ``uniform_range`` overrides the random reference's
    range (B23's (0, 1) for the 25-d emotion vector)."""

    def __init__(self, listeners: torch.Tensor, speakers: torch.Tensor, training: torch.Tensor,
                 uniform_range: tuple[float, float] | None = None) -> None:
        _check_series("listeners", listeners)
        _check_series("speakers", speakers)
        if listeners.shape != speakers.shape:
            raise ValueError(f"listeners {tuple(listeners.shape)} and speakers {tuple(speakers.shape)} must match")
        _check_training(training, listeners.shape[1])
        if training.shape[-1] != listeners.shape[-1]:
            raise ValueError(f"training: expected D={listeners.shape[-1]} channels, got {training.shape[-1]}")
        self.listeners, self.speakers, self.training = listeners, speakers, training
        self.uniform_range = uniform_range


def _random(data: ReferenceData, k: int, seed: int) -> torch.Tensor:
    n, t, d = data.listeners.shape
    low, high = data.uniform_range if data.uniform_range is not None else training_range(data.training)
    return random_uniform((n, k, t, d), low, high, generator=torch.Generator().manual_seed(seed))


# name -> (ReferenceData, K, seed) -> (N, K, T, D); the order is the leaderboard's.
REFERENCES: dict[str, Callable[[ReferenceData, int, int], torch.Tensor]] = {
    "ground_truth": lambda data, k, seed: ground_truth(data.listeners, k),
    "random": _random,
    "mime": lambda data, k, seed: mime(data.speakers, k),
    "mean_sequence": lambda data, k, seed: mean_sequence(data.training, k, *data.listeners.shape[:2]),
    "mean_frame": lambda data, k, seed: mean_frame(data.training, k, *data.listeners.shape[:2]),
}


def reference_predictions(name: str, data: ReferenceData, num_samples: int, seed: int = 0) -> torch.Tensor:
    """The (N, K, T, D) reactions of reference ``name`` (one of :data:`REFERENCES`)."""
    if name not in REFERENCES:
        raise ValueError(f"reference: expected one of {list(REFERENCES)}, got {name!r}")
    return REFERENCES[name](data, num_samples, seed)
