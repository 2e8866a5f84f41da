"""Trans-AE, the deterministic transformer auto-encoder baseline of ReactFace (paper Table 2)."""

from zoo.transae.module import TransAE, reactface_adamw
from zoo.transae.nets import TransAENet

__all__ = ["TransAE", "TransAENet", "reactface_adamw"]
