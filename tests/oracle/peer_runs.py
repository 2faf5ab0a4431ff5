"""Running Zennit and Captum on torch networks, and recording the measured agreement.

Import only after checking that the oracle extra is importable: the test
modules skip first (``pytest.skip(..., allow_module_level=True)``).

* :func:`zennit_lrp` runs a Zennit composite and also captures the relevance
  arriving at every module's output, keyed by torch's module name (which is
  the lrp_ref path after :func:`~lrp_ref.interop.torch.from_torch`).
* :func:`zennit_rule` translates an lrp_ref rule into the Zennit rule with the
  same semantics; :func:`zennit_name_map` translates a whole ``{path: rule}``
  assignment into a Zennit ``NameMapComposite``.
* :func:`captum_lrp` runs Captum's LRP with rules set per module.
* :func:`record` keeps the largest measured difference per comparison;
  ``conftest.py`` prints the table at the end of the session (the numbers in
  docs/peers.md come from it).

Stabilizers. Every Zennit rule adds ``stabilizer * sign(d_j)`` to its
denominators; lrp_ref's ZPlus, AlphaBeta, Gamma, GeneralizedGamma, ZBox, Flat and
WSquare have none. To compare semantics rather than the stabilizer, the Zennit rules get
:data:`TINY` = 1e-30: it changes no denominator of magnitude above ~1e-14 in
float64, and where a denominator is exactly zero its numerators are zero too
(0 * 1e30 R = 0, no overflow). Epsilon is compared at its own epsilon (1e-6
and 0.25, the latter large enough that the stabilizer's sign matters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import lrp_ref as lrp
from lrp_ref.interop.torch import BranchSum
from lrp_ref.testing import max_relative_difference

import peer_imports as peers

torch = peers.import_torch()
zennit = peers.import_zennit()
captum = peers.import_captum()
zrules = zennit.rules
ztypes = zennit.types

#: The stabilizer given to Zennit rules that have none in lrp_ref (module docstring).
TINY = 1e-30

#: ``{comparison: largest max_relative_difference measured}``, printed by conftest.py.
AGREEMENT: dict[str, float] = {}


def record(name: str, actual: Any, expected: Any) -> float:
    """Measure ``max_relative_difference(actual, expected)``, keep the largest per name."""
    value = max_relative_difference(actual, expected)
    AGREEMENT[name] = max(AGREEMENT.get(name, 0.0), value)
    return value


def seed(output: Any, target: np.ndarray) -> Any:
    """``onehot(target) * output``: lrp_ref's default output relevance, as a torch tensor."""
    onehot = torch.nn.functional.one_hot(torch.as_tensor(target), output.shape[1])
    return output * onehot.to(output)


def zennit_lrp(model: Any, x: np.ndarray, target: np.ndarray,
               composite: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zennit's input relevance and the relevance at every module's output, by name.

    The output relevance is ``onehot(target) * f(x)``, as lrp_ref's. The
    per-module relevance is captured with tensor hooks on the module outputs
    (the gradient there is the relevance arriving from above).
    """
    captured: dict[str, np.ndarray] = {}

    def capture(name: str) -> Any:
        def hook(module: Any, inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.requires_grad:
                output.register_hook(lambda g: captured.__setitem__(name, g.detach().numpy()))
        return hook

    inputs = torch.from_numpy(x).requires_grad_(True)
    with zennit.attribution.Gradient(model, composite) as attributor:
        handles = [module.register_forward_hook(capture(name))
                   for name, module in model.named_modules() if name]
        try:
            _, relevance = attributor(inputs, lambda output: seed(output, target))
        finally:
            for handle in handles:
                handle.remove()
    return relevance.detach().numpy(), captured


def zennit_rule(rule: lrp.Rule | None, stabilizer: float = TINY) -> Any:
    """The Zennit rule that computes lrp_ref's ``rule`` (with ``stabilizer`` where it has none).

    ``Zero`` becomes Zennit's ``Epsilon(stabilizer)`` (Zennit has no
    unstabilized rule), ``ZPlus`` Zennit's ``ZPlus(zero_params='bias')`` (Zennit's
    plain ``ZPlus`` is our ``AlphaBeta(1, 0)``), ``WSquare`` Zennit's
    ``WSquare(zero_params='bias')`` (its plain one adds ``b^2``).
    """
    no_bias = {"zero_params": "bias"}
    if isinstance(rule, lrp.Epsilon):
        return zrules.Epsilon(rule.epsilon, **({} if rule.bias else no_bias))
    if isinstance(rule, lrp.Zero):
        return zrules.Epsilon(stabilizer, **({} if rule.bias else no_bias))
    if isinstance(rule, lrp.AlphaBeta):
        return zrules.AlphaBeta(rule.alpha, rule.beta, stabilizer,
                                **({} if rule.bias else no_bias))
    if isinstance(rule, lrp.ZPlus):
        return zrules.ZPlus(stabilizer, **no_bias)
    if isinstance(rule, (lrp.Gamma, lrp.GeneralizedGamma)):
        # Zennit's Gamma is our GeneralizedGamma; our (Montavon's) Gamma equals it only for
        # inputs >= 0 at outputs z_j > 0 (docs/peers.md, difference 3)
        return zrules.Gamma(rule.gamma, stabilizer, **({} if rule.bias else no_bias))
    if isinstance(rule, lrp.ZBox):
        low, high = (torch.tensor(np.array(bound)) for bound in (rule.low, rule.high))
        return zrules.ZBox(low, high, stabilizer)
    if isinstance(rule, lrp.Flat):
        return zrules.Flat(stabilizer)
    if isinstance(rule, lrp.WSquare):
        return zrules.WSquare(stabilizer, **no_bias)
    if isinstance(rule, lrp.Pass):
        return zrules.Pass()
    raise TypeError(f"no Zennit translation for {rule!r}")


def zennit_name_map(net: lrp.Sequential, assignment: dict[str, lrp.Rule | None],
                    residual_stabilizer: float = TINY) -> Any:
    """A Zennit ``NameMapComposite`` computing lrp_ref's ``assignment`` on ``net``.

    ``net`` must come from :func:`from_torch` (paths = torch names). ReLUs get
    ``Pass``, each ResidualBlock's ``sum`` the ``Norm`` of the Residual's
    epsilon; MaxPool, Flatten and Identity no rule (the gradient).
    """
    name_map = [((path,), zennit_rule(rule)) for path, rule in assignment.items()
                if rule is not None]
    layers = dict(net.named_layers())
    name_map += [((path,), zrules.Pass()) for path, layer in layers.items()
                 if isinstance(layer, lrp.ReLU)]
    name_map += [((f"{path}.sum",), zrules.Norm(residual_stabilizer))
                 for path, layer in layers.items() if isinstance(layer, lrp.Residual)]
    return zennit.composites.NameMapComposite(name_map)


def zennit_layer_map(linear: Any, first: Any = None, last: tuple[str, Any] | None = None,
                     stabilizer: float = TINY, batchnorm: Any = None,
                     canonize: bool = False) -> Any:
    """A Zennit composite by module type: ``linear`` for Linear and Conv2d.

    ``first`` replaces it on the first Linear/Conv2d (Zennit's first-layer map),
    ``last = (name, rule)`` on one named module. AvgPool and BranchSum get
    ``Norm(stabilizer)``, ReLU ``Pass``, BatchNorm ``batchnorm`` (default
    ``Pass``) — Zennit's composites' defaults. ``canonize`` merges BatchNorm
    (``SequentialMergeBatchNorm``).
    """
    layer_map = [(ztypes.Activation, zrules.Pass()), (BranchSum, zrules.Norm(stabilizer)),
                 (ztypes.AvgPool, zrules.Norm(stabilizer)),
                 (ztypes.BatchNorm, batchnorm or zrules.Pass()), (ztypes.Linear, linear)]
    canonizers = [zennit.canonizers.SequentialMergeBatchNorm()] if canonize else None
    composites = []
    if last is not None:
        composites.append(zennit.composites.NameMapComposite([((last[0],), last[1])]))
    if first is not None:
        composites.append(zennit.composites.SpecialFirstLayerMapComposite(
            layer_map, [(ztypes.Linear, first)]))
    else:
        composites.append(zennit.composites.LayerMapComposite(layer_map))
    if len(composites) == 1:
        composites[0].canonizers = canonizers or []
        return composites[0]
    return zennit.composites.MixedComposite(composites, canonizers=canonizers)


def by_kind(net: lrp.Layer, linear: lrp.Rule, first: lrp.Rule | None = None,
            last: lrp.Rule | None = None, stabilizer: float = TINY,
            batchnorm: lrp.Rule | None = None) -> dict[str, lrp.Rule]:
    """lrp_ref's side of :func:`zennit_layer_map`: ``{path: rule}`` for ``net``.

    Dense/Conv2d get ``linear`` (``first`` on the first of them, ``last`` on
    the last), AvgPool2d ``Epsilon(stabilizer)`` (Zennit's Norm), BatchNorm
    ``batchnorm`` (default ``Pass()``).
    """
    kinds = {path: lrp.composites.layer_kind(layer) for path, layer in net.named_layers()
             if layer.takes_rule}
    weighted = [path for path, kind in kinds.items() if kind in ("dense", "conv")]
    other = {"avgpool": lrp.Epsilon(stabilizer), "batchnorm": batchnorm or lrp.Pass()}
    mapping = {path: other.get(kind, linear) for path, kind in kinds.items()}
    if first is not None:
        mapping[weighted[0]] = first
    if last is not None:
        mapping[weighted[-1]] = last
    return mapping


def last_linear_name(model: Any) -> str:
    """The name of the last Linear module of a torch model."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]


def captum_lrp(model: Any, x: np.ndarray, target: np.ndarray,
               rules: Iterable[tuple[Any, Any]]) -> np.ndarray:
    """Captum's LRP relevance with ``module.rule = rule`` for each ``(module, rule)``."""
    for module, rule in rules:
        module.rule = rule
    inputs = torch.from_numpy(x).requires_grad_(True)
    relevance = captum.attr.LRP(model).attribute(inputs, target=torch.as_tensor(target))
    return relevance.detach().numpy()
