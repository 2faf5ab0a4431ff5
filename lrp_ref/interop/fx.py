"""Whole-model import: any ``torch.nn.Module`` traced with ``torch.fx`` into a :class:`Graph`.

:func:`lrp_ref.interop.torch.from_torch` calls :func:`from_fx` for every module
that is not an ``nn.Sequential``. ``torch.fx.symbolic_trace`` records the
module's forward as a graph of nodes, and each node becomes one node of an
lrp_ref :class:`~lrp_ref.Graph`, in the traced order:

==================================================  =========================================
fx node                                             lrp_ref node
==================================================  =========================================
``placeholder`` (the forward's argument)            the graph's input
``call_module`` of a ``MultiheadAttention``,        :class:`~lrp_ref.MultiheadAttention` /
``TransformerEncoderLayer`` or ``...Encoder``       a Graph (lrp_ref.interop.torch_transformer),
(``mha(x, x, x, attn_mask=self.buffer)``)           with the call's masks (constants only)
``mha(...)[0]`` (the output of the tuple)           no node: the attention's node itself
``call_module`` of a leaf module                    that module converted as in ``from_torch``
                                                    (Linear, Conv2d, ReLU, pools, BatchNorm,
                                                    AdaptiveAvgPool2d, Flatten, Dropout, ...)
``operator.add``, ``torch.add``, ``Tensor.add``     :class:`~lrp_ref.Add` (``residual_epsilon``)
... of a tensor and a constant (``x + 1``, a        :class:`~lrp_ref.AddConstant` (the
parameter or buffer: ``get_attr``)                  constant as a bias; ``residual_epsilon``)
``x - c``, ``torch.sub``, ``Tensor.sub`` (``c``    :class:`~lrp_ref.AddConstant` of ``-c``
a constant as above)
``x / c``, ``torch.div``, ``Tensor.div``            :class:`~lrp_ref.Scale` of ``1 / c``
``operator.mul``, ``torch.mul``, ``Tensor.mul``     :class:`~lrp_ref.Mul` ``(signal, gate)``,
of a signal and a gate                              the gate the factor made by a sigmoid or
                                                    hardsigmoid (below)
... of a tensor and a constant or a parameter       :class:`~lrp_ref.Scale`
``torch.cat``                                       :class:`~lrp_ref.Concat` (its ``dim``; of
                                                    one tensor: that tensor, no node)
``torch.cat([c, x], dim)`` (or ``[x, c]``), ``c``   :class:`~lrp_ref.ConcatConstant` (a class
a parameter of batch size 1 expanded over the       token: ``c``'s positions absorbed as a
batch, ``c.expand(x.shape[0], -1, ...)``            bias)
``torch.flatten(x, 1)``, ``x.flatten(1)``           :class:`~lrp_ref.Flatten`
``x.view(...)``, ``x.reshape(...)``,                :class:`~lrp_ref.Reshape` (sizes below)
``torch.reshape``
``x.permute(...)``, ``torch.permute``               :class:`~lrp_ref.Permute`
``x.transpose(d0, d1)``, ``torch.transpose``        :class:`~lrp_ref.Transpose`
``x.contiguous()``                                  :class:`~lrp_ref.Identity`
``x[:, 1:3, ..., 0]`` (``operator.getitem``)        :class:`~lrp_ref.Slice`
``x.chunk(n, dim)``, ``torch.chunk`` and the        :class:`~lrp_ref.Chunk`, one node per
``getitem`` of its pieces                           piece used (named by that getitem)
``x.split(s, dim)``, ``torch.split`` (``s`` an int  :class:`~lrp_ref.Slice`, one node per
or a list) and the ``getitem`` of its pieces        piece used (named by that getitem)
torchvision's ``channel_shuffle`` (ShuffleNet)      :class:`~lrp_ref.ChannelShuffle`
torchvision's ``stochastic_depth`` in eval mode     :class:`~lrp_ref.Identity` (it returns its
(EfficientNet, ConvNeXt)                            input; ``training=True`` is refused)
``F.relu``, ``torch.relu``, ``x.relu()``            :class:`~lrp_ref.ReLU`
``torch.sigmoid``, ``torch.tanh`` (and methods),    :class:`~lrp_ref.Sigmoid`, ``Tanh``,
``F.gelu``, ``F.silu``, ``F.hardsigmoid``,          ... the layer of that activation, with the
``F.hardswish``, ``F.relu6``, ``F.leaky_relu``,     call's parameters (``approximate``,
``F.elu``, ``F.softplus``, ``F.mish``               ``negative_slope``, ``alpha``, ``beta``,
                                                    ``threshold``; ``inplace`` is ignored)
``F.max_pool2d``, ``F.avg_pool2d``                  :class:`~lrp_ref.MaxPool2d`,
                                                    :class:`~lrp_ref.AvgPool2d` (their options)
``F.adaptive_avg_pool2d``, ``..._max_pool2d``       :class:`~lrp_ref.AdaptiveAvgPool2d`,
                                                    :class:`~lrp_ref.AdaptiveMaxPool2d` (any size)
``F.interpolate`` (nearest(-exact), bilinear)       :class:`~lrp_ref.Upsample`
``F.layer_norm`` (weight and bias parameters,       :class:`~lrp_ref.LayerNorm` over the
buffers or None; torchvision's ``LayerNorm2d``)     trailing ``normalized_shape``, its ``eps``
``x.mean((2, 3))`` (``keepdim`` either way)         AdaptiveAvgPool2d(1) (and Flatten)
``x.size()``, ``x.size(k)``, ``x.shape``, their     no node: sizes for ``view``/``reshape``
items and arithmetic on them
``x.dim()``, comparisons of sizes and               no node: the converted layers check the
``torch._assert`` of them (torchvision's checks)    shapes they read
``get_attr`` (a parameter or buffer)                no node: a constant for AddConstant/Scale
                                                    (and ConcatConstant, LayerNorm)
``output``                                          the graph's output
==================================================  =========================================

Node names (the layer paths). A module call is named by the module's
qualified name (``layer1.0.conv1``), as ``model.named_modules()`` and Zennit
name it. A module called a second time (torchvision's BasicBlock calls its
``relu`` twice) gets a node of its own, named ``<name>:2``
(``layer1.0.relu:2``; ``:3`` for a third call, ...), which holds the same
layer object (what a forward keeps belongs to the call at each node, not to the
object: lrp_ref.layers.calls). A function or
method call is named by its fx node name (``add``, ``add_1``, ``cat``,
``flatten``). So ``e.layer("layer1.0.conv1")`` is the record of that module.

Sizes in ``view``/``reshape``. lrp_ref's Reshape keeps the batch axis and
needs the other sizes as constants, but fx records ``x.view(x.size(0), -1)``
with the size as a traced value. The first entry must be the batch size
(``x.size(0)``, ``x.shape[0]``) or -1; the others are ints, or ``x.size(k)``
of the reshaped ``x`` itself at axis ``k`` (``x.view(b, c, -1)`` after
``b, c, h, w = x.size()``), which becomes Reshape's 0 (keep that axis, as
ONNX's Reshape),
except that one entry computed otherwise from sizes (``c`` in
``y.view(b, c, 1, 1)``) becomes -1 when no entry is -1 already: the element
count is fixed, so -1 infers the very size torch used. Two or more computed
entries (``x.view(b, g, c // g, h, w)``) are refused. A -1 batch entry
(``x.view(-1, 400)``) gives an error at forward when torch would change the
batch size.

Chunks and splits. A Graph node has one output, so ``a, b = x.chunk(2, 1)``
becomes a node per piece (``getitem``, ``getitem_1``), each reading ``x`` and
cutting its piece (:class:`~lrp_ref.Chunk` finds the piece's bounds from the
input's size at forward, as torch does; a split's bounds are constants). Their
relevances add up at ``x``, each in its own positions (exact).

Gates. The factor of a product of two tensors that a sigmoid or hardsigmoid
made (``nn.Sigmoid``, ``nn.Hardsigmoid``, ``torch.sigmoid``, ``x.sigmoid()``,
``F.sigmoid``, ``F.hardsigmoid``; through view/reshape/contiguous/permute/
transpose/getitem nodes) is the gate of a :class:`~lrp_ref.Mul`, the other the
signal: torchvision's ``SqueezeExcitation`` computes ``scale * input``.
:func:`gate_of` tells which operand it is. The sigmoid itself converts to
``lrp_ref.layers.Sigmoid`` / ``Hardsigmoid`` (:meth:`_Tracer.activation`).

Refused, with an error that names the fx node, its op and target, and (for a
module) its path and type, and says what would be needed: modules of other
types, functions and methods not in the table, a product of two tensors
neither (or both) of which is a gate, a parameter used other than added,
multiplied or expanded over the batch and concatenated, modules in training
mode, and modules with forward hooks or pre-hooks (they change the forward
without fx seeing it; the legacy ``torch.nn.utils.weight_norm`` is such a
pre-hook, whose ``weight`` is stale until a forward runs). Models that fx
cannot trace (data-dependent control flow) fail in ``symbolic_trace`` with
torch's own error.
"""

from __future__ import annotations

import inspect
import operator
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers import (
    ELU,
    GELU,
    Activation,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    Add,
    AddConstant,
    ChannelShuffle,
    Chunk,
    Concat,
    ConcatConstant,
    Flatten,
    Hardsigmoid,
    Hardswish,
    Identity,
    Layer,
    LeakyReLU,
    Mish,
    Mul,
    Permute,
    ReLU,
    ReLU6,
    Reshape,
    Scale,
    Sigmoid,
    SiLU,
    Slice,
    Softplus,
    Tanh,
    Transpose,
)
from ..network import Sequential
from . import torch_transformer as transformer
from .torch import avg_pool, max_pool, output_size, residual_classes, upsample

#: The functions and tensor methods :func:`from_fx` converts, by name (for the errors).
FUNCTIONS = ("operator.add, torch.add, operator.mul, torch.mul, x - c, x / c (c constant), "
             "torch.cat, torch.flatten, torch.reshape, torch.permute, torch.transpose, "
             "torch.chunk, torch.split, operator.getitem, torch.relu, F.relu, "
             "F.adaptive_avg_pool2d, torchvision's channel_shuffle and stochastic_depth "
             "(eval), torch.sigmoid, torch.tanh, "
             "F.gelu, F.silu, F.hardsigmoid, F.hardswish, F.relu6, F.leaky_relu, F.elu, "
             "F.softplus, F.mish, F.max_pool2d, F.avg_pool2d, F.adaptive_max_pool2d, "
             "F.interpolate, F.layer_norm, torch._assert (on sizes); methods add, mul, sub, "
             "div, flatten, view, reshape, permute, transpose, contiguous, chunk, split, "
             "size, dim, relu, sigmoid, tanh, mean((2, 3)), expand (of a constant)")

#: The parameters of the pooling and interpolation functions, with their defaults, in
#: torch's order (``F.max_pool2d`` and ``F.avg_pool2d`` have no Python signature to read).
SIGNATURES = {
    "max_pool2d": {"input": None, "kernel_size": None, "stride": None, "padding": 0,
                   "dilation": 1, "ceil_mode": False, "return_indices": False},
    "avg_pool2d": {"input": None, "kernel_size": None, "stride": None, "padding": 0,
                   "ceil_mode": False, "count_include_pad": True, "divisor_override": None},
    "adaptive_pool2d": {"input": None, "output_size": None, "return_indices": False},
    "interpolate": {"input": None, "size": None, "scale_factor": None, "mode": "nearest",
                    "align_corners": None, "recompute_scale_factor": None, "antialias": False},
    "layer_norm": {"input": None, "normalized_shape": None, "weight": None, "bias": None,
                   "eps": 1e-5},
}

#: Methods and functions that only move elements: a gate stays a gate through them.
SHAPE_METHODS = ("view", "reshape", "contiguous", "permute", "transpose")

#: Arithmetic and comparisons that, applied to sizes, give a size (``c // g``) or a
#: condition on sizes (``h == 224``, for ``torch._assert``): no node.
SIZE_ARITHMETIC = (operator.add, operator.sub, operator.mul, operator.floordiv,
                   operator.truediv, operator.mod, operator.neg, operator.eq, operator.ne,
                   operator.lt, operator.le, operator.gt, operator.ge)


def from_fx(module: Any, convert_module: Any, torch: Any, residual_epsilon: float,
            array: Any = None) -> Graph:
    """The :class:`Graph` of ``module``'s traced forward (module docstring).

    ``convert_module(module, path)`` converts one leaf module (from_torch's
    converter), ``array(tensor)`` a parameter or buffer to an array of the
    target dtype (float64 when None); ``torch`` is the imported torch.
    """
    training = [path or "(root)" for path, sub in module.named_modules() if sub.training]
    if training:
        raise ValueError(f"from_torch: torch module(s) {training[:5]} are in training mode; "
                         "call model.eval() first (lrp_ref converts inference-mode networks)")
    residual_block = residual_classes()[0]

    class Tracer(torch.fx.Tracer):
        """torch's leaves (torch.nn modules but Sequential), and lrp_ref's ResidualBlock."""

        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return isinstance(m, residual_block) or super().is_leaf_module(m, qualified_name)

    kept_whole = tuple(f for f in (torchvision_channel_shuffle(), torchvision_stochastic_depth())
                       if f is not None)
    fx_graph = Tracer(autowrap_functions=kept_whole).trace(module)
    if array is None:
        def array(tensor: Any) -> np.ndarray:
            return tensor.detach().cpu().to(torch.float64).numpy()
    return _Tracer(module, convert_module, torch, residual_epsilon, array).build(fx_graph)


def torchvision_channel_shuffle() -> Any:
    """torchvision's ``channel_shuffle`` function (ShuffleNet V2), None if not imported.

    The tracer keeps it as one call (``autowrap_functions``), converted to
    :class:`~lrp_ref.ChannelShuffle`: traced through, its ``view(b, g, c // g,
    h, w)`` has sizes lrp_ref's Reshape cannot hold as constants. It is looked
    up among the imported modules (a ShuffleNet's module has been imported),
    so from_torch imports no torchvision of its own.
    """
    return getattr(sys.modules.get("torchvision.models.shufflenetv2"), "channel_shuffle", None)


def torchvision_stochastic_depth() -> Any:
    """torchvision's ``stochastic_depth`` function, None if not imported (as above).

    In eval mode (``training=False``) it returns its input: an
    :class:`~lrp_ref.Identity` node named by the call, so the residual branch
    it ends keeps a visible name.
    """
    return getattr(sys.modules.get("torchvision.ops.stochastic_depth"), "stochastic_depth", None)


def gate_of(a: Any, b: Any, root: Any, torch: Any) -> int | None:
    """Which of two fx nodes multiplied together is the gate: 0, 1, or None (neither or both).

    A gate is the output of a sigmoid or hardsigmoid (module, function or
    method), possibly moved by shape-only nodes (:data:`SHAPE_METHODS`,
    ``getitem``) since.
    """
    gates = [_is_gate(node, root, torch) for node in (a, b)]
    return gates.index(True) if gates.count(True) == 1 else None


def _is_gate(node: Any, root: Any, torch: Any) -> bool:
    if not isinstance(node, torch.fx.Node):
        return False
    nn, F = torch.nn, torch.nn.functional
    if node.op == "call_module":
        return isinstance(root.get_submodule(node.target), (nn.Sigmoid, nn.Hardsigmoid))
    if node.op == "call_method" and node.target == "sigmoid":
        return True
    if node.op == "call_function" and node.target in (torch.sigmoid, F.sigmoid, F.hardsigmoid):
        return True
    moves = (node.op == "call_method" and node.target in SHAPE_METHODS) or (
        node.op == "call_function" and node.target in (
            operator.getitem, torch.reshape, torch.permute, torch.transpose))
    return moves and _is_gate(node.args[0], root, torch)


@dataclass(frozen=True)
class _Size:
    """A traced size: ``x.size()``/``x.shape`` (``whole``), ``x.size(k)`` (``axis`` k), or
    a size computed from sizes (neither); ``tensor`` is the fx node of ``x``."""

    whole: bool = False
    axis: int | None = None
    tensor: Any = None


@dataclass(frozen=True)
class _Pieces:
    """The tuple of a chunk or split of the lrp_ref node ``source``, cut along ``dim``:
    ``chunks`` pieces (chunk), or pieces of ``sizes`` (split; an int: all that size)."""

    source: str
    dim: int
    chunks: int | None = None
    sizes: int | list[int] | None = None


class _Tracer:
    """One fx graph turned into one lrp_ref Graph."""

    def __init__(self, root: Any, convert_module: Any, torch: Any,
                 residual_epsilon: float, array: Any) -> None:
        self.root = root
        self.convert_module = convert_module
        self.torch = torch
        self.epsilon = residual_epsilon
        self.array = array
        self.graph = Graph()
        self.names: dict[Any, str] = {}         # fx node -> lrp_ref node name (a tensor)
        self.sizes: dict[Any, _Size] = {}       # fx node -> a traced size (no node)
        self.pieces: dict[Any, _Pieces] = {}    # fx node -> a chunk's or split's tuple
        self.tuples: set[Any] = set()           # fx nodes of MultiheadAttention's (y, weights)
        nn = torch.nn
        self.attention_modules = (nn.MultiheadAttention, nn.TransformerEncoderLayer,
                                  nn.TransformerEncoder)
        self.constants: dict[Any, np.ndarray] = {}   # get_attr node -> its array
        self.expanded: set[Any] = set()         # constants expanded over the batch (no node)
        self.layers: dict[str, Layer] = {}      # module path -> its layer (one per module)
        self.calls: dict[str, int] = {}         # module path -> calls so far
        F = torch.nn.functional
        # The function table, where a new conversion is one entry: function -> converter,
        # converter(fx node) -> (layer or None, input node names), or None when the fx node
        # makes no lrp_ref node (a size, the tuple of a chunk). Methods: self.methods.
        self.functions = {
            operator.add: self.add, torch.add: self.add,
            operator.mul: self.mul, torch.mul: self.mul,
            operator.sub: self.sub, torch.sub: self.sub,
            operator.truediv: self.div, torch.div: self.div,
            torch.cat: self.cat,
            torch.flatten: self.flatten,
            torch.reshape: self.reshape,
            torch.permute: self.permute,
            torch.transpose: self.transpose,
            torch.chunk: self.chunk, torch.split: self.split,
            operator.getitem: self.getitem,
            getattr: self.getattr,
            torch.relu: self.relu, F.relu: self.relu,
            torch.sigmoid: self.activation(Sigmoid), F.sigmoid: self.activation(Sigmoid),
            torch.tanh: self.activation(Tanh),
            F.gelu: self.activation(GELU), F.silu: self.activation(SiLU),
            F.hardsigmoid: self.activation(Hardsigmoid), F.hardswish: self.activation(Hardswish),
            F.relu6: self.activation(ReLU6), F.leaky_relu: self.activation(LeakyReLU),
            F.elu: self.activation(ELU), F.softplus: self.activation(Softplus),
            F.mish: self.activation(Mish),
            F.adaptive_avg_pool2d: self.adaptive_avg_pool2d,
            F.adaptive_max_pool2d: self.adaptive_max_pool2d,
            F.max_pool2d: self.max_pool2d,
            F.avg_pool2d: self.avg_pool2d,
            F.interpolate: self.interpolate,
            F.layer_norm: self.layer_norm,
            torch._assert: self.assert_on_sizes,
        }
        shuffle = torchvision_channel_shuffle()
        if shuffle is not None:
            self.functions[shuffle] = self.channel_shuffle
        depth = torchvision_stochastic_depth()
        if depth is not None:
            self.functions[depth] = self.stochastic_depth
        self.methods = {"add": self.add, "mul": self.mul, "sub": self.sub, "div": self.div,
                        "flatten": self.flatten,
                        "view": self.reshape, "reshape": self.reshape,
                        "permute": self.permute, "transpose": self.transpose,
                        "contiguous": self.contiguous, "chunk": self.chunk,
                        "split": self.split, "size": self.size, "relu": self.relu,
                        "sigmoid": self.activation(Sigmoid), "tanh": self.activation(Tanh),
                        "mean": self.mean, "dim": self.dim, "expand": self.expand}

    def build(self, fx_graph: Any) -> Graph:
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                if self.graph.input_name is not None:
                    raise self.refuse(node, "a second forward argument; lrp_ref graphs have "
                                            "one input")
                self.names[node] = self.graph.input(node.name)
            elif node.op == "call_module":
                self.call_module(node)
            elif node.op == "call_function":
                self.call(node, self.functions.get(node.target))
            elif node.op == "call_method":
                self.call(node, self.methods.get(node.target))
            elif node.op == "output":
                self.graph.output(self.tensor(node, node.args[0]))
            else:                                       # get_attr: a constant, no node
                self.constants[node] = self.array(self.fetch(node.target))
        return self.graph

    # -- nodes ---------------------------------------------------------------------------

    def call_module(self, node: Any) -> None:
        path = node.target
        sub = self.root.get_submodule(path)
        count = self.calls.get(path, 0) + 1
        self.calls[path] = count
        attention = isinstance(sub, self.attention_modules)
        if attention:           # converted per call: the call's masks are part of the layer
            layer, x = self.attention_call(node, sub, path)
        else:
            if count == 1:
                self.layers[path] = self.converted(node, sub, path)
            layer, x = self.layers[path], self.tensor(node, node.args[0])
        name = path if count == 1 else f"{path}:{count}"
        self.add_node(node, layer, name, [x])
        if isinstance(sub, self.torch.nn.MultiheadAttention):
            self.tuples.add(node)                       # (output, weights): read by [0]

    def converted(self, node: Any, sub: Any, path: str, *masks: Any) -> Layer:
        try:
            return self.convert_module(sub, path, *masks)
        except (TypeError, ValueError) as error:
            raise type(error)(f"fx node {node.name!r} (call_module {path!r}): "
                              f"{error}") from None

    def attention_call(self, node: Any, sub: Any, path: str) -> tuple[Layer, str]:
        """A MultiheadAttention or TransformerEncoder(Layer) call: its layer and its input.

        The masks must be constants of the model (buffers, parameters: get_attr nodes);
        query, key and value one tensor; the module batch first (module docstring of
        :mod:`lrp_ref.interop.torch_transformer`).
        """
        nn = self.torch.nn
        try:
            bound = inspect.signature(type(sub).forward).bind(sub, *node.args, **node.kwargs)
        except TypeError as error:
            raise self.refuse(node, f"its arguments do not fit forward: {error}") from None
        bound.apply_defaults()
        args = bound.arguments
        if isinstance(sub, nn.MultiheadAttention):
            x, attn, pad = args["query"], args["attn_mask"], args["key_padding_mask"]
            if not args["query"] is args["key"] is args["value"]:
                raise self.refuse(node, "query, key and value are not one tensor; lrp_ref "
                                        "converts self-attention, mha(x, x, x)")
        else:
            x, pad = args["src"], args["src_key_padding_mask"]
            attn = args["src_mask" if isinstance(sub, nn.TransformerEncoderLayer) else "mask"]
        if not transformer.batch_first(sub, self.torch):
            raise self.refuse(node, "batch_first=False: the operations traced around it work "
                                    "on torch's (L, B, E) layout, lrp_ref's batch axis is axis "
                                    "0; build the module with batch_first=True (same weights)")
        masks = transformer.Masks(self.mask(node, attn, "attn_mask"),
                                  self.mask(node, pad, "key_padding_mask"))
        try:
            transformer.check_causal(f"torch module '{path}' ({type(sub).__name__})",
                                     args["is_causal"], masks.attn_mask)
        except ValueError as error:
            raise self.refuse(node, str(error)) from None
        return self.converted(node, sub, path, masks), self.tensor(node, x)

    def mask(self, node: Any, arg: Any, name: str) -> np.ndarray | None:
        """A mask argument as an array (bool kept), None for none; refused unless constant."""
        if arg is None:
            return None
        if not (self.is_node(arg) and arg in self.constants):
            raise self.refuse(node, f"{name} is {arg!r}, not a constant of the model; lrp_ref "
                                    "graphs have one input and hold masks as arrays: make the "
                                    "mask a buffer of the model (register_buffer)")
        tensor = self.fetch(arg.target)
        return tensor.detach().cpu().numpy() if tensor.dtype == self.torch.bool \
            else self.constants[arg]

    def call(self, node: Any, convert: Any) -> None:
        if node.op == "call_function" and node.target in SIZE_ARITHMETIC and all(
                self.is_size(arg) or isinstance(arg, int) for arg in node.args):
            self.sizes[node] = _Size()                  # a size computed from sizes
            return
        if convert is None:
            target = getattr(node.target, "__name__", node.target)
            raise self.refuse(node, f"{node.op} {target!r} is not supported; from_torch "
                                    f"converts {FUNCTIONS}")
        try:
            converted = convert(node)
        except (TypeError, ValueError) as error:      # a layer's constructor refused
            if str(error).startswith("from_torch"):
                raise
            raise self.refuse(node, str(error)) from None
        if converted is not None:                       # None: a size or a tuple, no node
            layer, inputs = converted
            self.add_node(node, layer, node.name, inputs)

    def add_node(self, node: Any, layer: Layer | None, name: str, inputs: list[str]) -> None:
        """A node applying ``layer`` to ``inputs``; for None, ``node`` is its one input."""
        self.names[node] = inputs[0] if layer is None else self.graph.add(layer, *inputs,
                                                                          name=name)

    # -- functions and methods: (layer, input node names), or None for no node -----------

    def add(self, node: Any) -> tuple[Layer, list[str]]:
        if len(node.args) != 2 or node.kwargs:
            raise self.refuse(node, "an addition of exactly two operands (no alpha=, out=)")
        constant = self.constant_operand(node)
        if constant is not None:                    # x + c: c as a bias
            c, x = constant
            return AddConstant(c, epsilon=self.epsilon), [x]
        return Add(epsilon=self.epsilon), [self.tensor(node, a) for a in node.args]

    def sub(self, node: Any) -> tuple[Layer, list[str]]:
        c, x = self.by_constant(node, "x - c")      # x + (-c): the same float
        return AddConstant(-c, epsilon=self.epsilon), [x]

    def div(self, node: Any) -> tuple[Layer, list[str]]:
        c, x = self.by_constant(node, "x / c")      # x (1 / c): within a rounding of x / c
        if not np.all(c):
            raise self.refuse(node, "a division by a constant that holds 0")
        return Scale(1 / c), [x]

    def by_constant(self, node: Any, what: str) -> tuple[Any, str]:
        """``(c, x)`` of ``x - c`` or ``x / c``, ``c`` a number or a parameter or buffer."""
        constant = None
        if len(node.args) == 2 and not node.kwargs:
            constant = self.constant_operand(node, commutes=False)
        if constant is None:
            raise self.refuse(node, f"lrp_ref converts {what} of a tensor x and a constant c "
                                    "(a number, a parameter or buffer; no keywords), not "
                                    f"{node.args!r}")
        return constant

    def mul(self, node: Any) -> tuple[Layer, list[str]]:
        if len(node.args) != 2 or node.kwargs:
            raise self.refuse(node, "a product of exactly two operands (no out=)")
        constant = self.constant_operand(node)
        if constant is not None:                    # x * s: relevance passes
            s, x = constant
            return Scale(s), [x]
        a, b = node.args
        inputs = [self.tensor(node, a), self.tensor(node, b)]
        gate = gate_of(a, b, self.root, self.torch)
        if gate is None:
            raise self.refuse(node, "a product of two tensors of which not exactly one is a "
                                    "gate (made by a sigmoid or hardsigmoid); lrp_ref's Mul "
                                    "multiplies a signal by a gate")
        return Mul(), [inputs[1 - gate], inputs[gate]]     # Mul(signal, gate)

    def cat(self, node: Any) -> tuple[Layer, list[str]]:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(dim, int) or dim == 0:
            raise self.refuse(node, f"concatenation along dim={dim!r}; lrp_ref concatenates "
                                    "along a fixed axis other than the batch axis")
        if not isinstance(tensors, (list, tuple)):
            tensors = [self.tensor(node, tensors)]      # refused: not a tuple of tensors
        constants = [k for k, t in enumerate(tensors) if self.is_node(t) and t in self.expanded]
        if constants:                                   # a class token: ConcatConstant
            return self.cat_constant(node, tensors, constants, dim)
        inputs = [self.tensor(node, t) for t in tensors]
        # torch.cat of one tensor is that tensor (DenseNet's first layer): no node
        return (Concat(axis=dim) if len(inputs) > 1 else None), inputs

    def cat_constant(self, node: Any, tensors: Any, constants: list[int],
                     dim: int) -> tuple[Layer, list[str]]:
        """``torch.cat([c, x], dim)`` or ``[x, c]``: ``c`` a constant of batch size 1
        expanded over the batch (:meth:`expand`)."""
        if len(tensors) != 2 or len(constants) != 1:
            raise self.refuse(node, "a concatenation with a constant; lrp_ref concatenates "
                                    "one traced tensor and one constant (ConcatConstant)")
        k = constants[0]
        c = self.constants[tensors[k]]
        return ConcatConstant(c[0], axis=dim, first=k == 0), [self.tensor(node, tensors[1 - k])]

    def flatten(self, node: Any) -> tuple[Layer, list[str]]:
        start = self.argument(node, 1, "start_dim", 0)
        end = self.argument(node, 2, "end_dim", -1)
        if (start, end) != (1, -1):
            raise self.refuse(node, f"flatten(start_dim={start}, end_dim={end}); lrp_ref's "
                                    "Flatten keeps the batch axis: start_dim=1, end_dim=-1")
        return Flatten(), [self.tensor(node, node.args[0])]

    def reshape(self, node: Any) -> tuple[Layer, list[str]]:
        shape = list(self.varargs(node, "shape"))
        batch = shape[0] if shape else None
        if not (batch == -1 or self.is_size(batch) and self.sizes[batch].axis == 0):
            raise self.refuse(node, f"a new shape whose first entry is {batch!r}; lrp_ref's "
                                    "Reshape keeps the batch axis: the first entry must be "
                                    "x.size(0), x.shape[0] or -1")
        if 0 in shape:
            raise self.refuse(node, "a new shape with a size 0; lrp_ref converts no empty "
                                    "tensors")
        sizes = []
        for k, d in enumerate(shape[1:], start=1):
            kept = self.is_size(d) and self.sizes[d] == _Size(axis=k, tensor=node.args[0])
            sizes.append(0 if kept else d)           # 0: x.size(k) of x itself at axis k
        computed = [k for k, d in enumerate(sizes) if not isinstance(d, int)]
        if not all(self.is_size(sizes[k]) for k in computed):
            raise self.refuse(node, f"a shape entry that is neither an int nor a size: "
                                    f"{shape!r}")
        if len(computed) > 1 or (computed and -1 in sizes):
            minus = " and a -1" if -1 in sizes else ""
            raise self.refuse(node, f"a new shape with {len(computed)} size(s) computed from "
                                    f"sizes{minus}; lrp_ref's Reshape needs the sizes of a "
                                    "sample as ints, x.size(k) of the reshaped x at axis k, "
                                    "and at most one computed entry or -1 (module docstring)")
        return Reshape([-1 if k in computed else d for k, d in enumerate(sizes)]), [
            self.tensor(node, node.args[0])]

    def permute(self, node: Any) -> tuple[Layer, list[str]]:
        dims = list(self.varargs(node, "dims"))
        if not all(isinstance(d, int) for d in dims) or dims[:1] != [0]:
            raise self.refuse(node, f"permute{tuple(dims)}; lrp_ref's Permute takes int dims "
                                    "that keep the batch axis first (dims[0] = 0)")
        return Permute(dims), [self.tensor(node, node.args[0])]

    def transpose(self, node: Any) -> tuple[Layer, list[str]]:
        dims = (self.argument(node, 1, "dim0", None), self.argument(node, 2, "dim1", None))
        if not all(isinstance(d, int) for d in dims) or 0 in dims:
            raise self.refuse(node, f"transpose{dims}; lrp_ref's Transpose swaps two non-batch "
                                    "axes given as ints")
        return Transpose(*dims), [self.tensor(node, node.args[0])]

    def contiguous(self, node: Any) -> tuple[Layer, list[str]]:
        return Identity(), [self.tensor(node, node.args[0])]

    def chunk(self, node: Any) -> None:
        chunks = self.argument(node, 1, "chunks", None)
        dim = self.argument(node, 2, "dim", 0)
        self.pieces[node] = _Pieces(self.tensor(node, node.args[0]), self.cut_dim(node, dim),
                                    chunks=chunks)

    def split(self, node: Any) -> None:
        sizes = self.argument(node, 1, "split_size_or_sections",
                              node.kwargs.get("split_size"))
        dim = self.argument(node, 2, "dim", 0)
        if not (isinstance(sizes, int) or (isinstance(sizes, (list, tuple)) and all(
                isinstance(n, int) for n in sizes))):
            raise self.refuse(node, f"a split into sizes {sizes!r}; lrp_ref needs an int or a "
                                    "list of ints")
        self.pieces[node] = _Pieces(self.tensor(node, node.args[0]), self.cut_dim(node, dim),
                                    sizes=sizes if isinstance(sizes, int) else list(sizes))

    def getitem(self, node: Any) -> tuple[Layer, list[str]] | None:
        source, index = node.args
        if self.is_size(source):                    # x.shape[k], x.size()[k]
            size = self.sizes[source]
            whole = size.whole and isinstance(index, int) and index >= 0
            self.sizes[node] = _Size(axis=index, tensor=size.tensor) if whole else _Size()
            return None
        if source in self.tuples:                   # y, _ = mha(x, x, x): y is the node
            if index != 0 and not node.users:          # y, _ = ...: unused, no node
                return None
            if index != 0:
                raise self.refuse(node, "the attention weights (item 1) of a "
                                        "MultiheadAttention; lrp_ref converts its output, [0]")
            return None, [self.names[source]]
        if source in self.pieces:                   # a, b = x.chunk(2, 1)
            return self.piece(node, self.pieces[source], index), [self.pieces[source].source]
        return self.slice(node, index), [self.tensor(node, source)]

    def getattr(self, node: Any) -> None:
        if node.args[1] != "shape":
            raise self.refuse(node, f"the attribute {node.args[1]!r}; lrp_ref reads only "
                                    "x.shape of a tensor")
        self.tensor(node, node.args[0])
        self.sizes[node] = _Size(whole=True, tensor=node.args[0])

    def size(self, node: Any) -> None:
        self.tensor(node, node.args[0])
        dim = self.argument(node, 1, "dim", None)
        self.sizes[node] = _Size(whole=dim is None, axis=dim, tensor=node.args[0])

    def relu(self, node: Any) -> tuple[Layer, list[str]]:
        return ReLU(), [self.tensor(node, node.args[0])]

    def activation(self, cls: type[Activation]) -> Any:
        """The converter of a functional activation: ``cls`` with the call's constants.

        The arguments after the tensor are ``cls``'s parameters in torch's order
        (``F.leaky_relu(x, negative_slope, inplace)``, ``F.softplus(x, beta,
        threshold)``), positional or by name; ``inplace`` changes no value.
        """
        names = (*cls.hyperparameter_names, "inplace")

        def convert(node: Any) -> tuple[Layer, list[str]]:
            given = dict(node.kwargs)
            x = node.args[0] if node.args else given.pop("input", None)
            if len(node.args) > 1 + len(names) or set(given) - set(names):
                raise self.refuse(node, f"arguments beyond {', '.join(names)}")
            given.update(zip(names, node.args[1:]))
            if any(isinstance(value, self.torch.fx.Node) for value in given.values()):
                raise self.refuse(node, "a parameter computed in forward; lrp_ref "
                                        "converts constant activation parameters")
            given.pop("inplace", None)
            try:
                layer = cls(**given)
            except ValueError as error:
                raise self.refuse(node, str(error)) from None
            return layer, [self.tensor(node, x)]
        return convert

    def arguments(self, node: Any, signature: str) -> dict[str, Any]:
        """The call's arguments by name, defaults filled in (:data:`SIGNATURES`)."""
        names = SIGNATURES[signature]
        return {**names, **dict(zip(names, node.args)), **node.kwargs}

    def pool(self, node: Any, signature: str, make: Any) -> tuple[Layer, list[str]]:
        """A pooling function's layer: ``make(arguments, where)``, errors naming the node."""
        args = self.arguments(node, signature)
        if args.get("return_indices") or args.get("antialias"):
            option = "return_indices" if args.get("return_indices") else "antialias"
            raise self.refuse(node, f"{option}=True is not supported")
        try:
            layer = make(args, "its arguments")
        except (TypeError, ValueError) as error:
            raise self.refuse(node, str(error)) from None
        return layer, [self.tensor(node, args["input"])]

    def max_pool2d(self, node: Any) -> tuple[Layer, list[str]]:
        return self.pool(node, "max_pool2d", lambda a, _: max_pool(
            a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"]))

    def avg_pool2d(self, node: Any) -> tuple[Layer, list[str]]:
        return self.pool(node, "avg_pool2d", lambda a, _: avg_pool(
            a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
            a["count_include_pad"], a["divisor_override"]))

    def adaptive_avg_pool2d(self, node: Any) -> tuple[Layer, list[str]]:
        return self.pool(node, "adaptive_pool2d", lambda a, where: AdaptiveAvgPool2d(
            output_size(where, a["output_size"])))

    def adaptive_max_pool2d(self, node: Any) -> tuple[Layer, list[str]]:
        return self.pool(node, "adaptive_pool2d", lambda a, where: AdaptiveMaxPool2d(
            output_size(where, a["output_size"])))

    def interpolate(self, node: Any) -> tuple[Layer, list[str]]:
        return self.pool(node, "interpolate", lambda a, where: upsample(
            where, a["size"], a["scale_factor"], a["mode"], a["align_corners"],
            a["recompute_scale_factor"]))


    def mean(self, node: Any) -> tuple[Layer, list[str]]:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if dims is None or sorted(int(d) % 4 for d in dims) != [2, 3]:
            raise self.refuse(node, f"mean over dims {dims!r}; lrp_ref converts the global "
                                    "average over the spatial axes, mean((2, 3)), of (B, C, H, W)")
        pool = AdaptiveAvgPool2d(1)
        return (pool if keepdim else Sequential([pool, Flatten()])), [
            self.tensor(node, node.args[0])]

    def layer_norm(self, node: Any) -> tuple[Layer, list[str]]:
        args = self.arguments(node, "layer_norm")
        shape = args["normalized_shape"]
        if not (isinstance(shape, (tuple, list)) and all(isinstance(d, int) for d in shape)):
            raise self.refuse(node, f"normalized_shape={shape!r}; lrp_ref needs ints")
        weight, bias = (self.parameter(node, args[name], name) for name in ("weight", "bias"))
        layer = transformer.layer_norm_of(shape, weight, bias, args["eps"], self.array,
                                          self.torch)
        return layer, [self.tensor(node, args["input"])]

    def expand(self, node: Any) -> None:
        """``c.expand(n, -1, ...)`` of a constant of batch size 1 over the batch: still that
        constant (no node; ConcatConstant and AddConstant repeat it for every sample)."""
        source, sizes = node.args[0], self.varargs(node, "size")
        if not (self.is_node(source) and source in self.constants):
            raise self.refuse(node, "x.expand(...) expands a traced tensor; lrp_ref expands "
                                    "a constant (a parameter of batch size 1) over the batch")
        c = self.constants[source]
        batch = sizes[0] if sizes else None
        if not (self.is_size(batch) and self.sizes[batch].axis == 0) or c.shape[0] != 1 or (
                len(sizes) != c.ndim or any(d not in (-1, n) for d, n in zip(sizes[1:],
                                                                            c.shape[1:]))):
            shown = ", ".join("n" if self.is_size(d) else repr(d) for d in sizes)
            raise self.refuse(node, f"expand({shown}) of a constant of shape {c.shape}; "
                                    "lrp_ref repeats a constant of batch size 1 over the "
                                    "batch: the first size must be the batch size "
                                    "(x.shape[0]), the others -1 or unchanged")
        self.constants[node] = c
        self.expanded.add(node)

    def dim(self, node: Any) -> None:
        self.tensor(node, node.args[0])
        self.sizes[node] = _Size()                      # x.dim(): a number, no node

    def assert_on_sizes(self, node: Any) -> None:
        """``torch._assert(condition, message)`` on sizes (torchvision's shape checks): no
        node; the converted layers check the shapes they read."""
        if not self.is_size(node.args[0]):
            raise self.refuse(node, "torch._assert of something other than a condition on "
                                    "sizes (x.shape, x.dim()); lrp_ref converts shape "
                                    "checks only")

    def channel_shuffle(self, node: Any) -> tuple[Layer, list[str]]:
        groups = self.argument(node, 1, "groups", None)
        return ChannelShuffle(groups), [self.tensor(node, node.args[0])]

    def stochastic_depth(self, node: Any) -> tuple[Layer, list[str]]:
        if self.argument(node, 3, "training", True):
            raise self.refuse(node, "stochastic_depth with training=True drops rows at random; "
                                    "lrp_ref converts the eval-mode call (training=False)")
        return Identity(), [self.tensor(node, node.args[0])]

    # -- slices and pieces -----------------------------------------------------------------

    def slice(self, node: Any, index: Any) -> Slice:
        items = list(index) if isinstance(index, tuple) else [index]
        if items[:1] == [Ellipsis]:     # x[..., k]: numpy's a[:, ..., k] equals it or fails
            items = [slice(None), *items]
        if items[:1] != [slice(None)] or not all(
                item is Ellipsis or isinstance(item, int) or (isinstance(item, slice) and all(
                    v is None or isinstance(v, int) for v in (item.start, item.stop, item.step)))
                for item in items[1:]):
            raise self.refuse(node, f"the index {index!r}; lrp_ref's Slice takes the whole "
                                    "batch axis (x[:, ...] or x[..., k]) and ints, int slices "
                                    "and ... on the other axes (no None, no tensor index)")
        return Slice(tuple(items[1:]))

    def piece(self, node: Any, pieces: _Pieces, k: Any) -> Layer:
        if pieces.chunks is not None:
            if not isinstance(k, int) or not 0 <= k < pieces.chunks:
                raise self.refuse(node, f"piece {k!r} of a chunk into {pieces.chunks}; lrp_ref "
                                        "takes the pieces by their index 0, 1, ...")
            return Chunk(pieces.chunks, k, axis=pieces.dim)
        if isinstance(pieces.sizes, int):
            if not isinstance(k, int) or k < 0:
                raise self.refuse(node, f"piece {k!r} of a split into pieces of "
                                        f"{pieces.sizes}; lrp_ref takes them by index 0, 1, ...")
            start, stop = k * pieces.sizes, (k + 1) * pieces.sizes
        else:
            n = len(pieces.sizes)
            if not isinstance(k, int) or not -n <= k < n:
                raise self.refuse(node, f"piece {k!r} of a split into {pieces.sizes}")
            ends = np.cumsum([0, *pieces.sizes]).tolist()
            start, stop = ends[k % n], ends[k % n + 1]
        cut = slice(start, stop)
        return Slice(((slice(None),) * (pieces.dim - 1) + (cut,)) if pieces.dim > 0 else
                     (Ellipsis, cut, *(slice(None),) * (-pieces.dim - 1)))

    def cut_dim(self, node: Any, dim: Any) -> int:
        if not isinstance(dim, int) or dim == 0:
            raise self.refuse(node, f"cutting along dim={dim!r}; lrp_ref cuts along a fixed "
                                    "axis other than the batch axis")
        return dim

    # -- helpers -------------------------------------------------------------------------

    def argument(self, node: Any, position: int, keyword: str, default: Any) -> Any:
        """Argument ``position`` of the call (0: the tensor), or its keyword, or the default."""
        return node.args[position] if len(node.args) > position else node.kwargs.get(
            keyword, default)

    def varargs(self, node: Any, keyword: str) -> tuple:
        """The entries of ``x.view(2, 3)``, ``x.view((2, 3))`` or ``torch.reshape(x, (2, 3))``."""
        rest = node.args[1:] or (node.kwargs.get(keyword, ()),)
        return tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest

    def constant_operand(self, node: Any, commutes: bool = True) -> tuple[Any, str] | None:
        """``(constant, tensor name)`` when one operand (the second unless ``commutes``)
        is a number or a get_attr array and the other a tensor."""
        a, b = node.args
        for c, x in ((b, a), (a, b))[:2 if commutes else 1]:
            number = isinstance(c, (int, float)) and not isinstance(c, bool)
            if (number or self.is_node(c) and c in self.constants) and self.is_node(x) and (
                    x in self.names):
                value = self.array(self.torch.tensor(float(c))) if number else self.constants[c]
                return value, self.names[x]
        return None

    def parameter(self, node: Any, arg: Any, name: str) -> Any:
        """The tensor of a parameter or buffer passed as argument ``name`` (None stays None)."""
        if arg is None or self.is_node(arg) and arg.op == "get_attr":
            return None if arg is None else self.fetch(arg.target)
        raise self.refuse(node, f"the {name} {arg!r} is computed in forward; lrp_ref converts "
                                "a parameter or buffer (or None) there")

    def is_node(self, arg: Any) -> bool:
        return isinstance(arg, self.torch.fx.Node)

    def is_size(self, arg: Any) -> bool:
        return self.is_node(arg) and arg in self.sizes

    def fetch(self, target: str) -> Any:
        """The parameter or buffer ``target`` (``"layer1.scale"``) of the root module."""
        owner, _, name = target.rpartition(".")
        return getattr(self.root.get_submodule(owner), name)

    def tensor(self, node: Any, arg: Any) -> str:
        """The lrp_ref node name of an fx argument that must be a traced tensor."""
        if self.is_node(arg) and arg in self.tuples:
            raise self.refuse(node, f"the argument {arg!r} is the (output, weights) tuple of "
                                    "a MultiheadAttention: read its output, [0]")
        if self.is_node(arg) and arg in self.names:
            return self.names[arg]
        if self.is_size(arg):
            what = "a size (x.size(), x.shape), not a tensor"
        elif self.is_node(arg) and arg in self.pieces:
            what = "the tuple of a chunk or split: lrp_ref reads its pieces by index"
        elif self.is_node(arg) and arg in self.constants:
            what = (f"a parameter or buffer ({arg.target!r}) read in forward, which lrp_ref "
                    "converts only added to (AddConstant) or multiplied with (Scale) a tensor, "
                    "or expanded over the batch and concatenated (ConcatConstant)")
        else:
            what = "a constant or not a traced tensor; lrp_ref nodes read tensors only"
        raise self.refuse(node, f"the argument {arg!r} is {what}")

    def refuse(self, node: Any, what: str) -> ValueError:
        target = getattr(node.target, "__name__", node.target)
        where = f"fx node {node.name!r} ({node.op} {target!r})"
        if node.op == "call_module":
            sub = self.root.get_submodule(node.target)
            where += f", torch module '{node.target}' ({type(sub).__name__})"
        return ValueError(f"from_torch: {where}: {what}")


__all__ = ["FUNCTIONS", "from_fx", "gate_of", "torchvision_channel_shuffle",
           "torchvision_stochastic_depth"]
