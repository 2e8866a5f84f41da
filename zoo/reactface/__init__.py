"""ReactFace (Luo et al., 2023): multiple appropriate listener reactions, online, window by window."""

from zoo.reactface.module import ReactFace, reactface_adamw
from zoo.reactface.nets import ReactFaceNet, generate_reactions

__all__ = ["ReactFace", "ReactFaceNet", "generate_reactions", "reactface_adamw"]
