"""RAP (Nam et al. 2020) as the authors' released code computes it, worked by hand.

The expected numbers below were derived on paper from the algorithm as read in
wjNam/Relative_Attributing_Propagation, modules/layers.py (docs/extensions.md,
"RAP"), not from lrp_ref's code. Notation of lrp_ref.extensions.rap: in a
general step, inputs are split into the half with ``a_i > 0`` and the half
with ``a_i < 0``; in each half ``u_ij = |a_i| w+_ij``, ``v_ij = |a_i| |w-_ij|``,
``U_j = sum_i u_ij``, ``V_j = sum_i v_ij``.

Tolerances: every hand value is a short chain of float64 operations on
numbers of order 1, so 1e-12 absolute is ~1e4 ulps of slack; sums over a few
hundred entries (the shapes CNN) are checked to 1e-10 relative.
"""

import numpy as np
import pytest
from hypothesis import given

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum
from lrp_ref.extensions.rap import RAPExplanation, rap
from lrp_ref.zoo import models

from strategies import relu_networks

ATOL = 1e-12

X = np.array([[1.0, 2.0, -1.0]])
W1 = np.array([[1.0, -1.0], [1.0, 1.5], [-1.0, 1.0]])    # (in, out)
W2 = np.array([[1.0, -1.0], [-2.0, 1.0]])
B2 = np.array([1.0, 0.0])


def hand_net() -> lrp.Sequential:
    """x = (1, 2, -1).  z1 = x W1 = (1 + 2 + 1, -1 + 3 - 1) = (4, 1) = h (ReLU keeps both).

    y = h W2 + b2 = (4 - 2 + 1, -4 + 1 + 0) = (3, -3): the argmax is class 0.
    """
    return lrp.Sequential([lrp.Dense(W1), lrp.ReLU(), lrp.Dense(W2, B2)])


def hand_conv_net() -> lrp.Sequential:
    """The same map with the first layer a 1x1 Conv2d on a (1, 3, 1, 1) image."""
    conv = lrp.Conv2d(W1.T[:, :, None, None])             # (C_out, C_in, 1, 1)
    return lrp.Sequential([conv, lrp.ReLU(), lrp.Flatten(), lrp.Dense(W2, B2)])


def test_first_step_by_hand():
    # Output layer, target j = 0, inputs h = (4, 1) >= 0, w_.0 = (1, -2), b_0 = 1.
    # z_i0 = (4, -2); Pos = 4, Neg = -2, Pos + Neg = 2.
    # Bias shares: b Pos/(Pos+Neg) = 2 along the a+ w+ parts (Z1 = 4): input 0 gets 4/4 * 2 = 2;
    #   b Neg/(Pos+Neg) = -1 along the a+ w- parts (Z2 = -2): input 1 gets -2/-2 * -1 = -1.
    # r = (4 + 2, -2 - 1) = (6, -3), sum r = 3 = y_0, sum |r| = 9.
    # redistribute: |r| * sum r / sum |r| = (6, 3) * 3/9 = (2, 1).
    e = rap(hand_net(), X, box_input=False)
    record = e.layer("2")
    np.testing.assert_array_equal(record.relevance_out, [[3, 0]])
    np.testing.assert_allclose(record.relevance_in, [[2, 1]], rtol=0, atol=ATOL)
    assert record.rule.step == "first"
    np.testing.assert_allclose(record.absorbed_bias, [0], atol=ATOL)
    np.testing.assert_allclose(record.dropped, [0], atol=ATOL)


def test_general_dense_step_by_hand_both_halves_are_shifted_to_the_full_sum():
    # Dense 0, R_j = (2, 1), a = (1, 2, -1).
    # Half a > 0 (inputs 0, 1):  j=0: w = (1, 1): u = (1, 2), U = 3, V = 0.
    #                            j=1: w = (-1, 1.5): u = (0, 3), U = 3; v = (1, 0), V = 1.
    #   C_i = sum_j (u_ij / U_j + v_ij / (U_j + V_j)) R_j
    #   C_0 = 1/3 * 2 + 1/4 * 1 = 11/12,  C_1 = 2/3 * 2 + 3/3 * 1 = 7/3;  sum = 13/4.
    #   shift (13/4 - 3) / 2 non-zero entries = 1/8:  (11/12 - 1/8, 7/3 - 1/8) = (19/24, 53/24).
    # Half a < 0 (input 2, |a| = 1): j=0: w = -1: u = 0, v = 1 (U = 0, V = 1);
    #                                 j=1: w = 1:  u = 1, v = 0 (U = 1, V = 0).
    #   C_2 = 1/(0 + 1) * 2 + 1/1 * 1 = 3; shift 0.
    # R = (19/24, 53/24, 3): sum 6 = twice sum R_j, the second half's copy is created.
    e = rap(hand_net(), X, box_input=False)
    np.testing.assert_allclose(e.relevance, [[19 / 24, 53 / 24, 3]], rtol=0, atol=ATOL)
    record = e.layer("0")
    assert record.rule.step == "rap"
    np.testing.assert_allclose(record.spread, [13 / 4 + 3], rtol=0, atol=ATOL)
    np.testing.assert_allclose(record.shift, [1 / 4], rtol=0, atol=ATOL)
    np.testing.assert_allclose(record.dropped, [-3], rtol=0, atol=ATOL)    # created
    np.testing.assert_allclose(record.imbalance(), [0], atol=ATOL)


def test_negative_relevance_dense_routes_it_like_positive():
    # Target 1: y_1 = -3, w_.1 = (-1, 1), b_1 = 0.  r = (-4, 1), sum -3, sum |r| = 5:
    #   R_h = (4, 1) * (-3/5) = (-2.4, -0.6).
    # Dense 0 (R_j all negative, same factors as above):
    #   half a > 0:  C_0 = 1/3 * -2.4 + 1/4 * -0.6 = -0.95, C_1 = 2/3 * -2.4 + 1 * -0.6 = -2.2;
    #                sum -3.15, shift -0.15 / 2 = -0.075:  (-0.875, -2.125).
    #   half a < 0:  C_2 = 1 * -2.4 + 1 * -0.6 = -3 (shift 0).
    e = rap(hand_net(), X, target=1, box_input=False)
    np.testing.assert_allclose(e.layer("2").relevance_in, [[-2.4, -0.6]], rtol=0, atol=ATOL)
    np.testing.assert_allclose(e.relevance, [[-0.875, -2.125, -3]], rtol=0, atol=ATOL)
    record = e.layer("0")
    np.testing.assert_allclose(record.relevant, [0], atol=ATOL)
    np.testing.assert_allclose(record.irrelevant, [-3], rtol=0, atol=ATOL)


def test_negative_relevance_conv2d_routes_it_through_the_negative_weights():
    # The same map as a 1x1 Conv2d. For R_j < 0 the Conv2d step uses
    #   C_i = sum_j v_ij (1 / V_j + 1 / (U_j + V_j)) R_j      (no u term)
    # half a > 0:  j=0 has V = 0: its R_0 = -2.4 reaches nobody before the shift;
    #              j=1: v_01 = 1, V = 1, U + V = 4: C_0 = (1 + 1/4) * -0.6 = -0.75, C_1 = 0.
    #              sum -0.75, shift (-0.75 + 3) / 1 non-zero entry: C_0 = -3, C_1 = 0 stays 0.
    # half a < 0:  j=0: v = 1, V = 1, U + V = 1: C_2 = (1 + 1) * -2.4 = -4.8; j=1: v = 0.
    #              shift (-4.8 + 3) / 1:  C_2 = -3.
    e = rap(hand_conv_net(), X.reshape(1, 3, 1, 1), target=1, box_input=False)
    np.testing.assert_allclose(e.relevance.reshape(1, 3), [[-3, 0, -3]], rtol=0, atol=ATOL)
    record = e.layer("0")
    np.testing.assert_allclose(record.spread, [-0.75 - 4.8], rtol=0, atol=ATOL)
    np.testing.assert_allclose(record.shift, [2.25 - 1.8], rtol=0, atol=ATOL)
    np.testing.assert_allclose(record.dropped, [3], rtol=0, atol=ATOL)     # -3 created


def test_conv2d_and_dense_agree_on_positive_relevance():
    dense = rap(hand_net(), X, box_input=False)
    conv = rap(hand_conv_net(), X.reshape(1, 3, 1, 1), box_input=False)
    np.testing.assert_allclose(conv.relevance.reshape(1, 3), dense.relevance, rtol=0, atol=ATOL)


def test_box_input_by_hand():
    # z^B at Dense 0 with l = min x = -1, h = max x = 2 (per sample), R_j = (2, 1):
    #   numerators a_i w_ij - l w+_ij - h w-_ij:
    #   j=0, w = (1, 1, -1):    (1 + 1, 2 + 1, 1 + 2) = (2, 3, 3), sum 8:     (0.5, 0.75, 0.75)
    #   j=1, w = (-1, 1.5, 1):  (-1 + 2, 3 + 1.5, -1 + 1) = (1, 4.5, 0), sum 5.5: (2/11, 9/11, 0)
    e = rap(hand_net(), X)
    np.testing.assert_allclose(e.relevance, [[15 / 22, 69 / 44, 3 / 4]], rtol=0, atol=ATOL)
    assert e.layer("0").rule.step == "box"
    np.testing.assert_allclose(e.input_relevance_sum(), [3], rtol=0, atol=ATOL)


def test_box_input_drops_an_output_whose_inputs_all_sit_on_their_bounds():
    # x = (2, -1): h = 2, l = -1.  Dense 0: w_.0 = (-1, 1), b_0 = 4: z_0 = -2 - 1 + 4 = 1;
    # w_.1 = (1, 1): z_1 = 1.  Output (1, 1), y = 2: first step r = (1, 1), R_h = (1, 1).
    # z^B, j=0: numerators (a - l) w+ + (a - h) w-: input 0 (a = h, w < 0): 0; input 1
    #   (a = l, w > 0): 0. Denominator 0: R_0 = 1 is dropped.
    # j=1: (3 * 1, 0 * 1) = (3, 0): input 0 takes R_1 = 1.
    net = lrp.Sequential([lrp.Dense(np.array([[-1.0, 1.0], [1.0, 1.0]]), np.array([4.0, 0.0])),
                          lrp.ReLU(), lrp.Dense(np.array([[1.0], [1.0]]))])
    e = rap(net, np.array([[2.0, -1.0]]))
    np.testing.assert_allclose(e.relevance, [[1, 0]], rtol=0, atol=ATOL)
    np.testing.assert_allclose(e.layer("0").dropped, [1], rtol=0, atol=ATOL)


def test_without_first_step_the_output_layer_takes_the_general_step():
    # first_step=False: seed R = onehot * y = (3, 0) at the output, general step, bias ignored.
    # h = (4, 1), w_.0 = (1, -2): u = (4, 0), U = 4; v = (0, 2), V = 2.
    #   C = (4/4 * 3, 2/6 * 3) = (3, 1), sum 4, shift 1/2 each:  (2.5, 0.5).
    e = rap(hand_net(), X, first_step=False, box_input=False)
    np.testing.assert_allclose(e.layer("2").relevance_in, [[2.5, 0.5]], rtol=0, atol=ATOL)
    assert e.layer("2").rule.step == "rap"


def test_first_step_loses_the_bias_share_that_finds_no_input():
    # One Dense, x = (1, -1), w = (-1, -2), b = 3:  z_i = (-1, 2), y = 1 + 3 = 4.
    # Pos = a- w- = 2, Neg = a+ w- = -1, Pos + Neg = 1.  b Pos/(Pos+Neg) = 6 goes along
    # Z1 = sum a+ w+ = 0: lost (absorbed_bias 6).  b Neg/(Pos+Neg) = -3 along Z2 = -1: input 0.
    # r = (-1 - 3, 2) = (-4, 2), sum -2, sum |r| = 6:  R = (4, 2) * (-2/6) = (-4/3, -2/3).
    net = lrp.Sequential([lrp.Dense(np.array([[-1.0], [-2.0]]), np.array([3.0]))])
    e = rap(net, np.array([[1.0, -1.0]]), target=0)
    np.testing.assert_allclose(e.relevance, [[-4 / 3, -2 / 3]], rtol=0, atol=ATOL)
    np.testing.assert_allclose(e.layers[0].absorbed_bias, [6], rtol=0, atol=ATOL)
    np.testing.assert_allclose(e.layers[0].imbalance(), [0], atol=ATOL)


def test_batchnorm_passes_relevance_where_its_input_is_nonzero():
    # x = (1, 2) -> Dense (1, 0) -> BN y = (1, 1) (beta = (0, 1)) -> ReLU -> Dense (1, 1): y = 2.
    # First step: r = (1, 1), R = (1, 1).  BN: input (1, 0): R_in = (1, 0), 1 dropped.
    # Dense 0 (general, half a > 0): j=0 w = (1, 0): u = (1, 0), U = 1: C = (1, 0).
    net = lrp.Sequential([
        lrp.Dense(np.array([[1.0, 0.0], [0.0, 0.0]])),
        lrp.BatchNorm1d(np.ones(2), np.array([0.0, 1.0]), np.zeros(2), np.ones(2), eps=0.0),
        lrp.ReLU(),
        lrp.Dense(np.array([[1.0], [1.0]])),
    ])
    e = rap(net, np.array([[1.0, 2.0]]), box_input=False)
    bn = e.layer("1")
    assert bn.rule.step == "batchnorm"
    np.testing.assert_allclose(bn.relevance_out, [[1, 1]], rtol=0, atol=ATOL)
    np.testing.assert_allclose(bn.relevance_in, [[1, 0]], rtol=0, atol=ATOL)
    np.testing.assert_allclose(bn.dropped, [1], rtol=0, atol=ATOL)
    np.testing.assert_allclose(e.relevance, [[1, 0]], rtol=0, atol=ATOL)


def test_maxpool_sends_a_window_to_its_first_maximum():
    # Window (1, 1, 0.5, 0): the first maximum (row-major) takes x R / z = R, its tied twin 0
    # (the gradient's choice, torch's), not half each as MaxPool2d(mode="winner") would.
    net = lrp.Sequential([lrp.MaxPool2d(2), lrp.Flatten(), lrp.Dense(np.array([[1.0, -1.0]]))])
    e = rap(net, np.array([[[[1.0, 1.0], [0.5, 0.0]]]]), target=0, box_input=False)
    np.testing.assert_allclose(e.relevance, [[[[1, 0], [0, 0]]]], rtol=0, atol=ATOL)


def test_residual_splits_in_proportion_to_the_branch_outputs():
    rng = np.random.default_rng(0)
    w0, wb, wc, wo = (rng.standard_normal(s) for s in ((3, 4), (4, 4), (4, 4), (4, 2)))
    body = lrp.Sequential([lrp.Dense(wb), lrp.ReLU(), lrp.Dense(wc)])
    net = lrp.Sequential([lrp.Dense(w0), lrp.ReLU(), lrp.Residual(body), lrp.ReLU(),
                          lrp.Dense(wo)])
    x = rng.standard_normal((2, 3))
    e = rap(net, x)
    h = np.maximum(x @ w0, 0)
    z_body = np.maximum(h @ wb, 0) @ wc
    R = e.layer("2").relevance_out
    split = R / (z_body + h)
    np.testing.assert_allclose(e.layer("2.body").relevance_out, z_body * split, rtol=1e-12)
    np.testing.assert_allclose(e.layer("2").relevance_in,
                               e.layer("2.body").relevance_in + h * split, rtol=1e-12, atol=1e-14)
    assert e.layer("2").container


def test_every_record_balances_and_the_chain_accounts_for_the_output():
    net = models.load("shapes_cnn")
    x = np.random.default_rng(1).random((2, 1, 32, 32)) * 2 - 1
    e = rap(net, x, box_input=False)
    for record in e.layers:
        assert np.all(np.abs(record.imbalance()) <= 1e-10 * (1 + np.abs(
            per_sample_sum(record.relevance_out)))), record.path
    top = [r for r in e.layers if "." not in r.path]
    lost = sum(r.ledger.total() for r in top)
    y = e.output[np.arange(2), e.target]
    np.testing.assert_allclose(e.input_relevance_sum() + lost, y, rtol=1e-10)


def test_shapes_cnn_conserves_with_the_box_input():
    net = models.load("shapes_cnn")
    x = np.random.default_rng(2).random((3, 1, 32, 32))
    e = rap(net, x)
    assert isinstance(e, RAPExplanation)
    y = e.output[np.arange(3), e.target]
    np.testing.assert_allclose(e.input_relevance_sum(), y, rtol=1e-10)
    assert "RAPStep('first')" in e.ledger()
    assert "shift" in e.rap_ledger()


@given(relu_networks())
def test_a_batch_is_explained_sample_by_sample(case):
    net, x = case
    e = rap(net, x)
    for n in range(len(x)):
        single = rap(net, x[n:n + 1], target=int(e.target[n]))
        np.testing.assert_allclose(e.relevance[n:n + 1], single.relevance, rtol=1e-12,
                                   atol=1e-12)


@given(relu_networks())
def test_every_record_balances_on_random_networks(case):
    net, x = case
    e = rap(net, x, box_input=False)
    for record in e.layers:
        scale = 1 + np.abs(per_sample_sum(np.abs(record.relevance_out)))
        assert np.all(np.abs(record.imbalance()) <= 1e-10 * scale), record.path


def test_errors_name_the_layer():
    conv_last = lrp.Sequential([lrp.Conv2d(np.ones((1, 1, 1, 1)))])
    with pytest.raises(TypeError, match="Dense"):
        rap(conv_last, np.ones((1, 1, 2, 2)), target=0)
    pooled_first = lrp.Sequential([lrp.MaxPool2d(2), lrp.Flatten(), lrp.Dense(np.ones((1, 2)))])
    with pytest.raises(ValueError, match="box_input"):
        rap(pooled_first, np.ones((1, 1, 2, 2)), target=0)
    lstm = lrp.Sequential([lrp.LSTM(np.ones((4, 2)), np.ones((4, 1))),
                           lrp.Dense(np.ones((1, 2)))])
    with pytest.raises(TypeError, match="'0' \\(LSTM\\)"):
        rap(lstm, np.ones((1, 3, 2)), target=0, box_input=False)


def resnet_like(rng: np.random.Generator) -> lrp.Sequential:
    """Conv-BN-ReLU, a bottleneck-like block with a projection shortcut, AvgPool, Dense."""
    def bn(c):
        return lrp.BatchNorm2d(rng.random(c) + 0.5, rng.standard_normal(c), rng.standard_normal(c),
                               rng.random(c) + 0.5)
    body = lrp.Sequential([lrp.Conv2d(rng.standard_normal((4, 3, 3, 3)), padding=1), bn(4),
                           lrp.ReLU(), lrp.Conv2d(rng.standard_normal((5, 4, 1, 1))), bn(5)])
    shortcut = lrp.Sequential([lrp.Conv2d(rng.standard_normal((5, 3, 1, 1))), bn(5)])
    return lrp.Sequential([
        lrp.Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), padding=1), bn(3),
        lrp.ReLU(), lrp.Residual(body, shortcut), lrp.ReLU(), lrp.AvgPool2d(2), lrp.Flatten(),
        lrp.Dense(rng.standard_normal((5 * 3 * 3, 4)), rng.standard_normal(4)),
    ])


@pytest.mark.parametrize("box_input", [True, False])
def test_resnet_like_network_balances_and_accounts_for_the_output(box_input):
    rng = np.random.default_rng(3)
    net = resnet_like(rng)
    x = rng.standard_normal((3, 2, 6, 6))
    e = rap(net, x, box_input=box_input)
    for record in e.layers:
        scale = 1 + per_sample_sum(np.abs(record.relevance_out))
        assert np.all(np.abs(record.imbalance()) <= 1e-10 * scale), record.path
    top = [r for r in e.layers if "." not in r.path]
    y = e.output[np.arange(3), e.target]
    np.testing.assert_allclose(e.input_relevance_sum() + sum(r.ledger.total() for r in top), y,
                               rtol=1e-10)
    # BatchNorm hands R through where its input is non-zero (gamma > 0 here); its input, the
    # 1x1 Conv2d's output, is exactly 0 where that conv reads only zeros (dead ReLUs)
    a = x
    for layer in net.layers[:3] + net.layers[3].body.layers[:4]:
        a = layer.forward(a)
    bn = e.layer("3.body.4")
    assert np.any(a == 0) and np.any(bn.relevance_out[a == 0] != 0)
    np.testing.assert_array_equal(bn.relevance_in, np.where(a == 0, 0, bn.relevance_out))
    np.testing.assert_allclose(bn.dropped, per_sample_sum(np.where(a == 0, bn.relevance_out, 0)),
                               rtol=0, atol=ATOL)
    if not box_input:      # the input has both signs: the first Conv2d doubles what arrives
        first = e.layer("0")
        np.testing.assert_allclose(first.dropped, -per_sample_sum(first.relevance_out),
                                   rtol=1e-10)
