"""lrp_ref agrees with Captum 0.9's LRP in float64 wherever their conventions coincide.

Captum hooks leaf modules of supported types only (nn.Flatten and BatchNorm1d
raise TypeError), so the torch networks here flatten inside ``forward``
(:class:`FeaturesClassifier`) and residual blocks add with Captum's
``Addition_Module``. lrp_ref's side is built from the same modules with
``from_torch``.

Stabilizers: Captum's EpsilonRule is compared at its default 1e-9 and at 0.25.
MaxPool2d gets ``EpsilonRule(1e-30)`` (Captum's default there, 1e-9, would
shrink each pooled relevance by ``a_max / (a_max + 1e-9)``, a stabilizer
effect rather than the winner-take-all semantics compared here); the
GammaRule and Alpha1_Beta0_Rule instances get ``STABILITY_FACTOR = 1e-30``
for the same reason (their class default is 1e-9).

Example counts as in test_zennit_agreement.py: 20 random networks per rule
setting (Captum's two forward passes and hooked backward per example), drawn
deterministically (``derandomize=True``) so that CI reruns the same networks.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.testing import assert_relevance_close

try:
    import peer_runs as pr
except ImportError as exc:
    pytest.skip(f"oracle extra not importable: {exc}", allow_module_level=True)

from torch_nets import randomize, torch_cnns  # noqa: E402

torch, captum = pr.torch, pr.captum
nn = torch.nn
rules = captum.attr._utils.lrp_rules
Addition_Module = captum.attr._utils.custom_modules.Addition_Module

RTOL = 1e-8      # the bound; measured values in the session summary
EXAMPLES = 20    # module docstring


class FeaturesClassifier(nn.Module):
    """``classifier(features(x).flatten(1))``: a CNN Captum can hook (no nn.Flatten)."""

    def __init__(self, features, classifier):
        super().__init__()
        self.features, self.classifier = features, classifier

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class CaptumResidual(nn.Module):
    """``body(x) + x`` with Captum's Addition_Module (Captum's way to split a sum)."""

    def __init__(self, body):
        super().__init__()
        self.body, self.add = body, Addition_Module()

    def forward(self, x):
        return self.add(self.body(x), x)


def split(model):
    """A torch_cnns Sequential as FeaturesClassifier and lrp_ref's equivalent network."""
    k = next(i for i, m in enumerate(model) if isinstance(m, nn.Flatten))
    features = nn.Sequential(*list(model)[:k]).eval()
    classifier = nn.Sequential(*list(model)[k + 1:]).eval()
    net = lrp.Sequential([from_torch(features), lrp.Flatten(), from_torch(classifier)])
    return FeaturesClassifier(features, classifier), net


def with_factor(rule, factor=pr.TINY):
    rule.STABILITY_FACTOR = factor
    return rule


def captum_rules(model, linear, pooling_factor=pr.TINY):
    """``(module, rule)`` for every leaf: ``linear()`` on Conv2d, Linear and BatchNorm2d,
    ``EpsilonRule(pooling_factor)`` on AvgPool2d and Addition_Module, ``EpsilonRule(1e-30)``
    on MaxPool2d (module docstring)."""
    out = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            out.append((module, linear()))
        elif isinstance(module, (nn.AvgPool2d, Addition_Module)):
            out.append((module, rules.EpsilonRule(pooling_factor)))
        elif isinstance(module, nn.MaxPool2d):
            out.append((module, rules.EpsilonRule(pr.TINY)))
    return out


def lrp_rules(net, linear, pooling):
    """lrp_ref's side: ``linear`` on Dense/Conv2d/BatchNorm, ``pooling`` on AvgPool2d."""
    mapping = {path: (pooling if isinstance(layer, lrp.AvgPool2d) else linear)
               for path, layer in net.named_layers() if layer.takes_rule}
    return lambda _: mapping


def check(name, model, net, x, target, captum_linear, ours, pooling_factor=pr.TINY):
    captum_relevance = pr.captum_lrp(model, x, target,
                                     captum_rules(model, captum_linear, pooling_factor))
    pooling = lrp.Epsilon(pooling_factor)
    e = net.explain(x, target=target, rule=lrp_rules(net, ours, pooling))
    pr.record(f"Captum {name}", captum_relevance, e.relevance)
    assert_relevance_close(captum_relevance, e.relevance, rtol=RTOL)


SEEDS = st.integers(0, 2**31 - 1)
CNNS = torch_cnns(residual=False, dense_batchnorm=False)


@pytest.mark.parametrize("epsilon", [1e-9, 0.25])
@settings(max_examples=EXAMPLES, derandomize=True)
@given(CNNS, SEEDS)
def test_epsilon_rule_on_random_cnns(epsilon, drawn, seed):
    model, net = split(drawn[0])
    x = np.random.default_rng(seed).standard_normal((2, *drawn[1]))
    # Captum's AvgPool2d/BatchNorm2d get EpsilonRule(epsilon) like every linear layer
    check(f"EpsilonRule({epsilon:g}) = Epsilon({epsilon:g})", model, net, x,
          np.array([0, 1]), lambda: rules.EpsilonRule(epsilon), lrp.Epsilon(epsilon),
          pooling_factor=epsilon)


@settings(max_examples=EXAMPLES, derandomize=True)
@given(torch_cnns(batchnorm=False, residual=False), SEEDS)
def test_gamma_without_bias_on_random_cnns(drawn, seed):
    """GammaRule(set_bias_to_zero=True) = Gamma(bias=False), whatever the signs:
    Captum's gamma modifies the weights only (w + g w+), as ours does."""
    model, net = split(drawn[0])
    x = np.random.default_rng(seed).standard_normal((2, *drawn[1]))
    check("GammaRule(0.25, set_bias_to_zero=True) = Gamma(0.25, bias=False)", model, net, x,
          np.array([1, 0]),
          lambda: with_factor(rules.GammaRule(0.25, set_bias_to_zero=True)),
          lrp.Gamma(0.25, bias=False))


@pytest.mark.parametrize("bias", [False, True])
@settings(max_examples=EXAMPLES, derandomize=True)
@given(torch_cnns(batchnorm=False, residual=False), SEEDS)
def test_alpha1_beta0_on_nonnegative_inputs(bias, drawn, seed):
    """Alpha1_Beta0_Rule = AlphaBeta(1, 0) for inputs >= 0 (ReLU networks, x >= 0) and
    biases >= 0 (or dropped on both sides): then neither Captum's missing input-sign split
    nor its full bias makes a difference (test_peer_differences.py shows both)."""
    torch_model = drawn[0]
    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.bias.abs_()
    model, net = split(torch_model)
    x = np.abs(np.random.default_rng(seed).standard_normal((2, *drawn[1])))
    check(f"Alpha1_Beta0_Rule(set_bias_to_zero={not bias}) = AlphaBeta(1, 0, bias={bias}) "
          "(x >= 0, b >= 0)", model, net, x, np.array([0, 1]),
          lambda: with_factor(rules.Alpha1_Beta0_Rule(set_bias_to_zero=not bias)),
          lrp.AlphaBeta(1, 0, bias=bias))


def test_identity_rule_on_batchnorm_is_pass():
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    model = FeaturesClassifier(features, nn.Sequential(nn.Linear(3 * 4 * 4, 3)))
    randomize(model, 0)
    net = lrp.Sequential([from_torch(features), lrp.Flatten(), from_torch(model.classifier)])
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    leaves = [(features[0], rules.EpsilonRule(0.25)), (features[1], rules.IdentityRule()),
              (model.classifier[0], rules.EpsilonRule(0.25))]
    captum_relevance = pr.captum_lrp(model, x, np.array([2, 1]), leaves)
    e = net.explain(x, target=np.array([2, 1]), rule=[[lrp.Epsilon(0.25), lrp.Pass(), None],
                                                       None, [lrp.Epsilon(0.25)]])
    pr.record("Captum IdentityRule on BatchNorm2d = Pass()", captum_relevance, e.relevance)
    assert_relevance_close(captum_relevance, e.relevance, rtol=RTOL)


@pytest.mark.parametrize("epsilon", [1e-9, 0.25])
def test_addition_module_splits_like_residual(epsilon):
    """Captum's Addition_Module with EpsilonRule(eps) = Residual(body, epsilon=eps)."""
    torch.manual_seed(1)
    body = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 1))
    features = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), CaptumResidual(body),
                             nn.ReLU(), nn.AvgPool2d(2))
    model = randomize(FeaturesClassifier(features, nn.Sequential(nn.Linear(3 * 3 * 3, 4))), 1)
    stem = from_torch(nn.Sequential(*list(features)[:2]).eval())
    net = lrp.Sequential([*stem.layers, lrp.Residual(from_torch(body), epsilon=epsilon),
                          lrp.ReLU(), lrp.AvgPool2d(2), lrp.Flatten(),
                          from_torch(model.classifier)])
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6))
    check(f"Addition_Module EpsilonRule({epsilon:g}) = Residual(epsilon={epsilon:g})", model,
          net, x, np.array([3, 0]), lambda: rules.EpsilonRule(epsilon), lrp.Epsilon(epsilon),
          pooling_factor=epsilon)
