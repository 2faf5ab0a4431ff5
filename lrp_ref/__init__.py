"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation.

The package tree and what each subpackage is for: docs/architecture.md.
"""

import sys

from ._moved import MovedModules
from .audit import LayerRecord, Ledger
from .graph import Graph
from .io import load, save
from .layers import (
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
    Identity,
    Layer,
    LayerNorm,
    MatMul,
    MaxPool2d,
    Mul,
    Product,
    ReLU,
    Residual,
    RMSNorm,
    Softmax,
)
from .network import Explanation, Network, Sequential
from .rules import (
    AlphaBeta,
    AlphaBetaEq7,
    Epsilon,
    Flat,
    Gamma,
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
    "Graph",
    "Identity",
    "Layer",
    "LayerNorm",
    "LayerRecord",
    "Ledger",
    "MatMul",
    "MaxPool2d",
    "Mul",
    "Network",
    "Pass",
    "Product",
    "RMSNorm",
    "ReLU",
    "Residual",
    "Rule",
    "Sequential",
    "Softmax",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "canonize",
    "composites",
    "load",
    "save",
]
