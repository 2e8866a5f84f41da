"""``evaluation_mode``: run a block with a module in eval mode, then give it back in the mode it had.

Generation and evaluation helpers are called from training loops (callbacks, validation) as well as
from scripts; switching the caller's module to eval for good would change its BatchNorm and
dropout behaviour in the next training step, so each call restores the mode, even on an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

__all__ = ["evaluation_mode"]


@contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module.eval()`` inside the block; its train / eval mode as before on the way out."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
