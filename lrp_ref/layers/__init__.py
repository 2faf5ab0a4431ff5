"""Layers: one file per layer family, each with forward, backward and relevance."""

from .base import LAYER_TYPES, Container, Layer
from .dense import Dense
from .elementwise import Flatten, Identity, ReLU
from .linear import EXPLICIT_MAX_BYTES, LinearLayer

__all__ = [
    "EXPLICIT_MAX_BYTES",
    "LAYER_TYPES",
    "Container",
    "Dense",
    "Flatten",
    "Identity",
    "Layer",
    "LinearLayer",
    "ReLU",
]
