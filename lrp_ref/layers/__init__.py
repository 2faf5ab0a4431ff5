"""Layers: one file per layer family, each with forward, backward and relevance."""

from .base import LAYER_TYPES, Container, Layer
from .batchnorm import BatchNorm, BatchNorm1d, BatchNorm2d
from .dense import Dense
from .elementwise import Flatten, Identity, ReLU
from .linear import EXPLICIT_MAX_BYTES, LinearLayer
from .residual import Residual

__all__ = [
    "EXPLICIT_MAX_BYTES",
    "LAYER_TYPES",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Container",
    "Dense",
    "Flatten",
    "Identity",
    "Layer",
    "LinearLayer",
    "ReLU",
    "Residual",
]
