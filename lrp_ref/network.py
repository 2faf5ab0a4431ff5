"""Networks (Sequential; Graph in lrp_ref.graph) and their explanations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audit import LayerRecord, Ledger, format_ledger, per_sample_sum
from .conditions import condition_masks, parse_conditions
from .layers.base import Container, Layer, array_key, build, check_method
from .layers.calls import Trace, current, inside, tracing
from .rules import Rule

Array = np.ndarray


def select_targets(output: Array, target: Any) -> Array:
    """The validated class per sample: ``target`` (an int or one per sample), else the argmax."""
    if output.ndim != 2:
        raise ValueError(f"the network's output must be (B, classes) to pick a target, "
                         f"got shape {output.shape}")
    batch, classes = output.shape
    if target is None:
        return np.argmax(output, axis=1)
    t = np.asarray(target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"target must be an int or ints, got {target!r}")
    t = np.broadcast_to(t, (batch,)) if t.ndim == 0 else t
    if t.shape != (batch,):
        raise ValueError(f"target must be one int or {batch} ints, got shape {t.shape}")
    if np.any(t < 0) or np.any(t >= classes):
        raise ValueError(f"target must lie in [0, {classes}), got {t.tolist()}")
    return t.astype(np.int64)


def one_hot(output: Array, target: Array, logit: bool = False) -> Array:
    """``onehot(target)`` shaped like ``output`` ``(B, classes)``: 1 at ``(b, target_b)``, else 0.

    With ``logit``, the target's logit instead of 1: ``R_L = onehot(target) * f(x)``,
    the output relevance that ``explain`` starts from.
    """
    samples = np.arange(len(target))
    seed = np.zeros_like(output)
    seed[samples, target] = output[samples, target] if logit else 1
    return seed


@dataclass(frozen=True)
class Explanation:
    """The result of :meth:`Network.explain` (a Sequential's or a Graph's).

    Its arrays are its own: none shares memory with the caller's ``x`` or
    ``output_relevance``.

    Attributes
    ----------
    relevance : ndarray
        Relevance of every input element, shaped like the input.
    output : ndarray
        The network's output (logits), ``(B, classes)``.
    target : ndarray or None
        The explained class per sample, ``(B,)`` ints; None when the output
        relevance was given without a target.
    layers : list of LayerRecord
        One record per layer in traversal order (definition order, pre-order,
        containers before their children; for a Graph the order nodes were
        added), each with its ``path``, ``rule``, ``relevance_in`` (a tuple,
        one array per input, for a merge node), ``relevance_out`` and ledger
        terms.
    """

    relevance: Array
    output: Array
    target: Array | None
    layers: list[LayerRecord]

    def layer(self, path: str) -> LayerRecord:
        """The record of the layer at ``path`` (e.g. ``"3"`` or ``"4.body.0"``)."""
        for record in self.layers:
            if record.path == path:
                return record
        raise KeyError(f"no layer at path {path!r}; paths are {[r.path for r in self.layers]}")

    def rules(self) -> dict[str, Rule | None]:
        """``{path: rule}``: the rule every layer used (None for rule-less layers)."""
        return {r.path: r.rule for r in self.layers if not r.container}

    def ledger(self, sample: int = 0) -> str:
        """The conservation ledger of one sample as a text table."""
        return format_ledger(self.layers, sample)

    def input_relevance_sum(self) -> Array:
        """``sum_i R_i`` per sample."""
        return per_sample_sum(self.relevance)


class Network(Container):
    """A whole network that can be explained: the base of Sequential and Graph.

    ``explain``, ``gradient`` and ``gradient_x_input`` live here, written once
    against the Container contract (``forward``, ``backward``,
    ``assign_rules``, ``_explain``, ``named_layers``), so that every kind of
    network explains the same way.

    Each call runs in a :class:`~lrp_ref.layers.calls.Trace` of its own, which
    holds what the layers' forwards keep: the layer objects are only read, so
    one network can be explained from several threads at once, and one layer
    object can sit at several places. The network keeps the last finished
    call's trace only to hand its memory to the next call layer by layer (as
    when the layers held their inputs; ``Trace(replaces=...)``), never to read it.
    """

    #: The trace of the last finished explain/gradient call (memory for the next one).
    _finished: Trace | None = None

    def _new_trace(self) -> Trace:
        return Trace(replaces=self._finished)

    def _finish(self, trace: Trace) -> None:
        self._finished = trace.finish()

    def explain(self, x: Array, target: int | Sequence[int] | Array | None = None,
                rule: Any = None, output_relevance: Array | None = None,
                method: str = "fast", conditions: dict | None = None) -> Explanation:
        """Explain the network's output for ``x`` with LRP.

        Parameters
        ----------
        x : ndarray
            Input batch, batch first (integers are converted to the network's dtype).
        target : int, sequence of int or None
            The class to explain, one for all samples or one per sample; None
            explains each sample's argmax.
        rule : Rule, list or composite
            A Rule for every layer that takes one; a list with one entry per
            top-level layer (None for rule-less layers, a nested list or a
            ``(body, shortcut)`` pair for containers; not for a Graph, whose
            nodes are named: give it a composite); or a composite, a callable
            ``composite(network) -> {path: Rule}``.
        output_relevance : ndarray, optional
            Relevance at the output, overriding the default
            ``R_L = onehot(target) * f(x)`` (the target logit). The output may
            then have any shape, and ``target`` is optional.
        method : {"fast", "explicit"}
            The propagation path; both give the same result to rounding.
        conditions : dict, optional
            Concept Relevance Propagation (Achtibat et al. 2023):
            ``{layer: channels}``, the layer a top-level index or a path, the
            channels an int, a sequence of ints (axis 1 of that layer's
            output) or a ``(B, C)`` boolean mask. The relevance arriving at the
            layer's output is kept in those channels only; the layer's record
            books the removed relevance as ``conditioned``
            (``lrp_ref.conditions``).

        Returns
        -------
        Explanation
        """
        check_method(method)
        if rule is None:
            raise ValueError("explain needs a rule, e.g. rule=lrp_ref.Epsilon(1e-6)")
        assignment = self.assign_rules(rule)
        parsed = {} if conditions is None else parse_conditions(self, conditions)
        trace = self._new_trace()               # what this call's forward keeps
        with tracing(trace):
            output = self.forward(x)
            if isinstance(x, np.ndarray) and np.may_share_memory(output, x):
                output = output.copy()          # the Explanation never aliases the caller's x
            assignment.conditions = condition_masks(self, parsed, output.shape[0], trace)
            if output_relevance is None:
                target = select_targets(output, target)
                R = one_hot(output, target, logit=True)
            else:  # the seed is given: a target is only a label, and optional
                # a copy: the records and e.relevance never alias the caller's array
                R = self._check_output_array(output_relevance, "output_relevance").copy()
                target = None if target is None else select_targets(output, target)
            records: list[LayerRecord] = []
            relevance = self._explain(R, assignment, method, records)
        self._finish(trace)
        order = {path: k for k, (path, _) in enumerate(self.named_layers())}
        records.sort(key=lambda r: order[r.path])
        return Explanation(relevance, output, target, records)

    def gradient(self, x: Array, target: int | Sequence[int] | Array | None = None) -> Array:
        """``d f_target(x) / d x``, the gradient of the target logit (argmax if None).

        Raises
        ------
        TypeError
            For a network that reads token ids (a leading Embedding): ids have
            no gradient; ``lrp_ref.text`` differentiates with respect to the
            embedding vectors instead.
        """
        if self.reads_token_ids:
            raise TypeError("this network reads token ids, which have no gradient: use "
                            "lrp_ref.text.gradient_x_input(net, ids) or "
                            "lrp_ref.text.sensitivity(net, ids), which differentiate with "
                            "respect to the embedding vectors")
        trace = self._new_trace()               # what this call's forward keeps
        with tracing(trace):
            output = self.forward(x)
            target = select_targets(output, target)
            grad = self.backward(one_hot(output, target))
        self._finish(trace)
        return grad

    def gradient_x_input(self, x: Array,
                         target: int | Sequence[int] | Array | None = None) -> Array:
        """Gradient x Input, ``x * d f_target(x) / d x`` (equals LRP-0 on ReLU networks)."""
        x = self._check_input(x)
        return x * self.gradient(x, target)


class Sequential(Network):
    """Layers applied one after the other; a Sequential is itself a layer.

    Parameters
    ----------
    layers : sequence of Layer
        The layers in order. Nested Sequentials keep their structure; their
        layers get paths ``"3.0"``, ``"3.1"``, ...
    """

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers = list(layers)
        for k, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: entry {k} is not a Layer: {layer!r}")
        seen: set[int] = set()
        for path, layer in self.named_layers():
            if id(layer) in seen:
                raise ValueError(f"Sequential: the layer at '{path}' appears twice; "
                                 "use a separate layer object for every position")
            seen.add(id(layer))

    def children(self) -> list[tuple[str, Layer]]:
        return [(str(k), layer) for k, layer in enumerate(self.layers)]

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, k: int) -> Layer:
        return self.layers[k]

    def __repr__(self) -> str:
        lines = [f"  ({name}) {layer!r}".replace("\n", "\n  ") for name, layer in self.children()]
        return "Sequential(\n" + "\n".join(lines) + "\n)"

    # -- serialisation ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Sequential:
        layers = config.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"Sequential at '{prefix}': 'layers' must be a list")
        return cls([build(c, arrays, array_key(prefix, str(k))) for k, c in enumerate(layers)])

    # -- forward and backward ---------------------------------------------------------------

    @property
    def reads_token_ids(self) -> bool:
        """True when the first layer reads integer token ids (an Embedding)."""
        return bool(self.layers) and self.layers[0].reads_token_ids

    def _check_input(self, a: Any) -> Array:
        if self.reads_token_ids:  # ids stay integers; the Embedding checks them
            with inside("0"):
                return self.layers[0].check_input(a)
        return self._network_input(a)

    def _forward(self, a: Array) -> Array:
        for name, layer in self.children():
            with inside(name):
                a = layer.forward(a)
        return a

    def _backward(self, grad_z: Array) -> Array:
        for name, layer in reversed(self.children()):
            with inside(name):
                grad_z = layer.backward(grad_z)
        return grad_z

    # -- rules --------------------------------------------------------------------------------

    def _assign_structured(self, spec: Any, out: dict[str, Rule | None]) -> None:
        if isinstance(spec, Rule) or spec is None:
            self._assign_uniform(spec, out)
            return
        if not isinstance(spec, list) or len(spec) != len(self.layers):
            raise ValueError(
                f"{self.where}: a rule list needs one entry per "
                f"layer ({len(self.layers)}), got {spec!r}"
            )
        out[current().path] = None
        for (name, layer), entry in zip(self.children(), spec):
            with inside(name):
                layer._assign_structured(entry, out)

    def _propagate(self, R: Array, assignment: dict[str, Rule | None], method: str,
                   records: list[LayerRecord]) -> tuple[Array, Ledger]:
        for name, layer in reversed(self.children()):
            with inside(name):
                R = layer._explain(R, assignment, method, records)
        return R, self._no_loss(R)
