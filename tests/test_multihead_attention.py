"""MultiheadAttention: a Graph of the primitive rules, the 2x2 example by hand, the ledger.

The torch comparison (forward, gradient, masks, heads) is tests/test_transformer_torch.py;
the import from torch tests/test_from_torch_transformer.py.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp

LN3 = math.log(3)


def two_by_two(attention="attnlrp"):
    """The worked example of docs/transformers.md as one head on x = I (two tokens, E = 2).

    Q = x W_q^T = I; K = x W_k^T = sqrt(2) [[0, 0], [ln 3, 0]], so that
    Q K^T / sqrt(2) = [[0, ln 3], [0, 0]]; V = x W_v^T = diag(4, 2); out_proj = I.
    """
    w_q, w_v, w_o = np.eye(2), np.diag([4.0, 2.0]), np.eye(2)
    w_k = math.sqrt(2) * np.array([[0.0, LN3], [0.0, 0.0]])     # K = x W_k^T, K_10 = sqrt2 ln3
    return lrp.MultiheadAttention(np.concatenate([w_q, w_k, w_v]), w_o, num_heads=1,
                                  attention=attention, epsilon=0.0)


def test_two_by_two_forward_by_hand():
    mha = two_by_two()
    y = mha.forward(np.eye(2)[None])
    # A = softmax([[0, ln 3], [0, 0]]) = [[1/4, 3/4], [1/2, 1/2]], y = A V
    np.testing.assert_allclose(y[0], [[1, 1.5], [2, 1]], rtol=1e-15)


def test_two_by_two_attnlrp_by_hand():
    mha = two_by_two("attnlrp")
    y = mha.forward(np.eye(2)[None])
    R = mha.relevance(y, lrp.Zero())
    # docs/transformers.md: R(V) = [[3/2, 0], [0, 5/4]]; the softmax gives -3/16 ln 3 to
    # scores_01, split evenly between Q_00 (from x_00) and K_10 (from x_11)
    expected = [[1.5 - 3 / 32 * LN3, 0], [0, 1.25 - 3 / 32 * LN3]]
    np.testing.assert_allclose(R[0], expected, rtol=1e-15, atol=1e-15)


def test_two_by_two_cp_lrp_by_hand_conserves():
    mha = two_by_two("cp-lrp")
    y = mha.forward(np.eye(2)[None])
    R = mha.relevance(y, lrp.Zero())
    # A held constant: R(V_ip) = V_ip sum_j A_ji R_jp / O_jp = [[3, 0], [0, 5/2]]
    np.testing.assert_allclose(R[0], [[3, 0], [0, 2.5]], rtol=1e-15)
    assert R.sum() == pytest.approx(y.sum(), rel=1e-15)


def test_two_by_two_ledger_per_node():
    mha = two_by_two("attnlrp")
    x = np.eye(2)[None]
    y = mha.forward(x)
    e = mha.explain(x, rule=lrp.Zero(), output_relevance=y)
    ledger = {r.path: r.ledger for r in e.layers}
    assert [r.path for r in e.layers] == [node.name for node in mha.nodes]
    # the softmax books its Taylor bias (1 - x_j + sum_i s_i x_i) R_j: rows x = (0, ln 3)
    # with R(A) = (1/2, 3/4) and x = (0, 0) with R(A) = (1, 1/2)
    bias = 5 / 4 + 3 / 16 * LN3 + 3 / 2
    assert ledger["softmax"].absorbed_bias[0] == pytest.approx(bias, rel=1e-15)
    for path in ("context", "scores", "scale", "q_proj", "v_proj", "out_proj"):
        assert ledger[path].total()[0] == 0, path
    np.testing.assert_allclose(e.layer("context").relevance_in[1][0, 0],
                               [[1.5, 0], [0, 1.25]], rtol=1e-15)
    assert y.sum() - e.relevance.sum() == pytest.approx(bias, rel=1e-14)


def test_cp_lrp_sends_nothing_through_the_softmax():
    mha = two_by_two("cp-lrp")
    x = np.eye(2)[None]
    e = mha.explain(x, rule=lrp.Zero(), output_relevance=mha.forward(x))
    for path in ("softmax", "scores", "q_proj", "k_proj"):
        assert not np.any(e.layer(path).relevance_out), path


def random_mha(rng, E=6, H=2, attention="attnlrp", **masks):
    return lrp.MultiheadAttention(rng.standard_normal((3 * E, E)), rng.standard_normal((E, E)),
                                  H, rng.standard_normal(3 * E), rng.standard_normal(E),
                                  attention=attention, **masks)


@pytest.mark.parametrize("attention", ["attnlrp", "cp-lrp"])
def test_explicit_equals_fast_with_masks(attention):
    rng = np.random.default_rng(1)
    causal = np.triu(np.ones((4, 4), bool), 1)
    padding = np.array([[0, 0, 0, -np.inf], [0, 0.5, 0, 0]])
    mha = random_mha(rng, attention=attention, attn_mask=causal, key_padding_mask=padding)
    x = rng.standard_normal((2, 4, 6))
    R = rng.standard_normal((2, 4, 6))
    fast = mha.explain(x, rule=lrp.Epsilon(0.1), output_relevance=R)
    explicit = mha.explain(x, rule=lrp.Epsilon(0.1), output_relevance=R, method="explicit")
    np.testing.assert_allclose(fast.relevance, explicit.relevance, rtol=1e-10, atol=1e-12)
    for a, b in zip(fast.layers, explicit.layers):
        np.testing.assert_allclose(a.ledger.total(), b.ledger.total(), rtol=1e-10, atol=1e-12)


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 4), st.sampled_from([1, 2, 4]))
def test_cp_lrp_with_zero_biases_conserves(seed, B, L, H):
    # A constant: every node left is linear without bias (Dense, MatMul with A as weights,
    # shape moves), so LRP-0 conserves exactly up to rounding
    rng = np.random.default_rng(seed)
    E = 4
    mha = lrp.MultiheadAttention(rng.standard_normal((3 * E, E)), rng.standard_normal((E, E)),
                                 H, attention="cp-lrp", epsilon=0.0)
    x = rng.standard_normal((B, L, E))
    y = mha.forward(x)
    e = mha.explain(x, rule=lrp.Zero(), output_relevance=y)
    # rounding of sums of z_ij / z_j R_j over near-cancelling z_j: relative to sum |R|
    np.testing.assert_allclose(e.relevance.sum(axis=(1, 2)), y.sum(axis=(1, 2)),
                               atol=1e-9 * np.abs(y).sum())


@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(2, 5), st.sampled_from([1, 2]),
       st.sampled_from(["attnlrp", "cp-lrp"]))
def test_every_record_balances(seed, B, L, H, attention):
    rng = np.random.default_rng(seed)
    mha = random_mha(rng, E=4, H=H, attention=attention,
                     key_padding_mask=np.arange(L)[None].repeat(B, 0) == L - 1)
    x = rng.standard_normal((B, L, 4))
    e = mha.explain(x, rule=lrp.Epsilon(0.01), output_relevance=rng.standard_normal((B, L, 4)))
    for r in e.layers:
        total_in = (sum(part.sum() for part in r.relevance_in)
                    if isinstance(r.relevance_in, tuple) else r.relevance_in.sum())
        assert r.relevance_out.sum() == pytest.approx(total_in + r.ledger.total().sum(),
                                                      rel=1e-9, abs=1e-9), r.path


def test_blocked_keys_get_nothing_through_attention():
    rng = np.random.default_rng(2)
    # key 2 of sample 0 is padding: with CP-LRP and no projection bias, its token is reached
    # only through its own query row (the Dense projections are position-wise)
    mha = random_mha(rng, attention="cp-lrp", key_padding_mask=np.array([[0, 0, 1]], bool))
    x = rng.standard_normal((1, 3, 6))
    R = np.zeros((1, 3, 6))
    R[0, 0] = 1.0                                  # only query 0's output is explained
    e = mha.explain(x, rule=lrp.Epsilon(1e-9), output_relevance=R)
    A = e.layer("softmax").relevance_in            # nothing reaches the softmax (CP-LRP)
    assert not A.any()
    assert not e.relevance[0, 2].any()
    assert e.relevance[0, :2].any()


def test_save_load_and_astype_keep_everything(tmp_path):
    rng = np.random.default_rng(3)
    mha = random_mha(rng, attention="cp-lrp", attn_mask=np.triu(np.ones((3, 3)), 1) * -2.0)
    net = lrp.Sequential([mha])
    lrp.save(net, tmp_path / "m.npz")
    back = lrp.load(tmp_path / "m.npz")
    x = rng.standard_normal((2, 3, 6))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    assert back[0].attention == "cp-lrp" and back[0].num_heads == 2
    np.testing.assert_array_equal(back[0].in_proj_weight, mha.in_proj_weight)
    assert [n.name for n in back[0].nodes] == [n.name for n in mha.nodes]   # "mask" included
    f32 = net.astype(np.float32)
    assert f32.forward(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("attention", ["attnlrp", "cp-lrp"])
def test_float32_attention_computes_in_float32(attention):
    # the scale 1/sqrt(D) is a constant of the network's dtype: a float64 one would lift the
    # scores, the softmax and A V to float64 in a float32 network (NumPy 2's promotion)
    rng = np.random.default_rng(4)
    f32 = lrp.Sequential([random_mha(rng, attention=attention)]).astype(np.float32)
    scale = f32[0]["scale"]
    assert scale.forward(np.ones((1, 2, 3, 3), np.float32)).dtype == np.float32
    e = f32.explain(rng.standard_normal((2, 3, 6)).astype(np.float32), rule=lrp.Epsilon(1e-3),
                    output_relevance=np.ones((2, 3, 6), np.float32))
    assert e.output.dtype == np.float32 and e.relevance.dtype == np.float32


def test_state_is_keyed_like_parameters():
    mha = random_mha(np.random.default_rng(4), key_padding_mask=np.zeros((1, 3), bool))
    assert set(mha.parameters()) <= set(mha.state())
    assert set(mha.state()) - set(mha.parameters()) == {"key_padding_mask"}


@pytest.mark.parametrize("bad, message", [
    (dict(num_heads=4), "num_heads must be an int >= 1 dividing E = 6"),
    (dict(attention="rollout"), "attention must be one of"),
    (dict(attn_mask=np.zeros(3)), r"attn_mask must be \(L, L\)"),
    (dict(key_padding_mask=np.zeros((1, 1, 3))), r"key_padding_mask must be \(B, L\)"),
    (dict(key_padding_mask=np.array([[0, np.inf, 0]])), "NaN or \\+inf"),
])
def test_refusals(bad, message):
    rng = np.random.default_rng(0)
    args = dict(num_heads=2)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        lrp.MultiheadAttention(rng.standard_normal((18, 6)), rng.standard_normal((6, 6)), **args)


def test_a_row_with_every_key_blocked_is_refused():
    mha = random_mha(np.random.default_rng(0), key_padding_mask=np.ones((1, 3), bool))
    with pytest.raises(ValueError, match=r"layer 'softmax' \(Softmax\): the mask blocks every"):
        mha.forward(np.zeros((1, 3, 6)))


def test_wrong_batch_for_a_key_padding_mask_names_the_node():
    mha = random_mha(np.random.default_rng(0), key_padding_mask=np.array([[0, 0, 1], [0, 0, 0]],
                                                                          bool))
    mha.forward(np.zeros((2, 3, 6)))
    with pytest.raises(ValueError, match="softmax"):
        mha.forward(np.zeros((3, 3, 6)))
