"""The API edges of issue 22 (points 4 and 5): empty batches, rule classes, NumPy scalar
parameters, masked and date arrays, and explanations that never alias the caller's arrays."""

import datetime

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.cli import main


def dense_net():
    return lrp.Sequential([lrp.Dense(np.ones((3, 2))), lrp.ReLU(), lrp.Dense(np.ones((2, 2)))])


# -- empty batches: refused the same way by every layer and the CLI ---------------------------

EMPTY = {
    "Dense": (lambda: lrp.Dense(np.ones((3, 2))), (0, 3)),
    "Conv2d": (lambda: lrp.Conv2d(np.ones((1, 1, 2, 2))), (0, 1, 4, 4)),
    "MaxPool2d": (lambda: lrp.MaxPool2d(2), (0, 1, 4, 4)),
    "AvgPool2d": (lambda: lrp.AvgPool2d(2), (0, 1, 4, 4)),
    "BatchNorm1d": (lambda: lrp.BatchNorm1d(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)),
                    (0, 3)),
    "LSTM": (lambda: lrp.LSTM(np.ones((8, 3)), np.ones((8, 2))), (0, 5, 3)),
    "ReLU": (lambda: lrp.ReLU(), (0, 3)),
    "Sequential": (dense_net, (0, 3)),
}


@pytest.mark.parametrize("name", EMPTY)
def test_an_empty_batch_is_refused_by_every_layer(name):
    make, shape = EMPTY[name]
    with pytest.raises(ValueError, match=rf"{name}\)?: the batch is empty \(input of shape "
                                         rf"\(0, "):
        make().forward(np.zeros(shape))


def test_explain_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="the batch is empty"):
        dense_net().explain(np.zeros((0, 3)), rule=lrp.Epsilon())


def test_the_cli_refuses_an_empty_batch_in_one_line(tmp_path, capsys):
    lrp.save(dense_net(), tmp_path / "net.npz")
    np.save(tmp_path / "x.npy", np.zeros((0, 3)))
    code = main(["explain", "--model", str(tmp_path / "net.npz"), "--input",
                 str(tmp_path / "x.npy"), "--rule", "epsilon"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "the batch is empty" in err


# -- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [lrp.Epsilon, [lrp.Epsilon, None, lrp.Zero]])
def test_a_rule_class_asks_for_an_instance(rule):
    with pytest.raises(TypeError, match=r"pass an instance: Epsilon\(\)"):
        dense_net().explain(np.ones((1, 3)), rule=rule)


def test_numpy_scalar_parameters_are_accepted():
    assert lrp.Epsilon(np.float32(1e-6)).epsilon == float(np.float32(1e-6))
    assert type(lrp.Epsilon(np.float32(1e-6)).epsilon) is float
    assert lrp.Epsilon(np.int64(1)) == lrp.Epsilon(1)
    assert lrp.AlphaBeta(np.int64(2), np.float64(1.0)) == lrp.AlphaBeta(2, 1)
    assert lrp.Gamma(np.float32(0.25)) == lrp.Gamma(0.25)
    x = np.ones((1, 3))
    np.testing.assert_array_equal(dense_net().explain(x, rule=lrp.Epsilon(np.int64(1))).relevance,
                                  dense_net().explain(x, rule=lrp.Epsilon(1)).relevance)


def test_alpha_beta_is_checked_in_floating_point():
    # 2**60 - (2**60 - 1) = 1 in integers, but float(2**60) - float(2**60 - 1) = 0
    with pytest.raises(ValueError, match="does not conserve relevance"):
        lrp.AlphaBeta(2**60, 2**60 - 1)


# -- inputs -----------------------------------------------------------------------------------


def test_masked_arrays_are_refused():
    x = np.ma.masked_array(np.ones((1, 3)), mask=[[False, True, False]])
    with pytest.raises(TypeError, match="masked arrays are not supported"):
        dense_net().explain(x, rule=lrp.Epsilon())


@pytest.mark.parametrize("x", [np.array([[1, 2, 3]], dtype="timedelta64[s]"),
                               np.array([[datetime.date(2026, 1, 1)] * 3], dtype="datetime64[D]")])
def test_dates_and_durations_are_refused(x):
    with pytest.raises(TypeError, match=r"numeric array, got dtype (timedelta|datetime)"):
        dense_net().explain(x, rule=lrp.Epsilon())


def test_the_explanation_never_aliases_the_callers_arrays():
    x = np.array([[1.0, -2.0]])
    identity = lrp.Sequential([lrp.Identity()])
    e = identity.explain(x, target=0, rule=lrp.Epsilon())
    assert not np.shares_memory(e.output, x)
    R = np.array([[3.0, 4.0]])
    e = identity.explain(x, rule=lrp.Epsilon(), output_relevance=R)
    for array in (e.relevance, e.output, *(r.relevance_in for r in e.layers),
                  *(r.relevance_out for r in e.layers)):
        assert not np.shares_memory(array, R) and not np.shares_memory(array, x)
