"""Graph networks: a directed acyclic graph of named nodes.

A Graph has one input and one output. Every node has a unique name, one layer
and one or more input nodes; it is built by hand, node by node::

    g = lrp.Graph()
    x = g.input()                                   # the name of the input, "input"
    h = g.add(lrp.Dense(w1, b1), x, name="fc1")     # returns the node's name, "fc1"
    h = g.add(lrp.ReLU(), h, name="relu1")
    y = g.add(lrp.Dense(w2, b2), h, name="fc2")
    s = g.add(lrp.Add(), y, h, name="add")          # a skip connection
    g.output(g.add(lrp.Dense(w3, b3), s, name="head"))

The nodes' names are their paths (``"fc1"``; ``"body.0"`` inside a node that
is a Sequential; ``"3.fc1"`` when the Graph is layer 3 of a Sequential), and
the order in which nodes were added is the traversal order (a topological
order: a node can only read nodes added before it). Multi-input nodes are the
merge layers of lrp_ref.layers.merge (Add, Concat, Mul).

Relevance flows back through the nodes in reverse order. A tensor read by
several nodes (fan-out) receives the sum of the relevances they send back;
that sum is exact, so the Graph books nothing of its own: its ledger is the
sum of its nodes' ledgers, and

    sum R_output = sum R_input + sum over nodes of (absorbed + dropped + conditioned)

``repr(g)`` lists the nodes with their layers and inputs; ``g.table()`` adds
the output shapes of the last forward and the parameter counts.

Every node must reach the output (``output()`` refuses a node that does not,
whose relevance would be undefined), and no nodes can be added after it.

Rules: a Graph takes a single Rule or a composite (``composite(net) ->
{path: Rule}``, e.g. ``lambda net: {"fc1": lrp.Flat(), "fc2": lrp.Epsilon(0.1),
...}``), not a rule list: its nodes are found by name, not by position.

A layer object may sit at several nodes (a torch module called twice): what
its forward keeps belongs to the call at that node (the call's
:class:`~lrp_ref.layers.calls.Trace`, one slot per node name), and each node
has its own path and rule. The gradients of a shared linear layer's
parameters (``grad_weight``) sum over its calls in the last backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audit import LayerRecord, Ledger
from .layers.base import Layer, array_key, build
from .layers.calls import inside
from .layers.merge import Merge
from .network import Network
from .rules import Rule

Array = np.ndarray


@dataclass(frozen=True)
class Node:
    """One node of a Graph: its ``name`` (the path), its ``layer`` and the names it reads."""

    name: str
    layer: Layer
    inputs: tuple[str, ...]


class Graph(Network):
    """A network whose nodes form a directed acyclic graph (module docstring).

    Attributes
    ----------
    nodes : list of Node
        The nodes in the order they were added (the traversal order).
    input_name, output_name : str or None
        The names of the input and of the output node (None until set).
    """

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[Node] = []
        self.input_name: str | None = None
        self.output_name: str | None = None

    # -- building ---------------------------------------------------------------------------

    def input(self, name: str = "input") -> str:
        """Declare the network's input; returns its name, for ``add``."""
        if self.input_name is not None:
            raise ValueError(f"Graph: the graph has one input, already named {self.input_name!r}")
        self._check_new_name(name)
        self.input_name = name
        return name

    def add(self, layer: Layer, *inputs: str, name: str | None = None) -> str:
        """Add a node applying ``layer`` to the named input nodes; returns its name.

        ``name`` defaults to the node's index (``"0"``, ``"1"``, ...). A merge
        layer (Add, Concat, Mul) reads several nodes, in the order given;
        every other layer reads exactly one.
        """
        if self.output_name is not None:
            raise ValueError(f"Graph: the graph is closed by output({self.output_name!r}); "
                             "add every node before calling output()")
        if self.input_name is None:
            raise ValueError("Graph: call g.input() before adding nodes")
        name = str(len(self.nodes)) if name is None else name
        self._check_new_name(name)
        if not isinstance(layer, Layer):
            raise TypeError(f"Graph: node {name!r} needs a Layer, got {layer!r}")
        known = [self.input_name, *(node.name for node in self.nodes)]
        for source in inputs:
            if not isinstance(source, str):
                raise TypeError(f"Graph: the inputs of node {name!r} are node names (what "
                                f"g.input() and g.add() return), got {source!r}")
            if source not in known:
                raise ValueError(f"Graph: node {name!r} reads no node {source!r}; "
                                 f"the nodes are {known}")
        if isinstance(layer, Merge):
            layer.check_count(len(inputs))
        elif len(inputs) != 1:
            raise ValueError(f"Graph: node {name!r} ({type(layer).__name__}) takes 1 input, "
                             f"got {len(inputs)}")
        self.nodes.append(Node(name, layer, tuple(inputs)))
        paths = [path for path, _ in self.named_layers()]
        if len(set(paths)) < len(paths):
            self.nodes.pop()
            clash = sorted({p for p in paths if paths.count(p) > 1})
            raise ValueError(f"Graph: node {name!r} would give a second layer the path(s) "
                             f"{clash} (a node name may contain '.', as torch's module names "
                             "do, but no two layers may share a path)")
        return name

    def output(self, name: str) -> None:
        """Declare node ``name`` the network's output; closes the graph.

        Every node must reach the output: one that does not is refused.
        """
        if self.output_name is not None:
            raise ValueError(f"Graph: output() was already called (output {self.output_name!r})")
        if name not in {node.name for node in self.nodes}:
            raise ValueError(f"Graph: the output must be a node added with g.add(), got {name!r}")
        reach = {name}
        for node in reversed(self.nodes):
            if node.name in reach:
                reach.update(node.inputs)
        dead = [node.name for node in self.nodes if node.name not in reach]
        if dead:
            raise ValueError(f"Graph: node(s) {dead} do not reach the output {name!r}; "
                             "every node must contribute to the output")
        self.output_name = name

    def _check_new_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Graph: a node name is a non-empty string, got {name!r}")
        if name == self.input_name or any(node.name == name for node in self.nodes):
            raise ValueError(f"Graph: a node named {name!r} already exists")

    # -- structure --------------------------------------------------------------------------

    def children(self) -> list[tuple[str, Layer]]:
        return [(node.name, node.layer) for node in self.nodes]

    def __getitem__(self, name: str) -> Layer:
        """The layer of node ``name``."""
        for node in self.nodes:
            if node.name == name:
                return node.layer
        raise KeyError(f"Graph: no node {name!r}; the nodes are "
                       f"{[node.name for node in self.nodes]}")

    def __repr__(self) -> str:
        lines = [f"  ({node.name}) {node.layer!r} <- {', '.join(node.inputs)}".replace("\n", "\n  ")
                 for node in self.nodes]
        head = f"Graph(input={self.input_name!r}, output={self.output_name!r},"
        return "\n".join([head, *lines, ")"])

    def table(self) -> str:
        """The nodes as a text table: name, layer type, inputs, output shape, parameters.

        The output shape is that of the graph's last forward on its own (``-``
        before one); the parameters count every array element of the node's
        layer (and below).
        """
        rows = [("node", "layer", "inputs", "output", "parameters")]
        for node in self.nodes:
            with self._own_call(), inside(node.name):
                shape = node.layer.output_shape
            rows.append((node.name, type(node.layer).__name__, ", ".join(node.inputs),
                         "-" if shape is None else str(shape),
                         str(sum(a.size for a in node.layer.state().values()))))
        widths = [max(len(row[k]) for row in rows) for k in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                 for row in rows]
        lines.insert(1, "-" * max(len(line) for line in lines))
        return "\n".join([*lines, f"output: {self.output_name}"])

    def _check_closed(self) -> None:
        if self.output_name is None:
            raise ValueError(f"{self.where}: call g.output(node) before using the graph")

    # -- serialisation ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"type": "Graph", "input": self.input_name, "output": self.output_name,
                "nodes": [{"name": node.name, "inputs": list(node.inputs),
                           "layer": node.layer.config()} for node in self.nodes]}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Graph:
        nodes = config.get("nodes")
        if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
            raise ValueError(f"Graph at '{prefix}': 'nodes' must be a list of node configs")
        g = cls()
        g.input(config.get("input"))
        for node in nodes:
            name, inputs = node.get("name"), node.get("inputs")
            if not isinstance(name, str) or not isinstance(inputs, list):
                raise ValueError(f"Graph at '{prefix}': a node needs a 'name' and a list "
                                 f"of 'inputs', got {node!r}")
            g.add(build(node.get("layer"), arrays, array_key(prefix, name)), *inputs, name=name)
        g.output(config.get("output"))
        return g

    # -- forward, backward and relevance ------------------------------------------------------

    @property
    def reads_token_ids(self) -> bool:
        """True when the nodes that read the input read integer token ids (Embeddings)."""
        readers = [node.layer for node in self.nodes if self.input_name in node.inputs]
        return bool(readers) and all(layer.reads_token_ids for layer in readers)

    def _check_input(self, a: Any) -> Array:
        self._check_closed()
        if self.reads_token_ids:        # ids stay integers; the first node (a reader) checks them
            with inside(self.nodes[0].name):
                return self.nodes[0].layer._check_input(a)
        return self._network_input(a)

    def _forward(self, a: Array) -> Array:
        values = {self.input_name: a}
        for node in self.nodes:
            with inside(node.name):
                values[node.name] = node.layer.forward(*(values[source]
                                                         for source in node.inputs))
        return values[self.output_name]

    def _sweep(self, top: Array, step: Callable[[Layer, Array], Any]) -> Array:
        """Send ``top`` from the output back to the input, node by node in reverse order.

        ``step(layer, t)`` maps what reached a node's output to what it sends to
        its inputs (a tuple for a merge node). A node read by several nodes
        receives the sum of what they send (fan-out); every node has received
        all of it when its turn comes, as all its readers come later in the order.
        """
        pending = {self.output_name: top}
        for node in reversed(self.nodes):
            with inside(node.name):
                sent = step(node.layer, pending.pop(node.name))
            for source, part in zip(node.inputs, sent if isinstance(node.layer, Merge)
                                    else (sent,)):
                # not in place: ``part`` may be a record's array
                pending[source] = part if source not in pending else pending[source] + part
        return pending[self.input_name]

    def _backward(self, grad_z: Array) -> Array:
        return self._sweep(grad_z, lambda layer, grad: layer.backward(grad))

    # -- rules ------------------------------------------------------------------------------

    def _assign_structured(self, spec: Any, out: dict[str, Rule | None]) -> None:
        if isinstance(spec, Rule) or spec is None:
            self._assign_uniform(spec, out)
            return
        raise ValueError(
            f"{self.where}: a Graph takes a single Rule or a composite, not a rule list "
            f"(its nodes are named, not numbered): e.g. rule=lambda net: "
            f"{{'fc1': lrp.Flat(), ...}} with one rule per rule-taking node path, got {spec!r}")

    def _propagate(self, R: Array, assignment: dict[str, Rule | None], method: str,
                   records: list[LayerRecord]) -> tuple[Array, Ledger]:
        R_in = self._sweep(R, lambda layer, R_out: layer._explain(R_out, assignment, method,
                                                                  records))
        return R_in, self._no_loss(R)       # the fan-out sums are exact: nothing booked here
