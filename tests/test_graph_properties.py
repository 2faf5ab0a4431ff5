"""Properties of random graphs: the ledger balances, explicit == fast, LRP-0 == Gradient x Input.

A random graph is grown node by node from the input: each new node is a Dense,
a ReLU, an Add of same-width nodes or a Concat of a few nodes, reading random
earlier nodes (so tensors fan out). The nodes nobody reads are concatenated
(when there are several) and a Dense head gives the logits, so every node
reaches the output. Widths stay small (<= 5 units) to keep 200 examples fast.

``random_conv_graphs`` does the same on images ``(B, C, 4, 4)`` with Conv2d,
ReLU, BatchNorm2d, AvgPool2d and MaxPool2d nodes (Add of nodes of one shape,
Concat on channels of nodes of one size); its sinks are flattened and
concatenated before the Dense head.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

from strategies import sparse_normal

RULES = [
    lrp.Zero(), lrp.Zero(bias=False), lrp.Epsilon(1e-6), lrp.Epsilon(0.5), lrp.AlphaBeta(1, 0),
    lrp.AlphaBeta(2, 1), lrp.ZPlus(), lrp.Gamma(0.25), lrp.Flat(), lrp.WSquare(),
]


ADD_EPSILONS = st.sampled_from([0.0, 1e-6, 0.1])
SOME_ZEROS = st.sampled_from([0.0, 0.0, 0.3])


@st.composite
def random_graphs(draw, add_epsilons=ADD_EPSILONS, zeros=SOME_ZEROS):
    """``(graph, x, {path: rule})``: a random DAG of Dense/ReLU/Add/Concat nodes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(zeros)
    width_in = draw(st.integers(1, 4))
    g = lrp.Graph()
    widths = {g.input(): width_in}
    readers: dict[str, int] = {name: 0 for name in widths}
    rules: dict[str, lrp.Rule] = {}

    def dense(source: str, n_out: int, name: str) -> str:
        n_in = widths[source]
        node = g.add(lrp.Dense(sparse_normal(rng, (n_in, n_out), p) / np.sqrt(n_in),
                               0.3 * sparse_normal(rng, (n_out,), p)), source, name=name)
        rules[node] = draw(st.sampled_from(RULES))
        return node

    for k in range(draw(st.integers(1, 6))):
        names = list(widths)
        kind = draw(st.sampled_from(["dense", "relu", "add", "concat"]))
        name = f"n{k}"
        if kind == "add":
            width = widths[draw(st.sampled_from(names))]
            same = [n for n in names if widths[n] == width]
            sources = draw(st.lists(st.sampled_from(same), min_size=2, max_size=3))
            node = g.add(lrp.Add(epsilon=draw(add_epsilons)), *sources, name=name)
            widths[node] = width
        elif kind == "concat" and len(names) >= 2:
            sources = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3))
            node = g.add(lrp.Concat(), *sources, name=name)
            widths[node] = sum(widths[s] for s in sources)
        else:
            sources = [draw(st.sampled_from(names))]
            if kind == "relu":
                node = g.add(lrp.ReLU(), sources[0], name=name)
                widths[node] = widths[sources[0]]
            else:
                width = draw(st.integers(1, 5))
                node = dense(sources[0], width, name)
                widths[node] = width
        for source in sources:
            readers[source] += 1
        readers[node] = 0
    sinks = [n for n, count in readers.items() if count == 0]
    last = sinks[0] if len(sinks) == 1 else g.add(lrp.Concat(), *sinks, name="sinks")
    widths[last] = sum(widths[s] for s in sinks)
    g.output(dense(last, draw(st.integers(1, 3)), "head"))
    x = sparse_normal(rng, (draw(st.integers(1, 3)), width_in), p)
    return g, x, rules


@st.composite
def random_conv_graphs(draw):
    """``(graph, x, {path: rule})``: a random DAG of conv, pooling and merge nodes."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = draw(SOME_ZEROS)
    g = lrp.Graph()
    shapes = {g.input(): (draw(st.integers(1, 2)), 4, 4)}     # (C, H, W)
    readers: dict[str, int] = {name: 0 for name in shapes}
    rules: dict[str, lrp.Rule] = {}
    for k in range(draw(st.integers(1, 6))):
        names = list(shapes)
        name = f"n{k}"
        kind = draw(st.sampled_from(["conv", "relu", "bn", "pool", "add", "concat"]))
        source = draw(st.sampled_from(names))
        c, h, w = shapes[source]
        sources = [source]
        if kind == "add":
            sources += draw(st.lists(st.sampled_from([n for n in names if shapes[n] == (c, h, w)]),
                                     min_size=1, max_size=2))
            node, shape = g.add(lrp.Add(epsilon=draw(ADD_EPSILONS)), *sources, name=name), (c, h, w)
        elif kind == "concat":
            sources += draw(st.lists(st.sampled_from([n for n in names if shapes[n][1:] == (h, w)]),
                                     min_size=1, max_size=2))
            node = g.add(lrp.Concat(axis=1), *sources, name=name)
            shape = (sum(shapes[n][0] for n in sources), h, w)
        elif kind == "relu":
            node, shape = g.add(lrp.ReLU(), source, name=name), (c, h, w)
        elif kind == "bn":
            node = g.add(lrp.BatchNorm2d(1 + 0.3 * rng.standard_normal(c),
                                         0.3 * rng.standard_normal(c), 0.3 * rng.standard_normal(c),
                                         0.5 + rng.random(c)), source, name=name)
            shape = (c, h, w)
            rules[node] = draw(st.sampled_from([lrp.Pass(), lrp.Epsilon(0.1), lrp.Zero()]))
        elif kind == "pool" and h >= 2:
            if draw(st.booleans()):
                node = g.add(lrp.AvgPool2d(2), source, name=name)
                rules[node] = draw(st.sampled_from([lrp.Epsilon(1e-6), lrp.Zero(), lrp.Flat()]))
            else:
                mode = draw(st.sampled_from(["winner", "proportional"]))
                node = g.add(lrp.MaxPool2d(2, mode=mode), source, name=name)
            shape = (c, h // 2, w // 2)
        else:
            c_out, size = draw(st.integers(1, 3)), draw(st.sampled_from([1, 3]))
            weight = sparse_normal(rng, (c_out, c, size, size), p) / np.sqrt(c * size * size)
            node = g.add(lrp.Conv2d(weight, 0.3 * sparse_normal(rng, (c_out,), p),
                                    padding=size // 2), source, name=name)
            shape = (c_out, h, w)
            rules[node] = draw(st.sampled_from(RULES))
        shapes[node] = shape
        for s in sources:
            readers[s] += 1
        readers[node] = 0
    flat = [g.add(lrp.Flatten(), n, name=f"flat_{n}") for n, count in readers.items()
            if count == 0]
    last = flat[0] if len(flat) == 1 else g.add(lrp.Concat(), *flat, name="sinks")
    n_in = sum(int(np.prod(shapes[n.removeprefix("flat_")])) for n in flat)
    head = g.add(lrp.Dense(rng.standard_normal((n_in, 3)) / np.sqrt(n_in),
                           0.3 * rng.standard_normal(3)), last, name="head")
    rules[head] = draw(st.sampled_from(RULES))
    g.output(head)
    x = sparse_normal(rng, (draw(st.integers(1, 2)), *shapes["input"]), p)
    return g, x, rules


@given(st.one_of(random_graphs(), random_conv_graphs()), st.sampled_from(["fast", "explicit"]))
def test_every_record_and_the_whole_graph_balance(case, method):
    g, x, rules = case
    e = g.explain(x, rule=lambda net: rules, method=method)
    scale = 1 + max(np.abs(r.relevance_out).sum() for r in e.layers)
    for record in e.layers:
        # terms computed from the rules' own quantities: equal up to rounding of O(scale) sums
        np.testing.assert_allclose(record.imbalance(), 0, atol=1e-11 * scale)
    booked = sum(r.ledger.total() for r in e.layers)
    seed = e.output[np.arange(len(e.target)), e.target]
    np.testing.assert_allclose(per_sample_sum(e.relevance) + booked, seed, atol=1e-11 * scale)


@given(st.one_of(random_graphs(), random_conv_graphs()))
def test_explicit_equals_fast(case):
    g, x, rules = case
    fast = g.explain(x, target=0, rule=lambda net: rules).relevance
    explicit = g.explain(x, target=0, rule=lambda net: rules, method="explicit").relevance
    scale = 1 + np.abs(fast).max()
    # two factorisations of the same equations: agree to rounding (docs/conventions.md)
    np.testing.assert_allclose(explicit, fast, rtol=1e-12, atol=1e-12 * scale)


@given(random_graphs(add_epsilons=st.just(0.0), zeros=st.just(0.0)))
def test_lrp0_equals_gradient_x_input_on_relu_graphs(case):
    """With LRP-0 everywhere and exact Add splits, relevance is x times the gradient."""
    g, x, _ = case
    e = g.explain(x, target=0, rule=lrp.Zero())
    gxi = g.gradient_x_input(x, target=0)
    # where a denominator is 0 LRP drops that relevance (the ledger shows it); elsewhere the
    # two are sums of the same products in other orders. Relative to the output and the
    # largest |gxi|, 1e-11 leaves room for cancellation in near-zero denominators (as in
    # tests/test_residual.py)
    dropped = sum(np.abs(r.dropped) for r in e.layers)
    mask = dropped == 0
    scale = 1 + np.abs(gxi).max() + np.abs(e.output).max()
    np.testing.assert_allclose(e.relevance[mask], gxi[mask], rtol=0, atol=1e-11 * scale)
