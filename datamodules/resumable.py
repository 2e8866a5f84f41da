"""Training data order that a run stopped mid-epoch can resume exactly.

Lightning restores a training DataLoader mid-epoch only when the loader is *stateful*
(``state_dict`` / ``load_state_dict``, PL ``loops/training_epoch_loop.py``); otherwise it
restarts the sampler and the resumed run sees different batches than an uninterrupted one.

:class:`CropSampler` makes the whole epoch (shuffled order and the random crop start of
every clip) a pure function of ``(seed, epoch)``, shards it over DDP ranks like
``DistributedSampler`` (whose subclass it is, so Lightning neither replaces it nor forgets to
call ``set_epoch``), and yields ``(index, start)`` pairs. :class:`ResumableDataLoader` counts the
batches it has handed out and, after ``load_state_dict``, skips exactly those at the sampler
level, so no skipped clip is read from disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class CropSampler(DistributedSampler):
    """Shuffled ``(index, crop_start)`` pairs, deterministic given ``(seed, epoch)``.

    Args:
        dataset: the dataset to index (only its length is used).
        lengths: usable frames of each item; crop starts are uniform in ``[0, length - crop]``.
        crop: crop length in frames.
        shuffle, seed, drop_last: as ``DistributedSampler``.
        num_replicas, rank: default to the initialised process group, else a single process.
    """

    def __init__(self, dataset: Dataset, lengths: Sequence[int], crop: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, num_replicas: int | None = None,
                 rank: int | None = None) -> None:
        if len(lengths) != len(dataset):
            raise ValueError(f"lengths has {len(lengths)} entries for a dataset of {len(dataset)} items")
        too_short = [i for i, n in enumerate(lengths) if n < crop]
        if too_short:
            raise ValueError(f"items {too_short[:5]} have fewer than crop={crop} frames")
        if num_replicas is None:
            num_replicas = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if rank is None:
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.crop = crop
        self.skip = 0  # samples of this rank to skip once, set when resuming mid-epoch

    def crop_starts(self, epoch: int) -> torch.Tensor:
        """The crop start of every item in ``epoch`` (the same on every rank)."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 1)
        span = self.lengths - self.crop + 1
        return (torch.rand(len(span), generator=generator) * span).long()

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        indices = list(super().__iter__())
        starts = self.crop_starts(self.epoch)
        skip, self.skip = self.skip, 0
        return iter([(i, int(starts[i])) for i in indices[skip:]])


class ResumableDataLoader(DataLoader):
    """A DataLoader over a :class:`CropSampler` whose position Lightning saves in checkpoints."""

    def __init__(self, dataset: Dataset, sampler: CropSampler, **kwargs: Any) -> None:
        if not isinstance(sampler, CropSampler):
            raise TypeError(f"ResumableDataLoader needs a CropSampler, got {type(sampler).__name__}")
        # Its own generator: creating an iterator then draws worker seeds from it, not from the
        # global RNG, so a resumed run's global random stream (dropout, ...) is not shifted.
        kwargs.setdefault("generator", torch.Generator().manual_seed(sampler.seed))
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._batches = 0
        self._resume_batches = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self._batches, self._resume_batches = self._resume_batches, 0
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.sampler.seed), "epoch": int(self.sampler.epoch), "batches": self._batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.seed = int(state["seed"])
        self.sampler.set_epoch(int(state["epoch"]))
        self._resume_batches = int(state["batches"])
        self.sampler.skip = self._resume_batches * int(self.batch_size or 1)


def training_loader(dataset: Dataset, lengths: Sequence[int], crop: int, batch_size: int, *,
                    drop_last: bool = False, **loader_kwargs: Any) -> ResumableDataLoader:
    """The zoo's training loader: shuffled ``(index, crop start)`` pairs that depend only on
    ``(seed, epoch)`` (seed = the process's ``torch.initial_seed()``, i.e. ``seed_everything``),
    with its position checkpointed, so a run stopped mid-epoch resumes exactly."""
    sampler = CropSampler(dataset, lengths=lengths, crop=crop, shuffle=True, seed=torch.initial_seed() % 2**31)
    return ResumableDataLoader(dataset, sampler=sampler, batch_size=batch_size, drop_last=drop_last, **loader_kwargs)


class SplitLoaders:
    """Mixin for DataModules with ``_loader(split, train)``: the four Lightning loader hooks
    (predict serves the test split)."""

    def _loader(self, split: str, train: bool) -> DataLoader:  # pragma: no cover - implemented by subclasses
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
