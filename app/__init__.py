"""Maskscope: see exactly what your SFT model is trained on."""

__version__ = "0.1.0"
