"""lrp_ref.train: the loss gradient, one Adam step by hand, trainable arrays, fit."""

import numpy as np

import lrp_ref as lrp
from lrp_ref.zoo.train import Adam, accuracy, fit, predict, softmax_cross_entropy, trainable


def test_cross_entropy_value_and_gradient():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    labels = np.array([0, 2])
    loss, grad = softmax_cross_entropy(logits, labels)
    p0 = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
    # hand: mean of -log p_b[y_b]; the second row is uniform, -log(1/3)
    assert np.isclose(loss, (-np.log(p0[0]) + np.log(3)) / 2, rtol=1e-14, atol=0)
    expected = np.array([p0 - [1, 0, 0], [1 / 3, 1 / 3, -2 / 3]]) / 2
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=1e-16)


def test_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 5)) * 3, rng.integers(0, 5, 4)
    _, grad = softmax_cross_entropy(logits, labels)
    h = 1e-6
    numeric = np.zeros_like(logits)
    for k in np.ndindex(logits.shape):
        e = np.zeros_like(logits)
        e[k] = h
        numeric[k] = (softmax_cross_entropy(logits + e, labels)[0]
                      - softmax_cross_entropy(logits - e, labels)[0]) / (2 * h)
    # central differences: error O(h^2) plus rounding ~1e-16 / h = 1e-10
    np.testing.assert_allclose(grad, numeric, rtol=0, atol=1e-8)


def test_cross_entropy_is_finite_for_huge_logits():
    loss, grad = softmax_cross_entropy(np.array([[1000.0, -1000.0]]), np.array([1]))
    assert np.isclose(loss, 2000.0) and np.all(np.isfinite(grad))


def test_trainable_finds_weights_and_batchnorm_scale_but_not_running_statistics():
    bn = lrp.BatchNorm1d(np.ones(2), np.zeros(2), np.zeros(2), np.ones(2))
    net = lrp.Sequential([lrp.Dense(np.ones((3, 2))), bn, lrp.ReLU()])
    paths = {id(layer): path for path, layer in net.named_layers()}   # the paths are net's
    names = [(paths[id(layer)], name) for layer, name in trainable(net)]
    assert names == [("0", "weight"), ("0", "bias"), ("1", "gamma"), ("1", "beta")]


def test_first_adam_step_moves_every_weight_by_lr_against_its_gradient_sign():
    # At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps).
    dense = lrp.Dense(np.array([[1.0, -2.0]]), np.array([0.5, 0.0]))
    net = lrp.Sequential([dense])
    optimizer = Adam(net, lr=0.1, eps=1e-8)
    net.forward(np.array([[3.0]]))
    net.backward(np.array([[2.0, -0.5]]))      # grad_weight [[6, -1.5]], grad_bias [2, -0.5]
    optimizer.step()
    np.testing.assert_allclose(dense.weight, [[1 - 0.1 * 6 / (6 + 1e-8),
                                               -2 + 0.1 * 1.5 / (1.5 + 1e-8)]], rtol=1e-15)
    np.testing.assert_allclose(dense.bias, [0.5 - 0.1 * 2 / (2 + 1e-8),
                                            0.0 + 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-15)


def test_fit_learns_a_separable_problem_reproducibly():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)

    def trained():
        init = np.random.default_rng(2)
        net = lrp.Sequential([lrp.Dense(init.standard_normal((2, 8))), lrp.ReLU(),
                              lrp.Dense(init.standard_normal((8, 2)))])
        return net, fit(net, x, y, epochs=30, batch_size=20, lr=1e-2, seed=3)

    net, history = trained()
    assert history[-1] < history[0] / 5
    assert accuracy(net, x, y) >= 0.95
    other, history_again = trained()
    assert history == history_again
    np.testing.assert_array_equal(predict(net, x, batch_size=7), predict(other, x))


def test_fit_sequences_batches_by_length_and_learns_reproducibly():
    """Sequences of different lengths: every batch holds one length (no padding), every
    sequence is seen once per epoch, and the same seed gives the same run."""
    from lrp_ref.zoo.train import accuracy_sequences, fit_sequences

    rng = np.random.default_rng(0)
    # label = whether token 1 occurs; lengths 3..6
    sequences = [rng.integers(0, 4, size=int(rng.integers(3, 7))) for _ in range(120)]
    labels = np.array([int(1 in s) for s in sequences])

    def trained():
        init = np.random.default_rng(1)
        g = lrp.Graph()
        h = g.add(lrp.Embedding(init.standard_normal((4, 3))), g.input(), name="embed")
        h = g.add(lrp.Transpose(1, 2), h)                       # (B, 3, T)
        h = g.add(lrp.Reshape((0, 0, 1)), h)                    # (B, 3, T, 1)
        h = g.add(lrp.AdaptiveMaxPool2d(1), h)                  # max over the tokens
        h = g.add(lrp.Flatten(), h)
        g.output(g.add(lrp.Dense(init.standard_normal((3, 2))), h, name="head"))
        seen = []
        forward = g.forward
        g.forward = lambda ids: (seen.append(ids.shape), forward(ids))[1]
        history = fit_sequences(g, sequences, labels, epochs=40, batch_size=16, lr=0.05, seed=2)
        del g.forward
        return g, history, seen

    net, history, seen = trained()
    first_epoch = seen[:len(seen) // 40]
    assert sum(b for b, _ in first_epoch) == len(sequences)
    assert history[-1] < history[0] / 3
    assert accuracy_sequences(net, sequences, labels) >= 0.95
    _, history_again, _ = trained()
    assert history == history_again
