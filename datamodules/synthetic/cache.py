"""Generate an embedded-world dataset once and reuse it: ``$FACEZOO_HOME/data/<name>-<hash>``.

The folder name hashes the generator version and the settings, so a change to either makes a
new dataset; concurrent callers (DDP ranks, DataLoader workers, two runs) wait on a file lock
instead of generating twice, and a dataset counts as complete only once its
``facezoo_world.json`` exists (the writers rename the whole folder into place at the end).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from datamodules.home import facezoo_home, file_lock

COMPLETE_MARKER = "facezoo_world.json"


def world_key(version: str, settings: dict) -> str:
    blob = json.dumps({"version": version, **settings}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def cached_world(name: str, version: str, write: Callable[..., Path], settings: dict,
                 cache_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """``write(root, progress=progress, **settings)`` once into ``<cache_dir>/<name>-<key>``
    (default ``cache_dir``: ``$FACEZOO_HOME/data``), then return that folder."""
    base = Path(cache_dir) if cache_dir is not None else facezoo_home() / "data"
    root = base / f"{name}-{world_key(version, settings)}"
    if (root / COMPLETE_MARKER).is_file():
        return root
    with file_lock(base / f".{root.name}.lock"):
        if not (root / COMPLETE_MARKER).is_file():
            if root.exists():
                shutil.rmtree(root)
            write(root, progress=progress, **settings)
    return root
