"""LSTM: forward and BPTT against a literal implementation and finite differences,
LRP (Arras et al. 2017) against a literal per-step implementation, explicit == fast,
the ledger, a hand-worked case and hypothesis properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.audit import per_sample_sum

from naive import finite_difference

RULES = [lrp.Zero(), lrp.Epsilon(1e-6), lrp.Epsilon(0.1), lrp.Epsilon(0.1, bias=False)]


def random_lstm(rng, F, H, return_sequences=False, bias_scale=1.0, scale=1.0):
    return lrp.LSTM(scale * rng.standard_normal((4 * H, F)),
                    scale * rng.standard_normal((4 * H, H)),
                    bias_scale * rng.standard_normal(4 * H),
                    bias_scale * rng.standard_normal(4 * H), return_sequences=return_sequences)


def sig(v):
    return 1 / (1 + np.exp(-v))


def literal_lstm(lstm, x):
    """The forward equations, one sample and one step at a time; returns h (B, T+1, H),
    c (B, T+1, H) and the gates i, f, g, o (B, T, H) each."""
    W_ih, W_hh, b = lstm.weight_ih, lstm.weight_hh, lstm.bias_ih + lstm.bias_hh
    B, T, _ = x.shape
    H = W_hh.shape[1]
    h, c = np.zeros((B, T + 1, H)), np.zeros((B, T + 1, H))
    gates = {k: np.zeros((B, T, H)) for k in "ifgo"}
    for n in range(B):
        for t in range(T):
            a = W_ih @ x[n, t] + W_hh @ h[n, t] + b
            i, f, g, o = sig(a[:H]), sig(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), sig(a[3 * H:])
            c[n, t + 1] = f * c[n, t] + i * g
            h[n, t + 1] = o * np.tanh(c[n, t + 1])
            for k, v in zip("ifgo", (i, f, g, o)):
                gates[k][n, t] = v
    return h, c, gates


def lrp_linear(a, w, b, z, R, eps, use_bias=True):
    """Arras et al.'s ``lrp_linear`` for one sample: ``R_i = sum_j a_i w_ij / (z_j + eps
    sign(z_j)) R_j`` with ``z_j = sum_i a_i w_ij + b_j``; also the bias and stabilizer shares."""
    s = np.where(z >= 0, 1.0, -1.0)
    d = z + eps * s
    b = b if use_bias else np.zeros_like(b)
    R_in = ((a[:, None] * w) / d[None, :] * R[None, :]).sum(axis=1)
    return R_in, float((b / d * R).sum()), float((eps * s / d * R).sum())


def literal_lstm_lrp(lstm, x, R_out, eps, use_bias=True):
    """Arras et al. 2017, literally: per sample, per step, with ``lrp_linear`` for the
    cell split (identity weights) and the candidate map. Returns R(x), bias, stabilizer."""
    h, c, gates = literal_lstm(lstm, x)
    i, f, g = gates["i"], gates["f"], gates["g"]
    B, T, F = x.shape
    H = lstm.hidden_size
    rows = slice(2 * H, 3 * H)
    w = np.concatenate([lstm.weight_ih[rows].T, lstm.weight_hh[rows].T])      # (F + H, H)
    b = lstm.bias_ih[rows] + lstm.bias_hh[rows]
    R_seq = R_out if R_out.ndim == 3 else np.concatenate(
        [np.zeros((B, T - 1, H)), R_out[:, None]], axis=1)
    R_x, bias, stab = np.zeros_like(x), np.zeros(B), np.zeros(B)
    for n in range(B):
        R_h, R_c = np.zeros(H), np.zeros(H)
        for t in reversed(range(T)):
            R_c = R_c + R_h + R_seq[n, t]
            fc, ig = f[n, t] * c[n, t], i[n, t] * g[n, t]
            # the two terms of c_t share one denominator, so one stabilizer share s1
            R_prev_c, _, s1 = lrp_linear(fc, np.eye(H), np.zeros(H), fc + ig, R_c, eps)
            R_g, _, _ = lrp_linear(ig, np.eye(H), np.zeros(H), fc + ig, R_c, eps)
            a = np.concatenate([x[n, t], h[n, t]])
            z = a @ w + (b if use_bias else 0)
            R_a, b3, s3 = lrp_linear(a, w, b, z, R_g, eps, use_bias)
            R_x[n, t], R_h, R_c = R_a[:F], R_a[F:], R_prev_c
            bias[n] += b3
            stab[n] += s1 + s3
    return R_x, bias, stab


def epsilon_of(rule):
    return getattr(rule, "epsilon", 0.0)


def close(actual, expected, rtol):
    """``|actual - expected| <= rtol * max|expected|`` (entry-wise)."""
    scale = float(np.abs(expected).max(initial=0.0)) + 1e-300
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# -- forward and gradients -------------------------------------------------------------------


@pytest.mark.parametrize("return_sequences", [False, True])
def test_forward_matches_literal_implementation(return_sequences):
    rng = np.random.default_rng(0)
    lstm = random_lstm(rng, 3, 4, return_sequences)
    x = rng.standard_normal((2, 5, 3))
    h, _, _ = literal_lstm(lstm, x)
    expected = h[:, 1:] if return_sequences else h[:, -1]
    # the same float64 operations in another order: a few ulps over five steps
    close(lstm.forward(x), expected, 1e-13)


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_match_finite_differences(return_sequences):
    rng = np.random.default_rng(1)
    lstm = random_lstm(rng, 2, 3, return_sequences)
    x = rng.standard_normal((2, 4, 2))
    r = rng.standard_normal(lstm.forward(x).shape)       # loss = sum(r * y)
    grad_x = lstm.backward(r)
    grads = {name: getattr(lstm, f"grad_{name}").copy() for name in lstm.array_names}

    def loss_x(v):
        return float((lstm.forward(v) * r).sum())

    # FD error ~1e-10 absolute on gradients of order 1 (see finite_difference)
    close(grad_x, finite_difference(loss_x, x), 1e-8)
    for name in lstm.array_names:
        original = getattr(lstm, name).copy()

        def loss_p(v, name=name):
            getattr(lstm, name)[...] = v
            return float((lstm.forward(x) * r).sum())

        close(grads[name], finite_difference(loss_p, original), 1e-8)
        getattr(lstm, name)[...] = original


def test_backward_stores_a_gradient_for_every_array():
    """Training (lrp_ref.train) updates every array ``name`` that has ``grad_<name>``."""
    rng = np.random.default_rng(2)
    net = lrp.Sequential([lrp.Embedding(rng.standard_normal((5, 3))), random_lstm(rng, 3, 4),
                          lrp.Dense(rng.standard_normal((4, 2)))])
    net.forward(rng.integers(0, 5, (2, 3)))
    net.backward(np.ones((2, 2)))
    for layer in net.layers:
        for name in layer.array_names:
            assert getattr(layer, f"grad_{name}").shape == getattr(layer, name).shape


# -- relevance --------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_relevance_matches_literal_arras_implementation(rule, return_sequences):
    rng = np.random.default_rng(3)
    lstm = random_lstm(rng, 3, 4, return_sequences)
    x = rng.standard_normal((2, 5, 3))
    R = rng.standard_normal(lstm.forward(x).shape)
    R_x, bias, stab = literal_lstm_lrp(lstm, x, R, epsilon_of(rule), rule.bias)
    lstm.forward(x)
    R_in, ledger = lstm._relevance(R, rule, "fast")
    # same equations, different summation order; denominators of random data are
    # O(0.1..1) here, so 1e-10 relative leaves room for the ratios' amplification
    close(R_in, R_x, 1e-10)
    close(ledger.absorbed_bias, bias, 1e-10)
    close(ledger.absorbed_stabilizer, stab, 1e-10)


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
@pytest.mark.parametrize("return_sequences", [False, True])
def test_explicit_equals_fast(rule, return_sequences):
    rng = np.random.default_rng(4)
    lstm = random_lstm(rng, 3, 4, return_sequences)
    x = rng.standard_normal((3, 6, 3))
    R = rng.standard_normal(lstm.forward(x).shape)
    fast = lstm.relevance(R, rule, method="fast")
    explicit = lstm.relevance(R, rule, method="explicit")
    # both paths of the shared engine; well-conditioned denominators: 1e-12 relative
    close(explicit, fast, 1e-12)


def text_network(rng, V=7, F=3, H=4, classes=2, lstm=None):
    return lrp.Sequential([lrp.Embedding(rng.standard_normal((V, F))),
                           lstm or random_lstm(rng, F, H),
                           lrp.Dense(rng.standard_normal((H, classes)),
                                     rng.standard_normal(classes))])


@pytest.mark.parametrize("rule", RULES, ids=lrp.rules.describe)
def test_every_record_balances(rule):
    rng = np.random.default_rng(5)
    net = text_network(rng)
    ids = rng.integers(0, 7, (4, 6))
    for method in ("fast", "explicit"):
        e = net.explain(ids, rule=rule, method=method)
        assert e.relevance.shape == ids.shape
        for record in e.layers:
            scale = np.abs(record.relevance_out).sum() + np.abs(record.relevance_in).sum()
            np.testing.assert_allclose(record.imbalance(), 0, atol=1e-10 * scale)
        if rule.bias:
            assert np.all(e.layer("1").absorbed_bias != 0)


def test_hand_worked_one_unit_two_steps():
    """One unit (F = H = 1), two steps, every gate pre-activation 0, so i = f = o = 1/2.

    Weights (rows i, f, g, o): W_ih = (0, 0, 1, 0), W_hh = (0, 0, 2, 0),
    b_ih = (0, 0, 0.5, 0), b_hh = 0. Input x = (1, -0.25); h_0 = c_0 = 0.

    Forward::

        a_1 = 1 + 2*0 + 0.5         = 1.5       g_1 = tanh(1.5)  = 0.905148
        c_1 = 0.5*0 + 0.5*g_1        = 0.452574  h_1 = 0.5 tanh(c_1) = 0.212006
        a_2 = -0.25 + 2 h_1 + 0.5    = 0.674013  g_2 = tanh(a_2)  = 0.587613
        c_2 = 0.5 c_1 + 0.5 g_2      = 0.520094  h_2 = 0.5 tanh(c_2) = 0.238886

    LRP-0 from R(h_2) = h_2 = 0.238886::

        R(c_2) = R(h_2)                               = 0.238886   (o_2 gets none)
        R(c_1) <- 0.5 c_1 / c_2 * R(c_2)              = 0.103937   (f_2 gets none)
        R(g_2)  = 0.5 g_2 / c_2 * R(c_2)              = 0.134949   (i_2 gets none)
        R(x_2)  = -0.25 / a_2 * R(g_2)                = -0.050054
        R(h_1)  = 2 h_1 / a_2 * R(g_2)                = 0.084895
        bias_2  = 0.5 / a_2 * R(g_2)                  = 0.100109
        R(c_1)  = 0.103937 + R(h_1)                   = 0.188832
        R(g_1)  = 0.5 g_1 / c_1 * R(c_1) = R(c_1)     = 0.188832   (c_0 = 0 takes none)
        R(x_1)  = 1 / 1.5 * R(g_1)                    = 0.125888
        bias_1  = 0.5 / 1.5 * R(g_1)                  = 0.062944

    Check: R(x_1) + R(x_2) + bias_1 + bias_2 = 0.238886 = R(h_2).
    """
    lstm = lrp.LSTM([[0.0], [0.0], [1.0], [0.0]], [[0.0], [0.0], [2.0], [0.0]],
                    [0.0, 0.0, 0.5, 0.0])
    h2 = lstm.forward([[[1.0], [-0.25]]])
    # the docstring's values are rounded to 6 decimals
    np.testing.assert_allclose(h2, [[0.238886]], atol=1e-6)
    R_x, ledger = lstm._relevance(h2, lrp.Zero(), "fast")
    np.testing.assert_allclose(R_x[0, :, 0], [0.125888, -0.050054], atol=1e-6)
    np.testing.assert_allclose(ledger.absorbed_bias, [0.062944 + 0.100109], atol=1e-6)
    np.testing.assert_array_equal(ledger.absorbed_stabilizer, [0.0])
    # and the same chain of formulas at full precision
    g1 = np.tanh(1.5)
    c1 = 0.5 * g1
    h1 = 0.5 * np.tanh(c1)
    a2 = -0.25 + 2 * h1 + 0.5
    g2 = np.tanh(a2)
    c2 = 0.5 * c1 + 0.5 * g2
    R_g2 = 0.5 * g2 / c2 * h2[0, 0]
    R_c1 = 0.5 * c1 / c2 * h2[0, 0] + 2 * h1 / a2 * R_g2
    np.testing.assert_allclose(R_x[0, :, 0], [R_c1 / 1.5, -0.25 / a2 * R_g2], rtol=1e-14)


# -- properties -------------------------------------------------------------------------------


@st.composite
def lstm_cases(draw, gate_bias=True, candidate_bias=True):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    F, H = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    B, T = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    lstm = random_lstm(rng, F, H, draw(st.booleans()), bias_scale=float(gate_bias))
    if not candidate_bias:
        lstm.bias_ih[2 * H:3 * H] = 0
        lstm.bias_hh[2 * H:3 * H] = 0
    x = rng.standard_normal((B, T, F))
    return lstm, x, rng


@given(case=lstm_cases(), rule=st.sampled_from(RULES), data=st.data())
def test_gates_receive_no_relevance(case, rule, data):
    """An input feature that reaches the output only through the gates (its column of
    W_ih is zero in the candidate block g, nonzero in i, f, o) gets exactly 0: the
    gates take no relevance (signal-take-all)."""
    lstm, x, rng = case
    H, F = lstm.hidden_size, lstm.input_size
    k = data.draw(st.integers(0, F - 1))
    lstm.weight_ih[2 * H:3 * H, k] = 0
    y = lstm.forward(x)
    R_x = lstm.relevance(rng.standard_normal(y.shape), rule)
    assert np.all(R_x[..., k] == 0)
    # while the feature does change the output through the gates
    x2 = x.copy()
    x2[..., k] += 1
    assert not np.allclose(lstm.forward(x2), y)


@given(case=lstm_cases(gate_bias=False))
def test_zero_biases_and_eps_zero_conserve(case):
    """Zero biases, LRP-0: every step conserves, so sum R(x) = sum R(out) (no zero
    denominators with continuous random data: nothing dropped, nothing absorbed)."""
    lstm, x, rng = case
    y = lstm.forward(x)
    R = rng.standard_normal(y.shape)
    R_x, ledger = lstm._relevance(R, lrp.Zero(), "fast")
    for term in (ledger.absorbed_bias, ledger.absorbed_stabilizer, ledger.dropped):
        np.testing.assert_array_equal(term, 0)
    # rounding grows with the ratios z_ij / z_j; 1e-10 of the gross relevance moved
    scale = np.abs(R_x).reshape(len(x), -1).sum(axis=1) + np.abs(R).reshape(len(x), -1).sum(1)
    np.testing.assert_allclose(per_sample_sum(R_x), per_sample_sum(R), rtol=0,
                               atol=float(1e-10 * scale.max()))


@given(case=lstm_cases(candidate_bias=False), pad=st.integers(1, 3), rule=st.sampled_from(RULES))
def test_padding_with_zero_embeddings_is_invariant(case, pad, rule):
    """Left-padding with tokens whose embedding is 0 changes nothing when the candidate
    bias b_ih[g] + b_hh[g] is 0 (gate biases arbitrary): a_g = 0 gives g = 0, so
    c = f*0 + i*0 = 0 and h = o tanh(0) = 0 stay exactly at the initial state. The
    pads get exactly 0 relevance and the real tokens what they got without padding."""
    lstm, x, rng = case
    lstm.return_sequences = False
    V = 5
    table = rng.standard_normal((V, lstm.input_size))
    table[0] = 0                                           # id 0 is the padding token
    ids = rng.integers(1, V, x.shape[:2])
    padded = np.concatenate([np.zeros((len(ids), pad), int), ids], axis=1)
    R_out = rng.standard_normal((len(ids), 2))
    results = []
    for tokens in (ids, padded):
        net = lrp.Sequential([lrp.Embedding(table), lstm,
                              lrp.Dense(np.ones((lstm.hidden_size, 2)))])
        e = net.explain(tokens, rule=rule, output_relevance=R_out)
        results.append((e.output, e.relevance))
    (y, R), (y_pad, R_pad) = results
    close(y_pad, y, 1e-12)                   # same operations; matmul blocking may differ
    np.testing.assert_array_equal(R_pad[:, :pad], 0)
    close(R_pad[:, pad:], R, 1e-12)


def test_only_zero_and_epsilon_are_accepted():
    lstm = random_lstm(np.random.default_rng(6), 2, 2)
    y = lstm.forward(np.ones((1, 3, 2)))
    for rule in (lrp.AlphaBeta(1, 0), lrp.AlphaBeta(2, 1), lrp.Pass()):
        with pytest.raises(ValueError, match="Arras et al.*Zero\\(\\) or Epsilon"):
            lstm.relevance(y, rule)
    with pytest.raises(ValueError, match="needs a rule"):
        lstm.relevance(y, None)


def test_constructor_and_input_errors():
    with pytest.raises(ValueError, match=r"weight_hh must have shape \(4H, H\)"):
        lrp.LSTM(np.zeros((8, 3)), np.zeros((8, 3)))
    with pytest.raises(ValueError, match=r"weight_ih must have shape \(4H, F\) = \(8, F\)"):
        lrp.LSTM(np.zeros((6, 3)), np.zeros((8, 2)))
    with pytest.raises(ValueError, match=r"bias_hh must have shape \(8,\)"):
        lrp.LSTM(np.zeros((8, 3)), np.zeros((8, 2)), None, np.zeros(4))
    lstm = lrp.LSTM(np.zeros((8, 3)), np.zeros((8, 2)))
    with pytest.raises(ValueError, match=r"layer '1' \(LSTM\): expected input of shape "
                                         r"\(B, \*, 3\), got \(2, 4\)"):
        lrp.Sequential([lrp.Identity(), lstm]).forward(np.zeros((2, 4)))   # its path there
    with pytest.raises(ValueError, match="at least one time step"):
        lstm.forward(np.zeros((2, 0, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        lstm.forward(np.full((1, 2, 3), np.nan))
    with pytest.raises(ValueError, match="needs a forward pass first"):
        lstm.relevance(np.zeros((1, 2)), lrp.Zero())


def test_save_load_and_float32(tmp_path):
    rng = np.random.default_rng(7)
    net = lrp.Sequential([lrp.Embedding(rng.standard_normal((6, 3))),
                          lrp.Bidirectional(random_lstm(rng, 3, 2, True),
                                            random_lstm(rng, 3, 2, True)),
                          random_lstm(rng, 4, 3), lrp.Dense(rng.standard_normal((3, 2)))])
    ids = rng.integers(0, 6, (2, 5))
    lrp.save(net, tmp_path / "rnn.npz")
    loaded = lrp.load(tmp_path / "rnn.npz")
    assert loaded.config() == net.config()
    np.testing.assert_array_equal(loaded.forward(ids), net.forward(ids))
    net32 = net.astype(np.float32)
    e32, e64 = net32.explain(ids, rule=lrp.Epsilon(1e-3)), net.explain(ids, rule=lrp.Epsilon(1e-3))
    assert e32.relevance.dtype == np.float32
    # float32 rounding (6e-8) amplified through 5 steps and 3 layers
    close(e32.relevance, e64.relevance, 1e-4)
