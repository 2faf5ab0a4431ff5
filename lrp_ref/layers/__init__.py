"""Layers: one file per layer family, each with forward, backward and relevance."""

from ..engine.linear import EXPLICIT_MAX_BYTES
from .attention import MatMul, Product, Softmax
from .base import LAYER_TYPES, Container, Layer
from .batchnorm import BatchNorm, BatchNorm1d, BatchNorm2d
from .bidirectional import Bidirectional
from .conv import Conv2d
from .dense import Dense
from .elementwise import Flatten, Identity, ReLU
from .embedding import Embedding
from .linear import LinearLayer
from .lstm import LSTM
from .merge import Add, Concat, Merge, Mul
from .normalization import LayerNorm, RMSNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .residual import Residual

__all__ = [
    "EXPLICIT_MAX_BYTES",
    "LAYER_TYPES",
    "LSTM",
    "AdaptiveAvgPool2d",
    "Add",
    "AvgPool2d",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bidirectional",
    "Concat",
    "Container",
    "Conv2d",
    "Dense",
    "Embedding",
    "Flatten",
    "Identity",
    "Layer",
    "LayerNorm",
    "LinearLayer",
    "MatMul",
    "MaxPool2d",
    "Merge",
    "Mul",
    "Product",
    "RMSNorm",
    "ReLU",
    "Residual",
    "Softmax",
]
