"""Shape-only layers and the constant nodes: hand examples, gradients, relevance, files.

Shape layers (lrp_ref/layers/shape.py) move elements: their forward is checked
against NumPy written independently (or by hand), their backward against the
adjoint identity ``<P a, g> = <a, P^T g>``, and their relevance is the same
scatter, so conservation is exact (``assert_array_equal`` on the sums of the
same numbers in another order is not exact in general; the tests use values
whose sums are exact: small integers). AddConstant and Scale are checked by
hand from eq. (6) of docs/theory.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

rng = np.random.default_rng(0)


def integers(*shape):
    """Small integers as float64: every sum of them is exact."""
    return rng.integers(-9, 10, size=shape).astype(np.float64)


# (layer, input shape, the forward written independently in NumPy)
SHAPE_CASES = [
    (lambda: lrp.Reshape((3, -1)), (2, 6), lambda a: a.reshape(2, 3, 2)),
    (lambda: lrp.Reshape((6,)), (2, 3, 2), lambda a: a.reshape(2, 6)),
    (lambda: lrp.Permute((0, 2, 3, 1)), (2, 3, 4, 5), lambda a: np.moveaxis(a, 1, 3)),
    (lambda: lrp.Transpose(1, -1), (2, 3, 4), lambda a: np.einsum("bij->bji", a)),
    (lambda: lrp.ChannelShuffle(2), (2, 6, 2, 2),
     lambda a: a[:, [0, 3, 1, 4, 2, 5]]),
    (lambda: lrp.Slice((slice(1, 3), 0)), (2, 4, 3), lambda a: a[:, 1:3, 0]),
    (lambda: lrp.Slice((Ellipsis, slice(None, None, 2))), (2, 3, 5),
     lambda a: a[:, :, [0, 2, 4]]),
    (lambda: lrp.Chunk(3, 2, axis=1), (2, 7), lambda a: a[:, 6:7]),
    (lambda: lrp.Chunk(2, 0, axis=-1), (2, 3, 5), lambda a: a[:, :, :3]),
]
IDS = ["reshape", "reshape-back", "permute", "transpose", "shuffle", "slice", "slice-ellipsis",
       "chunk-last", "chunk-negative-axis"]


@pytest.mark.parametrize("make, shape, expected", SHAPE_CASES, ids=IDS)
def test_forward_equals_numpy(make, shape, expected):
    a = integers(*shape)
    np.testing.assert_array_equal(make().forward(a), expected(a))


@pytest.mark.parametrize("make, shape, expected", SHAPE_CASES, ids=IDS)
def test_backward_is_the_adjoint_of_forward(make, shape, expected):
    """<P a, g> = <a, P^T g> for every a, g: backward applies P^T (exact on integers)."""
    layer = make()
    a = integers(*shape)
    z = layer.forward(a)
    g = integers(*z.shape)
    grad_a = layer.backward(g)
    assert grad_a.shape == a.shape
    assert np.sum(z * g) == np.sum(a * grad_a)
    # and P^T of the one-hot of each output element is the one-hot of the element it reads
    for j in range(z.size):
        e = np.zeros(z.size)
        e[j] = 1
        back = layer.backward(e.reshape(z.shape))
        assert back.sum() == 1 and a.reshape(-1)[back.reshape(-1).argmax()] == z.reshape(-1)[j]


@pytest.mark.parametrize("make, shape, expected", SHAPE_CASES, ids=IDS)
def test_relevance_moves_with_the_elements_and_is_conserved_exactly(make, shape, expected):
    layer = make()
    a = integers(*shape)
    z = layer.forward(a)
    R = integers(*z.shape)
    net = lrp.Sequential([layer])
    e = net.explain(a, output_relevance=R, rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, layer.backward(R))   # R_in = P^T R_out
    np.testing.assert_array_equal(per_sample_sum(e.relevance), per_sample_sum(R))
    record = e.layers[0]
    assert record.rule is None
    for term in (record.absorbed_bias, record.absorbed_stabilizer, record.dropped):
        np.testing.assert_array_equal(term, np.zeros(2))


def test_slice_by_hand_dropped_elements_get_no_relevance():
    """a = [a0, a1, a2, a3], z = a[:, 1:3] = [a1, a2]; R = [5, 7] goes back as [0, 5, 7, 0]."""
    layer = lrp.Slice(slice(1, 3))
    np.testing.assert_array_equal(layer.forward(np.array([[1.0, 2.0, 3.0, 4.0]])), [[2.0, 3.0]])
    np.testing.assert_array_equal(layer.relevance(np.array([[5.0, 7.0]])), [[0.0, 5.0, 7.0, 0.0]])


def test_chunk_pieces_by_hand_as_torch_cuts_them():
    """L = 5, chunks = 2: pieces of ceil(5/2) = 3: [0:3], [3:5]; chunks = 4: pieces of 2,
    so only 3 pieces exist (torch.chunk returns fewer): piece 3 is an error."""
    a = np.arange(5.0)[None]
    np.testing.assert_array_equal(lrp.Chunk(2, 0).forward(a), [[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(lrp.Chunk(2, 1).forward(a), [[3.0, 4.0]])
    np.testing.assert_array_equal(lrp.Chunk(4, 2).forward(a), [[4.0]])
    with pytest.raises(ValueError, match=r"layer .*Chunk.*fewer than 4 pieces"):
        lrp.Sequential([lrp.Chunk(4, 3)]).forward(a)


def test_channel_shuffle_by_hand():
    """C = 6, g = 2: view (2, 3), transpose -> (3, 2): output channels read 0, 3, 1, 4, 2, 5;
    relevance of output channel j returns to the channel it read."""
    layer = lrp.ChannelShuffle(2)
    a = np.arange(6.0).reshape(1, 6, 1, 1)
    np.testing.assert_array_equal(layer.forward(a).ravel(), [0, 3, 1, 4, 2, 5])
    R = np.array([10.0, 13.0, 11.0, 14.0, 12.0, 15.0]).reshape(1, 6, 1, 1)
    np.testing.assert_array_equal(layer.relevance(R).ravel(), [10, 11, 12, 13, 14, 15])


def test_chunks_as_a_graph_split_relevance_back_exactly():
    """Two chunks of x = (1, 2, 3, 4) added: z = (1 + 3, 2 + 4) = (4, 6), R = z.
    Add(epsilon=0): R_first = (1, 2), R_second = (3, 4); each returns to its own
    positions and the fan-out sum at x is (1, 2, 3, 4) = Gradient x Input."""
    g = lrp.Graph()
    x = g.input()
    first = g.add(lrp.Chunk(2, 0), x, name="first")
    second = g.add(lrp.Chunk(2, 1), x, name="second")
    g.output(g.add(lrp.Add(epsilon=0), first, second, name="sum"))
    e = g.explain(np.array([[1.0, 2.0, 3.0, 4.0]]), output_relevance=np.array([[4.0, 6.0]]),
                  rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_array_equal(e.layer("second").relevance_in, [[0.0, 0.0, 3.0, 4.0]])


# -- constants ----------------------------------------------------------------------------


def test_add_constant_by_hand_books_the_constant_as_bias():
    """x = (3, -1), c = (1, 1), z = (4, 0), R = (8, 5), epsilon = 0.5.
    s(4) = 4.5: R_x1 = 3/4.5 8 = 16/3, bias 1/4.5 8 = 16/9, stabilizer 0.5/4.5 8 = 8/9.
    s(0) = 0 + 0.5 (sign(0) = +1): R_x2 = -1/0.5 5 = -10, bias 1/0.5 5 = 10, stabilizer 5.
    Sums: 16/3 - 10 + (16/9 + 10) + (8/9 + 5) = 13 = sum R."""
    layer = lrp.AddConstant(np.array([1.0, 1.0]), epsilon=0.5)
    np.testing.assert_array_equal(layer.forward(np.array([[3.0, -1.0]])), [[4.0, 0.0]])
    e = lrp.Sequential([layer]).explain(np.array([[3.0, -1.0]]),
                                        output_relevance=np.array([[8.0, 5.0]]), rule=lrp.Zero())
    # divisions by 4.5 and 0.5: within a few ulp of the fractions
    np.testing.assert_allclose(e.relevance, [[16 / 3, -10.0]], rtol=1e-15)
    np.testing.assert_allclose(e.layers[0].absorbed_bias, [16 / 9 + 10], rtol=1e-15)
    np.testing.assert_allclose(e.layers[0].absorbed_stabilizer, [8 / 9 + 5], rtol=1e-15)
    np.testing.assert_array_equal(e.layers[0].dropped, [0.0])


def test_add_constant_with_epsilon_zero_by_hand():
    """AddConstant(1, epsilon=0) of x = 3, R = 8: z = 4, R_x = 6, absorbed bias 2;
    the gradient is 1."""
    layer = lrp.AddConstant(1.0, epsilon=0)
    layer.forward(np.array([[3.0]]))
    e = lrp.Sequential([layer]).explain(np.array([[3.0]]), output_relevance=np.array([[8.0]]),
                                        rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[6.0]])
    np.testing.assert_array_equal(e.layers[0].absorbed_bias, [2.0])
    np.testing.assert_array_equal(layer.backward(np.array([[5.0]])), [[5.0]])


def test_scale_passes_relevance_and_scales_the_gradient():
    """z = x s with s = (2, -3): R_x = R, grad_x = s grad_z, nothing absorbed."""
    layer = lrp.Scale(np.array([2.0, -3.0]))
    x = np.array([[1.0, 4.0]])
    np.testing.assert_array_equal(layer.forward(x), [[2.0, -12.0]])
    np.testing.assert_array_equal(layer.backward(np.array([[1.0, 1.0]])), [[2.0, -3.0]])
    e = lrp.Sequential([layer]).explain(x, output_relevance=np.array([[5.0, 7.0]]), rule=lrp.Zero())
    np.testing.assert_array_equal(e.relevance, [[5.0, 7.0]])
    assert e.layers[0].ledger.total().tolist() == [0.0]


def test_a_constant_that_does_not_broadcast_is_refused_with_the_path():
    net = lrp.Sequential([lrp.Scale(np.ones(3))])
    with pytest.raises(ValueError, match=r"layer '0' \(Scale\).*shape \(3,\).*\(1, 2\)"):
        net.forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="broadcast"):
        lrp.Sequential([lrp.AddConstant(np.ones((2, 1, 2)))]).forward(np.ones((1, 2)))


# -- errors ---------------------------------------------------------------------------------


def test_the_batch_axis_never_moves():
    with pytest.raises(ValueError, match="batch axis 0 first"):
        lrp.Permute((1, 0, 2))
    with pytest.raises(ValueError, match="batch axis"):
        lrp.Transpose(0, 1)
    with pytest.raises(ValueError, match="batch axis"):
        lrp.Chunk(2, 0, axis=0)
    with pytest.raises(ValueError, match=r"layer '0' \(Transpose\).*non-batch"):
        lrp.Sequential([lrp.Transpose(1, -2)]).forward(np.ones((2, 3)))


def test_bad_shape_arguments_are_refused():
    with pytest.raises(ValueError, match="at most one -1"):
        lrp.Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"layer '0' \(Reshape\): cannot reshape"):
        lrp.Sequential([lrp.Reshape((4,))]).forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match="split into 4 groups"):
        lrp.Sequential([lrp.ChannelShuffle(4)]).forward(np.ones((1, 6, 2, 2)))
    with pytest.raises(TypeError, match="int, a slice or"):
        lrp.Slice((None,))
    with pytest.raises(ValueError, match="only one"):
        lrp.Slice((Ellipsis, Ellipsis))
    with pytest.raises(ValueError, match=r"layer '0' \(Slice\): index \[:, 0, 0\] does not fit"):
        lrp.Sequential([lrp.Slice((0, 0))]).forward(np.ones((2, 3)))


# -- model files --------------------------------------------------------------------------


def test_a_graph_of_every_new_layer_round_trips_through_a_file(tmp_path):
    g = lrp.Graph()
    x = g.input()
    h = g.add(lrp.Reshape((4, 2, 3)), x, name="view")               # (B, 4, 2, 3)
    h = g.add(lrp.ChannelShuffle(2), h, name="shuffle")
    h = g.add(lrp.Permute((0, 1, 3, 2)), h, name="permute")         # (B, 4, 3, 2)
    h = g.add(lrp.Transpose(1, 2), h, name="transpose")             # (B, 3, 4, 2)
    h = g.add(lrp.Slice((slice(None, None, -1), Ellipsis, 1)), h, name="slice")   # (B, 3, 4)
    a = g.add(lrp.Chunk(2, 1, axis=2), h, name="chunk")             # (B, 3, 2)
    a = g.add(lrp.Scale(np.array([2.0, -1.0])), a, name="scale")
    a = g.add(lrp.AddConstant(np.full((3, 1), 0.5), epsilon=0.1), a, name="shift")
    g.output(g.add(lrp.Flatten(), a, name="flatten"))
    x_ = rng.standard_normal((2, 24))
    path = tmp_path / "g.npz"
    lrp.save(g, path)
    loaded = lrp.load(path)
    assert [type(n.layer) for n in loaded.nodes] == [type(n.layer) for n in g.nodes]
    assert loaded.config() == g.config()
    np.testing.assert_array_equal(loaded.forward(x_), g.forward(x_))
    R = rng.standard_normal((2, 6))
    e, f = (net.explain(x_, output_relevance=R, rule=lrp.Zero()) for net in (g, loaded))
    np.testing.assert_array_equal(e.relevance, f.relevance)
    # the ledger balances: only the AddConstant books (bias and stabilizer)
    booked = sum(r.ledger.total() for r in e.layers)
    np.testing.assert_allclose(per_sample_sum(e.relevance) + booked, per_sample_sum(R),
                               rtol=1e-12)     # float64 rounding of a few divisions
    assert all(not r.ledger.total().any() for r in e.layers if r.path != "shift")


# -- properties on random graphs ----------------------------------------------------------


@st.composite
def shape_graphs(draw):
    """``(graph, x)``: Dense -> ReLU -> Reshape -> a random rearrangement -> a random slice
    -> Scale -> AddConstant(epsilon=0) -> a chunk of two added back -> Flatten -> Dense."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = lrp.Graph()
    h = g.add(lrp.Dense(rng.standard_normal((3, 24)), rng.standard_normal(24)), g.input(),
              name="fc")
    h = g.add(lrp.ReLU(), h, name="relu")
    h = g.add(lrp.Reshape((4, 2, 3)), h, name="view")              # (B, 4, 2, 3)
    move = draw(st.sampled_from([lrp.Permute((0, 3, 1, 2)), lrp.Transpose(1, -1),
                                 lrp.ChannelShuffle(2), lrp.Identity()]))
    h = g.add(move, h, name="move")
    h = g.add(lrp.Reshape((-1,)), h, name="flat")                  # (B, 24)
    start = draw(st.integers(0, 10))
    stop = draw(st.integers(start + 4, 24))
    step = draw(st.sampled_from([1, 2]))
    h = g.add(lrp.Slice(slice(start, stop, step)), h, name="slice")
    width = len(range(start, stop, step))
    h = g.add(lrp.Scale(rng.standard_normal(width)), h, name="scale")
    h = g.add(lrp.AddConstant(rng.standard_normal(width), epsilon=0), h, name="shift")
    if width % 2:
        h = g.add(lrp.Slice(slice(1, None)), h, name="even")
        width -= 1
    a = g.add(lrp.Chunk(2, 0), h, name="first")
    b = g.add(lrp.Chunk(2, 1), h, name="second")
    h = g.add(lrp.Add(epsilon=0), a, b, name="sum")
    g.output(g.add(lrp.Dense(rng.standard_normal((width // 2, 2)), rng.standard_normal(2)), h,
                   name="head"))
    return g, rng.standard_normal((3, 3))


@given(shape_graphs())
def test_lrp0_equals_gradient_x_input_through_shape_and_constant_nodes(case):
    """Shape nodes and Scale pass R = z g on as a g; AddConstant(epsilon=0) splits
    (x + c) g into x g and the bias c g: LRP-0 stays Gradient x Input, the ledger balances."""
    g, x = case
    e = g.explain(x, target=0, rule=lrp.Zero())
    gxi = g.gradient_x_input(x, target=0)
    dropped = sum(np.abs(r.dropped) for r in e.layers)
    mask = dropped == 0
    scale = 1 + np.abs(gxi).max() + np.abs(e.output).max()
    # sums of the same products in other orders; 1e-11 relative leaves room for
    # cancellation in near-zero denominators (as tests/test_graph_properties.py)
    np.testing.assert_allclose(e.relevance[mask], gxi[mask], rtol=0, atol=1e-11 * scale)
    booked = sum(r.ledger.total() for r in e.layers)
    np.testing.assert_allclose(per_sample_sum(e.relevance) + booked, e.output[:, 0],
                               rtol=0, atol=1e-11 * scale)
    for name in ("view", "move", "flat", "slice", "scale", "first", "second"):
        assert not e.layer(name).ledger.total().any()


def test_reshape_zero_keeps_the_input_size_on_that_axis():
    """Reshape((0, -1)) of (B, 3, 2, 2) is (B, 3, 4) (ONNX's Reshape convention);
    a 0 at an axis the input lacks is an error."""
    a = np.arange(24.0).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(lrp.Reshape((0, -1)).forward(a), a.reshape(2, 3, 4))
    np.testing.assert_array_equal(lrp.Reshape((0, 2, -1)).forward(a), a.reshape(2, 3, 2, 2))
    with pytest.raises(ValueError, match="cannot reshape"):
        lrp.Sequential([lrp.Reshape((2, 0))]).forward(np.ones((2, 6)))
