"""CMM-Net (Wang et al., "Every Smile is Unique", CVPR 2018) and the CRA-Net baseline."""

from zoo.cmmnet.module import CMMNet, pix2pix_adam

__all__ = ["CMMNet", "pix2pix_adam"]
