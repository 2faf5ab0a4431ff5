"""Element-wise non-linearities (lrp_ref/layers/activations.py): forward and exact derivative
against torch (float64), relevance passes unchanged, the hand-worked examples of where that
identity departs from Gradient x Input (docs/conventions.md), save/load and astype.

The torch comparisons need the optional oracle extra and are skipped, with the reason,
without it; the hand-worked examples and the relevance properties need NumPy only.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lrp_ref as lrp
from lrp_ref.interop import peers

#: Every activation with the parameter settings tested (torch's defaults and others).
ACTIVATIONS = [
    lrp.LeakyReLU(), lrp.LeakyReLU(0.2), lrp.LeakyReLU(-0.5),
    lrp.ELU(), lrp.ELU(0.5),
    lrp.GELU(), lrp.GELU("tanh"),
    lrp.SiLU(), lrp.Hardswish(), lrp.Hardsigmoid(), lrp.ReLU6(), lrp.Tanh(), lrp.Sigmoid(),
    lrp.Softplus(), lrp.Softplus(2.0, 5.0), lrp.Softplus(0.5, 1.0),
    lrp.Mish(),
]
IDS = [repr(a) for a in ACTIVATIONS]

#: Inputs: ordinary values, the extremes of float64 (where exp and powers overflow if written
#: naively), and every kink and saturation point of the activations (torch's one-sided
#: conventions there are what the derivative must reproduce).
KINKS = [0.0, -0.0, -3.0, 3.0, 6.0, 5.0, 20.0, 2.5, 10.0, -10.0, 40.0, -40.0]
ELEMENTS = st.one_of(st.floats(-30, 30), st.floats(-1e300, 1e300), st.sampled_from(KINKS))
INPUTS = hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 8)),
                    elements=ELEMENTS)


# -- hand-worked examples: where the identity departs from Gradient x Input ---------------

def single_neuron(w, activation, b=0.0):
    """``f(x1 w1 + x2 w2 + b)``: one Dense neuron and its activation."""
    return lrp.Sequential([lrp.Dense(np.array(w, float).reshape(2, 1), np.array([b])),
                           activation])


def test_zennit_issue_212_sigmoid_example_by_hand():
    """zennit issue 212: x = (2, 1), w = (-1, 1), so z = -2 + 1 = -1 and f = sigmoid(-1).

    By hand: sigmoid(-1) = 1 / (1 + e) = 0.2689414213699951. The identity hands R = f(x) to
    z; LRP-0 (eq. (5) of docs/theory.md) splits it as z_ij / z_j: R_1 = (-2 / -1) f =
    0.5378828427399902, R_2 = (1 / -1) f = -0.2689414213699951. The input that pushes the
    output down gets positive relevance: f(z) > 0 while z < 0 flips every share's sign.
    Conservation holds (R_1 + R_2 = f). Gradient x Input is x_i w_i sigmoid'(z) with
    sigmoid'(-1) = f (1 - f) = 0.19661193324148185: (-0.3932238664829637,
    0.19661193324148185), summing to z sigmoid'(z) = -0.1966, not f.
    """
    net = single_neuron([-1, 1], lrp.Sigmoid())
    x = np.array([[2.0, 1.0]])
    e = net.explain(x, target=0, rule=lrp.Zero())
    np.testing.assert_allclose(e.output, [[0.2689414213699951]], rtol=1e-15)
    # a few float roundings apart from the hand values (products and one division)
    np.testing.assert_allclose(e.relevance, [[0.5378828427399902, -0.2689414213699951]],
                               rtol=1e-15)
    np.testing.assert_allclose(net.gradient_x_input(x, 0),
                               [[-0.3932238664829637, 0.19661193324148185]], rtol=1e-15)
    assert e.relevance.sum() == pytest.approx(0.2689414213699951, rel=1e-15)


def test_sigmoid_at_zero_has_relevance_with_no_contribution_to_split():
    """x = (1, -1), w = (1, 1): z = 0 but f(0) = 1/2. LRP-0 has the denominator z_j = 0: the
    1/2 reaches no input and is booked as ``dropped`` (Gradient x Input gives 1/4 each way:
    x_i w_i sigmoid'(0) = (+-1) 1/4, summing to 0). Epsilon(1e-6) gives the stabilizer the
    1/2 and the inputs z_ij (1/2) / 1e-6, large and cancelling."""
    net = single_neuron([1, 1], lrp.Sigmoid())
    x = np.array([[1.0, -1.0]])
    e = net.explain(x, target=0, rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[0.0, 0.0]])
    assert e.layer("0").ledger.dropped[0] == 0.5
    assert e.layer("1").ledger.dropped[0] == 0.0          # the identity itself drops nothing
    np.testing.assert_array_equal(net.gradient_x_input(x, 0), [[0.25, -0.25]])
    # Epsilon: s = 1/2 / (0 + 1e-6), R_i = z_ij s = (5e5, -5e5); the stabilizer takes 1/2
    e = net.explain(x, target=0, rule=lrp.Epsilon(1e-6))
    np.testing.assert_allclose(e.relevance, [[5e5, -5e5]], rtol=1e-12)
    assert e.layer("0").ledger.absorbed_stabilizer[0] == pytest.approx(0.5, rel=1e-12)


def test_relu6_saturation_passes_relevance_where_the_gradient_is_zero():
    """x = (4, 5), w = (1, 1): z = 9, relu6(9) = 6 (saturated, gradient 0). LRP-0: R =
    (4/9, 5/9) 6 = (8/3, 10/3); Gradient x Input: (0, 0)."""
    net = single_neuron([1, 1], lrp.ReLU6())
    x = np.array([[4.0, 5.0]])
    e = net.explain(x, target=0, rule=lrp.Zero())
    np.testing.assert_allclose(e.relevance, [[8 / 3, 10 / 3]], rtol=1e-15)
    np.testing.assert_array_equal(net.gradient_x_input(x, 0), [[0.0, 0.0]])


def test_leaky_relu_negative_side_equals_gradient_x_input():
    """LeakyReLU(0.1) is positively homogeneous, f(z) = z f'(z): the identity equals Gradient
    x Input. x = (1, -3), w = (1, 1): z = -2, f = -0.2; LRP-0: R = (1/-2, -3/-2) (-0.2) =
    (0.1, -0.3); Gradient x Input: (1, -3) 0.1 = (0.1, -0.3)."""
    net = single_neuron([1, 1], lrp.LeakyReLU(0.1))
    x = np.array([[1.0, -3.0]])
    e = net.explain(x, target=0, rule=lrp.Zero())
    np.testing.assert_allclose(e.relevance, [[0.1, -0.3]], rtol=1e-15)
    np.testing.assert_allclose(net.gradient_x_input(x, 0), [[0.1, -0.3]], rtol=1e-15)


def test_elu_negative_side_departs_from_gradient_x_input():
    """ELU(1), x = (1, -3), w = (1, 1): z = -2, f = e^-2 - 1 = -0.8646647167633873. LRP-0:
    R = (1/-2, -3/-2) f = (0.43233235838169365, -1.296997075145081) (sums to f);
    Gradient x Input: (1, -3) e^-2 = (0.1353352832366127, -0.4060058497098381) (sums to
    z f'(z) = -0.2707)."""
    net = single_neuron([1, 1], lrp.ELU())
    x = np.array([[1.0, -3.0]])
    e = net.explain(x, target=0, rule=lrp.Zero())
    np.testing.assert_allclose(e.relevance, [[0.43233235838169365, -1.296997075145081]],
                               rtol=1e-15)
    np.testing.assert_allclose(net.gradient_x_input(x, 0),
                               [[0.1353352832366127, -0.4060058497098381]], rtol=1e-15)


def test_closed_forms_at_hand_computed_points():
    """A value of each function worked out from its definition (math module, not the code)."""
    cases = [
        (lrp.Sigmoid(), 1.0, 1 / (1 + math.exp(-1))),
        (lrp.Tanh(), 0.5, math.tanh(0.5)),
        (lrp.SiLU(), 2.0, 2 / (1 + math.exp(-2))),
        (lrp.GELU(), 1.0, 0.5 * (1 + math.erf(1 / math.sqrt(2)))),
        (lrp.GELU("tanh"), 1.0,
         0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))),
        (lrp.Softplus(), 0.0, math.log(2)),
        (lrp.Softplus(2.0), 1.0, math.log1p(math.exp(2)) / 2),
        (lrp.Softplus(2.0, 5.0), 3.0, 3.0),                    # beta z = 6 > threshold: z
        (lrp.Mish(), 1.0, math.tanh(math.log1p(math.e))),
        (lrp.Hardsigmoid(), 1.5, 0.75), (lrp.Hardsigmoid(), 4.0, 1.0),
        (lrp.Hardswish(), 1.5, 1.125), (lrp.Hardswish(), -4.0, 0.0),
        (lrp.ReLU6(), 7.0, 6.0), (lrp.ReLU6(), -1.0, 0.0),
        (lrp.LeakyReLU(0.2), -2.0, -0.4), (lrp.ELU(0.5), -1.0, 0.5 * (math.exp(-1) - 1)),
    ]
    for layer, z, expected in cases:
        assert layer.forward(np.array([[z]]))[0, 0] == pytest.approx(expected, rel=1e-15), layer


# -- relevance, errors, files --------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
@given(z=INPUTS, seed=st.integers(0, 2**31 - 1))
def test_relevance_passes_unchanged_and_the_ledger_is_empty(activation, z, seed):
    R = np.random.default_rng(seed).standard_normal(z.shape)
    activation.forward(z)
    np.testing.assert_array_equal(activation.relevance(R), R)
    e = lrp.Sequential([activation]).explain(z, output_relevance=R, rule=lrp.Epsilon())
    ledger = e.layer("0").ledger
    for term in (ledger.absorbed_bias, ledger.absorbed_stabilizer, ledger.dropped):
        np.testing.assert_array_equal(term, 0.0)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_takes_no_rule(activation):
    assert activation.takes_rule is False
    net = lrp.Sequential([lrp.Dense(np.eye(2)), activation])
    with pytest.raises(ValueError, match=rf"layer '1' \({type(activation).__name__}\) takes no"):
        net.explain(np.ones((1, 2)), rule=[lrp.Zero(), lrp.Pass()])
    assert net.explain(np.ones((1, 2)), rule=[lrp.Zero(), None]).layer("1").rule is None


def test_invalid_parameters_are_refused():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        lrp.GELU("erf")
    with pytest.raises(ValueError, match="beta must be a finite non-zero number"):
        lrp.Softplus(beta=0.0)
    with pytest.raises(ValueError, match="alpha must be finite"):
        lrp.ELU(float("nan"))
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        lrp.LeakyReLU(float("inf"))


def network_of_all():
    rng = np.random.default_rng(0)
    layers = []
    for activation in ACTIVATIONS:
        layers += [lrp.Dense(rng.standard_normal((4, 4)), rng.standard_normal(4)), activation]
    return lrp.Sequential(layers)


def test_save_and_load_keep_every_activation_and_its_parameters(tmp_path):
    net = network_of_all()
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert [repr(layer) for layer in loaded] == [repr(layer) for layer in net]
    x = np.random.default_rng(1).standard_normal((3, 4))
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def test_astype_float32_computes_in_float32():
    net = network_of_all()
    net32 = net.astype(np.float32)
    x = np.random.default_rng(2).standard_normal((3, 4))
    out32 = net32.forward(x.astype(np.float32))
    assert out32.dtype == np.float32
    # 17 layers of float32 rounding (relative 6e-8 each, amplified by the products of
    # weights): 1e-4 relative to the largest output is two orders above what is seen
    np.testing.assert_allclose(out32, net.forward(x), rtol=1e-4,
                               atol=1e-4 * np.abs(net.forward(x)).max())
    e = net32.explain(x.astype(np.float32), rule=lrp.Epsilon(1e-3))
    assert e.relevance.dtype == np.float32
    for layer in net32:
        layer.forward(x.astype(np.float32)[:, :4])
        assert layer.backward(np.ones((3, 4), np.float32)).dtype == np.float32


# -- against torch --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def torch():
    try:
        return peers.import_torch()
    except ImportError as exc:
        pytest.skip(f"torch not importable: {exc}")


def torch_function(torch, layer):
    """torch's module for ``layer`` (same parameters)."""
    nn = torch.nn
    kind = type(layer).__name__
    return getattr(nn, kind)(**layer.hyperparameters())


def torch_forward_backward(torch, layer, z, grad):
    t = torch.from_numpy(z).requires_grad_(True)
    y = torch_function(torch, layer)(t)
    y.backward(torch.from_numpy(grad))
    return y.detach().numpy(), t.grad.numpy()


#: Relative tolerance against torch: the same formulas, some in another but equally exact
#: arrangement (a stable sigmoid, logaddexp for softplus): a few ulp, 1e-14 is ~45 ulp.
RTOL = 1e-14
#: Absolute floor: below ~1e-290 one side may hold a subnormal where the other has flushed
#: to 0 (torch's 1 / (1 + exp(-z)) once exp(-z) overflows; ours keeps exp(z) / (1 + exp(z))).
ATOL = 1e-290


def assert_matches_torch(actual, expected, z, layer, rtol=RTOL, scale=1.0):
    """``|actual - expected| <= rtol |expected| + ATOL + slack(layer, z) scale``."""
    bound = rtol * np.abs(expected) + ATOL + slack(layer, z) * scale
    bad = ~(np.abs(actual - expected) <= bound)
    assert not bad.any(), f"z={z[bad]}, ours={actual[bad]}, torch={expected[bad]}"


def slack(layer, z):
    """The absolute difference one ulp of 1 in a cancelling sum makes, however small the result.

    GELU computes ``z * 0.5 * (1 + erf(z / sqrt 2))`` (and ``1 + tanh(u)``), the derivatives
    of saturating functions ``1 - tanh(z)^2``, ``(1 - sigmoid(z)) sigmoid(z)``: in the tails
    these cancel to a few ulp of 1, and torch's erf, tanh or exp and NumPy's may differ by
    one ulp there (~1.1e-16). The result then differs by about ulp(1) (1 + |z|) (the product
    with z), and in tanh-GELU's derivative ``z (1 - tanh(u)^2) u'(z) / 2`` with
    ``u'(z) ~ z^2`` by ulp(1) (1 + |z|)^3. Beyond |z| = 40 (10 for tanh-GELU) every such sum
    is exactly 0 or 2 in float64 on both sides, so the slack stops growing there.
    """
    if isinstance(layer, lrp.GELU) and layer.approximate == "tanh":
        return 2e-16 * (1 + np.minimum(np.abs(z), 10)) ** 3
    return 2e-16 * (1 + np.minimum(np.abs(z), 40))


def torch_inputs(layer):
    """INPUTS, restricted where torch's own formulas overflow to NaN (see the test)."""
    if isinstance(layer, lrp.GELU) and layer.approximate == "tanh":
        elements = st.one_of(st.floats(-30, 30), st.floats(-1e150, 1e150),
                             st.sampled_from(KINKS))
        return hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 8)),
                          elements=elements)
    return INPUTS


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
@given(data=st.data())
def test_forward_and_derivative_equal_torch(torch, activation, data):
    z = data.draw(torch_inputs(activation))
    grad = data.draw(hnp.arrays(np.float64, z.shape, elements=st.floats(-10, 10)))
    y, dz = torch_forward_backward(torch, activation, z, grad)
    assert_matches_torch(activation.forward(z), y, z, activation)
    assert_matches_torch(activation.backward(grad), dz, z, activation,
                         rtol=backward_rtol(activation), scale=np.abs(grad))


def backward_rtol(layer):
    """torch's Hardsigmoid backward multiplies by ``1.0f / 6.0f``, 1/6 rounded to float32
    (relative error 3e-8); ours is the exact derivative 1/6 (test below)."""
    return 1e-7 if isinstance(layer, lrp.Hardsigmoid) else RTOL


def test_hardsigmoid_derivative_is_one_sixth_where_torch_rounds_it_to_float32(torch):
    z = np.array([[0.0, 1.0]])
    _, dz = torch_forward_backward(torch, lrp.Hardsigmoid(), z, np.ones_like(z))
    np.testing.assert_array_equal(dz, np.float32(1) / np.float32(6))
    layer = lrp.Hardsigmoid()
    layer.forward(z)
    np.testing.assert_array_equal(layer.backward(np.ones_like(z)), 1 / 6)


def test_tanh_gelu_derivative_is_finite_where_torch_overflows(torch):
    """torch's tanh-GELU backward forms z^2 and gives NaN (0 * inf) for |z| > 1.3e154; the
    derivative there is exactly 1 (z -> +inf) and 0 (z -> -inf)."""
    z = np.array([[1e200, -1e200]])
    _, dz = torch_forward_backward(torch, lrp.GELU("tanh"), z, np.ones_like(z))
    assert np.isnan(dz).all()
    layer = lrp.GELU("tanh")
    np.testing.assert_array_equal(layer.forward(z), [[1e200, -0.0]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(z)), [[1.0, 0.0]])
