"""Layers: one file per layer family, each with forward, backward and relevance."""

from .base import LAYER_TYPES, Container, Layer
from .batchnorm import BatchNorm, BatchNorm1d, BatchNorm2d
from .bidirectional import Bidirectional
from .dense import Dense
from .elementwise import Flatten, Identity, ReLU
from .embedding import Embedding
from .linear import EXPLICIT_MAX_BYTES, LinearLayer
from .lstm import LSTM
from .residual import Residual

__all__ = [
    "EXPLICIT_MAX_BYTES",
    "LAYER_TYPES",
    "LSTM",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bidirectional",
    "Container",
    "Dense",
    "Embedding",
    "Flatten",
    "Identity",
    "Layer",
    "LinearLayer",
    "ReLU",
    "Residual",
]
