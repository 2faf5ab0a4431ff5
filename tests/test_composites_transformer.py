"""Composites on transformer networks: the norms' rules and the attention option.

Every composite gives LayerNorm ``Epsilon(stabilizer)`` (AttnLRP Prop. 3.4, sigma
constant) and RMSNorm ``Pass()`` (LXT's identity); before, they refused these
rule-taking layers as unknown. ``attention="attnlrp"`` gives every MatMul
``UniformSplit()``; ``"cp-lrp"`` gives the products ``A V`` (A made by a Softmax)
``HeldConstant(k)``. The expected assignments are written out by hand.
"""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.rules import composites as C

RNG = np.random.default_rng(11)
E, L = 4, 3
EPS = lrp.Epsilon(1e-6)

ALL = {
    "epsilon_plus": C.epsilon_plus, "epsilon_plus_flat": C.epsilon_plus_flat,
    "epsilon_alpha2_beta1": C.epsilon_alpha2_beta1,
    "epsilon_alpha2_beta1_flat": C.epsilon_alpha2_beta1_flat,
    "epsilon_gamma_box": lambda **kw: C.epsilon_gamma_box(0, 1, **kw),
    "montavon2019": lambda **kw: C.montavon2019(0, 1, **kw),
    "attnlrp": C.attnlrp, "cp_lrp": C.cp_lrp,
}


def encoder(attention="attnlrp", seed=11):
    """conv stem (for the box composites), tokens, pre-norm attention block, RMSNorm, head."""
    rng = np.random.default_rng(seed)
    g = lrp.Graph()
    x = g.input()
    h = g.add(lrp.Conv2d(rng.standard_normal((E, 1, 1, 1))), x, name="stem")
    h = g.add(lrp.Reshape((E, L)), h, name="tokens")
    h = g.add(lrp.Permute((0, 2, 1)), h, name="to_tokens")                  # (B, L, E)
    n = g.add(lrp.LayerNorm(1 + rng.random(E), rng.standard_normal(E)), h, name="norm")
    a = g.add(lrp.MultiheadAttention(rng.standard_normal((3 * E, E)),
                                     rng.standard_normal((E, E)), 2, attention=attention), n,
              name="attn")
    h = g.add(lrp.Add(), h, a, name="add")
    h = g.add(lrp.RMSNorm(1 + rng.random(E), eps=1e-6), h, name="rms")
    h = g.add(lrp.Flatten(), h, name="flat")
    g.output(g.add(lrp.Dense(rng.standard_normal((L * E, 2))), h, name="head"))
    return g


X = RNG.random((2, 1, L, 1))


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_composite_gives_the_norms_their_rules(name):
    mapping = ALL[name]()(encoder())
    assert mapping["norm"] == lrp.Epsilon(1e-6)
    assert mapping["rms"] == lrp.Pass()
    assert "attn.context" not in mapping or name in ("attnlrp", "cp_lrp")
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert f"attn.{proj}" in mapping


def test_attention_option_assigns_the_matmuls():
    net = encoder()
    uniform = C.epsilon_plus(attention="attnlrp")(net)
    assert uniform["attn.scores"] == uniform["attn.context"] == lrp.UniformSplit()
    held = C.epsilon_plus(attention="cp-lrp")(net)
    assert held["attn.context"] == lrp.HeldConstant(0)           # A V: A by the softmax
    assert held["attn.scores"] == lrp.UniformSplit()
    assert C.attnlrp()(net)["attn.context"] == lrp.UniformSplit()
    assert C.cp_lrp()(net)["attn.context"] == lrp.HeldConstant(0)
    assert C.attnlrp()(net)["head"] == EPS and C.attnlrp()(net)["stem"] == EPS


def test_the_composite_decides_what_the_layer_was_built_with():
    # cp_lrp() on an MHA built for AttnLRP explains as the MHA built for CP-LRP with the
    # same epsilon rules and no override, and the other way round
    for built, composite, other in (("attnlrp", C.cp_lrp(), "cp-lrp"),
                                    ("cp-lrp", C.attnlrp(), "attnlrp")):
        net, reference = encoder(built), encoder(other)
        # the reference: the same rules, its MatMuls left to their own constant
        plain = {p: r for p, r in C.attnlrp()(reference).items()
                 if p not in ("attn.scores", "attn.context")}
        ours = net.explain(X, target=0, rule=composite)
        theirs = reference.explain(X, target=0, rule=lambda n, m=plain: m)
        np.testing.assert_array_equal(ours.relevance, theirs.relevance)
        assert not np.array_equal(ours.relevance,
                                  net.explain(X, target=0, rule=lambda n, m=plain: m).relevance)


def test_cp_lrp_finds_the_softmax_through_shape_nodes_and_on_either_side():
    g = lrp.Graph()
    x = g.input()
    a = g.add(lrp.Softmax(), g.add(lrp.MatMul(), x, x, name="scores"), name="softmax")
    t = g.add(lrp.Identity(), g.add(lrp.Transpose(1, 2), a, name="t"), name="dropout")
    g.output(g.add(lrp.MatMul(), x, t, name="values"))            # V^T-style: A second
    mapping = C.cp_lrp()(g)
    assert mapping == {"scores": lrp.UniformSplit(), "values": lrp.HeldConstant(1)}


def test_explain_with_attention_option_balances_per_record():
    net = encoder()
    for composite in (C.attnlrp(), C.cp_lrp(), C.epsilon_plus(attention="cp-lrp")):
        e = net.explain(X, target=1, rule=composite)
        for r in e.layers:
            total_in = (sum(part.sum() for part in r.relevance_in)
                        if isinstance(r.relevance_in, tuple) else r.relevance_in.sum())
            assert r.relevance_out.sum() == pytest.approx(total_in + r.ledger.total().sum(),
                                                          rel=1e-9, abs=1e-12), r.path


def test_repr_and_refusal():
    assert repr(C.epsilon_plus(attention="cp-lrp")) == \
        "epsilon_plus(epsilon=1e-06, stabilizer=1e-06, attention='cp-lrp')"
    assert repr(C.cp_lrp()) == "cp_lrp(epsilon=1e-06, stabilizer=1e-06, attention='cp-lrp')"
    with pytest.raises(ValueError, match="attention must be None, 'attnlrp' or 'cp-lrp'"):
        C.epsilon_plus(attention="CP-LRP")
