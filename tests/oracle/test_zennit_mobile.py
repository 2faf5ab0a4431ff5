"""torchvision's mobilenet_v2, efficientnet_b0 and googlenet against Zennit 0.5.1's
EpsilonPlus and EpsilonGammaBox (float64, random weights and BatchNorm statistics, eval mode;
issue 18, point 5).

Where Zennit's rules act on the same operations as lrp_ref's, the two agree to RTOL per sample
and at every Conv2d and Linear by name. Zennit's rules sit on modules; an operation written in
a ``forward`` is no module, and Zennit propagates the gradient through it. Three such
operations make Zennit's stock composites compute something else than lrp_ref's
(docs/peers.md, differences 14 to 16):

* the residual addition of mobilenet_v2 (``x + self.conv(x)``) and efficientnet_b0
  (``result += input``): the gradient of a sum gives each branch all of ``R``; lrp_ref's Add
  splits ``R`` in proportion to the branches (Zennit's ``Norm`` on its ``Sum`` module, which
  its ResNetCanonizer inserts for ResNets only);
* mobilenet_v2's ``nn.functional.adaptive_avg_pool2d``: the gradient ``R / (H W)``, where
  lrp_ref's AdaptiveAvgPool2d takes the composite's ``Epsilon(stabilizer)`` (Zennit's Norm on
  a pooling module); lrp_ref's ``Flat()`` on that node is Zennit's gradient;
* efficientnet_b0's squeeze-and-excitation gate ``scale * input`` (a module,
  ``SqueezeExcitation``, that no composite gives a rule): the product rule gives the signal ``g R``
  and the gate ``sum_hw x R``, which the gate's own layers then propagate; lrp_ref's Mul is
  signal-take-all (``R`` to the signal, nothing to the gate), which is Zennit's ``Pass`` on the
  whole SqueezeExcitation module.

The agreement tests give Zennit lrp_ref's treatment of these three (an AttributeCanonizer as
Zennit's ResNetCanonizer, and ``Pass`` on SqueezeExcitation); the difference tests reproduce
Zennit's stock numbers from lrp_ref's pieces. googlenet needs nothing: its ``torch.cat`` is a
split either way and its functional ReLUs pass relevance where it is not zero (a ReLU's zero
outputs receive none from the rules above). Every activation of these models is a module of
``zennit.types.Activation`` (ReLU6, SiLU, Sigmoid), which Zennit's composites give ``Pass``,
as lrp_ref; torchvision's StochasticDepth is the identity in eval mode, for both.
"""

import numpy as np
import pytest
from test_torchvision_models import BOX_HIGH, BOX_LOW, RTOL, model, zennit_composites

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch
from lrp_ref.rules.canonize import merge_batchnorm
from lrp_ref.testing import assert_relevance_close, max_relative_difference

import peer_runs as pr
from torch_nets import randomize

torch, zennit = pr.torch, pr.zennit
nn = torch.nn
torchvision = pytest.importorskip("torchvision")
InvertedResidual = torchvision.models.mobilenetv2.InvertedResidual
MBConv = torchvision.models.efficientnet.MBConv
MobileNetV2 = torchvision.models.mobilenetv2.MobileNetV2
SqueezeExcitation = torchvision.ops.misc.SqueezeExcitation

#: Input sizes: small for speed. googlenet at 96x96: at 64x64 its inception5 maps are 2x2, so
#: the 3x3 stride-1 max-pool of inception5a.branch4 makes all four positions equal and
#: inception5b's pool then ties (difference 7: we split ties, Zennit's gradient picks one);
#: that moves relevance inside inception5a.branch4 but not at the input.
SIZES = {"mobilenet_v2": 64, "efficientnet_b0": 64, "googlenet": 96}
OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": False}}
TARGET = np.array([3, 600])
CASES = [(name, composite) for name in SIZES for composite in ("EpsilonPlus", "EpsilonGammaBox")]


def torchvision_model(name):
    return model(name, seed=1, **OPTIONS.get(name, {}))


def inputs(name):
    """Two samples in EpsilonGammaBox's box (ZBox's input lies in it), for both composites."""
    size = SIZES[name]
    return np.random.default_rng(1).uniform(BOX_LOW, BOX_HIGH, size=(2, 3, size, size))


# -- giving Zennit lrp_ref's treatment of the functional operations --------------------------

def _inverted_residual_forward(self, x):         # InvertedResidual: x + self.conv(x)
    return self.canonizer_sum(torch.stack([x, self.conv(x)], dim=-1))


def _mbconv_forward(self, x):                      # MBConv: stochastic_depth(block(x)) + x
    return self.canonizer_sum(torch.stack([x, self.stochastic_depth(self.block(x))], dim=-1))


def _mobilenet_v2_forward(self, x):                # the functional pool as a module
    return self.classifier(torch.flatten(self.canonizer_avgpool(self.features(x)), 1))


def mobile_canonizer(sums=True, pool=True):
    """A Zennit AttributeCanonizer (as its ResNetCanonizer): with ``sums`` the residual
    additions become Zennit's ``Sum`` module (its composites give it ``Norm(stabilizer)``,
    lrp_ref's ``Add(epsilon=stabilizer)``); with ``pool`` mobilenet_v2's functional pool
    becomes an AdaptiveAvgPool2d module (``Norm``: lrp_ref's ``Epsilon(stabilizer)``)."""
    def attributes(name, module):
        residual = getattr(module, "use_res_connect", False)
        if sums and residual and isinstance(module, InvertedResidual):
            return {"forward": _inverted_residual_forward.__get__(module),
                    "canonizer_sum": zennit.layer.Sum()}
        if sums and residual and isinstance(module, MBConv):
            return {"forward": _mbconv_forward.__get__(module),
                    "canonizer_sum": zennit.layer.Sum()}
        if pool and isinstance(module, MobileNetV2):
            return {"forward": _mobilenet_v2_forward.__get__(module),
                    "canonizer_avgpool": nn.AdaptiveAvgPool2d((1, 1))}
        return None
    return zennit.canonizers.AttributeCanonizer(attributes)


def run_zennit(m, x, composite, sums=True, pool=True, gate=True):
    """Zennit's ``composite`` with BatchNorm merged and the treatments chosen."""
    canonizers = [zennit.canonizers.SequentialMergeBatchNorm(), mobile_canonizer(sums, pool)]
    layer_map = [(SqueezeExcitation, pr.zrules.Pass())] if gate else []
    zennit_composite, _ = zennit_composites()[composite]
    return pr.zennit_lrp(m, x, TARGET, zennit_composite(canonizers=canonizers,
                                                         layer_map=layer_map))


def gate_paths(m):
    """The module names inside every SqueezeExcitation (the gate's layers)."""
    return {f"{name}.{inner}" for name, module in m.named_modules()
            if isinstance(module, SqueezeExcitation)
            for inner, _ in module.named_modules() if inner}


@pytest.mark.parametrize("name, composite", CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_agrees_with_zennit_where_both_compute_the_same(name, composite):
    """lrp_ref's composite on ``merge_batchnorm(from_torch(m))`` against Zennit's with
    SequentialMergeBatchNorm, the canonizer above and Pass on SqueezeExcitation: per sample
    and at every Conv2d and Linear by name. Inside a gate lrp_ref has no relevance (its Mul
    gives the gate none); Zennit's hooks there still compute a gradient, which the Pass of
    the enclosing SqueezeExcitation then discards, so those layers are checked on our side
    only."""
    m, x = torchvision_model(name), inputs(name)
    zennit_relevance, captured = run_zennit(m, x, composite)
    net = merge_batchnorm(from_torch(m, residual_epsilon=pr.TINY))
    e = net.explain(x, target=TARGET, rule=zennit_composites()[composite][1])
    pr.record(f"Zennit {composite} (+ Sum/pool canonizer, Pass on SE) on torchvision {name}",
              zennit_relevance, e.relevance)
    assert_relevance_close(zennit_relevance, e.relevance, rtol=RTOL)
    gates, compared = gate_paths(m), 0
    for record in e.layers:
        if record.path in gates:
            assert not np.any(record.relevance_out)
        elif record.layer in ("Conv2d", "Dense"):
            assert_relevance_close(captured[record.path], record.relevance_out, rtol=RTOL)
            compared += 1
    assert compared == sum(isinstance(module, (nn.Conv2d, nn.Linear))
                           for path, module in m.named_modules() if path not in gates)


# -- the differences, reproduced ----------------------------------------------------------

def zennit_block(block, x, composite):
    """Zennit's relevance at the input of ``block`` for the output relevance ``R = block(x)``."""
    inputs = torch.from_numpy(x).requires_grad_(True)
    with zennit.attribution.Gradient(block, composite) as attributor:
        _, relevance = attributor(inputs, lambda output: output)
    return relevance.detach().numpy()


def epsilon_plus():
    return lrp.composites.epsilon_plus(1e-6, pr.TINY)


def zennit_epsilon_plus(**options):
    return zennit.composites.EpsilonPlus(epsilon=1e-6, stabilizer=pr.TINY, **options)


def test_zennit_gives_both_branches_of_a_functional_addition_all_the_relevance():
    """Difference 14. On one InvertedResidual ``z = x + body(x)``, stock EpsilonPlus gives
    the input ``R + LRP_body(R)`` (the gradient of the sum passes ``R`` to both branches),
    reproduced with lrp_ref's explanation of the body alone. lrp_ref's Add splits
    ``R_k = x_k / z R``; Zennit with the Sum canonizer computes that. On the whole
    mobilenet_v2 (its pool given a module), the additions alone make the difference
    recorded here."""
    torch.manual_seed(5)
    block = randomize(InvertedResidual(8, 8, 1, 2), 5)
    assert block.use_res_connect
    x = np.random.default_rng(5).standard_normal((2, 8, 6, 6))
    z = from_torch(block).forward(x)
    theirs = zennit_block(block, x, zennit_epsilon_plus())
    body = from_torch(block.conv.eval()).explain(x, output_relevance=z, rule=epsilon_plus())
    assert_relevance_close(theirs, z + body.relevance, rtol=RTOL)
    ours = from_torch(block, residual_epsilon=pr.TINY).explain(
        x, output_relevance=z, rule=epsilon_plus()).relevance
    summed = zennit_block(block, x, zennit_epsilon_plus(canonizers=[mobile_canonizer()]))
    assert_relevance_close(summed, ours, rtol=RTOL)
    assert max_relative_difference(theirs, ours) > 0.1

    m, x = torchvision_model("mobilenet_v2"), inputs("mobilenet_v2")
    zennit_relevance, _ = run_zennit(m, x, "EpsilonPlus", sums=False)
    e = merge_batchnorm(from_torch(m, residual_epsilon=pr.TINY)).explain(
        x, target=TARGET, rule=zennit_composites()["EpsilonPlus"][1])
    measured = pr.record("Zennit EpsilonPlus on mobilenet_v2, functional additions left "
                         "to the gradient (difference 14)", zennit_relevance, e.relevance)
    assert measured > 0.1


def test_zennit_takes_the_gradient_through_mobilenet_v2s_functional_pool():
    """Difference 15. ``nn.functional.adaptive_avg_pool2d`` is no module: Zennit passes
    ``R / (H W)`` to every position, the gradient; lrp_ref's AdaptiveAvgPool2d under the
    composite has ``Epsilon(stabilizer)``, ``a_i R / sum_i a_i``. ``Flat()`` on that node
    (one weight per connection, ``1 / (H W)`` each) is Zennit's gradient: with it the whole
    network agrees with Zennit's stock treatment of the pool."""
    m, x = torchvision_model("mobilenet_v2"), inputs("mobilenet_v2")
    zennit_relevance, captured = run_zennit(m, x, "EpsilonPlus", pool=False)
    net = merge_batchnorm(from_torch(m, residual_epsilon=pr.TINY))
    rules = epsilon_plus()(net)
    assert rules["adaptive_avg_pool2d"] == lrp.Epsilon(pr.TINY)
    flat = net.explain(x, target=TARGET, rule=lambda _: {**rules,
                                                         "adaptive_avg_pool2d": lrp.Flat()})
    pr.record("Zennit EpsilonPlus, gradient through mobilenet_v2's functional pool = Flat() "
              "there", zennit_relevance, flat.relevance)
    assert_relevance_close(zennit_relevance, flat.relevance, rtol=RTOL)
    assert_relevance_close(captured["features.18.0"],
                           flat.layer("features.18.0").relevance_out, rtol=RTOL)
    e = net.explain(x, target=TARGET, rule=lambda _: rules)
    measured = pr.record("Zennit EpsilonPlus on mobilenet_v2, functional pool left to the "
                         "gradient (difference 15)", zennit_relevance, e.relevance)
    below = pr.record("Zennit EpsilonPlus on mobilenet_v2, functional pool left to the "
                      "gradient (difference 15), at features.18.0 below it",
                      captured["features.18.0"], e.layer("features.18.0").relevance_out)
    assert measured > 1e-5 and below > 1e-3     # far above RTOL (measured 3.3e-4, 3.0e-2)


def test_zennit_takes_the_product_rule_through_a_squeeze_excitation_gate():
    """Difference 16. On one SqueezeExcitation ``z = x * g(x)`` (g: pool, 1x1 conv, SiLU,
    1x1 conv, sigmoid), stock EpsilonPlus gives the input ``g R`` through the product and
    ``LRP_g(sum_hw x R)`` through the gate's own layers: reproduced from lrp_ref's
    ``Mul.backward`` (the product rule) and lrp_ref's explanation of the gate. lrp_ref's Mul
    gives the signal ``R`` (signal-take-all), as Zennit's Pass on the module. On the whole
    efficientnet_b0 (additions given Sum), the gates alone make the difference recorded
    here."""
    torch.manual_seed(6)
    se = randomize(SqueezeExcitation(8, 4, activation=nn.SiLU), 6)
    x = np.random.default_rng(6).standard_normal((2, 8, 5, 5))
    z = from_torch(se).forward(x)
    theirs = zennit_block(se, x, zennit_epsilon_plus())
    gate = from_torch(nn.Sequential(se.avgpool, se.fc1, se.activation, se.fc2,
                                    se.scale_activation).eval())
    mul = lrp.Mul()
    mul.forward(x, gate.forward(x))
    R_signal, R_gate = mul.backward(z)                 # g R and sum_hw x R
    through_gate = gate.explain(x, output_relevance=R_gate, rule=epsilon_plus()).relevance
    assert_relevance_close(theirs, R_signal + through_gate, rtol=RTOL)
    ours = from_torch(se).explain(x, output_relevance=z, rule=epsilon_plus()).relevance
    assert_relevance_close(ours, z, rtol=0)            # signal-take-all: R_x = R exactly
    passed = zennit_block(se, x, zennit_epsilon_plus(
        layer_map=[(SqueezeExcitation, pr.zrules.Pass())]))
    assert_relevance_close(passed, ours, rtol=RTOL)
    assert max_relative_difference(theirs, ours) > 0.1

    m, x = torchvision_model("efficientnet_b0"), inputs("efficientnet_b0")
    zennit_relevance, _ = run_zennit(m, x, "EpsilonPlus", gate=False)
    e = merge_batchnorm(from_torch(m, residual_epsilon=pr.TINY)).explain(
        x, target=TARGET, rule=zennit_composites()["EpsilonPlus"][1])
    measured = pr.record("Zennit EpsilonPlus on efficientnet_b0, gates left to the product "
                         "rule (difference 16)", zennit_relevance, e.relevance)
    assert measured > 0.1
