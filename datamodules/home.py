"""Where facezoo keeps what it generates or downloads: ``$FACEZOO_HOME`` (default ``~/.cache/facezoo``).

Below it: ``data/`` (embedded-world datasets), ``cache/`` (decoded frames, preprocessing),
``weights/`` (feature networks, MediaPipe models, published checkpoints).
"""

from __future__ import annotations

import os
from pathlib import Path


def facezoo_home() -> Path:
    """``$FACEZOO_HOME`` (an empty value counts as unset), default ``~/.cache/facezoo``."""
    return Path(os.environ.get("FACEZOO_HOME") or "~/.cache/facezoo").expanduser()
