"""Whole-model import: any ``torch.nn.Module`` traced with ``torch.fx`` into a :class:`Graph`.

:func:`lrp_ref.interop.torch.from_torch` calls :func:`from_fx` for every module
that is not an ``nn.Sequential``. ``torch.fx.symbolic_trace`` records the
module's forward as a graph of nodes, and each node becomes one node of an
lrp_ref :class:`~lrp_ref.Graph`, in the traced order:

================================================  =========================================
fx node                                           lrp_ref node
================================================  =========================================
``placeholder`` (the forward's argument)          the graph's input
``call_module`` of a leaf module                  that module converted as in ``from_torch``
                                                  (Linear, Conv2d, ReLU, pools, BatchNorm,
                                                  AdaptiveAvgPool2d, Flatten, Dropout, ...)
``operator.add``, ``torch.add``, ``Tensor.add``   :class:`~lrp_ref.Add` (``residual_epsilon``)
``torch.cat``                                     :class:`~lrp_ref.Concat` (its ``dim``; of
                                                  one tensor: that tensor, no node)
``torch.flatten(x, 1)``, ``x.flatten(1)``         :class:`~lrp_ref.Flatten`
``F.relu``, ``torch.relu``, ``x.relu()``          :class:`~lrp_ref.ReLU`
``F.adaptive_avg_pool2d``                         :class:`~lrp_ref.AdaptiveAvgPool2d`
``x.mean((2, 3))`` (``keepdim`` either way)       AdaptiveAvgPool2d(1) (and Flatten)
``output``                                        the graph's output
================================================  =========================================

Node names (the layer paths). A module call is named by the module's
qualified name (``layer1.0.conv1``), as ``model.named_modules()`` and Zennit
name it. A module called a second time (torchvision's BasicBlock calls its
``relu`` twice) gets a node of its own, named ``<name>:2``
(``layer1.0.relu:2``; ``:3`` for a third call, ...), which holds the same
layer object (what a forward keeps belongs to the call at each node, not to the
object: lrp_ref.layers.calls). A function or
method call is named by its fx node name (``add``, ``add_1``, ``cat``,
``flatten``). So ``e.layer("layer1.0.conv1")`` is the record of that module.

Refused, with an error that names the fx node, its op and target, and (for a
module) its path and type, and says what would be needed: modules of other
types, functions and methods not in the table, arguments that are constants
where lrp_ref needs tensors (``x + 1``), modules in training mode, and modules
with forward hooks or pre-hooks (they change the forward without fx seeing it;
the legacy ``torch.nn.utils.weight_norm`` is such a pre-hook, whose ``weight``
is stale until a forward runs). Models that fx cannot trace (data-dependent
control flow) fail in ``symbolic_trace`` with torch's own error.
"""

from __future__ import annotations

import operator
from typing import Any

from ..graph import Graph
from ..layers import AdaptiveAvgPool2d, Add, Concat, Flatten, Layer, ReLU
from ..network import Sequential
from .torch import residual_classes

#: The functions and tensor methods :func:`from_fx` converts, by name (for the errors).
FUNCTIONS = ("operator.add, torch.add, torch.cat, torch.flatten, torch.relu, F.relu, "
             "F.adaptive_avg_pool2d; methods add, flatten, relu, mean((2, 3))")


def from_fx(module: Any, convert_module: Any, torch: Any, residual_epsilon: float) -> Graph:
    """The :class:`Graph` of ``module``'s traced forward (module docstring).

    ``convert_module(module, path)`` converts one leaf module (from_torch's
    converter); ``torch`` is the imported torch.
    """
    _refuse_hooks(module, torch)
    training = [path or "(root)" for path, sub in module.named_modules() if sub.training]
    if training:
        raise ValueError(f"from_torch: torch module(s) {training[:5]} are in training mode; "
                         "call model.eval() first (lrp_ref converts inference-mode networks)")
    residual_block = residual_classes()[0]

    class Tracer(torch.fx.Tracer):
        """torch's leaves (torch.nn modules but Sequential), and lrp_ref's ResidualBlock."""

        def is_leaf_module(self, m: Any, qualified_name: str) -> bool:
            return isinstance(m, residual_block) or super().is_leaf_module(m, qualified_name)

    fx_graph = Tracer().trace(module)
    return _Tracer(module, convert_module, torch, residual_epsilon).build(fx_graph)


def _refuse_hooks(module: Any, torch: Any) -> None:
    hooks = torch.nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        raise ValueError("from_torch: global module forward hooks are registered "
                         "(torch.nn.modules.module.register_module_forward_hook); they change "
                         "every forward without the trace seeing it: remove them first")
    for path, sub in module.named_modules():
        if sub._forward_hooks or sub._forward_pre_hooks:
            kind = "forward pre-hook" if sub._forward_pre_hooks else "forward hook"
            extra = (" (the legacy torch.nn.utils.weight_norm is one: its weight is stale "
                     "until a forward runs; use torch.nn.utils.parametrizations.weight_norm "
                     "or remove_weight_norm)") if hasattr(sub, "weight_g") else ""
            raise ValueError(f"torch module '{path or '(root)'}' ({type(sub).__name__}) has a "
                             f"{kind}{extra}; hooks change the forward without the trace "
                             "seeing it: remove them before from_torch")


class _Tracer:
    """One fx graph turned into one lrp_ref Graph."""

    def __init__(self, root: Any, convert_module: Any, torch: Any,
                 residual_epsilon: float) -> None:
        self.root = root
        self.convert_module = convert_module
        self.torch = torch
        self.epsilon = residual_epsilon
        self.graph = Graph()
        self.names: dict[Any, str] = {}     # fx node -> lrp_ref node name
        self.layers: dict[str, Layer] = {}  # module path -> its layer (one per module)
        self.calls: dict[str, int] = {}     # module path -> calls so far
        F = torch.nn.functional
        self.functions = {
            operator.add: self.add, torch.add: self.add,
            torch.cat: self.cat,
            torch.flatten: self.flatten,
            torch.relu: self.relu, F.relu: self.relu,
            F.adaptive_avg_pool2d: self.adaptive_avg_pool2d,
        }
        self.methods = {"add": self.add, "flatten": self.flatten, "relu": self.relu,
                        "mean": self.mean}

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
            else:                                       # get_attr
                raise self.refuse(node, "a parameter or buffer read in forward; lrp_ref "
                                        "converts modules, not their tensors used directly")
        return self.graph

    # -- nodes ---------------------------------------------------------------------------

    def call_module(self, node: Any) -> None:
        path = node.target
        sub = self.root.get_submodule(path)
        count = self.calls.get(path, 0) + 1
        self.calls[path] = count
        if count == 1:
            try:
                self.layers[path] = self.convert_module(sub, path)
            except (TypeError, ValueError) as error:
                raise type(error)(f"fx node {node.name!r} (call_module {path!r}): "
                                  f"{error}") from None
        name = path if count == 1 else f"{path}:{count}"
        self.add_node(node, self.layers[path], name, [self.tensor(node, node.args[0])])

    def call(self, node: Any, convert: Any) -> None:
        if convert is None:
            target = getattr(node.target, "__name__", node.target)
            raise self.refuse(node, f"{node.op} {target!r} is not supported; from_torch "
                                    f"converts {FUNCTIONS}")
        layer, inputs = convert(node)
        self.add_node(node, layer, node.name, inputs)

    def add_node(self, node: Any, layer: Layer | None, name: str, inputs: list[str]) -> None:
        """A node applying ``layer`` to ``inputs``; for None, ``node`` is its one input."""
        self.names[node] = inputs[0] if layer is None else self.graph.add(layer, *inputs,
                                                                          name=name)

    # -- functions and methods: (layer, input node names) --------------------------------

    def add(self, node: Any) -> tuple[Layer, list[str]]:
        if len(node.args) != 2 or node.kwargs:
            raise self.refuse(node, "an addition of exactly two tensors (no alpha=, out=)")
        return Add(epsilon=self.epsilon), [self.tensor(node, a) for a in node.args]

    def cat(self, node: Any) -> tuple[Layer, list[str]]:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(dim, int) or dim == 0:
            raise self.refuse(node, f"concatenation along dim={dim!r}; lrp_ref concatenates "
                                    "along a fixed axis other than the batch axis")
        inputs = [self.tensor(node, t) for t in tensors]
        # torch.cat of one tensor is that tensor (DenseNet's first layer): no node
        return (Concat(axis=dim) if len(inputs) > 1 else None), inputs

    def flatten(self, node: Any) -> tuple[Layer, list[str]]:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if (start, end) != (1, -1):
            raise self.refuse(node, f"flatten(start_dim={start}, end_dim={end}); lrp_ref's "
                                    "Flatten keeps the batch axis: start_dim=1, end_dim=-1")
        return Flatten(), [self.tensor(node, node.args[0])]

    def relu(self, node: Any) -> tuple[Layer, list[str]]:
        return ReLU(), [self.tensor(node, node.args[0])]

    def adaptive_avg_pool2d(self, node: Any) -> tuple[Layer, list[str]]:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return AdaptiveAvgPool2d(size), [self.tensor(node, node.args[0])]

    def mean(self, node: Any) -> tuple[Layer, list[str]]:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
        if dims is None or sorted(int(d) % 4 for d in dims) != [2, 3]:
            raise self.refuse(node, f"mean over dims {dims!r}; lrp_ref converts the global "
                                    "average over the spatial axes, mean((2, 3)), of (B, C, H, W)")
        pool = AdaptiveAvgPool2d(1)
        return (pool if keepdim else Sequential([pool, Flatten()])), [
            self.tensor(node, node.args[0])]

    # -- helpers -------------------------------------------------------------------------

    def tensor(self, node: Any, arg: Any) -> str:
        """The lrp_ref node name of an fx argument that must be a traced tensor."""
        if arg not in self.names:
            raise self.refuse(node, f"the argument {arg!r} is a constant or not a traced "
                                    "tensor; lrp_ref nodes read tensors only")
        return self.names[arg]

    def refuse(self, node: Any, what: str) -> ValueError:
        target = getattr(node.target, "__name__", node.target)
        where = f"fx node {node.name!r} ({node.op} {target!r})"
        if node.op == "call_module":
            sub = self.root.get_submodule(node.target)
            where += f", torch module '{node.target}' ({type(sub).__name__})"
        return ValueError(f"from_torch: {where}: {what}")


__all__ = ["FUNCTIONS", "from_fx"]
