"""Layers: one file per layer family, each with forward, backward and relevance."""

from ..engine.linear import EXPLICIT_MAX_BYTES
from .activations import (
    ELU,
    GELU,
    Activation,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    Mish,
    ReLU6,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .attention import MatMul, Product, Softmax
from .base import LAYER_TYPES, Container, Layer
from .batchnorm import BatchNorm, BatchNorm1d, BatchNorm2d
from .bidirectional import Bidirectional
from .constant import AddConstant, ConcatConstant, Scale
from .conv import Conv1d, Conv2d, Convolution
from .conv_transpose import ConvTranspose2d
from .dense import Dense
from .elementwise import Flatten, Identity, ReLU
from .embedding import Embedding, PositionalEmbedding
from .linear import LinearLayer
from .lstm import LSTM
from .merge import Add, Concat, Merge, Mul
from .normalization import LayerNorm, RMSNorm
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .pooling1d import AvgPool1d, MaxPool1d
from .residual import Residual
from .shape import ChannelShuffle, Chunk, Permute, Reshape, Slice, Transpose
from .upsample import Upsample

__all__ = [
    "ELU",
    "GELU",
    "Activation",
    "Hardsigmoid",
    "Hardswish",
    "LeakyReLU",
    "Mish",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "EXPLICIT_MAX_BYTES",
    "LAYER_TYPES",
    "LSTM",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "Add",
    "AddConstant",
    "ConcatConstant",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bidirectional",
    "ChannelShuffle",
    "Chunk",
    "Concat",
    "Container",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "Convolution",
    "Dense",
    "Embedding",
    "PositionalEmbedding",
    "Flatten",
    "Identity",
    "Layer",
    "LayerNorm",
    "LinearLayer",
    "MaxPool1d",
    "MaxPool2d",
    "Merge",
    "Mul",
    "Permute",
    "MatMul",
    "Product",
    "RMSNorm",
    "ReLU",
    "Reshape",
    "Residual",
    "Scale",
    "Slice",
    "Transpose",
    "Upsample",
    "Softmax",
]
