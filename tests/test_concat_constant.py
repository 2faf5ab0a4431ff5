"""ConcatConstant: a constant (a class token) concatenated to the signal, by hand.

Every number here is a small integer or a sum of a few, so the checks are exact
(assert_array_equal): the layer only moves elements and sums them.
"""

import numpy as np
import pytest

import lrp_ref as lrp

X = np.array([[[1.0, 2.0], [3.0, 4.0]],
              [[5.0, 6.0], [7.0, 8.0]]])           # (B=2, T=2, D=2): two tokens per sample
TOKEN = np.array([[10.0, 20.0]])                    # one sample's class token, (1, D)
R = np.array([[[1.0, -2.0], [3.0, 4.0], [5.0, 6.0]],
              [[-7.0, 8.0], [9.0, 1.0], [2.0, 3.0]]])   # relevance of the (2, 3, 2) output


def test_forward_puts_the_constant_first_for_every_sample():
    layer = lrp.ConcatConstant(TOKEN, axis=1)
    z = layer.forward(X)
    assert z.shape == (2, 3, 2)
    np.testing.assert_array_equal(z[:, 0], [[10.0, 20.0], [10.0, 20.0]])
    np.testing.assert_array_equal(z[:, 1:], X)


def test_forward_after_the_signal_with_first_false():
    z = lrp.ConcatConstant(TOKEN, axis=1, first=False).forward(X)
    np.testing.assert_array_equal(z[:, :2], X)
    np.testing.assert_array_equal(z[:, 2], [[10.0, 20.0], [10.0, 20.0]])


def test_relevance_of_the_signal_is_its_slice_and_the_constant_s_is_absorbed():
    """R_x = R at the signal's positions; the constant's positions keep theirs, booked as
    absorbed_bias (sample 0: 1 - 2 = -1; sample 1: -7 + 8 = 1), so the ledger balances."""
    net = lrp.Sequential([lrp.ConcatConstant(TOKEN, axis=1)])
    e = net.explain(X, rule=lrp.Epsilon(), output_relevance=R)     # no node takes it
    np.testing.assert_array_equal(e.relevance, R[:, 1:])
    record = e.layer("0")
    np.testing.assert_array_equal(record.absorbed_bias, [-1.0, 1.0])
    np.testing.assert_array_equal(record.absorbed_stabilizer, [0.0, 0.0])
    np.testing.assert_array_equal(record.dropped, [0.0, 0.0])
    np.testing.assert_array_equal(record.imbalance(), [0.0, 0.0])


def test_relevance_and_gradient_with_the_constant_last():
    layer = lrp.ConcatConstant(TOKEN, axis=1, first=False)
    layer.forward(X)
    np.testing.assert_array_equal(layer.relevance(R, None), R[:, :2])
    np.testing.assert_array_equal(layer.backward(R), R[:, :2])     # dz/dx: the same slice


def test_another_axis_and_a_constant_that_does_not_fit():
    """Along the last axis (features) a (T, 1) constant adds one feature per token."""
    z = lrp.ConcatConstant(np.array([[0.5], [-0.5]]), axis=-1).forward(X)
    np.testing.assert_array_equal(z[..., 0], [[0.5, -0.5], [0.5, -0.5]])
    np.testing.assert_array_equal(z[..., 1:], X)
    with pytest.raises(ValueError, match=r"layer '0' \(ConcatConstant\): the constant of "
                                         r"shape \(1, 3\).*\(2, 2, 2\)"):
        lrp.Sequential([lrp.ConcatConstant(np.ones((1, 3)), axis=1)]).forward(X)


def test_the_batch_axis_is_refused():
    with pytest.raises(ValueError, match=r"ConcatConstant: axis 0 is the batch axis"):
        lrp.ConcatConstant(TOKEN, axis=0)


def test_saved_and_loaded(tmp_path):
    net = lrp.Sequential([lrp.ConcatConstant(TOKEN, axis=1, first=False)])
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    assert loaded[0].first is False and loaded[0].axis == 1
