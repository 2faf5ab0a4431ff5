"""Composites: which rule every layer receives, inside Residual blocks too, and end to end.

The expected assignments are written out by hand from Zennit's composites
(docs/peers.md) and Montavon et al. 2019, section 10.3 — never computed by the
composite code.

Tolerances: ledger balance 1e-10 relative to the relevance involved (docs/conventions.md);
the Zennit-gamma comparison 1e-12 times the rounding scale
``max_i sum_j |z'_ij / d_j R_j| (1 + cond_j)`` (both sides sum the same <= 27
products per output in different orders).
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.rules import composites as C

import naive

RNG = np.random.default_rng(7)


def conv(c_in: int, c_out: int, k: int = 3, **kw) -> lrp.Conv2d:
    w = RNG.standard_normal((c_out, c_in, k, k)) / k
    return lrp.Conv2d(w, 0.1 * RNG.standard_normal(c_out), **kw)


def dense(n_in: int, n_out: int) -> lrp.Dense:
    return lrp.Dense(RNG.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                     0.1 * RNG.standard_normal(n_out))


def batchnorm(c: int) -> lrp.BatchNorm2d:
    return lrp.BatchNorm2d(1 + 0.1 * RNG.standard_normal(c), 0.1 * RNG.standard_normal(c),
                           0.1 * RNG.standard_normal(c), 1 + RNG.random(c))


def small_conv_net() -> lrp.Sequential:
    """Input (B, 2, 6, 6). Paths: 0 conv, 2 conv, 3 BN, 5 avgpool, 6 conv, 9 and 11 dense."""
    return lrp.Sequential([
        conv(2, 3, padding=1), lrp.ReLU(),                          # 0, 1
        conv(3, 3, padding=1), batchnorm(3), lrp.ReLU(),            # 2, 3, 4
        lrp.AvgPool2d(2),                                           # 5: 3x3
        conv(3, 4, padding=1), lrp.ReLU(),                          # 6, 7
        lrp.Flatten(), dense(36, 5), lrp.ReLU(), dense(5, 3),       # 8, 9, 10, 11
    ])


X = RNG.random((2, 2, 6, 6))
EPS, STAB = lrp.Epsilon(1e-6), lrp.Epsilon(1e-6)
AB10, AB21 = lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1)

GG = lrp.GeneralizedGamma(0.25)       # Zennit's Gamma, in epsilon_gamma_box

EXPECTED = {
    "epsilon_plus": {"0": AB10, "2": AB10, "3": lrp.Pass(), "5": STAB, "6": AB10,
                     "9": EPS, "11": EPS},
    "epsilon_plus_flat": {"0": lrp.Flat(), "2": AB10, "3": lrp.Pass(), "5": STAB, "6": AB10,
                          "9": EPS, "11": EPS},
    "epsilon_alpha2_beta1": {"0": AB21, "2": AB21, "3": lrp.Pass(), "5": STAB, "6": AB21,
                             "9": EPS, "11": EPS},
    "epsilon_alpha2_beta1_flat": {"0": lrp.Flat(), "2": AB21, "3": lrp.Pass(), "5": STAB,
                                  "6": AB21, "9": EPS, "11": EPS},
    "epsilon_gamma_box": {"0": lrp.ZBox(0, 1), "2": GG, "3": lrp.Pass(),
                          "5": STAB, "6": GG, "9": EPS, "11": EPS},
    # linear layers 0, 2, 6, 9, 11: z^B at 0; the dense head 9, 11 is "upper" (LRP-0);
    # between: 2, 6, of which round(0.5 * 2) = 1 gets gamma, the other epsilon(0.25)
    "montavon2019": {"0": lrp.ZBox(0, 1), "2": lrp.Gamma(0.25), "3": lrp.Pass(), "5": STAB,
                     "6": lrp.Epsilon(0.25), "9": lrp.Zero(), "11": lrp.Zero()},
}

COMPOSITES = {
    "epsilon_plus": C.epsilon_plus(),
    "epsilon_plus_flat": C.epsilon_plus_flat(),
    "epsilon_alpha2_beta1": C.epsilon_alpha2_beta1(),
    "epsilon_alpha2_beta1_flat": C.epsilon_alpha2_beta1_flat(),
    "epsilon_gamma_box": C.epsilon_gamma_box(0, 1),
    "montavon2019": C.montavon2019(0, 1),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_layer_receives_the_rule_of_the_composite(name):
    assert COMPOSITES[name](small_conv_net()) == EXPECTED[name]


def test_uniform_gives_every_rule_taking_layer_the_rule():
    rule = lrp.Epsilon(0.1)
    expected = {path: rule for path in ("0", "2", "3", "5", "6", "9", "11")}
    assert C.uniform(rule)(small_conv_net()) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("method", ["fast", "explicit"])
def test_explain_with_a_composite_uses_it_and_balances(name, method):
    net = small_conv_net()
    e = net.explain(X, rule=COMPOSITES[name], method=method)
    rules = e.rules()
    assert {p: r for p, r in rules.items() if r is not None} == EXPECTED[name]
    assert all(rules[p] is None for p in ("1", "4", "7", "8", "10"))
    assert np.all(np.isfinite(e.relevance))
    for record in e.layers:
        size = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum()
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * size + 1e-300)


# -- first layer, traversal order, residual blocks ---------------------------------------------


def residual_net() -> lrp.Sequential:
    """Paths: 0.body.0 conv, 0.shortcut 1x1 conv, 2.body.0/2 conv, 2.body.1 BN, 5 dense."""
    return lrp.Sequential([
        lrp.Residual(lrp.Sequential([conv(2, 3, padding=1)]), shortcut=conv(2, 3, k=1)),  # 0
        lrp.ReLU(),                                                                         # 1
        lrp.Residual(lrp.Sequential([conv(3, 3, padding=1), batchnorm(3),
                                     conv(3, 3, padding=1)])),                              # 2
        lrp.ReLU(), lrp.Flatten(), dense(3 * 36, 4),                                        # 3-5
    ])


def test_composites_reach_into_residual_blocks_body_before_shortcut():
    net = residual_net()
    G = GG
    assert C.epsilon_gamma_box(-1, 1)(net) == {
        "0.body.0": lrp.ZBox(-1, 1), "0.shortcut": G, "2.body.0": G, "2.body.1": lrp.Pass(),
        "2.body.2": G, "5": EPS}
    assert C.epsilon_plus_flat()(net) == {
        "0.body.0": lrp.Flat(), "0.shortcut": AB10, "2.body.0": AB10, "2.body.1": lrp.Pass(),
        "2.body.2": AB10, "5": EPS}
    e = net.explain(RNG.random((1, 2, 6, 6)), rule=C.epsilon_gamma_box(-1, 1))
    assert e.rules()["2.body.2"] == G and e.rules()["0.body.0"] == lrp.ZBox(-1, 1)


def test_flat_goes_to_the_first_dense_when_it_comes_first():
    net = lrp.Sequential([dense(4, 3), lrp.ReLU(), dense(3, 2)])
    assert C.epsilon_plus_flat()(net) == {"0": lrp.Flat(), "2": EPS}
    assert C.epsilon_alpha2_beta1_flat()(net) == {"0": lrp.Flat(), "2": EPS}


def test_box_goes_to_the_first_conv_even_after_a_dense():
    """Zennit's EpsilonGammaBox puts ZBox on the first *convolution*, not the first linear layer."""
    net = lrp.Sequential([dense(4, 72), lrp.ReLU(), lrp.Flatten(), dense(72, 72)])
    with pytest.raises(ValueError, match="first Conv2d, but the network has none"):
        C.epsilon_gamma_box(0, 1)(net)


# -- montavon2019: the depth split -------------------------------------------------------------


def vgg_like(n_conv: int, n_dense: int) -> lrp.Sequential:
    layers = [conv(1, 1, padding=1) for _ in range(n_conv)]
    layers += [lrp.Flatten()] + [dense(4, 4) for _ in range(n_dense)]
    return lrp.Sequential(layers)


def names(assignment: dict) -> list[str]:
    return [type(rule).__name__ for rule in assignment.values()]


def test_montavon2019_reproduces_the_vgg16_split():
    """VGG-16 (13 conv + 3 dense), Montavon et al. 2019 / their tutorial: z^B on conv1_1,
    gamma on the other 6 convs of blocks 1-3, epsilon on the 6 of blocks 4-5, LRP-0 on fc6-8."""
    got = names(C.montavon2019(0, 1)(vgg_like(13, 3)))
    assert got == ["ZBox"] + ["Gamma"] * 6 + ["Epsilon"] * 6 + ["Zero"] * 3


def test_montavon2019_split_is_adjustable():
    net = vgg_like(5, 2)         # weighted 0-4 conv, 6-7 dense; between: 4 convs
    assert names(C.montavon2019(0, 1)(net)) == ["ZBox"] + ["Gamma"] * 2 + ["Epsilon"] * 2 \
        + ["Zero"] * 2
    assert names(C.montavon2019(0, 1, lower=0.75)(net)) == ["ZBox"] + ["Gamma"] * 3 \
        + ["Epsilon"] + ["Zero"] * 2
    assert names(C.montavon2019(0, 1, lower=0.0, upper=1)(net)) == ["ZBox"] + ["Epsilon"] * 5 \
        + ["Zero"]
    assert names(C.montavon2019(0, 1, lower=1.0, upper=0)(net)) == ["ZBox"] + ["Gamma"] * 6
    # a network without Conv2d: every Dense above the input layer is an upper layer
    assert names(C.montavon2019(0, 1)(vgg_like(0, 3))) == ["ZBox", "Zero", "Zero"]
    m = C.montavon2019(0, 1, gamma=0.5, epsilon=0.1)(net)
    assert m["1"] == lrp.Gamma(0.5) and m["4"] == lrp.Epsilon(0.1)


@pytest.mark.parametrize("kwargs, message", [
    ({"lower": 1.5}, "lower must be a fraction"),
    ({"upper": -1}, "upper must be None or an int"),
    ({"upper": 2.0}, "upper must be None or an int"),
])
def test_montavon2019_rejects_bad_split(kwargs, message):
    with pytest.raises(ValueError, match=message):
        C.montavon2019(0, 1, **kwargs)


def test_montavon2019_upper_larger_than_the_network():
    with pytest.raises(ValueError, match="upper=9.*only 6"):
        C.montavon2019(0, 1, upper=9)(vgg_like(5, 2))


# -- printing and errors ---------------------------------------------------------------------


def test_repr_and_table():
    assert repr(C.epsilon_plus()) == "epsilon_plus(epsilon=1e-06, stabilizer=1e-06)"
    assert repr(C.epsilon_gamma_box(np.zeros((2, 1, 1)), 1.0, gamma=0.5)) == (
        "epsilon_gamma_box(low=array(2, 1, 1), high=1.0, gamma=0.5, epsilon=1e-06, "
        "stabilizer=1e-06)")
    assert repr(C.uniform(lrp.Zero())) == "uniform(rule=Zero(bias=True))"
    assert repr(C.montavon2019(0, 1)).startswith("montavon2019(low=0.0, high=1.0, gamma=0.25, ")
    table = C.epsilon_plus_flat().table(small_conv_net()).splitlines()
    assert table[0] == repr(C.epsilon_plus_flat())
    ab, eps = "AlphaBeta(alpha=1, beta=0, bias=True)", "Epsilon(epsilon=1e-06, bias=True)"
    assert [line.split(maxsplit=2) for line in table[1:]] == [
        ["0", "Conv2d", "Flat()"], ["2", "Conv2d", ab], ["3", "BatchNorm2d", "Pass()"],
        ["5", "AvgPool2d", eps], ["6", "Conv2d", ab], ["9", "Dense", eps], ["11", "Dense", eps]]


@pytest.fixture
def layer_type():
    """Define a Layer subclass for one test (defining one registers nothing: lrp_ref.registry)."""
    return lambda name, base, **attributes: type(name, (base,), attributes)


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_an_unknown_layer_type_is_an_error_not_a_silent_gap(name, layer_type):
    # a rule-taking layer type no composite knows (stands for a layer added later)
    future = layer_type("FutureLayer", lrp.Layer, takes_rule=True)
    net = lrp.Sequential([conv(2, 2), future(), lrp.Flatten(), dense(8, 2)])
    with pytest.raises(ValueError, match=r"no rule for layer '1' \(FutureLayer\)"):
        COMPOSITES[name](net)
    assert C.uniform(lrp.Zero())(net) == {"0": lrp.Zero(), "1": lrp.Zero(), "3": lrp.Zero()}


def test_subclasses_of_known_layers_are_recognised(layer_type):
    my_dense = layer_type("MyDense", lrp.Dense)
    net = lrp.Sequential([my_dense(np.ones((2, 2))), lrp.ReLU(), lrp.Dense(np.ones((2, 1)))])
    assert C.epsilon_plus_flat()(net) == {"0": lrp.Flat(), "2": EPS}


def test_composites_validate_their_parameters_early():
    with pytest.raises(ValueError):
        C.epsilon_plus(epsilon=-1.0)
    with pytest.raises(ValueError):
        C.epsilon_gamma_box(1, 0)
    with pytest.raises(TypeError):
        C.uniform("epsilon")
    with pytest.raises(TypeError):
        C.epsilon_plus()("not a network")


# -- epsilon_gamma_box against Zennit's generalised Gamma --------------------------------------


def zennit_gamma(a: np.ndarray, W: np.ndarray, b: np.ndarray, R: np.ndarray, g: float):
    """Zennit's ``Gamma`` (rules.py, Andeol et al. 2021) with its stabilizer set to 0.

    Returns ``R_in`` and the rounding scale ``max_i sum_j |z'_ij/d_j R_j| (1 + cond_j)``.

    At ``z_j > 0``: ``a+ (w + g w+) + a- (w + g w-)`` over ``that sum + b + g b+``;
    at ``z_j < 0``: ``a+ (w + g w-) + a- (w + g w+)`` over ``that sum + b + g b-``;
    at ``z_j = 0`` nothing. ``a`` (B, I), ``W`` (I, J), ``R`` (B, J).
    """
    pos, neg = np.maximum(W, 0), np.minimum(W, 0)
    ap, an = np.maximum(a, 0)[:, :, None], np.minimum(a, 0)[:, :, None]
    z = a @ W + b
    up = ap * (W + g * pos) + an * (W + g * neg)
    down = ap * (W + g * neg) + an * (W + g * pos)
    z_ij = np.where(z[:, None, :] > 0, up, np.where(z[:, None, :] < 0, down, 0))
    bias = np.where(z > 0, b + g * np.maximum(b, 0), b + g * np.minimum(b, 0))
    d = np.where(z == 0, 1, z_ij.sum(axis=1) + bias)
    terms = z_ij / d[:, None, :] * R[:, None, :]
    cond = (np.abs(z_ij).sum(axis=1) + np.abs(bias)) / np.abs(d)
    scale = (np.abs(terms) * (1 + cond[:, None, :])).sum(axis=2).max()
    return terms.sum(axis=2), scale


def test_montavons_gamma_differs_from_zennit_on_a_negative_output():
    # a = (1, 1), w = (1, -2), b = 0: z = -1. Montavon's: w + g w+ = (1.25, -2), d = -0.75,
    # R = (1.25, -2) / -0.75 = (-5/3, 8/3). Zennit at z < 0: w + g w- = (1, -2.5), d = -1.5,
    # R = (1, -2.5) / -1.5 = (-2/3, 5/3), which GeneralizedGamma gives.
    layer = lrp.Dense([[1.0], [-2.0]], [0.0])
    layer.forward([[1.0, 1.0]])
    np.testing.assert_allclose(layer.relevance([[1.0]], lrp.Gamma(0.25)), [[-5 / 3, 8 / 3]],
                               rtol=1e-15)
    zennit, _ = zennit_gamma(np.ones((1, 2)), layer.weight, layer.bias, np.ones((1, 1)), 0.25)
    np.testing.assert_allclose(zennit, [[-2 / 3, 5 / 3]], rtol=1e-15)
    np.testing.assert_allclose(layer.relevance([[1.0]], GG), [[-2 / 3, 5 / 3]], rtol=1e-15)


def test_epsilon_gamma_box_reproduces_zennits_gamma_also_at_negative_outputs():
    """Conv 2 feeds conv 3 directly (no ReLU, as a ResNet block's last conv feeds the sum):
    conv 2 receives relevance at negative outputs and conv 3 sees inputs of both signs. At
    every gamma conv the relevance equals Zennit's generalised Gamma computed by hand."""
    net = lrp.Sequential([
        conv(2, 3, padding=1), lrp.ReLU(), conv(3, 3, padding=1), conv(3, 3, padding=1),
        lrp.ReLU(), lrp.MaxPool2d(2), conv(3, 4, padding=1, stride=2), lrp.ReLU(),
        lrp.AvgPool2d(2), lrp.Flatten(), dense(4, 3),
    ])
    x = RNG.random((2, 2, 8, 8))
    e = net.explain(x, rule=C.epsilon_gamma_box(0, 1))
    inputs = [x]
    for layer in net.layers:
        inputs.append(layer.forward(inputs[-1]))
    assert np.any(inputs[3] < 0)                                  # conv 3 sees a < 0
    assert np.any(e.layer("2").relevance_out[inputs[3] < 0] != 0)  # conv 2: R at z_j < 0
    for k in (2, 3, 6):
        record, a = e.layer(str(k)), inputs[k]
        assert record.rule == GG
        W, M, b = naive.unrolled(net.layers[k], a.shape[1:])
        expected, scale = zennit_gamma(a.reshape(len(a), -1), W, b,
                                       record.relevance_out.reshape(len(a), -1), 0.25)
        np.testing.assert_allclose(record.relevance_in.reshape(len(a), -1), expected, rtol=0,
                                   atol=1e-12 * scale)


def test_upsample_takes_the_average_pools_rule():
    """Upsample is a fixed linear map like an average pool (its interpolation weights): the
    named composites give it the pools' Epsilon(stabilizer) (before, any network with an
    Upsample was refused by every composite as an unknown layer type)."""
    net = lrp.Sequential([lrp.Conv2d(np.ones((2, 1, 3, 3)), padding=1), lrp.ReLU(),
                          lrp.Upsample(scale_factor=2, mode="bilinear"), lrp.Flatten(),
                          lrp.Dense(np.ones((2 * 8 * 8, 3)))])
    assignment = lrp.composites.epsilon_plus(1e-6, 1e-9)(net)
    assert assignment["2"] == lrp.Epsilon(1e-9)
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 4))
    e = net.explain(x, rule=lrp.composites.epsilon_plus())
    assert all(np.all(np.abs(r.imbalance()) <= 1e-12 * np.abs(e.output).max()) for r in e.layers)
