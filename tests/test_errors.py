"""Every error case of the contract (docs/conventions.md): a clear message naming the layer."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.engine import linear


def net() -> lrp.Sequential:
    return lrp.Sequential([lrp.Dense(np.ones((3, 4))), lrp.ReLU(), lrp.Dense(np.ones((4, 2)))])


def test_wrong_shape_names_layer_and_shapes():
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\): expected input of shape "
                                         r"\(B, 3\), got \(2, 5\)"):
        net().forward(np.ones((2, 5)))


def test_wrong_rank_names_layer():
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\).*\(B, 3\), got \(3,\)"):
        net().explain(np.ones(3), rule=lrp.Zero())


def test_nan_and_inf_input_are_refused():
    for bad in (np.nan, np.inf):
        x = np.ones((1, 3))
        x[0, 1] = bad
        with pytest.raises(ValueError, match=r"layer '0' \(Dense\): input contains 1 NaN or inf"):
            net().forward(x)


def test_nan_relevance_is_refused():
    layer = lrp.Dense(np.ones((3, 2)))
    layer.forward(np.ones((1, 3)))
    with pytest.raises(ValueError, match="relevance contains 1 NaN or inf"):
        layer.relevance(np.array([[1.0, np.nan]]), lrp.Zero())


def test_relevance_before_forward():
    with pytest.raises(ValueError, match="needs a forward pass first"):
        lrp.Dense(np.ones((3, 2))).relevance(np.ones((1, 2)), lrp.Zero())


def test_relevance_of_another_batch():
    layer = lrp.Dense(np.ones((3, 2)))
    layer.forward(np.ones((4, 3)))
    with pytest.raises(ValueError,
                       match=r"shape of the last forward output \(4, 2\), got \(1, 2\)"):
        layer.relevance(np.ones((1, 2)), lrp.Zero())


def test_rule_the_layer_cannot_apply():
    with pytest.raises(ValueError, match=r"layer '0' \(Dense\) cannot apply Pass\(\)"):
        net().explain(np.ones((1, 3)), rule=lrp.Pass())


def test_not_a_rule():
    with pytest.raises(TypeError, match="rule must be a Rule"):
        net().explain(np.ones((1, 3)), rule="epsilon")


@pytest.mark.parametrize("make, message", [
    (lambda: lrp.Epsilon(-1e-3), "epsilon must be a finite number >= 0"),
    (lambda: lrp.Epsilon(np.inf), "epsilon must be a finite number >= 0"),
    (lambda: lrp.AlphaBeta(2, 0), r"does not conserve relevance.*alpha - beta = 1.*from_eq7"),
    (lambda: lrp.AlphaBeta(0.5, -0.5), r"needs beta >= 0.*AlphaBeta.from_eq7\(0.5, 0.5\)"),
    (lambda: lrp.AlphaBeta.from_eq7(2, 1), r"eq. \(7\) needs alpha' \+ beta' = 1"),
    (lambda: lrp.Zero(bias="yes"), "bias must be True or False"),
])
def test_invalid_rule_parameters(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_rule_list_errors_name_the_layer():
    x = np.ones((1, 3))
    with pytest.raises(ValueError, match="one entry per layer \\(3\\)"):
        net().explain(x, rule=[lrp.Zero(), None])
    with pytest.raises(ValueError, match=r"layer '2' \(Dense\) needs a rule, got None"):
        net().explain(x, rule=[lrp.Zero(), None, None])
    with pytest.raises(ValueError, match=r"layer '1' \(ReLU\) takes no rule"):
        net().explain(x, rule=[lrp.Zero(), lrp.Zero(), lrp.Zero()])


def test_composite_errors():
    x = np.ones((1, 3))
    with pytest.raises(ValueError, match=r"layer '2' \(Dense\) needs a rule"):
        net().explain(x, rule=lambda n: {"0": lrp.Zero()})
    with pytest.raises(ValueError, match="unknown layer path"):
        net().explain(x, rule=lambda n: {"0": lrp.Zero(), "2": lrp.Zero(), "7": lrp.Zero()})
    with pytest.raises(TypeError, match="must return a dict"):
        net().explain(x, rule=lambda n: [lrp.Zero()])


def test_target_errors():
    with pytest.raises(ValueError, match=r"target must lie in \[0, 2\)"):
        net().explain(np.ones((1, 3)), target=2, rule=lrp.Zero())
    with pytest.raises(ValueError, match="one int or 2 ints"):
        net().explain(np.ones((2, 3)), target=[0, 1, 1], rule=lrp.Zero())
    with pytest.raises(TypeError, match="target must be an int"):
        net().explain(np.ones((1, 3)), target=0.5, rule=lrp.Zero())


def test_method_and_missing_rule():
    with pytest.raises(ValueError, match="method must be 'fast' or 'explicit'"):
        net().explain(np.ones((1, 3)), rule=lrp.Zero(), method="quick")
    with pytest.raises(ValueError, match="explain needs a rule"):
        net().explain(np.ones((1, 3)))


def test_explicit_path_refuses_above_budget(monkeypatch):
    monkeypatch.setattr(linear, "EXPLICIT_MAX_BYTES", 100)
    # the last layer is the first to propagate: z_ij has shape (B, P, K, J) = (5, 1, 4, 2)
    with pytest.raises(ValueError, match=r"layer '2' \(Dense\): the explicit path would "
                                         r"materialise z_ij of shape \(5, 1, 4, 2\) "
                                         r"\(320 bytes > EXPLICIT_MAX_BYTES = 100\)"):
        net().explain(np.ones((5, 3)), rule=lrp.Zero(), method="explicit")


def test_layer_used_twice_is_refused():
    layer = lrp.Dense(np.ones((3, 3)))
    with pytest.raises(ValueError, match="appears twice"):
        lrp.Sequential([layer, lrp.ReLU(), layer])


def test_bad_weights():
    with pytest.raises(ValueError, match=r"weight must have shape \(in, out\)"):
        lrp.Dense(np.ones(3))
    with pytest.raises(ValueError, match="weight contains 1 NaN"):
        lrp.Dense(np.array([[1.0, np.nan]]))
    with pytest.raises(TypeError, match="numeric array"):
        lrp.Dense(np.array([["a"]]))


def test_failed_call_changes_nothing():
    n = net()
    x = np.ones((1, 3))
    before = n.explain(x, rule=lrp.Zero())
    with pytest.raises(ValueError):
        n.forward(np.ones((1, 4)))
    with pytest.raises(ValueError):
        n.explain(x, rule=[lrp.Zero()])
    after = n.explain(x, rule=lrp.Zero())
    np.testing.assert_array_equal(before.relevance, after.relevance)
    layer = n.layers[0]
    layer.forward(x)
    with pytest.raises(ValueError):
        layer.forward(np.ones((1, 4)))
    np.testing.assert_array_equal(layer._input, x)
