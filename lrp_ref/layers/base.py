"""The layer contract shared by every layer and container.

Every layer has

* ``forward(a) -> z``: the output; remembers what relevance needs;
* ``backward(grad_z) -> grad_a``: the ordinary gradient;
* ``relevance(R_out, rule, method="fast") -> R_in``: the LRP step, same shape
  as the input, after ``forward`` on the same batch;
* ``output_shape`` (of the last forward), ``check_input(a)`` (the input as
  forward reads it), ``parameters()`` and ``gradients()`` (the trainable arrays
  and their gradients of the last backward, ``{key: array}``, keys as ``state()``).

What forward remembers belongs to the call, and the path to the network
(:mod:`lrp_ref.layers.calls`): a layer declares the attributes its forward keeps
as :class:`~lrp_ref.layers.calls.Kept` (``_input``, ``_output_shape`` here), and a
container runs each child ``with inside(name):``.

The public methods validate their arguments (shape, finiteness, order of calls)
and raise errors that name the layer's path and type; subclasses implement the
underscored ``_forward``, ``_backward`` and ``_relevance`` on checked arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import nullcontext
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from ..audit import LayerRecord, Ledger, per_sample_sum
from ..checks import float_dtype
from ..engine.kernels import overflow_error, surely_finite
from ..rules import Rule, describe
from .calls import (
    Kept,
    Trace,
    at,
    check_own_attributes,
    current,
    inside,
    join,
    own_attributes,
    tracing,
)

Array = np.ndarray

METHODS = ("fast", "explicit")

_layer_types: dict[str, type[Layer]] = {}
#: The layer types a model file may name, by type name (read-only). The table itself
#: is ``lrp_ref/registry.py``, which fills this view when lrp_ref is imported (it names
#: Sequential, defined above ``layers/``). Defining a subclass registers nothing.
LAYER_TYPES: Mapping[str, type[Layer]] = MappingProxyType(_layer_types)


def register_layer_types(classes: Iterable[type[Layer]]) -> None:
    """Let model files name ``classes`` (called once, by ``lrp_ref/registry.py``).

    A name already taken by another class is refused: nothing shadows a registered type.
    """
    for cls in classes:
        if _layer_types.setdefault(cls.__name__, cls) is not cls:
            raise ValueError(f"layer type name {cls.__name__!r} is taken by "
                             f"{_layer_types[cls.__name__]!r}")


class TypeName(str):
    """The ``"type"`` of a layer config: the class name, which a model file stores.

    Made by :meth:`Layer.config`, it also carries the class itself (``cls``), so a
    copy rebuilt from the config in this process (``astype``, the canonizers) has the
    class of the original, a user's subclass included. JSON keeps only the name: a
    model file names one of :data:`LAYER_TYPES`, never code.
    """

    cls: type[Layer] | None = None


def type_name(cls: type[Layer]) -> TypeName:
    """``cls.__name__`` as a :class:`TypeName` that remembers ``cls``."""
    name = TypeName(cls.__name__)
    name.cls = cls
    return name


def nonfinite_count(x: Array) -> int:
    """How many entries of ``x`` are NaN or inf; the usual answer, 0, told by one pass without
    a temporary array (:func:`~lrp_ref.engine.kernels.surely_finite`)."""
    if surely_finite(x) or np.all(np.isfinite(x)):
        return 0
    return int(np.size(x) - np.count_nonzero(np.isfinite(x)))


def check_finite(name: str, x: Array, where: str) -> None:
    """Raise ValueError when ``x`` holds NaN or inf."""
    bad = nonfinite_count(np.asarray(x))
    if bad:
        raise ValueError(f"{where}: {name} contains {bad} NaN or inf value(s)")


def check_representable(name: str, x: Array, where: str) -> None:
    """Raise ValueError when a computed ``x`` overflowed (holds inf or NaN).

    One pass tells the usual case (:func:`nonfinite_count`); only when it cannot are the
    entries themselves checked. A tuple
    (the relevance a merge node sends to each of its inputs) is checked entry by entry.
    """
    if isinstance(x, tuple):
        for part in x:
            check_representable(name, part, where)
        return
    bad = nonfinite_count(x) if x.dtype.kind in "fc" else 0
    if bad:
        raise overflow_error(where, name, f"{bad} value(s) are inf or NaN,", x.dtype)


def as_float_array(x: Any, dtype: np.dtype, where: str) -> Array:
    """``x`` as an array of ``dtype``; integer and bool input is converted.

    Masked arrays (whose mask would be lost), dates and durations (``datetime64``,
    ``timedelta64``: not numbers, though NumPy stores them as integers) and complex
    numbers are a TypeError.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(f"{where}: masked arrays are not supported (the mask would be lost); "
                        "pass x.filled(value) or leave the masked samples out")
    array = np.asarray(x)
    if array.dtype.kind in "mM" or not (np.issubdtype(array.dtype, np.number)
                                         or array.dtype == bool):
        raise TypeError(f"{where}: expected a numeric array, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{where}: complex input is not supported")
    return array.astype(dtype, copy=False)


class Assignment(dict):
    """``{path: Rule or None}`` for one explanation, plus its CRP conditions.

    ``conditions`` maps a layer path to a boolean channel mask of shape
    ``(B or 1, C)``, ``C`` the size of axis 1 of the layer's output. Conditional
    relevance (CRP; Achtibat et al. 2023, "From attribution maps to
    human-understandable explanations through Concept Relevance Propagation",
    Nat. Mach. Intell. 5) keeps the relevance arriving at that layer's output
    only in the channels of the condition ``theta`` (their Kronecker delta
    ``delta_{j c}`` over the chosen channels ``c``)::

        R_j(x | theta) = R_j * 1[channel(j) in theta]

    Empty for plain LRP. ``Sequential.explain`` validates the conditions.
    """

    def __init__(self, rules: dict[str, Rule | None] | None = None,
                 conditions: dict[str, Array] | None = None) -> None:
        super().__init__(rules or {})
        self.conditions = dict(conditions or {})

    def condition(self, path: str, R: Array) -> tuple[Array, Array]:
        """``R`` masked to the kept channels of ``path`` and the removed relevance per sample."""
        mask = self.conditions.get(path)
        if mask is None:
            return R, np.zeros(R.shape[0], R.dtype)
        keep = mask.reshape(mask.shape + (1,) * (R.ndim - 2))
        return np.where(keep, R, 0), per_sample_sum(np.where(keep, 0, R))


def shape_text(shape: tuple) -> str:
    """``(B, 784)`` for ``(None, 784)``."""
    return "(" + ", ".join("B" if k == 0 and d is None else ("*" if d is None else str(d))
                           for k, d in enumerate(shape)) + ")"


class Layer:
    """Base class: validation, paths, records and (de)serialisation."""

    #: Whether the layer takes an LRP rule (linear layers) or not (ReLU, Flatten, ...).
    takes_rule: ClassVar[bool] = False
    #: Names of the constructor's array arguments (saved in model files).
    array_names: ClassVar[tuple[str, ...]] = ()
    #: Whether the input is integer token ids that must not be converted to float (Embedding).
    reads_token_ids: ClassVar[bool] = False
    #: Names of the trainable arrays among ``array_names`` (see :meth:`parameters`); each
    #: has a read-only attribute ``grad_<name>`` (a :class:`ParameterGradient`).
    parameter_names: ClassVar[tuple[str, ...]] = ()
    #: ``{name: dL/d<name>}`` of the last backward, None before one (LSTM, Embedding;
    #: the linear layers compute theirs when first read).
    _parameter_gradients: dict[str, Array] | None = None

    #: What forward keeps, per call (:mod:`lrp_ref.layers.calls`): the input (or what
    #: :meth:`_kept_input` keeps instead) and the output's shape.
    _input = Kept()
    _output_shape = Kept()

    # -- identity and description ---------------------------------------------------------

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape of the last forward's output in this call (None before a forward).

        For a layer used on its own, its last forward's; inside a network's call
        (``explain``, ``gradient``), that call's.
        """
        return self._output_shape

    @property
    def where(self) -> str:
        """``layer '3' (Dense)``: how error messages name this layer, by the path of the call."""
        return where(current().path, self)

    def children(self) -> list[tuple[str, Layer]]:
        """``(name, child)`` pairs of a container; empty for a plain layer."""
        return []

    def named_layers(self) -> Iterator[tuple[str, Layer]]:
        """Every layer below this one with its path from here, pre-order, definition order.

        The paths are this network's: the same layer object has another path in
        another network, and one path per node where it sits in a Graph.
        """
        for name, child in self.children():
            yield name, child
            for path, layer in child.named_layers():
                yield join(name, path), layer

    def hyperparameters(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments that are not arrays."""
        return {}

    def arrays(self) -> dict[str, Array]:
        """The constructor's array arguments (weights, biases, statistics)."""
        return {name: getattr(self, name) for name in self.array_names}

    def parameters(self) -> dict[str, Array]:
        """The trainable arrays of this layer and of the layers below it, keyed like :meth:`state`.

        The arrays themselves, which an optimiser updates in place: ``{"weight": W,
        "bias": b}`` for a Dense, ``{"0.weight": ..., "2.body.0.bias": ...}`` for a
        container. BatchNorm's running statistics are not trainable.
        """
        out = {name: getattr(self, name) for name in self.parameter_names}
        for name, child in self.children():
            out.update(prefixed(name, child.parameters()))
        return out

    def gradients(self) -> dict[str, Array | None]:
        """``dL/d<array>`` of the last ``backward`` for every key of :meth:`parameters`.

        None for a layer that has had no backward yet. Each equals the layer's
        attribute ``grad_<name>`` (e.g. ``grad_weight``).
        """
        out = {name: self._parameter_gradient(name) for name in self.parameter_names}
        for name, child in self.children():
            out.update(prefixed(name, child.gradients()))
        return out

    def _parameter_gradient(self, name: str) -> Array | None:
        """``dL/d<name>`` of the last backward, None before one."""
        return None if self._parameter_gradients is None else self._parameter_gradients[name]

    def config(self) -> dict[str, Any]:
        """The JSON-serialisable description of this layer (arrays excluded)."""
        return {"type": type_name(type(self)), **self.hyperparameters()}

    def state(self, prefix: str = "") -> dict[str, Array]:
        """Every array of this layer and below, keyed ``"<relative path>.<name>"``."""
        return {array_key(prefix, name): array for name, array in self.arrays().items()}

    @classmethod
    def from_config(cls, config: dict[str, Any], arrays: dict[str, Array],
                    prefix: str = "") -> Layer:
        """Rebuild a layer from :meth:`config` and :meth:`state` output."""
        args = {k: v for k, v in config.items() if k != "type"}
        for name in cls.array_names:
            key = array_key(prefix, name)
            if key not in arrays:
                raise ValueError(f"{cls.__name__} at '{prefix}': missing array {key!r}")
            args[name] = arrays[key]
        return cls(**args)

    def astype(self, dtype: Any) -> Layer:
        """A converted copy whose parameters (and so computations) are of ``dtype``."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"astype needs a floating dtype, got {dtype}")
        return build(self.config(), {k: v.astype(dtype) for k, v in self.state().items()})

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the layer's parameters, or None for a parameterless layer."""
        # the first parametrised layer in pre-order: each child answers for its own
        # subtree, so every layer below is visited once (linear, not exponential, in depth)
        for array in self.arrays().values():
            return array.dtype
        for _, child in self.children():
            dtype = child.dtype
            if dtype is not None:
                return dtype
        return None

    def __repr__(self) -> str:
        args = [f"{k}={v.shape}" for k, v in self.arrays().items()]
        args += [f"{k}={v!r}" for k, v in self.hyperparameters().items()]
        return f"{type(self).__name__}({', '.join(args)})"

    # -- checked public API ---------------------------------------------------------------

    def expected_input_shape(self) -> tuple[int | None, ...] | None:
        """The input shape this layer accepts (None entries are free), or None for any."""
        return None

    def check_input(self, a: Any) -> Array:
        """``a`` as :meth:`forward` reads it, or an error naming the layer.

        Converted to the layer's dtype (integer token ids stay integers for an
        Embedding) and checked: shape, finiteness.
        """
        return self._check_input(a)

    def _check_input(self, a: Any) -> Array:
        dtype = self.dtype or float_dtype(a)
        a = as_float_array(a, dtype, self.where)
        expected = self.expected_input_shape()
        if expected is not None and (
            a.ndim != len(expected)
            or any(e is not None and e != d for e, d in zip(expected, a.shape))
        ):
            raise ValueError(
                f"{self.where}: expected input of shape {shape_text(expected)}, got {a.shape}"
            )
        if expected is None and a.ndim < 1:
            raise ValueError(f"{self.where}: input needs a batch axis, got a scalar")
        check_finite("input", a, self.where)
        return a

    def forward(self, a: Array) -> Array:
        """Compute the layer's output and remember what ``relevance`` needs.

        Parameters
        ----------
        a : ndarray
            Input, batch first.

        Returns
        -------
        ndarray
            The output ``z``, batch first.

        Notes
        -----
        What is remembered is the arrays themselves, not copies: the input
        (ReLU keeps its output instead, MaxPool2d its output as well). Changing
        one in place before ``relevance`` or ``backward`` changes their result;
        copy an output before modifying it in place. It is remembered for the
        current call (:mod:`lrp_ref.layers.calls`): in ``explain`` or
        ``gradient``, that call's trace; for a layer used on its own, the
        layer itself.
        """
        a = self._check_input(a)
        if a.ndim and a.shape[0] == 0:
            raise ValueError(f"{self.where}: the batch is empty (input of shape {a.shape}); "
                             "give at least one sample")
        own = own_attributes(self)
        z = self._forward(a)
        check_own_attributes(self, own)
        check_representable("output", z, self.where)
        self._input = self._kept_input(a, z)
        self._output_shape = z.shape
        return z

    def _kept_input(self, a: Array, z: Array) -> Array:
        """What forward keeps as ``_input`` for backward and relevance: the input ``a``.

        A layer whose steps need less may keep another array of the shape and dtype
        of ``a`` that serves them as well (ReLU keeps its output).
        """
        return a

    def _check_output_array(self, x: Any, name: str) -> Array:
        if self._input is None:
            raise ValueError(f"{self.where}: {name} needs a forward pass first")
        x = as_float_array(x, self.dtype or self._input.dtype, self.where)
        if x.shape != self._output_shape:
            raise ValueError(
                f"{self.where}: {name} must have the shape of the last forward output "
                f"{self._output_shape}, got {x.shape}"
            )
        check_finite(name, x, self.where)
        return x

    def backward(self, grad_z: Array) -> Array:
        """The ordinary gradient: ``d loss / d a`` from ``d loss / d z``.

        Parametrised layers also give the gradients of their trainable arrays:
        :meth:`gradients`, and one attribute each, ``grad_weight``, ``grad_bias``
        (or their own parameters' names); Dense, Conv2d and BatchNorm compute them
        from this backward's input and ``grad_z`` when first read. Must follow
        ``forward`` on the same batch.
        """
        return self._backward(self._check_output_array(grad_z, "grad_z"))

    def relevance(self, R: Array, rule: Rule | None = None, method: str = "fast") -> Array:
        """One LRP step: the relevance at the input from ``R`` at the output.

        Parameters
        ----------
        R : ndarray
            Relevance at the layer's output (shape of the last forward output).
        rule : Rule or None
            The rule; None for layers that take none. Containers also accept a
            per-layer list or a composite, as :meth:`Sequential.explain`.
        method : {"fast", "explicit"}
            ``explicit`` materialises every contribution ``z_ij``; ``fast``
            factorises the same equation. Both agree to rounding.

        Returns
        -------
        ndarray
            ``R_in``, shaped like the last forward input.
        """
        R = self._check_output_array(R, "relevance")
        check_method(method)
        return self._explain(R, self.assign_rules(rule), method, [])

    # -- rules and records ----------------------------------------------------------------

    def check_rule(self, rule: Rule | None) -> None:
        """Raise when this layer cannot apply ``rule`` (names the layer)."""
        check_not_a_rule_class(rule, self.where)
        if rule is not None and not isinstance(rule, Rule):
            raise TypeError(f"{self.where}: expected a Rule or None, got {rule!r}")
        if not self.takes_rule and rule is not None:
            raise ValueError(f"{self.where} takes no rule, got {describe(rule)}; pass None")
        if self.takes_rule and rule is None:
            raise ValueError(f"{self.where} needs a rule, got None")

    def assign_rules(self, spec: Any) -> Assignment:
        """Resolve a rule specification into ``{path: rule}`` for this layer and below.

        ``spec`` is a Rule (applied to every layer that takes one), a structured
        list (one entry per child of a container), or a composite: a callable
        ``composite(network) -> {path: Rule}``.
        """
        assignment = Assignment()
        check_not_a_rule_class(spec, self.where)
        if isinstance(spec, Rule) or spec is None:
            self._assign_uniform(spec, assignment)
        elif isinstance(spec, (list, tuple)):
            self._assign_structured(spec, assignment)
        elif callable(spec):
            self._assign_composite(spec, assignment)
        else:
            raise TypeError(
                f"{self.where}: rule must be a Rule, a list of rules or a composite, got {spec!r}"
            )
        return assignment

    def _assign_uniform(self, rule: Rule | None, out: dict[str, Rule | None]) -> None:
        path = current().path
        if not self.takes_rule:
            out[path] = None
            if rule is not None and not isinstance(rule, Rule):
                raise TypeError(f"expected a Rule, got {rule!r}")
        else:
            self.check_rule(rule)
            out[path] = rule
        for name, child in self.children():
            with inside(name):
                child._assign_uniform(rule, out)

    def _assign_structured(self, spec: Any, out: dict[str, Rule | None]) -> None:
        if isinstance(spec, (list, tuple)):
            raise ValueError(f"{self.where} is not a container; got a list of rules {spec!r}")
        self.check_rule(spec)
        out[current().path] = spec

    def _assign_composite(self, composite: Any, out: dict[str, Rule | None]) -> None:
        mapping = composite(self)
        if not isinstance(mapping, dict):
            raise TypeError(f"composite {composite!r} must return a dict {{path: Rule}}")
        layers = {"": self, **dict(self.named_layers())}
        unknown = sorted(set(mapping) - set(layers))
        if unknown:
            raise ValueError(f"composite {composite!r} names unknown layer path(s) {unknown}")
        top = current().path
        for path, layer in layers.items():
            with at(join(top, path) if path else top):
                if layer.takes_rule or mapping.get(path) is not None:
                    layer.check_rule(mapping.get(path))
                out[current().path] = mapping.get(path)

    def _relevance(self, R: Array, rule: Rule | None, method: str) -> tuple[Array, Ledger]:
        raise NotImplementedError

    def _explain(self, R: Array, assignment: Assignment, method: str,
                 records: list[LayerRecord]) -> Array:
        """Propagate ``R`` through this layer, appending its record to ``records``.

        A CRP condition on this layer masks ``R`` first; the record keeps the
        arriving ``R`` and books the removed part as ``conditioned``.
        """
        path = current().path
        rule = assignment.get(path)
        kept, removed = assignment.condition(path, R)
        R_in, ledger = self._relevance(kept, rule, method)
        check_representable("relevance", R_in, self.where)
        records.append(LayerRecord(path, type(self).__name__, rule, R_in, R,
                                   ledger + Ledger.condition(removed)))
        return R_in

    # -- parts of subclasses ---------------------------------------------------------------

    def _forward(self, a: Array) -> Array:
        raise NotImplementedError

    def _backward(self, grad_z: Array) -> Array:
        raise NotImplementedError

    def _no_loss(self, R: Array) -> Ledger:
        """The ledger of a step that hands all relevance on."""
        return Ledger.zeros(R.shape[0], R.dtype)


class Container(Layer):
    """A layer made of layers (Sequential, Residual): records cover their children.

    A container runs each child ``with inside(name):`` (forward, backward,
    relevance, rule assignment), which gives the child its path in this call.

    Used on its own (``net.forward(x)``, then ``net.backward(g)``, or a child's
    ``net[k].relevance(R, rule)`` step by step), its layers keep their state on
    themselves, as a layer used on its own does. A container that holds one layer
    object at several places (a Graph node called twice) cannot keep two states on
    one object: it runs in a :class:`~lrp_ref.layers.calls.Trace` of its own, made
    by its ``forward`` and kept as :attr:`trace` for the ``backward`` and
    ``relevance`` that follow. ``explain`` and ``gradient`` always use a fresh
    trace per call (lrp_ref.network).
    """

    #: The Trace of this container's last forward on its own when it holds a layer
    #: object at several places (None otherwise, and before a forward).
    trace: Trace | None = None

    def _network_input(self, a: Any) -> Array:
        """``a`` as an array of this container's dtype (Sequential's and Graph's input).

        Inside a call a parent has converted the input already, and a float array
        is passed on as it is: looking the dtype up walks everything below, which
        at every level of a deep nesting would make a forward quadratic in the
        depth (each layer below still checks its own input).
        """
        if current().path and isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
            return a
        return as_float_array(a, self.dtype or np.float64, self.where)

    def forward(self, a: Array) -> Array:
        call = current()
        # part of a running call (a trace, or a parent that decided for the whole
        # network: a path), or on its own without a shared layer
        if call.trace is not None or call.path or not self.shares_layers():
            return super().forward(a)
        trace = Trace()
        with tracing(trace):
            z = super().forward(a)
        self.trace = trace                      # only once the forward succeeded
        return z

    def shares_layers(self) -> bool:
        """Whether one layer object sits at several places below this container."""
        ids = [id(layer) for _, layer in self.named_layers()]
        return len(set(ids)) < len(ids)

    def backward(self, grad_z: Array) -> Array:
        with self._own_call():
            return super().backward(grad_z)

    def relevance(self, R: Array, rule: Any = None, method: str = "fast") -> Array:
        with self._own_call():
            return super().relevance(R, rule, method)

    def _own_call(self) -> Any:
        """The running call, or the trace of this container's last forward on its own."""
        if current().trace is not None or not self.shares_layers():
            return nullcontext()
        return tracing(self.trace if self.trace is not None else Trace())

    def _explain(self, R: Array, assignment: Assignment, method: str,
                 records: list[LayerRecord]) -> Array:
        start = len(records)
        path = current().path
        kept, removed = assignment.condition(path, R)
        R_in, own = self._propagate(kept, assignment, method, records)
        check_representable("relevance", R_in, self.where)   # e.g. a Residual's skip share
        children = {join(path, name) for name, _ in self.children()}
        ledger = own + Ledger.condition(removed)
        for record in records[start:]:
            if record.path in children:
                ledger = ledger + record.ledger
        if path:
            records.append(LayerRecord(path, type(self).__name__, None, R_in, R, ledger,
                                       container=True))
        return R_in

    def state(self, prefix: str = "") -> dict[str, Array]:
        out: dict[str, Array] = {}
        for name, child in self.children():
            out.update(child.state(array_key(prefix, name)))
        return out

    def _propagate(self, R: Array, assignment: dict[str, Rule | None], method: str,
                   records: list[LayerRecord]) -> tuple[Array, Ledger]:
        """Propagate through the children; return ``R_in`` and the container's own ledger."""
        raise NotImplementedError

    def _assign_pair(self, spec: Any, out: dict[str, Rule | None],
                     branches: tuple[tuple[str, Layer | None], tuple[str, Layer | None]],
                     names: str) -> None:
        """A two-branch container's rule entry: one Rule for both, or a pair of entries.

        ``branches`` are ``(name, branch)`` pairs; ``names`` says what the pair is,
        e.g. ``"(body, shortcut)"``; a branch that is None (an identity shortcut)
        takes the entry None.
        """
        if isinstance(spec, Rule) or spec is None:
            self._assign_uniform(spec, out)
            return
        if not isinstance(spec, (list, tuple)) or len(spec) != 2:
            raise ValueError(f"{self.where}: a rule entry must be a Rule or a {names} pair, "
                             f"got {spec!r}")
        out[current().path] = None
        for (name, branch), entry in zip(branches, spec):
            if branch is not None:
                with inside(name):
                    branch._assign_structured(entry, out)
            elif entry is not None:
                raise ValueError(f"{self.where} has an identity branch, which takes no rule; "
                                 f"its entry must be None, got {entry!r}")


def check_not_a_rule_class(rule: Any, where: str) -> None:
    """TypeError for a Rule class given where a rule object belongs (``rule=Epsilon``)."""
    if isinstance(rule, type) and issubclass(rule, Rule):
        raise TypeError(f"{where}: rule {rule.__name__} is a class; pass an instance: "
                        f"{rule.__name__}()")


def where(path: str, layer: Layer) -> str:
    """``layer '3' (Dense)``: the layer at ``path`` as errors name it (no path: its type)."""
    return f"layer '{path}' ({type(layer).__name__})" if path else type(layer).__name__


def check_method(method: str) -> None:
    """Raise ValueError unless ``method`` is "fast" or "explicit"."""
    if method not in METHODS:
        raise ValueError(f"method must be 'fast' or 'explicit', got {method!r}")


def build(config: dict[str, Any], arrays: dict[str, Array], prefix: str = "") -> Layer:
    """Rebuild a layer from its ``config`` and its arrays keyed ``"<prefix>.<name>"``.

    The class is the one a :class:`TypeName` of :meth:`Layer.config` carries, else
    the registered type of that name (:data:`LAYER_TYPES`): a model file never names code.
    """
    kind = config.get("type") if isinstance(config, dict) else None
    cls = kind.cls if isinstance(kind, TypeName) else (
        LAYER_TYPES.get(kind) if isinstance(kind, str) else None)
    if cls is None:
        raise ValueError(f"unknown layer type {kind!r} at '{prefix}': a model file may name "
                         f"only {', '.join(map(repr, sorted(LAYER_TYPES)))}")
    return cls.from_config(config, arrays, prefix)


def array_key(path: str, name: str) -> str:
    """The key of a layer's array in a flat dict: ``"3.weight"``, ``"weight"`` at the top."""
    return f"{path}.{name}" if path else name


def prefixed(path: str, arrays: dict[str, Any]) -> dict[str, Any]:
    """``arrays`` of the layer at relative ``path`` keyed from its container: ``"3.weight"``."""
    return {array_key(path, key): value for key, value in arrays.items()}


class ParameterGradient:
    """The attribute ``grad_<name>``: ``dL/d<name>`` of the last ``backward``, read-only.

    None before the first backward. It is that backward's gradient: a later
    forward does not change it (Dense, Conv2d and BatchNorm compute it on first
    read from the input and ``grad_z`` of that backward, and keep it). A layer
    declares one for every name in ``parameter_names``; :meth:`Layer.gradients`
    gives them all as a dict.
    """

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.name = attribute.removeprefix("grad_")

    def __get__(self, layer: Layer | None, owner: type) -> Any:
        return self if layer is None else layer._parameter_gradient(self.name)

    def __set__(self, layer: Layer, value: Any) -> None:
        raise AttributeError(f"grad_{self.name} is computed by backward() and cannot be set")

