"""Published weights: the manifest (:mod:`checkpoints.manifest`), the resolver that downloads,
verifies and caches them (:mod:`checkpoints.resolve`), slim safetensors files
(:mod:`checkpoints.weights`), ``facezoo download`` (:mod:`checkpoints.cli`), ``facezoo export``
(:mod:`checkpoints.export`) and ``python -m checkpoints.build`` (the shipped demo weights).
See ``docs/checkpoints.md``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["weights_sha256"]


def weights_sha256(name: str | os.PathLike) -> str:
    """sha256 of the weights file ``name`` resolves to: a manifest name's listed (and, on every
    fetch, verified) hash, or the hash of a local weights file."""
    from checkpoints.manifest import load_manifest
    from checkpoints.resolve import sha256_file

    path = Path(name).expanduser()
    if isinstance(name, os.PathLike) or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such weights file")
        return sha256_file(path)
    return load_manifest().get(str(name)).sha256
