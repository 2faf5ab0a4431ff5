"""lrp_ref: a pure-NumPy reference implementation of Layer-wise Relevance Propagation."""

from . import composites
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
from .rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WSquare, ZBox, Zero, ZPlus

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
    "Flat",
    "Flatten",
    "Gamma",
    "Identity",
    "Layer",
    "LayerRecord",
    "Ledger",
    "Pass",
    "ReLU",
    "Residual",
    "Rule",
    "Sequential",
    "WSquare",
    "ZBox",
    "ZPlus",
    "Zero",
    "composites",
    "load",
    "save",
]
