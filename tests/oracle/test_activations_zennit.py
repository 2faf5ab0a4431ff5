"""The element-wise non-linearities against Zennit 0.5.1 (float64) and in torchvision's
mobilenet_v2 (ReLU6).

Zennit gives its ``Pass`` rule to the activations it lists (``zennit.types.Activation``):
relevance passes unchanged, as lrp_ref's identity. Every activation is compared in a small
Sequential (Conv2d, activation, Flatten, Linear, activation, Linear) under Pass with a
linear rule on the Conv2d and Linear layers, per sample and at every module by name.
``nn.Mish`` is not in Zennit's list: its composites leave Mish without a rule, so Zennit
propagates through it with the gradient, ``R_z = mish'(z) R`` (docs/peers.md; reproduced
below). Given ``Pass`` by type, Mish agrees like the others.
"""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.testing import assert_relevance_close

try:
    import peer_runs as pr
except ImportError as exc:
    pytest.skip(f"oracle extra not importable: {exc}", allow_module_level=True)

from torch_nets import randomize  # noqa: E402

torch, zennit = pr.torch, pr.zennit
nn = torch.nn

#: The issue's bound; Zennit and lrp_ref form the same sums in other orders (~1e-14 measured).
RTOL = 1e-8

ACTIVATIONS = {
    "LeakyReLU": lambda: nn.LeakyReLU(0.2), "ELU": lambda: nn.ELU(0.7), "GELU": nn.GELU,
    "GELU-tanh": lambda: nn.GELU(approximate="tanh"), "SiLU": nn.SiLU,
    "Hardswish": nn.Hardswish, "Hardsigmoid": nn.Hardsigmoid, "ReLU6": nn.ReLU6,
    "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "Softplus": lambda: nn.Softplus(2.0, 3.0),
    "Mish": nn.Mish,
}
RULES = {"Epsilon": lrp.Epsilon(1e-6), "ZPlus": lrp.ZPlus(), "AlphaBeta21": lrp.AlphaBeta(2, 1)}


def sandwich(activation, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), activation(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 8), activation(), nn.Linear(8, 3))
    return randomize(model, seed)


def inputs(seed):
    # scale 3: pre-activations on both sides of every kink and saturation point
    return 3 * np.random.default_rng(seed).standard_normal((2, 2, 5, 5))


@pytest.mark.parametrize("rule", RULES, ids=list(RULES))
@pytest.mark.parametrize("name", ACTIVATIONS, ids=list(ACTIVATIONS))
def test_agrees_with_zennit_pass(name, rule):
    model = sandwich(ACTIVATIONS[name], seed=3)
    x, target = inputs(3), np.array([0, 2])
    composite = zennit.composites.LayerMapComposite([
        (pr.ztypes.Activation, pr.zrules.Pass()), (nn.Mish, pr.zrules.Pass()),
        (pr.ztypes.Linear, pr.zennit_rule(RULES[rule]))])
    zennit_relevance, captured = pr.zennit_lrp(model, x, target, composite)
    e = from_torch(model).explain(x, target=target, rule=RULES[rule])
    pr.record(f"Zennit Pass on {name} ({rule} on Conv2d/Linear)", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    for record in e.layers:                    # the relevance arriving at every module
        assert_relevance_close(captured[record.path], record.relevance_out, rtol=RTOL)


def test_zennit_lists_every_activation_of_the_issue_but_mish():
    """Zennit 0.5.1's composites give Pass to the types of ``zennit.types.Activation``
    (ReLU, ReLU6, LeakyReLU, ELU, GELU, SiLU, Hardswish, Hardsigmoid, Tanh, Sigmoid,
    Softplus, ...): every element-wise activation of issue 18 is listed but Mish."""
    listed = {name for name, make in ACTIVATIONS.items()
              if isinstance(make(), pr.ztypes.Activation)}
    assert listed == set(ACTIVATIONS) - {"Mish"}


@pytest.mark.parametrize("name", [name for name in ACTIVATIONS if name != "Mish"])
def test_stock_epsilon_plus_agrees_on_every_listed_activation(name):
    """Zennit's stock EpsilonPlus (no layer map of ours) on the sandwich: its own map gives
    the activation Pass, so it agrees with lrp_ref's epsilon_plus, per sample and at
    every module by name."""
    model = sandwich(ACTIVATIONS[name], seed=5)
    x, target = inputs(5), np.array([1, 2])
    composite = zennit.composites.EpsilonPlus(epsilon=1e-6, stabilizer=pr.TINY)
    zennit_relevance, captured = pr.zennit_lrp(model, x, target, composite)
    e = from_torch(model).explain(x, target=target,
                                  rule=lrp.composites.epsilon_plus(1e-6, pr.TINY))
    pr.record(f"Zennit EpsilonPlus (stock) on {name}", zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    for record in e.layers:
        assert_relevance_close(captured[record.path], record.relevance_out, rtol=RTOL)


def test_zennit_composites_leave_mish_to_the_gradient():
    """Zennit's EpsilonPlus (stock) gives ``nn.Mish`` no rule (it is not in
    ``zennit.types.Activation``): the relevance arriving below it is ``mish'(z) R``, where
    lrp_ref passes ``R``. Reproduced with lrp_ref's own pieces: Mish's derivative, then
    the Linear's Epsilon(1e-6) (EpsilonPlus's rule for dense layers)."""
    torch.manual_seed(4)
    model = randomize(nn.Sequential(nn.Linear(6, 8), nn.Mish(), nn.Linear(8, 3)), 4)
    x, target = 2 * np.random.default_rng(4).standard_normal((3, 6)), np.array([0, 1, 2])
    zennit_relevance, captured = pr.zennit_lrp(model, x, target,
                                               zennit.composites.EpsilonPlus(epsilon=1e-6))
    net = from_torch(model)
    e = net.explain(x, target=target, rule=lrp.Epsilon(1e-6))
    R_mish = e.layer("1").relevance_out
    mish = lrp.Mish()
    mish.forward(net[0].forward(x))
    R_z = mish.backward(R_mish)                # Zennit: the gradient through Mish
    assert_relevance_close(captured["0"], R_z, rtol=RTOL)
    dense = net[0]
    dense.forward(x)
    reproduced = dense.relevance(R_z, lrp.Epsilon(1e-6))
    pr.record("Zennit EpsilonPlus on Mish = lrp_ref's Mish gradient, then Epsilon",
              zennit_relevance, reproduced)
    assert_relevance_close(zennit_relevance, reproduced, rtol=RTOL)
    assert np.abs(R_z - R_mish).max() > 0.1 * np.abs(R_mish).max()   # a real difference


torchvision = pytest.importorskip("torchvision")


def test_mobilenet_v2_forward_equals_torch():
    """torchvision's mobilenet_v2 (ReLU6 after every expansion and depthwise convolution)
    at 64x64: the converted forward equals torch's to 1e-10 relative (the issue's bound)."""
    torch.manual_seed(0)
    m = randomize(torchvision.models.mobilenet_v2(weights=None), 0, 0.1, 1e-12)
    net = from_torch(m)
    assert sum(isinstance(layer, lrp.ReLU6) for _, layer in net.named_layers()) == 35
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64))
    with torch.no_grad():
        expected = m(torch.from_numpy(x)).numpy()
    assert_relevance_close(net.forward(x), expected, rtol=1e-10)
