"""DataModules for the real datasets' published layouts, their features, and the embedded world.

Attributes are imported lazily so light entry points (``facezoo make-data``) do not pay for
importing Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"REACTDataModule": "datamodules.react"}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'datamodules' has no attribute {name!r}")
