"""Where facezoo keeps what it generates or downloads: ``$FACEZOO_HOME`` (default ``~/.cache/facezoo``).

Below it: ``data/`` (embedded-world datasets), ``cache/`` (decoded frames, preprocessing),
``weights/`` (feature networks, MediaPipe models, published checkpoints).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def facezoo_home() -> Path:
    """``$FACEZOO_HOME`` (an empty value counts as unset), default ``~/.cache/facezoo``."""
    return Path(os.environ.get("FACEZOO_HOME") or "~/.cache/facezoo").expanduser()


def dataset_root(root: str | os.PathLike | None, expected: str, embedded: Callable[[], Path]) -> Path:
    """The dataset a DataModule reads: ``root`` (a real copy; an error names it and what was
    ``expected`` there) or, when None, ``embedded()``: the embedded world, generated on first use."""
    if root is None:
        return Path(embedded())
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data.root {path}: not a directory (expected {expected})")
    return path


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created with its folder), so concurrent processes that
    generate or download the same thing under ``$FACEZOO_HOME`` wait instead of racing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
