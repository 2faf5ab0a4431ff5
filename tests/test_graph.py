"""Graph networks: hand-computed examples, the node API, paths, rules, errors and files.

The examples are small enough to follow on paper; every expected number is
derived in the test's docstring from the equations (eq. (5)/(6) of
docs/theory.md and the Add/Concat/Mul rules of lrp_ref/layers/merge.py), and
all of them are exact in binary floating point, so they are asserted exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum


def two_branch_graph(add_epsilon: float) -> lrp.Graph:
    """``y = Dense_a(x) + Dense_b(x)``, ``a = x1 + 1``, ``b = x2 - 1``."""
    g = lrp.Graph()
    x = g.input()
    a = g.add(lrp.Dense(np.array([[1.0], [0.0]]), np.array([1.0])), x, name="a")
    b = g.add(lrp.Dense(np.array([[0.0], [1.0]]), np.array([-1.0])), x, name="b")
    g.output(g.add(lrp.Add(epsilon=add_epsilon), a, b, name="sum"))
    return g


def test_add_of_two_dense_branches_with_bias_by_hand():
    """x = (1, 2): a = 1 + 1 = 2, b = 2 - 1 = 1, y = 3, R_y = 3.

    Add with epsilon = 1: s = 3 / (3 + 1) = 0.75, R_a = 2 s = 1.5,
    R_b = 1 s = 0.75, stabilizer 1 s = 0.75.
    Dense a, LRP-0: z_1 = 1, z_2 = 0, b = 1, z = 2: R_x1 = 1/2 1.5 = 0.75,
    bias 1/2 1.5 = 0.75. Dense b: z_2 = 2, b = -1, z = 1: R_x2 = 2 0.75 = 1.5,
    bias -0.75. Input relevance (0.75, 1.5): 3 = 2.25 + 0.75 + 0.75 - 0.75.
    """
    g = two_branch_graph(add_epsilon=1.0)
    e = g.explain(np.array([[1.0, 2.0]]), rule=lrp.Zero())
    np.testing.assert_array_equal(e.output, [[3.0]])
    np.testing.assert_array_equal(e.relevance, [[0.75, 1.5]])
    add = e.layer("sum")
    assert add.layer == "Add" and add.rule is None
    R_a, R_b = add.relevance_in
    np.testing.assert_array_equal(R_a, [[1.5]])
    np.testing.assert_array_equal(R_b, [[0.75]])
    np.testing.assert_array_equal(add.absorbed_stabilizer, [0.75])
    np.testing.assert_array_equal(add.absorbed_bias, [0.0])
    np.testing.assert_array_equal(e.layer("a").relevance_in, [[0.75, 0.0]])
    np.testing.assert_array_equal(e.layer("a").absorbed_bias, [0.75])
    np.testing.assert_array_equal(e.layer("b").relevance_in, [[0.0, 1.5]])
    np.testing.assert_array_equal(e.layer("b").absorbed_bias, [-0.75])
    assert [r.path for r in e.layers] == ["a", "b", "sum"]


def test_add_with_epsilon_zero_is_lrp0_and_gradient_x_input_by_hand():
    """Add(epsilon=0): R_a = 2/3 3 = 2, R_b = 1; Dense a: R_x1 = 1/2 2 = 1;
    Dense b: R_x2 = 2/1 1 = 2. Gradient x Input: x (1, 1) = (1, 2), the same."""
    g = two_branch_graph(add_epsilon=0.0)
    x = np.array([[1.0, 2.0]])
    e = g.explain(x, rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[1.0, 2.0]])
    np.testing.assert_array_equal(g.gradient_x_input(x), [[1.0, 2.0]])
    np.testing.assert_array_equal(e.layer("sum").absorbed_stabilizer, [0.0])


def test_concat_by_hand():
    """x = (1, 2); a = x1 + x2 = 3; c = concat(a, x) = (3, 1, 2); y = c1 + c2 - c3 = 2.

    Dense y, LRP-0 (no bias): R_c = z_i / 2 * 2 = (3, 1, -2). The Concat gives
    each input its slice: R_a = (3), R_x = (1, -2) directly. Dense a: R = (1, 2)/3 3
    = (1, 2). Fan-out at x: (1, 2) + (1, -2) = (2, 0); sum 2 = y.
    """
    g = lrp.Graph()
    x = g.input()
    a = g.add(lrp.Dense(np.array([[1.0], [1.0]]), np.array([0.0])), x, name="a")
    c = g.add(lrp.Concat(axis=1), a, x, name="cat")
    g.output(g.add(lrp.Dense(np.array([[1.0], [1.0], [-1.0]]), np.array([0.0])), c, name="y"))
    e = g.explain(np.array([[1.0, 2.0]]), rule=lrp.Zero())
    np.testing.assert_array_equal(e.output, [[2.0]])
    np.testing.assert_array_equal(e.layer("y").relevance_in, [[3.0, 1.0, -2.0]])
    R_a, R_x = e.layer("cat").relevance_in
    np.testing.assert_array_equal(R_a, [[3.0]])
    np.testing.assert_array_equal(R_x, [[1.0, -2.0]])
    np.testing.assert_array_equal(e.relevance, [[2.0, 0.0]])


def gated_graph() -> lrp.Graph:
    """m = x * relu(gate(x)) with gate(x) = (x2, x1); y = m1 + m2."""
    g = lrp.Graph()
    x = g.input()
    pre = g.add(lrp.Dense(np.array([[0.0, 1.0], [1.0, 0.0]]), np.zeros(2)), x, name="gate")
    gate = g.add(lrp.ReLU(), pre, name="gate_relu")
    m = g.add(lrp.Mul(), x, gate, name="mul")
    g.output(g.add(lrp.Dense(np.ones((2, 1)), np.zeros(1)), m, name="y"))
    return g


def test_gated_mul_by_hand():
    """x = (1, 2): gate = (2, 1), m = (2, 2), y = 4.

    Dense y, LRP-0: R_m = (2, 2). Mul is signal-take-all: R_signal = (2, 2),
    R_gate = (0, 0), so the gate branch sends nothing back and R_x = (2, 2).
    (Gradient x Input is (4, 4): the product rule credits x twice, once through
    the gate; signal-take-all is not Gradient x Input.)
    """
    g = gated_graph()
    x = np.array([[1.0, 2.0]])
    e = g.explain(x, rule=lrp.Zero())
    np.testing.assert_array_equal(e.output, [[4.0]])
    R_signal, R_gate = e.layer("mul").relevance_in
    np.testing.assert_array_equal(R_signal, [[2.0, 2.0]])
    np.testing.assert_array_equal(R_gate, [[0.0, 0.0]])
    np.testing.assert_array_equal(e.relevance, [[2.0, 2.0]])
    np.testing.assert_array_equal(g.gradient_x_input(x), [[4.0, 4.0]])


def test_mul_gate_broadcasts_over_positions():
    """Squeeze-and-excitation: a (B, C, 1, 1) gate scales every position of its channel."""
    rng = np.random.default_rng(0)
    signal, gate = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 1, 1))
    mul = lrp.Mul()
    np.testing.assert_array_equal(mul.forward(signal, gate), signal * gate)
    grad = rng.standard_normal((2, 3, 4, 4))
    grad_signal, grad_gate = mul.backward(grad)
    np.testing.assert_array_equal(grad_signal, grad * gate)
    # d/dgate_c sum(grad * signal * gate) = sum over the channel's positions of grad * signal
    np.testing.assert_allclose(grad_gate, (grad * signal).sum(axis=(2, 3), keepdims=True),
                               rtol=1e-14)  # the same sum in another order
    R_signal, R_gate = mul.relevance(grad)
    np.testing.assert_array_equal(R_signal, grad)
    np.testing.assert_array_equal(R_gate, np.zeros_like(gate))


def test_add_standalone_split_and_ledger():
    """Add(epsilon=0) of (1, -3) and (3, 1): z = (4, -2), R = (8, 4) gives s = (2, -2),
    R_1 = (2, 6), R_2 = (6, -2); nothing absorbed. A zero sum drops its relevance."""
    add = lrp.Add(epsilon=0.0)
    a, b = np.array([[1.0, -3.0]]), np.array([[3.0, 1.0]])
    np.testing.assert_array_equal(add.forward(a, b), [[4.0, -2.0]])
    R_1, R_2 = add.relevance(np.array([[8.0, 4.0]]))
    np.testing.assert_array_equal(R_1, [[2.0, 6.0]])
    np.testing.assert_array_equal(R_2, [[6.0, -2.0]])
    add.forward(np.array([[1.0]]), np.array([[-1.0]]), np.array([[0.0]]))
    e_in = add.relevance(np.array([[5.0]]))
    assert len(e_in) == 3 and all(np.array_equal(r, [[0.0]]) for r in e_in)


def test_merge_input_checks():
    with pytest.raises(ValueError, match="Add.*same shape"):
        lrp.Add().forward(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="at least 2 inputs"):
        lrp.Add().forward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="Concat.*axis 1"):
        lrp.Concat(axis=1).forward(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(ValueError, match="batch axis"):
        lrp.Concat(axis=0)
    with pytest.raises(ValueError, match="Mul.*exactly 2 inputs"):
        lrp.Mul().forward(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="gate"):
        lrp.Mul().forward(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="epsilon"):
        lrp.Add(epsilon=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        lrp.Add().forward(np.zeros((1, 2)), np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="forward pass first"):
        lrp.Concat().relevance(np.zeros((1, 2)))


# -- the node API, paths and errors -----------------------------------------------------------


def dense(rng: np.random.Generator, n_in: int, n_out: int) -> lrp.Dense:
    return lrp.Dense(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in),
                     0.3 * rng.standard_normal(n_out))


def block_graph(rng: np.random.Generator, width: int = 3, epsilon: float = 1e-6) -> lrp.Graph:
    """fc1 -> relu1 -> (fc2 -> relu2 -> fc3) + relu1 -> relu3 -> concat with relu1 -> head."""
    g = lrp.Graph()
    x = g.input("x")
    h = g.add(dense(rng, 2, width), x, name="fc1")
    h = g.add(lrp.ReLU(), h, name="relu1")
    body = g.add(lrp.Sequential([dense(rng, width, width), lrp.ReLU(), dense(rng, width, width)]),
                 h, name="body")
    y = g.add(lrp.Add(epsilon=epsilon), body, h, name="add")
    y = g.add(lrp.ReLU(), y, name="relu3")
    y = g.add(lrp.Concat(), y, h, name="cat")
    g.output(g.add(dense(rng, 2 * width, 4), y, name="head"))
    return g


def test_paths_repr_and_nodes():
    g = block_graph(np.random.default_rng(1))
    assert [path for path, _ in g.named_layers()] == [
        "fc1", "relu1", "body", "body.0", "body.1", "body.2", "add", "relu3", "cat", "head"]
    assert [(n.name, n.inputs) for n in g.nodes][-3:] == [
        ("relu3", ("add",)), ("cat", ("relu3", "relu1")), ("head", ("cat",))]
    text = repr(g)
    assert text.startswith("Graph(input='x', output='head',")
    assert "(add) Add(epsilon=1e-06) <- body, relu1" in text
    assert "(body) Sequential(" in text
    outer = lrp.Sequential([lrp.Identity(), g])
    assert outer[1] is g and ("1.body.2", g["body"][2]) in list(outer.named_layers())
    assert dict(outer.named_layers())["1.fc1"] is g["fc1"]       # the path is outer's
    assert dict(g.named_layers())["fc1"] is g["fc1"]             # and g's own


def test_explain_paths_records_and_ledger_balance():
    rng = np.random.default_rng(2)
    g = block_graph(rng)
    x = rng.standard_normal((3, 2))
    e = g.explain(x, rule=lrp.Epsilon(0.1))
    assert [r.path for r in e.layers] == [p for p, _ in g.named_layers()]
    for record in e.layers:
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-12)  # rounding of O(1) sums
    top = [r for r in e.layers if "." not in r.path]
    booked = sum(r.ledger.total() for r in top)
    np.testing.assert_allclose(per_sample_sum(e.relevance) + booked,
                               e.output[np.arange(3), e.target], rtol=1e-12)
    assert "add" in e.ledger()
    # nested in a Sequential the graph's record covers its nodes and balances too
    outer = lrp.Sequential([lrp.Identity(), g])
    e2 = outer.explain(x, rule=lrp.Epsilon(0.1))
    np.testing.assert_allclose(e2.relevance, e.relevance, rtol=1e-14)  # the same operations
    record = e2.layer("1")
    assert record.container and record.layer == "Graph"
    np.testing.assert_allclose(record.imbalance(), 0, atol=1e-12)


def test_composites_and_conditions_see_node_paths():
    rng = np.random.default_rng(3)
    g = block_graph(rng)
    mapping = lrp.composites.epsilon_plus()(g)
    assert set(mapping) == {"fc1", "body.0", "body.2", "head"}
    x = rng.standard_normal((2, 2))
    e = g.explain(x, rule=lambda net: {"fc1": lrp.Flat(), "body.0": lrp.Zero(),
                                       "body.2": lrp.Epsilon(0.5), "head": lrp.AlphaBeta(2, 1)})
    assert e.rules()["fc1"] == lrp.Flat() and e.rules()["head"] == lrp.AlphaBeta(2, 1)
    parts = [g.explain(x, target=1, rule=lrp.Epsilon(), conditions={"relu1": [c]}).relevance
             for c in range(3)]
    whole = g.explain(x, target=1, rule=lrp.Epsilon()).relevance
    np.testing.assert_allclose(sum(parts), whole, rtol=1e-10, atol=1e-12)  # linear in R


def test_rule_list_is_refused_with_a_hint():
    g = block_graph(np.random.default_rng(4))
    with pytest.raises(ValueError, match="Graph.*composite"):
        g.explain(np.zeros((1, 2)), rule=[lrp.Zero()] * 10)


def test_explicit_equals_fast_and_gradient_matches_finite_differences():
    rng = np.random.default_rng(5)
    g = block_graph(rng)
    x = rng.standard_normal((2, 2))
    for rule in (lrp.Epsilon(0.1), lrp.AlphaBeta(2, 1), lrp.ZPlus(), lrp.WSquare()):
        fast = g.explain(x, target=0, rule=rule).relevance
        explicit = g.explain(x, target=0, rule=rule, method="explicit").relevance
        np.testing.assert_allclose(explicit, fast, rtol=1e-12, atol=1e-14)  # two factorisations
    grad = g.gradient(x, target=2)
    h = 1e-6
    for i in range(2):
        step = np.zeros_like(x)
        step[:, i] = h
        numeric = (g.forward(x + step)[:, 2] - g.forward(x - step)[:, 2]) / (2 * h)
        # central differences of a piecewise-linear net: exact up to cancellation ~1e-10
        np.testing.assert_allclose(grad[:, i], numeric, rtol=1e-6, atol=1e-8)


def test_residual_as_a_graph_equals_residual():
    rng = np.random.default_rng(6)
    fc, body1, body2, proj, head = (dense(rng, 2, 3), dense(rng, 3, 4), dense(rng, 4, 4),
                                    dense(rng, 3, 4), dense(rng, 4, 2))
    copy = lambda layer: layer.astype(np.float64)  # noqa: E731 -- separate objects, same arrays
    net = lrp.Sequential([fc, lrp.ReLU(),
                          lrp.Residual(lrp.Sequential([body1, lrp.ReLU(), body2]), proj),
                          lrp.ReLU(), head])
    g = lrp.Graph()
    h = g.add(lrp.ReLU(), g.add(copy(fc), g.input(), name="fc"), name="relu")
    b = g.add(copy(body2), g.add(lrp.ReLU(), g.add(copy(body1), h, name="b1"), name="r"),
              name="b2")
    y = g.add(lrp.Add(), b, g.add(copy(proj), h, name="proj"), name="add")
    g.output(g.add(copy(head), g.add(lrp.ReLU(), y, name="relu2"), name="head"))
    x = rng.standard_normal((4, 2))
    for rule in (lrp.Epsilon(1e-6), lrp.Zero(), lrp.AlphaBeta(2, 1), lrp.Gamma(0.25)):
        expected = net.explain(x, rule=rule)
        got = g.explain(x, rule=rule)
        # the same operations in the same order; only the fan-out sum's order may differ
        np.testing.assert_allclose(got.relevance, expected.relevance, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(got.layer("add").absorbed_stabilizer,
                                   expected.layer("2").ledger.absorbed_stabilizer
                                   - sum(expected.layer(p).absorbed_stabilizer
                                         for p in ("2.body", "2.shortcut")),
                                   rtol=1e-12, atol=1e-18)


def test_save_load_and_astype_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    g = block_graph(rng, epsilon=0.01)
    x = rng.standard_normal((2, 2))
    lrp.save(g, tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz", allow_pickle=False) as data:
        assert "body.2.weight" in data.files and "head.bias" in data.files
    back = lrp.load(tmp_path / "g.npz")
    assert isinstance(back, lrp.Graph) and repr(back) == repr(g)
    np.testing.assert_array_equal(back.forward(x), g.forward(x))
    rule = lrp.composites.epsilon_plus()
    np.testing.assert_array_equal(back.explain(x, rule=rule).relevance,
                                  g.explain(x, rule=rule).relevance)
    single = g.astype(np.float32)
    assert isinstance(single, lrp.Graph) and single.forward(x).dtype == np.float32
    np.testing.assert_allclose(single.forward(x), g.forward(x), rtol=1e-5)  # float32 rounding
    gated = gated_graph()
    lrp.save(gated, tmp_path / "gated.npz")
    np.testing.assert_array_equal(lrp.load(tmp_path / "gated.npz").forward(x), gated.forward(x))


def test_malformed_graph_config_is_refused(tmp_path):
    g = two_branch_graph(0.0)
    config = g.config()
    config["nodes"][2]["inputs"] = ["a", "nowhere"]
    with pytest.raises(ValueError, match="nowhere"):
        lrp.layers.base.build(config, g.state())


def test_construction_errors_name_the_nodes():
    g = lrp.Graph()
    with pytest.raises(ValueError, match="input"):
        g.add(lrp.ReLU(), "x")
    x = g.input()
    with pytest.raises(ValueError, match="one input"):
        g.input()
    relu = lrp.ReLU()
    h = g.add(relu, x, name="r1")
    with pytest.raises(ValueError, match="'r1'.*already"):
        g.add(lrp.ReLU(), h, name="r1")
    assert g.add(relu, h, name="r2") == "r2"       # a layer object may sit at two nodes
    with pytest.raises(ValueError, match="no node 'zz'"):
        g.add(lrp.ReLU(), "zz", name="r3")
    with pytest.raises(TypeError, match="node name"):
        g.add(lrp.ReLU(), relu, name="r3")
    with pytest.raises(ValueError, match="'r3'.*ReLU.*1 input.*got 2"):
        g.add(lrp.ReLU(), h, x, name="r3")
    # a name may hold '.', as torch's module names do, but no two layers share a path:
    # "seq.0" is already the path of the first layer inside node "seq"
    seq = g.add(lrp.Sequential([lrp.ReLU()]), h, name="seq")
    with pytest.raises(ValueError, match=r"'seq\.0'.*path"):
        g.add(lrp.ReLU(), seq, name="seq.0")
    with pytest.raises(TypeError, match="Layer"):
        g.add("relu", h, name="r3")
    with pytest.raises(ValueError, match="output"):
        g.forward(np.zeros((1, 2)))
    g.add(lrp.ReLU(), x, name="dead")
    with pytest.raises(ValueError, match="'dead'.*not reach"):
        g.output(h)


def test_closed_graph_refuses_new_nodes_and_reports_shape_errors_by_path():
    g = two_branch_graph(0.0)
    with pytest.raises(ValueError, match="closed"):
        g.add(lrp.ReLU(), "sum", name="more")
    with pytest.raises(ValueError, match="output"):
        g.output("a")
    bad = lrp.Graph()
    x = bad.input()
    a = bad.add(lrp.Dense(np.ones((2, 3)), np.zeros(3)), x, name="a")
    bad.output(bad.add(lrp.Add(), a, x, name="sum"))
    with pytest.raises(ValueError, match="layer 'sum' \\(Add\\).*same shape"):
        bad.forward(np.zeros((1, 2)))


def conv(rng: np.random.Generator, c_in: int, c_out: int, k: int = 3) -> lrp.Conv2d:
    return lrp.Conv2d(rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k),
                      0.1 * rng.standard_normal(c_out), padding=k // 2)


def conv_graph(rng: np.random.Generator) -> lrp.Graph:
    """A residual conv block with BatchNorm, a squeeze-and-excitation gate, a channel
    concatenation (DenseNet-style) and a max-pooled head; input (B, 2, 4, 4)."""
    g = lrp.Graph()
    x = g.input()
    h = g.add(lrp.ReLU(), g.add(conv(rng, 2, 3), x, name="conv1"), name="relu1")
    b = g.add(conv(rng, 3, 3), h, name="conv2")
    b = g.add(lrp.BatchNorm2d(1 + 0.2 * rng.standard_normal(3), 0.1 * rng.standard_normal(3),
                              0.1 * rng.standard_normal(3), 0.5 + rng.random(3)), b, name="bn2")
    s = g.add(lrp.ReLU(), g.add(lrp.Add(), b, h, name="add"), name="relu2")
    squeeze = g.add(lrp.AvgPool2d(4), s, name="squeeze")                    # (B, 3, 1, 1)
    gate = g.add(lrp.ReLU(), g.add(conv(rng, 3, 3, k=1), squeeze, name="excite"), name="gate")
    se = g.add(lrp.Mul(), s, gate, name="se")
    c = g.add(lrp.Concat(axis=1), se, x, name="cat")                      # (B, 5, 4, 4)
    p = g.add(lrp.Flatten(), g.add(lrp.MaxPool2d(2), c, name="pool"), name="flat")
    g.output(g.add(dense(rng, 5 * 2 * 2, 3), p, name="head"))
    return g


@pytest.mark.parametrize("rule", [lrp.Epsilon(1e-6), lrp.AlphaBeta(2, 1), lrp.ZPlus(),
                                  lrp.Gamma(0.25), lrp.Flat()])
def test_conv_graph_balances_and_explicit_equals_fast(rule):
    rng = np.random.default_rng(8)
    g = conv_graph(rng)
    x = rng.standard_normal((2, 2, 4, 4))
    fast = g.explain(x, target=1, rule=rule)
    explicit = g.explain(x, target=1, rule=rule, method="explicit")
    scale = 1 + np.abs(fast.relevance).max()
    np.testing.assert_allclose(explicit.relevance, fast.relevance, rtol=1e-12,
                               atol=1e-12 * scale)  # two factorisations of one equation
    for record in fast.layers:
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-12 * scale)  # rounding
    booked = sum(r.ledger.total() for r in fast.layers)
    np.testing.assert_allclose(per_sample_sum(fast.relevance) + booked, fast.output[:, 1],
                               rtol=1e-12, atol=1e-12 * scale)
    assert not np.any(fast.layer("se").relevance_in[1])     # the gate gets none
    assert not np.any(fast.layer("excite").relevance_out)


def test_conv_graph_gradient_matches_finite_differences():
    rng = np.random.default_rng(9)
    g = conv_graph(rng)
    x = rng.standard_normal((1, 2, 4, 4))
    grad = g.gradient(x, target=0)
    h = 1e-6
    for index in [(0, 0, 0, 0), (0, 1, 2, 3), (0, 0, 3, 1), (0, 1, 1, 1)]:
        step = np.zeros_like(x)
        step[index] = h
        numeric = (g.forward(x + step)[0, 0] - g.forward(x - step)[0, 0]) / (2 * h)
        # piecewise linear and (through the gate) quadratic: central differences are exact
        # for a quadratic, up to cancellation ~1e-10 / h
        np.testing.assert_allclose(grad[index], numeric, rtol=1e-6, atol=1e-8)


def test_merge_batchnorm_folds_a_batchnorm_node_into_the_conv_it_reads():
    rng = np.random.default_rng(10)
    g = conv_graph(rng)
    x = rng.standard_normal((2, 2, 4, 4))
    merged = lrp.canonize.merge_batchnorm(g)
    assert isinstance(merged, lrp.Graph)
    assert [n.name for n in merged.nodes] == [n.name for n in g.nodes if n.name != "bn2"]
    assert merged.nodes[[n.name for n in merged.nodes].index("add")].inputs == ("conv2", "relu1")
    # W' = W a, b' = a b + c: the same function up to rounding of one product per weight
    np.testing.assert_allclose(merged.forward(x), g.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(g["conv2"].weight, conv_graph(np.random.default_rng(10))
                                  ["conv2"].weight)          # the original is not modified


def test_merge_batchnorm_leaves_a_batchnorm_after_a_shared_node_and_says_why():
    rng = np.random.default_rng(11)
    g = lrp.Graph()
    x = g.input()
    h = g.add(dense(rng, 2, 3), x, name="fc")
    bn = g.add(lrp.BatchNorm1d(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)), h, name="bn")
    g.output(g.add(lrp.Add(), bn, h, name="add"))
    with pytest.warns(lrp.canonize.UnfoldedBatchNormWarning, match="'bn'.*'fc'.*also read"):
        merged = lrp.canonize.merge_batchnorm(g)
    assert [n.name for n in merged.nodes] == ["fc", "bn", "add"]
    np.testing.assert_array_equal(merged.forward(np.ones((1, 2))), g.forward(np.ones((1, 2))))


def test_ledger_chart_draws_a_graph_and_relevance_flow_refuses_it():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from lrp_ref.viz import plot

    e = two_branch_graph(1.0).explain(np.array([[1.0, 2.0]]), rule=lrp.Zero())
    fig = plot.ledger_chart(e)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()][-1] == "sum Add\n-"
    # bars: sum R_out of a, b, sum (1.5, 0.75, 3), then sum R_in (0.75, 1.5, 1.5 + 0.75):
    # the Add's R_in sums over both inputs (test_add_of_two_dense_branches_with_bias_by_hand)
    assert [p.get_height() for p in fig.axes[0].patches] == [1.5, 0.75, 3.0, 0.75, 1.5, 2.25]
    with pytest.raises(ValueError, match="merge nodes.*ledger_chart"):
        plot.relevance_flow(e)


def test_cli_explains_a_saved_graph(tmp_path, capsys):
    from lrp_ref.cli import main

    rng = np.random.default_rng(12)
    g = conv_graph(rng)
    x = rng.standard_normal((2, 4, 4))                     # one sample, no batch axis
    lrp.save(g, tmp_path / "g.npz")
    np.save(tmp_path / "x.npy", x)
    code = main(["explain", "--model", str(tmp_path / "g.npz"), "--input", str(tmp_path / "x.npy"),
                 "--rule", "eps:0.1", "--out", str(tmp_path / "R.npy"), "--ledger"])
    assert code == 0
    expected = g.explain(x[None], rule=lrp.Epsilon(0.1))
    # the same computation in the same order, from the saved arrays: equal to rounding
    np.testing.assert_allclose(np.load(tmp_path / "R.npy"), expected.relevance[0], rtol=1e-12,
                               atol=1e-14)
    out = capsys.readouterr().out
    assert re.search(r"\nse +Mul ", out) and re.search(r"\ncat +Concat ", out)  # --ledger


def test_table_lists_nodes_with_inputs_shapes_and_parameters():
    rng = np.random.default_rng(13)
    g = block_graph(rng)
    assert g.table().splitlines()[2].split() == ["fc1", "Dense", "x", "-", "9"]
    g.forward(np.zeros((5, 2)))
    lines = g.table().splitlines()
    assert lines[0].split() == ["node", "layer", "inputs", "output", "parameters"]
    assert lines[2].split() == ["fc1", "Dense", "x", "(5,", "3)", "9"]      # 2*3 + 3
    assert lines[4].split() == ["body", "Sequential", "relu1", "(5,", "3)", "24"]
    assert lines[5].split() == ["add", "Add", "body,", "relu1", "(5,", "3)", "0"]
    assert lines[-1] == "output: head"


def test_nested_graph_token_ids_and_output_relevance():
    rng = np.random.default_rng(14)
    emb, fc = lrp.Embedding(rng.standard_normal((5, 3))), dense(rng, 6, 2)
    net = lrp.Sequential([emb, lrp.Flatten(), fc])
    inner = lrp.Graph()
    inner.output(inner.add(lrp.Flatten(), inner.add(emb.astype(np.float64), inner.input(),
                                                    name="emb"), name="flat"))
    g = lrp.Graph()
    g.output(g.add(fc.astype(np.float64), g.add(inner, g.input(), name="inner"), name="fc"))
    assert [p for p, _ in g.named_layers()] == ["inner", "inner.emb", "inner.flat", "fc"]
    ids = np.array([[1, 4], [0, 0]])
    seed = rng.standard_normal((2, 2))
    expected = net.explain(ids, rule=lrp.Epsilon(0.1), output_relevance=seed)
    got = g.explain(ids, rule=lrp.Epsilon(0.1), output_relevance=seed)
    np.testing.assert_array_equal(got.relevance, expected.relevance)   # the same operations
    assert got.target is None and got.layer("inner").container
    with pytest.raises(TypeError, match="token ids"):
        g.gradient(ids)
