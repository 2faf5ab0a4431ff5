"""Composites: named assignments of a rule to every layer of a network.

A composite is an object called as ``composite(network) -> {path: Rule}``
(docs/conventions.md, "Layer paths and rule assignment"); pass it as
``rule=`` to ``Sequential.explain``.
Because it sees the whole network, "the first linear layer" is well defined:
the first in traversal order (definition order, pre-order, a Residual's body
before its shortcut), so composites work inside Residual blocks
(paths like ``"4.body.0"``). ``repr(composite)`` shows its parameters,
``composite(network)`` the assignment, ``composite.table(network)`` the same
as a readable table.

The idea — different rules for different layer types and depths, since no
single rule is best everywhere — is Montavon et al. 2019 (section 10.3) and
Kohlbrenner et al. 2020 ("Towards best practice in explaining neural network
decisions with LRP"), who named the combinations used here. The
``epsilon_*`` composites give every layer the rule of Zennit's composite of the
same name:

=============  ===============================================================
layer          rule
=============  ===============================================================
Dense          ``Epsilon(epsilon)``
Conv2d         the composite's conv rule (z+, alpha2-beta1 or generalised gamma); also
               Conv1d and ConvTranspose2d (Zennit's ``Convolution`` types)
AvgPool2d      ``Epsilon(stabilizer)`` (Zennit's ``Norm``); also AvgPool1d, the adaptive
               average pools and Upsample (its interpolation weights, like a pool's)
BatchNorm      ``Pass()`` (Zennit's default; fold it first to give it a rule)
LayerNorm      ``Epsilon(stabilizer)`` with ``sigma`` constant (AttnLRP Prop. 3.4; LXT's
               ``LayerNormEpsilon``; Zennit has no LayerNorm rule)
RMSNorm        ``Pass()`` (LXT's identity)
MatMul         its own choice, or with ``attention="attnlrp"`` ``UniformSplit()``, with
               ``attention="cp-lrp"`` ``HeldConstant(k)`` on ``A V`` (:func:`attention_rules`)
first layer    ``Flat()`` / ``ZBox(low, high)`` replaces that one layer's rule
=============  ===============================================================

For transformers, :func:`attnlrp` and :func:`cp_lrp` give ``Epsilon(epsilon)`` to
every Dense and Conv (LXT's AttnLRP) and the option of their name; the
``attention`` option of the other composites keeps their own conv rules (LXT's
recipe for vision transformers: CP-LRP attention with Zennit's rules on the
linear layers).

A rule-taking layer of a type a composite does not know (anything but those of
:data:`KINDS`) is a ValueError naming it:
no layer is ever left silently without a rule. ``uniform(rule)`` is the
exception: it gives its rule to every layer that takes one.

Comparing with Zennit: our ZPlus/GeneralizedGamma/ZBox/Flat have no stabilizer in the
denominator where Zennit adds ``stabilizer * sign(d_j)`` (``lrp_ref.rules``),
so results agree to about ``1e-6 / |d_j|`` relative with Zennit's defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..graph import Graph
from ..layers.attention import MatMul, Softmax
from ..layers.base import Layer, where
from ..layers.elementwise import Identity
from ..layers.shape import Rearrange
from ..multihead_attention import ATTENTION as MHA_ATTENTION
from ..table import format_table
from . import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    HeldConstant,
    Pass,
    Rule,
    UniformSplit,
    ZBox,
    Zero,
    short_repr,
)

#: Layer type name -> the kind a composite dispatches on (matched along the MRO,
#: so subclasses of these layers are recognised; no import of their modules).
KINDS = {
    "Dense": "dense",
    "Conv1d": "conv",
    "Conv2d": "conv",
    "ConvTranspose2d": "conv",
    "AvgPool1d": "avgpool",
    "AvgPool2d": "avgpool",
    "Upsample": "avgpool",
    "BatchNorm1d": "batchnorm",
    "BatchNorm2d": "batchnorm",
    "LayerNorm": "layernorm",
    "RMSNorm": "rmsnorm",
}
#: The ``attention`` option of the composites (MultiheadAttention's choices): how a
#: MatMul node shares relevance.
ATTENTION = tuple(MHA_ATTENTION)

Entry = tuple[str, Layer, str]
Chooser = Callable[[list[Entry]], dict[str, Rule]]


def layer_kind(layer: Layer) -> str | None:
    """``"dense"``, ``"conv"``, ``"avgpool"``, ``"batchnorm"``, ``"layernorm"``,
    ``"rmsnorm"``, or None for another type."""
    for cls in type(layer).__mro__:
        if cls.__name__ in KINDS and cls.__module__.startswith("lrp_ref.layers"):
            return KINDS[cls.__name__]
    return None


class Composite:
    """A named, printable rule assignment: ``composite(network) -> {path: Rule}``.

    Parameters
    ----------
    name : str
        The name of the function that built it (shown by ``repr``).
    parameters : dict
        Its arguments (shown by ``repr``).
    choose : callable
        Maps the rule-taking layers, ``[(path, layer, kind)]`` in traversal
        order, to ``{path: Rule}``.
    dispatch : bool
        Whether ``choose`` dispatches on the layer kind; then a rule-taking
        layer of an unknown type is an error.
    attention : {None, "attnlrp", "cp-lrp"}
        The rule of every MatMul node (a product of two activations): None
        leaves each node's own choice; ``"attnlrp"`` gives every one
        ``UniformSplit()``; ``"cp-lrp"`` gives ``HeldConstant(k)`` to the
        products of attention weights and values (factor ``k`` made by a
        Softmax) and ``UniformSplit()`` to the others (:func:`attention_rules`).
    """

    def __init__(self, name: str, parameters: dict[str, Any], choose: Chooser,
                 dispatch: bool = True, attention: str | None = None) -> None:
        if attention is not None and attention not in ATTENTION:
            raise ValueError(f"{name}: attention must be None, 'attnlrp' or 'cp-lrp', "
                             f"got {attention!r}")
        self.name = name
        self.parameters = dict(parameters)
        if attention is not None:
            self.parameters["attention"] = attention
        self.attention = attention
        self._choose = choose
        self._dispatch = dispatch

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={short_repr(v)}" for k, v in self.parameters.items())
        return f"{self.name}({args})"

    def __call__(self, network: Layer) -> dict[str, Rule]:
        """The rule of every rule-taking layer of ``network``, keyed by path."""
        if not isinstance(network, Layer):
            raise TypeError(f"{self!r} needs a network (a Layer), got {network!r}")
        layers = [("", network)] + list(network.named_layers())   # the network's own paths
        entries = [(path, layer, layer_kind(layer)) for path, layer in layers if layer.takes_rule]
        if self._dispatch:
            for path, layer, kind in entries:
                if kind is None:
                    raise ValueError(
                        f"{self!r} has no rule for {where(path, layer)}: it assigns rules to "
                        f"{', '.join(KINDS)} only; give that layer a rule with a rule list "
                        "or use uniform(rule)"
                    )
        mapping = self._choose(entries)
        if self.attention is not None:
            mapping.update(attention_rules(network, self.attention))
        return mapping

    def table(self, network: Layer) -> str:
        """The assignment as a text table: one line ``path  type  rule`` per layer."""
        mapping = self(network)
        layers = dict([("", network), *network.named_layers()])
        rows = [(path or "(network)", type(layers[path]).__name__, repr(rule))
                for path, rule in mapping.items()]
        return "\n".join([repr(self), *format_table(rows)])


def _first(entries: list[Entry], kinds: tuple[str, ...]) -> str | None:
    """The path of the first entry of one of ``kinds`` in traversal order."""
    return next((path for path, _, kind in entries if kind in kinds), None)


def _by_kind(rules: dict[str, Rule], first_rule: Rule | None = None,
             first_kinds: tuple[str, ...] = ()) -> Chooser:
    """Each layer gets ``rules[kind]``; the first layer of ``first_kinds`` gets ``first_rule``."""

    def choose(entries: list[Entry]) -> dict[str, Rule]:
        mapping = {path: rules[kind] for path, _, kind in entries}
        first = _first(entries, first_kinds)
        if first_rule is not None and first is not None:
            mapping[first] = first_rule
        return mapping

    return choose


def uniform(rule: Rule) -> Composite:
    """``rule`` for every layer that takes one (the same as passing ``rule=rule``).

    No dispatch on the layer type, so layers of any type get the rule; a
    layer that cannot apply it raises its own error when the rules are checked.
    """
    if not isinstance(rule, Rule):
        raise TypeError(f"uniform needs a Rule, got {rule!r}")
    return Composite("uniform", {"rule": rule},
                     lambda entries: {path: rule for path, _, _ in entries}, dispatch=False)


def _norm_rules(stabilizer: float) -> dict[str, Rule]:
    """BatchNorm -> Pass() (Zennit's default), LayerNorm -> Epsilon(stabilizer) (AttnLRP
    Prop. 3.4, ``sigma`` constant; LXT's ``LayerNormEpsilon``), RMSNorm -> Pass() (LXT's
    identity)."""
    return {"batchnorm": Pass(), "layernorm": Epsilon(stabilizer), "rmsnorm": Pass()}


def _zennit_rules(conv: Rule, epsilon: float, stabilizer: float) -> dict[str, Rule]:
    """Zennit's layer map: Dense -> Epsilon(epsilon), Conv2d -> ``conv``,
    AvgPool2d -> Epsilon(stabilizer) (its ``Norm``), and the norms (:func:`_norm_rules`)."""
    return {"dense": Epsilon(epsilon), "conv": conv, "avgpool": Epsilon(stabilizer),
            **_norm_rules(stabilizer)}


def _zennit_like(name: str, conv: Rule, epsilon: float, stabilizer: float,
                 first_rule: Rule | None = None, attention: str | None = None) -> Composite:
    """A Zennit composite; ``first_rule`` replaces the rule of the first Dense or Conv2d."""
    return Composite(name, {"epsilon": epsilon, "stabilizer": stabilizer},
                     _by_kind(_zennit_rules(conv, epsilon, stabilizer), first_rule,
                              ("dense", "conv")), attention=attention)


def attention_rules(network: Layer, attention: str) -> dict[str, Rule]:
    """The rule of every MatMul node of ``network`` for the ``attention`` option.

    ``"attnlrp"``: ``UniformSplit()`` for every one (AttnLRP Prop. 3.3).
    ``"cp-lrp"``: ``HeldConstant(k)`` where factor ``k`` is the output of a
    Softmax (through shape-only nodes: reshape, permute, identity), i.e. the
    attention weights of ``A V`` (Ali et al. 2022: held constant, all relevance
    to the values); ``UniformSplit()`` for the other products (``Q K^T``, which
    then receives nothing).
    """
    def made_by_softmax(name: str, nodes: dict[str, Any]) -> bool:
        node = nodes.get(name)
        while node is not None and isinstance(node.layer, (Rearrange, Identity)):
            node = nodes.get(node.inputs[0])
        return node is not None and isinstance(node.layer, Softmax)

    rules: dict[str, Rule] = {}
    for prefix, graph in [("", network), *network.named_layers()]:
        if not isinstance(graph, Graph):
            continue
        nodes = {node.name: node for node in graph.nodes}
        for node in graph.nodes:
            if not isinstance(node.layer, MatMul):
                continue
            held = [k for k, source in enumerate(node.inputs)
                    if attention == "cp-lrp" and made_by_softmax(source, nodes)]
            rules[f"{prefix}.{node.name}" if prefix else node.name] = (
                HeldConstant(held[0]) if len(held) == 1 else UniformSplit())
    return rules


def epsilon_plus(epsilon: float = 1e-6, stabilizer: float = 1e-6,
                 attention: str | None = None) -> Composite:
    """Zennit's ``EpsilonPlus``: Conv2d -> z+, Dense -> ``Epsilon(epsilon)``.

    Zennit's ``ZPlus`` keeps ``b+`` in the denominator, so the conv rule is
    our ``AlphaBeta(1, 0)``, not our :class:`~lrp_ref.rules.ZPlus`.
    AvgPool2d -> ``Epsilon(stabilizer)``, BatchNorm -> ``Pass()``.
    """
    return _zennit_like("epsilon_plus", AlphaBeta(1, 0), epsilon, stabilizer,
                        attention=attention)


def epsilon_plus_flat(epsilon: float = 1e-6, stabilizer: float = 1e-6,
                      attention: str | None = None) -> Composite:
    """:func:`epsilon_plus` with ``Flat()`` on the first Dense or Conv2d.

    Zennit's ``EpsilonPlusFlat``; "first" in traversal order.
    """
    return _zennit_like("epsilon_plus_flat", AlphaBeta(1, 0), epsilon, stabilizer, Flat(),
                        attention)


def epsilon_alpha2_beta1(epsilon: float = 1e-6, stabilizer: float = 1e-6,
                         attention: str | None = None) -> Composite:
    """Zennit's ``EpsilonAlpha2Beta1``: Conv2d -> ``AlphaBeta(2, 1)``, Dense -> Epsilon.

    AvgPool2d -> ``Epsilon(stabilizer)`` (Zennit's alpha-beta would leave the
    parameterless AvgPool unmodified; its composites give it ``Norm``),
    BatchNorm -> ``Pass()``.
    """
    return _zennit_like("epsilon_alpha2_beta1", AlphaBeta(2, 1), epsilon, stabilizer,
                        attention=attention)


def epsilon_alpha2_beta1_flat(epsilon: float = 1e-6, stabilizer: float = 1e-6,
                              attention: str | None = None) -> Composite:
    """:func:`epsilon_alpha2_beta1` with ``Flat()`` on the first Dense or Conv2d."""
    return _zennit_like("epsilon_alpha2_beta1_flat", AlphaBeta(2, 1), epsilon, stabilizer,
                        Flat(), attention)


def epsilon_gamma_box(low: Any, high: Any, gamma: float = 0.25, epsilon: float = 1e-6,
                      stabilizer: float = 1e-6, attention: str | None = None) -> Composite:
    """Zennit's ``EpsilonGammaBox``: Conv2d -> ``GeneralizedGamma(gamma)``,
    Dense -> ``Epsilon(epsilon)``, ``ZBox(low, high)`` on the first Conv2d.

    The box goes to the first *Conv2d* only, as Zennit's code does (its
    documentation says "first linear layer"); a network without a Conv2d is
    refused rather than silently left without the box. AvgPool2d ->
    ``Epsilon(stabilizer)``, BatchNorm -> ``Pass()``.

    The conv rule is Zennit's ``Gamma``, the generalised gamma
    (:class:`~lrp_ref.rules.GeneralizedGamma`: each output takes the
    contributions of its own sign), so the composite reproduces Zennit (up to
    the stabilizer, see the module docstring) on any architecture, ResNets
    included, where convolutions whose outputs are negative receive relevance.
    Montavon's :class:`~lrp_ref.rules.Gamma` (:func:`montavon2019`) agrees
    with it only at outputs ``z_j > 0`` of inputs ``a >= 0``.
    """
    box = ZBox(low, high)
    parameters = {"low": box.low, "high": box.high, "gamma": gamma, "epsilon": epsilon,
                  "stabilizer": stabilizer}
    rules_by_kind = _by_kind(_zennit_rules(GeneralizedGamma(gamma), epsilon, stabilizer), box,
                             ("conv",))

    def choose(entries: list[Entry]) -> dict[str, Rule]:
        if _first(entries, ("conv",)) is None:
            raise ValueError(f"{composite!r} gives ZBox to the first Conv2d, but the network "
                             "has none; use montavon2019 or a rule list for a Dense-only network")
        return rules_by_kind(entries)

    composite = Composite("epsilon_gamma_box", parameters, choose, attention=attention)
    return composite


def montavon2019(low: Any, high: Any, gamma: float = 0.25, epsilon: float = 0.25,
                 lower: float = 0.5, upper: int | None = None,
                 stabilizer: float = 1e-6, attention: str | None = None) -> Composite:
    """The depth-dependent recipe of Montavon et al. 2019, section 10.3.

    Over the Dense and Conv2d layers ``L_1 .. L_n`` in traversal order:

    * input layer ``L_1``: ``ZBox(low, high)`` (z^B, the pixel domain is a box);
    * upper layers: ``Zero()`` (LRP-0). By default (``upper=None``) these are
      the Dense layers after the last Conv2d — VGG-16's fully connected
      classifier in the paper; in a network without Conv2d every Dense but the
      first. ``upper=k`` makes them the last ``k`` layers instead;
    * the ``m`` layers in between: the lower ``floor(lower * m + 1/2)`` get
      ``Gamma(gamma)`` (Montavon's, as in the paper: for the ReLU network
      it was written for, every such layer feeds a ReLU), the rest (the middle
      layers) ``Epsilon(epsilon)``.
      ``lower=0.5`` reproduces the paper's VGG-16 split (of the 12 conv
      layers after the first, 6 gamma — blocks 1-3 — and 6 epsilon —
      blocks 4-5).

    The paper's epsilon is ``0.25 * std(z)`` per layer; here it is the fixed
    ``epsilon``. AvgPool2d gets ``Epsilon(stabilizer)``, BatchNorm ``Pass()``.
    """
    if not (isinstance(lower, (int, float)) and 0 <= lower <= 1):
        raise ValueError(f"montavon2019: lower must be a fraction in [0, 1], got {lower!r}")
    if upper is not None and not (isinstance(upper, int) and upper >= 0):
        raise ValueError(f"montavon2019: upper must be None or an int >= 0, got {upper!r}")
    box, gamma_rule, epsilon_rule = ZBox(low, high), Gamma(gamma), Epsilon(epsilon)
    others = {"avgpool": Epsilon(stabilizer), **_norm_rules(stabilizer)}
    parameters = {"low": box.low, "high": box.high, "gamma": gamma, "epsilon": epsilon,
                  "lower": lower, "upper": upper, "stabilizer": stabilizer}

    def choose(entries: list[Entry]) -> dict[str, Rule]:
        weighted = [path for path, _, kind in entries if kind in ("dense", "conv")]
        if not weighted:
            raise ValueError(f"{composite!r} needs a Dense or Conv2d layer for ZBox")
        above = weighted[1:]
        if upper is None:
            kinds = {path: kind for path, _, kind in entries}
            n_upper = 0
            while n_upper < len(above) and kinds[above[-1 - n_upper]] == "dense":
                n_upper += 1
        elif upper > len(above):
            raise ValueError(f"{composite!r}: upper={upper}, but the network has only "
                             f"{len(above)} Dense/Conv2d layer(s) above the input layer")
        else:
            n_upper = upper
        between = above[:len(above) - n_upper]
        n_gamma = math.floor(lower * len(between) + 0.5)
        mapping = {path: others[kind] for path, _, kind in entries if kind in others}
        mapping[weighted[0]] = box
        mapping.update({path: gamma_rule for path in between[:n_gamma]})
        mapping.update({path: epsilon_rule for path in between[n_gamma:]})
        mapping.update({path: Zero() for path in above[len(between):]})
        return {path: mapping[path] for path, _, _ in entries}

    composite = Composite("montavon2019", parameters, choose, attention=attention)
    return composite


def _transformer(name: str, attention: str, epsilon: float, stabilizer: float) -> Composite:
    """Epsilon on every linear layer, the norms' rules, ``attention`` on every MatMul."""
    rules = {"dense": Epsilon(epsilon), "conv": Epsilon(epsilon), "avgpool": Epsilon(stabilizer),
             **_norm_rules(stabilizer)}
    return Composite(name, {"epsilon": epsilon, "stabilizer": stabilizer}, _by_kind(rules),
                     attention=attention)


def attnlrp(epsilon: float = 1e-6, stabilizer: float = 1e-6) -> Composite:
    """AttnLRP (Achtibat et al. 2024) as LXT applies it: epsilon everywhere, uniform products.

    Dense and Conv -> ``Epsilon(epsilon)`` (Eq. 8); AvgPool -> ``Epsilon(stabilizer)``;
    LayerNorm -> ``Epsilon(stabilizer)`` with ``sigma`` constant (Prop. 3.4), RMSNorm ->
    ``Pass()`` (the identity), BatchNorm -> ``Pass()``; every MatMul ->
    ``UniformSplit()`` (Prop. 3.3). Softmax (Prop. 3.1), Product (Prop. 3.2) and the
    element-wise activations (the identity, Eq. 9) have their rules as nodes.
    The same as ``epsilon_plus``-style composites with ``attention="attnlrp"``, but
    with epsilon on the convolutions too.
    """
    return _transformer("attnlrp", "attnlrp", epsilon, stabilizer)


def cp_lrp(epsilon: float = 1e-6, stabilizer: float = 1e-6) -> Composite:
    """CP-LRP (Ali et al. 2022): :func:`attnlrp`, but the attention weights held constant.

    Every product ``A V`` whose factor ``A`` a Softmax made -> ``HeldConstant``
    (all relevance along the value path; the softmax, ``Q K^T`` and the query and
    key projections receive none); other MatMuls -> ``UniformSplit()``.
    """
    return _transformer("cp_lrp", "cp-lrp", epsilon, stabilizer)


__all__ = [
    "ATTENTION",
    "KINDS",
    "Composite",
    "attention_rules",
    "attnlrp",
    "cp_lrp",
    "epsilon_alpha2_beta1",
    "epsilon_alpha2_beta1_flat",
    "epsilon_gamma_box",
    "epsilon_plus",
    "epsilon_plus_flat",
    "layer_kind",
    "montavon2019",
    "uniform",
]
