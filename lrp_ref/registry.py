"""The layer types a model file may name: one explicit table.

``lrp_ref.load`` builds only these classes, looked up by their name in the file;
a file never names code. Defining a subclass registers nothing, so a user's class
named ``Dense`` never changes what ``load`` builds, and abstract bases
(``Layer``, ``Container``, ``LinearLayer``, ``PassThrough``, ``Activation``,
``BatchNorm``) are
not loadable. ``astype`` and the canonizers' copies keep each layer's own class
(the config carries it in memory, :class:`lrp_ref.layers.base.TypeName`), and
``save`` refuses a layer whose class is not in this table. A new layer type of
lrp_ref becomes loadable by adding it here.
"""

from __future__ import annotations

from . import layers
from .graph import Graph
from .layers.base import LAYER_TYPES, register_layer_types
from .multihead_attention import MultiheadAttention
from .network import Sequential

register_layer_types([
    # containers
    Sequential, Graph, layers.Residual, layers.Bidirectional,
    # merge nodes of a Graph
    layers.Add, layers.Concat, layers.Mul,
    # a signal and a constant
    layers.AddConstant, layers.Scale, layers.ConcatConstant,
    # transformers (AttnLRP, CP-LRP): products of activations, softmax, normalisation
    layers.MatMul, layers.Product, layers.Softmax, layers.LayerNorm, layers.RMSNorm,
    MultiheadAttention,
    # linear layers: every linear rule
    layers.Dense, layers.Conv1d, layers.Conv2d, layers.ConvTranspose2d,
    layers.AvgPool1d, layers.AvgPool2d, layers.AdaptiveAvgPool2d, layers.Upsample,
    layers.BatchNorm1d,
    layers.BatchNorm2d,
    # no rule
    layers.ReLU, layers.Flatten, layers.Identity, layers.MaxPool1d, layers.MaxPool2d,
    layers.AdaptiveMaxPool2d,
    # element-wise non-linearities: relevance passes unchanged
    layers.LeakyReLU, layers.ELU, layers.GELU, layers.SiLU, layers.Hardswish,
    layers.Hardsigmoid, layers.ReLU6, layers.Tanh, layers.Sigmoid, layers.Softplus, layers.Mish,
    # shape only: relevance moves with the elements
    layers.Reshape, layers.Permute, layers.Transpose, layers.ChannelShuffle, layers.Slice,
    layers.Chunk,
    # token sequences
    layers.Embedding, layers.PositionalEmbedding, layers.LSTM,
])

__all__ = ["LAYER_TYPES"]
