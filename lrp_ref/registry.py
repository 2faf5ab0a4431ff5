"""The layer types a model file may name: one explicit table.

``lrp_ref.load`` builds only these classes, looked up by their name in the file;
a file never names code. Defining a subclass registers nothing, so a user's class
named ``Dense`` never changes what ``load`` builds, and abstract bases
(``Layer``, ``Container``, ``LinearLayer``, ``PassThrough``, ``BatchNorm``) are
not loadable. ``astype`` and the canonizers' copies keep each layer's own class
(the config carries it in memory, :class:`lrp_ref.layers.base.TypeName`), and
``save`` refuses a layer whose class is not in this table.
"""

from __future__ import annotations

from .layers import (
    LSTM,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Bidirectional,
    Conv2d,
    Dense,
    Embedding,
    Flatten,
    Identity,
    MaxPool2d,
    ReLU,
    Residual,
)
from .layers.base import LAYER_TYPES, register_layer_types
from .network import Sequential

register_layer_types([
    Sequential, Residual, Bidirectional,                   # containers
    Dense, Conv2d, AvgPool2d, BatchNorm1d, BatchNorm2d,    # linear layers: every linear rule
    ReLU, Flatten, Identity, MaxPool2d,                    # no rule
    Embedding, LSTM,                                       # token sequences
])

__all__ = ["LAYER_TYPES"]
