"""The cases of the known-answer suite (:mod:`lrp_ref.testing.vectors`).

Small networks, seeded by the case name: every linear rule on Dense and Conv2d
(stride, padding), AvgPool2d, both MaxPool2d modes, BatchNorm (affine and
Pass), Residual, a Graph with Add and Concat nodes; the edge cases that break
implementations; the named composites on a VGG-style and a ResNet-style
network; float32 versions of a few; and external known answers re-derived by
hand (docs/vectors.md gives every derivation). ``Case.known`` holds numbers
computed by hand, which the tests assert.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers import (
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
    Conv1d,
    Conv2d,
    Dense,
    Flatten,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    Transpose,
)
from ..network import Sequential
from ..rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    GeneralizedGamma,
    Pass,
    Rule,
    WSquare,
    ZBox,
    Zero,
    ZPlus,
    composites,
)
from .vector_case import Case, rng_for
from .vector_layer_cases import hand_cases, layer_cases

Array = np.ndarray


def _dense_net(rng: np.random.Generator) -> Sequential:
    return Sequential([Dense(rng.standard_normal((5, 4)), rng.standard_normal(4)), ReLU(),
                       Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))])


def _conv_net(rng: np.random.Generator) -> Sequential:
    """Conv2d with stride 2 and padding 1 on a 2x7x7 input, then a Dense layer."""
    return Sequential([
        Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), stride=2, padding=1),
        ReLU(), Flatten(), Dense(rng.standard_normal((3 * 4 * 4, 3)), rng.standard_normal(3)),
    ])


def _pool_net(rng: np.random.Generator, pool: Any) -> Sequential:
    return Sequential([Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)),
                       ReLU(), pool, Flatten(),
                       Dense(rng.standard_normal((2 * 3 * 3, 3)), rng.standard_normal(3))])


def _batchnorm(rng: np.random.Generator, channels: int) -> BatchNorm2d:
    return BatchNorm2d(rng.uniform(0.5, 1.5, channels), rng.standard_normal(channels),
                       rng.standard_normal(channels), rng.uniform(0.5, 2.0, channels))


def _vgg_net(rng: np.random.Generator) -> Sequential:
    """conv-relu-conv-relu-maxpool-flatten-dense-relu-dense on 3x8x8."""
    return Sequential([
        Conv2d(0.5 * rng.standard_normal((4, 3, 3, 3)), 0.1 * rng.standard_normal(4), padding=1),
        ReLU(),
        Conv2d(0.3 * rng.standard_normal((4, 4, 3, 3)), 0.1 * rng.standard_normal(4), padding=1),
        ReLU(), MaxPool2d(2), Flatten(),
        Dense(0.3 * rng.standard_normal((4 * 4 * 4, 6)), 0.1 * rng.standard_normal(6)), ReLU(),
        Dense(0.5 * rng.standard_normal((6, 3)), 0.1 * rng.standard_normal(3)),
    ])


def _resnet_net(rng: np.random.Generator) -> Sequential:
    """conv-bn-relu, a residual block (conv-bn-relu-conv-bn + identity), relu, avgpool, dense."""
    def conv(c_in: int, c_out: int) -> Conv2d:
        return Conv2d(0.4 * rng.standard_normal((c_out, c_in, 3, 3)),
                      0.1 * rng.standard_normal(c_out), padding=1)
    return Sequential([
        conv(3, 4), _batchnorm(rng, 4), ReLU(),
        Residual(Sequential([conv(4, 4), _batchnorm(rng, 4), ReLU(), conv(4, 4),
                             _batchnorm(rng, 4)])),
        ReLU(), AvgPool2d(2), Flatten(),
        Dense(0.3 * rng.standard_normal((4 * 4 * 4, 3)), 0.1 * rng.standard_normal(3)),
    ])


#: Every linear rule, by case-name slug.
RULES: dict[str, Rule] = {
    "zero": Zero(),
    "zero-nobias": Zero(bias=False),
    "eps-1e-6": Epsilon(1e-6),
    "eps-0.25": Epsilon(0.25),
    "eps-0.25-nobias": Epsilon(0.25, bias=False),
    "alphabeta-2-1": AlphaBeta(2, 1),
    "alphabeta-1-0": AlphaBeta(1, 0),
    "alphabeta-1-0-nobias": AlphaBeta(1, 0, bias=False),
    "eq7-0.5-0.5": AlphaBeta.from_eq7(0.5, 0.5),
    "eq7-0-1": AlphaBeta.from_eq7(0, 1),
    "zplus": ZPlus(),
    "gamma-0.25": Gamma(0.25),
    "ggamma-0.25": GeneralizedGamma(0.25),
    "flat": Flat(),
    "wsquare": WSquare(),
}


def _layer_cases() -> list[Case]:
    cases = []
    for slug, rule in RULES.items():
        rng = rng_for(f"dense/{slug}")
        cases.append(Case(f"dense/{slug}", f"{rule!r} on every Dense layer", _dense_net(rng),
                          rng.standard_normal((2, 5)), rule, target=np.array([0, 2])))
        rng = rng_for(f"conv/{slug}")
        cases.append(Case(f"conv/{slug}", f"{rule!r} on Conv2d (stride 2, padding 1) and Dense",
                          _conv_net(rng), rng.standard_normal((2, 2, 7, 7)), rule,
                          target=np.array([1, 0])))
    zbox = [ZBox(-3.0, 3.0), None, Epsilon(1e-6)]
    rng = rng_for("dense/zbox")
    cases.append(Case("dense/zbox-first", "ZBox(-3, 3) on the first Dense layer, Epsilon "
                      "after", _dense_net(rng), rng.uniform(-3, 3, (2, 5)), zbox,
                      target=np.array([0, 1])))
    rng = rng_for("conv/zbox")
    cases.append(Case("conv/zbox-first", "ZBox(-3, 3) on Conv2d (padding holds 0 for l, h)",
                      _conv_net(rng), rng.uniform(-3, 3, (2, 2, 7, 7)),
                      [ZBox(-3.0, 3.0), None, None, Epsilon(1e-6)], target=np.array([2, 2])))
    for slug in ("zero", "eps-0.25", "alphabeta-2-1", "flat", "wsquare"):
        rng = rng_for(f"avgpool/{slug}")
        cases.append(Case(f"avgpool/{slug}", f"{RULES[slug]!r} on AvgPool2d(2) (and the rest)",
                          _pool_net(rng, AvgPool2d(2)), rng.standard_normal((2, 1, 8, 8)),
                          RULES[slug], target=np.array([0, 1])))
    for mode in ("winner", "proportional"):
        rng = rng_for(f"maxpool/{mode}")
        cases.append(Case(f"maxpool/{mode}", f"MaxPool2d(2, mode={mode!r}), Epsilon(1e-6)",
                          _pool_net(rng, MaxPool2d(2, mode=mode)),
                          rng.standard_normal((2, 1, 8, 8)), Epsilon(1e-6),
                          target=np.array([1, 2])))
    rng = rng_for("maxpool/overlapping")
    cases.append(Case("maxpool/overlapping-3x3-stride-1", "MaxPool2d(3, stride=1): windows "
                      "overlap, an input collects from several", _pool_net(rng, MaxPool2d(3, 1)),
                      rng.standard_normal((1, 1, 7, 7)), Epsilon(1e-6), target=np.array([0])))
    for slug, bn_rule in (("affine-eps-0.25", Epsilon(0.25)), ("affine-zero", Zero()),
                          ("pass", Pass())):
        rng = rng_for(f"batchnorm/{slug}")
        net = Sequential([Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)),
                          _batchnorm(rng, 2), ReLU(), Flatten(),
                          Dense(rng.standard_normal((2 * 4 * 4, 3)), rng.standard_normal(3))])
        cases.append(Case(f"batchnorm/{slug}", f"BatchNorm2d under {bn_rule!r} (the affine "
                          "map a x + c, c the bias) between Epsilon(1e-6) layers", net,
                          rng.standard_normal((2, 1, 6, 6)),
                          [Epsilon(1e-6), bn_rule, None, None, Epsilon(1e-6)],
                          target=np.array([0, 1])))
    for slug, rule, epsilon in (("eps-1e-6", Epsilon(1e-6), 1e-6), ("zero-split-0", Zero(), 0.0),
                                ("alphabeta-2-1", AlphaBeta(2, 1), 1e-6)):
        rng = rng_for(f"residual/{slug}")
        body = Sequential([Conv2d(rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2),
                                  padding=1), ReLU(),
                           Conv2d(rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(2),
                                  padding=1)])
        shortcut = Conv2d(rng.standard_normal((2, 2, 1, 1)), rng.standard_normal(2))
        net = Sequential([Residual(body, shortcut, epsilon=epsilon), ReLU(), Flatten(),
                          Dense(rng.standard_normal((2 * 5 * 5, 3)), rng.standard_normal(3))])
        cases.append(Case(f"residual/{slug}", f"Residual (body and 1x1-conv shortcut, split "
                          f"epsilon {epsilon:g}) under {rule!r}", net,
                          rng.standard_normal((2, 2, 5, 5)), rule, target=np.array([0, 2])))
    return cases


def _graph_net(rng: np.random.Generator, epsilon: float) -> Graph:
    """x -> two Dense branches -> Add -> ReLU; Concat(x, relu) -> Dense head."""
    g = Graph()
    x = g.input("x")
    a = g.add(Dense(rng.standard_normal((4, 3)), rng.standard_normal(3)), x, name="fc_a")
    b = g.add(Dense(rng.standard_normal((4, 3)), rng.standard_normal(3)), x, name="fc_b")
    h = g.add(ReLU(), g.add(Add(epsilon=epsilon), a, b, name="add"), name="relu")
    c = g.add(Concat(axis=1), x, h, name="cat")
    g.output(g.add(Dense(rng.standard_normal((7, 3)), rng.standard_normal(3)), c, name="head"))
    return g


def _graph_cases() -> list[Case]:
    cases = []
    for slug, rule, epsilon in (("eps-1e-6", Epsilon(1e-6), 1e-6), ("zero-split-0", Zero(), 0.0),
                                ("alphabeta-2-1", AlphaBeta(2, 1), 1e-6)):
        rng = rng_for(f"graph/add-concat/{slug}")
        cases.append(Case(f"graph/add-concat/{slug}", "a Graph: two Dense branches added "
                          f"(Add, split epsilon {epsilon:g}), a ReLU, the input concatenated "
                          f"with it (Concat, axis 1; the input fans out to three nodes), a "
                          f"Dense head; under {rule!r}", _graph_net(rng, epsilon),
                          rng.standard_normal((2, 4)), rule, target=np.array([0, 2])))
    return cases


def _edge_cases() -> list[Case]:
    one = Sequential([Dense([[1.0], [-1.0]], [0.0])])
    cases = [
        Case("edge/zero-denominator-lrp0", "z_j = 1 - 1 + 0 = 0 under LRP-0: no NaN, R_i = 0, "
             "R_j = 3 booked as dropped", one, np.array([[1.0, 1.0]]), Zero(),
             output_relevance=np.array([[3.0]]), known={"relevance": [[0.0, 0.0]]}),
        Case("edge/epsilon-at-zero", "z_j = 0 under Epsilon(0.5): sign(0) = +1, d_j = 0.5, "
             "R_i = (1, -1) / 0.5 * 3 = (6, -6), the stabilizer takes 3", one,
             np.array([[1.0, 1.0]]), Epsilon(0.5), output_relevance=np.array([[3.0]]),
             known={"relevance": [[6.0, -6.0]]}),
        Case("edge/bias-only", "x = 0: every z_ij = 0, z_j = b_j; the biases take all of R",
             Sequential([Dense([[1.0, 2.0], [3.0, -1.0]], [0.5, -2.0])]),
             np.zeros((1, 2)), Epsilon(1e-6), output_relevance=np.array([[1.0, 1.0]]),
             known={"relevance": [[0.0, 0.0]]}),
        Case("edge/negative-logit", "the explained logit is negative (R_L < 0)",
             Sequential([Dense([[1.0, -2.0], [0.5, 1.0]], [0.0, -1.0])]),
             np.array([[1.0, 1.0]]), Epsilon(1e-6), target=np.array([1])),
        Case("edge/all-negative-alphabeta", "every contribution to j is negative under "
             "AlphaBeta(2, 1): z+_j = 0, alpha R_j = 6 is dropped, -beta R_j goes down: "
             "R_i = -(-1, -2) / -3 * 3 = (-1, -2)",
             Sequential([Dense([[-1.0], [-2.0]], [0.0])]), np.array([[1.0, 1.0]]),
             AlphaBeta(2, 1), output_relevance=np.array([[3.0]]),
             known={"relevance": [[-1.0, -2.0]]}),
    ]
    tie = np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 2.0, 2.0, 2.0],
                      [0.0, 0.0, 5.0, 1.0], [0.0, 0.0, 1.0, 5.0]]]])
    pool = Sequential([MaxPool2d(2), Flatten()])
    cases.append(Case("edge/maxpool-ties", "windows with tied maxima: mode='winner' splits "
                      "R_j equally among them (Zennit and Captum give it to the first)", pool,
                      tie, [None, None], output_relevance=np.array([[4.0, 2.0, 0.0, 6.0]]),
                      known={"relevance": [[[[0, 2, 0.5, 0.5], [2, 0, 0.5, 0.5],
                                             [0, 0, 3, 0], [0, 0, 0, 3]]]]}))
    return cases


def _composite_cases() -> list[Case]:
    cases = []
    named: dict[str, Callable[[], Any]] = {
        "epsilon_plus": composites.epsilon_plus,
        "epsilon_plus_flat": composites.epsilon_plus_flat,
        "epsilon_alpha2_beta1": composites.epsilon_alpha2_beta1,
        "epsilon_alpha2_beta1_flat": composites.epsilon_alpha2_beta1_flat,
        "epsilon_gamma_box": lambda: composites.epsilon_gamma_box(-3.0, 3.0),
    }
    for arch, make in (("vgg", _vgg_net), ("resnet", _resnet_net)):
        for slug, composite in named.items():
            rng = rng_for(f"{arch}/{slug}")
            net = make(rng)
            cases.append(Case(f"composite/{arch}/{slug}", f"{composite()!r} on a {arch}-style "
                              "network", net, rng.uniform(-3, 3, (2, 3, 8, 8)), composite(),
                              target=np.array([0, 1])))
    return cases


def _float32_cases(base: list[Case]) -> list[Case]:
    """float32 versions of a few cases: float32 parameters and input, same rules."""
    chosen = ("dense/eps-1e-6", "conv/eps-1e-6", "conv/alphabeta-1-0", "maxpool/winner",
              "composite/vgg/epsilon_plus", "composite/resnet/epsilon_plus",
              "conv1d/eps-0.25", "convtranspose2d/alphabeta-2-1",
              "transformer/layernorm/eps-0.25", "transformer/attention/attnlrp")
    out = []
    for case in base:
        if case.name in chosen:
            out.append(Case(f"{case.name}-float32", case.about + ", in float32",
                            case.net.astype(np.float32), case.x.astype(np.float32), case.rule,
                            case.target, case.output_relevance, dtype="float32"))
    return out


def cases() -> list[Case]:
    """Every case of the suite, in a fixed order (names are unique)."""
    base = (_layer_cases() + _graph_cases() + _edge_cases() + _composite_cases()
            + layer_cases())
    return base + _float32_cases(base) + _external_cases() + hand_cases()



# -- external known answers, re-derived by hand (docs/vectors.md, "External cases") ----------

CAPTUM = "Captum tests/attr/test_lrp.py"


def _captum_simple(first_weight: float = 2.0) -> Sequential:
    """Captum's SimpleLRPModel: Linear(3, 3) of 2s, ReLU, Linear(3, 1) of 3s, no biases."""
    W1 = np.full((3, 3), 2.0)
    W1[0, 0] = first_weight                     # Captum sets weight[0][0] = -2 (torch (out, in))
    return Sequential([Dense(W1, np.zeros(3)), ReLU(), Dense(np.full((3, 1), 3.0), np.zeros(1))])


TOOLBOX = "LRP Toolbox python/layertest.py (maxpoolRtest)"
# the Toolbox's test images a, b, c (NHWC with D = 1 there; here (H, W))
TOOLBOX_A = [[1, 1, 1, 1], [1, 1, 2, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
TOOLBOX_B = [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [2, 1, 0, 0]]
TOOLBOX_C = [[1, 1, 1, 1], [1, 1, 2, 0], [1, 1, 0, 0], [1, 0, 0, 0]]


def _toolbox_cases() -> list[Case]:
    """The LRP Toolbox's max-pool relevance tests: ties split equally (its _simple_lrp,
    which its epsilon and alphabeta rules use too), overlapping 3x3 windows."""
    a, b, c = (np.array(m, dtype=np.float64) for m in (TOOLBOX_A, TOOLBOX_B, TOOLBOX_C))
    peer = {"library": "LRP Toolbox", "rule": "MaxPool.lrp (simple, epsilon, alphabeta)",
            "note": "ties get equal shares, as MaxPool2d(mode='winner')"}
    s, d = 1 / 6, 1 / 3
    return [
        Case("external/lrp-toolbox/maxpool-2x2-ties", "MaxPool 2x2 of the Toolbox's image a, "
             "R = 1 at every output, then R = 1 on the top row only",
             Sequential([MaxPool2d(2), Flatten()]), np.stack([a, a])[:, None],
             [None, None], output_relevance=np.array([[1.0, 1, 1, 1], [1, 1, 0, 0]]),
             source=TOOLBOX, peer=peer,
             known={"relevance": [[[[0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0],
                                    [0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]],
                                  [[[0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0],
                                    [0, 0, 0, 0], [0, 0, 0, 0]]]]}),
        Case("external/lrp-toolbox/maxpool-3x3-stride-1", "overlapping 3x3 windows, stride 1, "
             "on the Toolbox's images a and b, R = 1 at every output",
             Sequential([MaxPool2d(3, 1), Flatten()]), np.stack([a, b])[:, None],
             [None, None], output_relevance=np.ones((2, 4)), source=TOOLBOX, peer=peer,
             known={"relevance": [[[[0, 0, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0], [0, 0, 0, 0]]],
                                  [[[s, s + d, 0, 0], [s, s + 2 * d, 0, 0],
                                    [s, s + 2 * d, 0, 0], [1, d, 0, 0]]]]}),
        Case("external/lrp-toolbox/maxpool-4x4-channels", "one 4x4 window over a, b, c as "
             "three channels, R = 1 each: all to each channel's single maximum 2",
             Sequential([MaxPool2d(4), Flatten()]), np.stack([a, b, c])[None],
             [None, None], output_relevance=np.ones((1, 3)), source=TOOLBOX, peer=peer,
             known={"relevance": (np.stack([a, b, c])[None] == 2).astype(float).tolist()}),
    ]


def _external_cases() -> list[Case]:
    x = np.array([[1.0, 2.0, 3.0]])
    issue_273 = Sequential([Dense([[1.0], [-1.0]], [-1.0])])
    return [
        Case("external/captum/epsilon", "Captum test_lrp_simple_attributions(_batch): "
             "f = 3 * sum_j 2 * (x_1 + x_2 + x_3) = 108, R_i = 18 x_i", _captum_simple(),
             np.concatenate([x, 3 * x]), Zero(), target=np.array([0, 0]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "EpsilonRule() (epsilon 1e-9)",
                   "relevance": [[18.0, 36.0, 54.0], [54.0, 108.0, 162.0]],
                   "note": "its stabilizer moves each share by 1e-9 / z_j, below 1e-10 "
                           "relative here; lrp_ref's Epsilon(1e-9) reproduces that"},
             known={"relevance": [[18.0, 36.0, 54.0], [54.0, 108.0, 162.0]]}),
        Case("external/captum/gamma", "Captum test_lrp_simple_attributions_GammaRule: "
             "w_11 = -2, GammaRule(1) on the first layer, GammaRule(0.25) on the second",
             _captum_simple(-2.0), x, [Gamma(1.0), None, Gamma(0.25)], target=np.array([0]),
             source=CAPTUM, peer={"library": "Captum 0.9", "rule": "GammaRule(gamma=1), "
                                  "GammaRule()", "relevance": [[28 / 3, 104 / 3, 52.0]],
                                  "note": "no biases, so Captum's unmodified bias (docs/"
                                          "peers.md difference 9) does not matter"},
             known={"relevance": [[28 / 3, 104 / 3, 52.0]]}),
        Case("external/captum/alpha1-beta0", "Captum test_lrp_simple_attributions_AlphaBeta: "
             "w_11 = -2, Alpha1_Beta0_Rule on both layers", _captum_simple(-2.0), x,
             AlphaBeta(1, 0), target=np.array([0]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "Alpha1_Beta0_Rule()",
                   "relevance": [[12.0, 33.6, 50.4]],
                   "note": "Captum clamps weights, x_i w+_ij (docs/peers.md difference 8); "
                           "with x >= 0 and no bias that is z+_ij, so AlphaBeta(1, 0) "
                           "reproduces it"},
             known={"relevance": [[12.0, 33.6, 50.4]]}),
        Case("external/captum/skip-connection", "Captum test_lrp_skip_connection: "
             "Linear(2, 2) of 5s (no bias) + identity, x = (2, 3), target 1",
             Sequential([Residual(Sequential([Dense(np.full((2, 2), 5.0), np.zeros(2))]),
                                  epsilon=0.0)]),
             np.array([[2.0, 3.0]]), Zero(), target=np.array([1]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "Addition_Module with EpsilonRule() "
                   "(1e-9), EpsilonRule() on the Linear", "relevance": [[10.0, 18.0]],
                   "note": "Residual(..., epsilon=1e-9) with Epsilon(1e-9) reproduces "
                           "Captum's stabilizers; they move the shares by about 1e-9 / 25"},
             known={"relevance": [[10.0, 18.0]]}),
        Case("external/captum/maxpool2d", "Captum test_lrp_maxpool2D: MaxPool2d(2) of "
             "[[1, 2], [5, 6]]: all of f = 6 goes to the maximum",
             Sequential([MaxPool2d(2), Flatten()]), np.array([[[[1.0, 2.0], [5.0, 6.0]]]]),
             [None, None], target=np.array([0]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "default (EpsilonRule on MaxPool2d)",
                   "relevance": [[[[0.0, 0.0], [0.0, 6.0]]]]},
             known={"relevance": [[[[0.0, 0.0], [0.0, 6.0]]]]}),
        Case("external/captum/tanh", "Captum test_lrp_simple_tanh: Linear(3, 3) and "
             "Linear(3, 1) of 0.1s (no bias) around a Tanh, x = (1, 2, 3): the Tanh passes "
             "relevance, R_i = x_i / 6 * 3 * 0.1 tanh(0.6) = 0.05 tanh(0.6) x_i",
             Sequential([Dense(np.full((3, 3), 0.1), np.zeros(3)), Tanh(),
                         Dense(np.full((3, 1), 0.1), np.zeros(1))]), x, Zero(),
             target=np.array([0]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "default (EpsilonRule(), 1e-9)",
                   "relevance": [[0.0269, 0.0537, 0.0806]],
                   "note": "Captum's test states 4 digits ('result if tanh is skipped'); its "
                           "stabilizer moves the shares by 1e-9 / 0.6"},
             known={"relevance": (0.05 * math.tanh(0.6) * x).tolist()}),
        Case("external/captum/maxpool1d", "Captum test_lrp_maxpool1D: Linear(2, 2) of 2s (no "
             "bias) on the last axis of [[1, 2], [5, 6]], MaxPool1d(2), target 1: the window "
             "[22, 22] is tied; either split gives (10, 12) to the row [5, 6]",
             Sequential([Transpose(1, 2), Conv1d(np.full((2, 2, 1), 2.0), np.zeros(2)),
                         Transpose(1, 2), MaxPool1d(2), Flatten()]),
             np.array([[[1.0, 2.0], [5.0, 6.0]]]), [None, Zero(), None, None, None],
             target=np.array([1]), source=CAPTUM,
             peer={"library": "Captum 0.9", "rule": "default (EpsilonRule(), 1e-9)",
                   "relevance": [[[0.0, 0.0], [10.0, 12.0]]],
                   "note": "torch's Linear on the last axis is Conv1d(k = 1) between two "
                           "Transposes here; Captum gives the tied window to its first "
                           "maximum, MaxPool1d(mode='winner') splits it 11 + 11, and both "
                           "outputs of the Linear send (5, 6) / 11 of their share down"},
             known={"relevance": [[[0.0, 0.0], [10.0, 12.0]]]}),
        Case("external/innvestigate-273/alpha1-beta0", "iNNvestigate issue 273 / Zennit issue "
             "107: W = (1, -1), b = -1, x = (1, 1), z = -1, R_out = z; AlphaBeta(1, 0)",
             issue_273, np.array([[1.0, 1.0]]), AlphaBeta(1, 0), target=np.array([0]),
             source="iNNvestigate issue 273, Zennit issue 107",
             peer={"library": "iNNvestigate 2.1.2", "rule": "AlphaBetaRule(1, 0)",
                   "note": "puts the bias into its denominators (docs/peers.md difference "
                           "12): z+_j + b = 1 - 1 = 0 here; not re-measured (TensorFlow is "
                           "not installed)"},
             known={"relevance": [[-1.0, 0.0]]}),
        Case("external/innvestigate-273/alpha2-beta1", "iNNvestigate issue 273 / Zennit issue "
             "107 with AlphaBeta(2, 1): z-_j = -1 + min(0, b) = -2",
             issue_273, np.array([[1.0, 1.0]]), AlphaBeta(2, 1), target=np.array([0]),
             source="iNNvestigate issue 273, Zennit issue 107",
             known={"relevance": [[-2.0, 0.5]]}),
        Case("external/zennit-212/sigmoid-lrp0", "Zennit issue 212 (and Captum issue 1361): "
             "sigmoid(x1 w1 + x2 w2) with x = (2, 1), w = (-1, 1); LRP-0 on the Dense layer, "
             "the sigmoid passing relevance unchanged (Zennit's Pass)",
             Sequential([Dense([[-1.0], [1.0]], [0.0]), Sigmoid()]), np.array([[2.0, 1.0]]),
             [Zero(), None], target=np.array([0]), source="Zennit issue 212",
             peer={"reported": [[0.5379, -0.2689]],
                   "note": "the issue reports R1 = 0.5379, R2 = -0.2689 (Zennit, LRP-0 with "
                           "Pass on the sigmoid); lrp_ref's [Zero(), None] on "
                           "Sequential([Dense, Sigmoid]) reproduces it"},
             known={"relevance": [[2 / (1 + np.e), -1 / (1 + np.e)]]}),
    ] + _toolbox_cases()


__all__ = ["Case", "cases"]
