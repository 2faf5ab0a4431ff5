"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation."""

from .audit import LayerRecord, Ledger
from .io import load, save
from .layers import (
    LSTM,
    BatchNorm1d,
    BatchNorm2d,
    Bidirectional,
    Dense,
    Embedding,
    Flatten,
    Identity,
    Layer,
    ReLU,
    Residual,
)
from .network import Explanation, Sequential
from .rules import AlphaBeta, Epsilon, Pass, Rule, Zero

__version__ = "0.1.0"

__all__ = [
    "LSTM",
    "AlphaBeta",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bidirectional",
    "Dense",
    "Embedding",
    "Epsilon",
    "Explanation",
    "Flatten",
    "Identity",
    "Layer",
    "LayerRecord",
    "Ledger",
    "Pass",
    "ReLU",
    "Residual",
    "Rule",
    "Sequential",
    "Zero",
    "load",
    "save",
]
