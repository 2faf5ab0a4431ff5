"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation.

The package tree and what each subpackage is for: docs/architecture.md.
"""

import sys

from ._moved import MovedModules
from .audit import LayerRecord, Ledger
from .graph import Graph
from .io import load, save
from .layers import (
    ELU,
    GELU,
    LSTM,
    AdaptiveAvgPool2d,
    Add,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Bidirectional,
    Concat,
    Conv2d,
    Dense,
    Embedding,
    Flatten,
    Hardsigmoid,
    Hardswish,
    Identity,
    Layer,
    LeakyReLU,
    MaxPool2d,
    Mish,
    Mul,
    ReLU,
    ReLU6,
    Residual,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .network import Explanation, Network, Sequential
from .rules import (
    AlphaBeta,
    AlphaBetaEq7,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    Pass,
    Rule,
    WSquare,
    ZBox,
    Zero,
    ZPlus,
    canonize,
    composites,
)

__version__ = "0.1.0"

if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(MovedModules())

__all__ = [
    "ELU",
    "GELU",
    "Hardsigmoid",
    "Hardswish",
    "LeakyReLU",
    "Mish",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "Softplus",
    "Tanh",
    "LSTM",
    "AdaptiveAvgPool2d",
    "Add",
    "AlphaBeta",
    "AlphaBetaEq7",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bidirectional",
    "Concat",
    "Conv2d",
    "Dense",
    "Embedding",
    "Epsilon",
    "Explanation",
    "Flat",
    "Flatten",
    "Gamma",
    "GeneralizedGamma",
    "Graph",
    "Identity",
    "Layer",
    "LayerRecord",
    "Ledger",
    "MaxPool2d",
    "Mul",
    "Network",
    "Pass",
    "ReLU",
    "Residual",
    "Rule",
    "Sequential",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "canonize",
    "composites",
    "load",
    "save",
]
