"""facezoo: generating facial behaviour in dyadic interactions (ReactFace, CMM-Net, DyadGAN, Trans-AE).

Public API (imported lazily, so ``import zoo`` stays cheap):

* :func:`list_models` -> the published weights' names (``checkpoints/manifest.json``);
* :func:`load_model` -> a ready-to-generate LightningModule from a name or a weights file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule

__all__ = ["list_models", "load_model"]


def list_models() -> list[str]:
    """Names of the published weights in the manifest (``$FACEZOO_MANIFEST`` or the shipped one)."""
    from checkpoints.manifest import load_manifest

    return load_manifest().names()


def load_model(name_or_path: str, *, map_location: Any = "cpu") -> LightningModule:
    """The model of a manifest name (downloaded and verified on first use) or of a weights file
    (``.safetensors`` from ``facezoo export``, or a Lightning ``.ckpt``): eval mode, float32,
    ready to ``generate`` without a Trainer or a dataset."""
    from zoo.common.pretrained import load_model as _load_model

    return _load_model(name_or_path, map_location=map_location)
