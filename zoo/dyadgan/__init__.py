"""DyadGAN-style two-stage generation (Interactive GAN, arXiv 1801.09092): see ``module.py``."""

from zoo.dyadgan.dictionary import AffectShapeDictionary
from zoo.dyadgan.module import DyadGAN

__all__ = ["DyadGAN", "AffectShapeDictionary"]
