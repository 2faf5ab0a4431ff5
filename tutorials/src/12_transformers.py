# Source of tutorials/12_transformers.ipynb (build: python tutorials/build.py 12).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 12 — Transformers: attention and LayerNorm by hand, AttnLRP beside CP-LRP
#
# A transformer mixes tokens with attention, $O = \mathrm{softmax}(Q K^\top)\, V$, and
# normalises every token with LayerNorm. Neither is a linear layer, and the two published
# LRP treatments differ exactly there:
#
# * **AttnLRP** (Achtibat et al. 2024, ICML): a product of two activations splits its
#   relevance *uniformly* between its factors (Prop. 3.3), the softmax gets Gradient ×
#   Input (Prop. 3.1, which does not conserve);
# * **CP-LRP** (Ali et al. 2022, ICML): the attention weights $A$ are held *constant*,
#   so all relevance flows along the values $V$ and none reaches the softmax.
#
# Both hold LayerNorm's $1/\sigma$ constant. This notebook works both through on a
# two-token example you can check on paper, then explains a small transformer shipped
# with lrp_ref — built node by node, so that every matrix product has its own line in the
# ledger — token by token with both, beside the raw attention weights that are often
# shown as "explanations". The equations: [docs/transformers.md](../docs/transformers.md).

# %%
# %matplotlib inline
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

import lrp_ref as lrp
from lrp_ref.evaluation import aopc, relevance_mass_accuracy, token_flipping
from lrp_ref.extensions import text
from lrp_ref.viz import plot
from lrp_ref.zoo import models, sentiment
from lrp_ref.zoo import transformer as tr
from lrp_ref.zoo.train import by_length

np.set_printoptions(precision=4, suppress=True)
LN3 = np.log(3)


def exact(values):
    """The entries of an array as small fractions, for comparing with paper."""
    return "(" + ", ".join(str(Fraction(float(v)).limit_denominator(1000))
                           for v in np.ravel(values)) + ")"

# %% [markdown]
# ## 1. Attention by hand: two tokens
#
# Two tokens $x_1 = (1, 0)$, $x_2 = (0, 1)$ (rows of $X = I$) and three `Dense` maps (no
# bias) give queries, keys and values $Q = X W_q$, $K = X W_k$, $V = X W_v$ with
# $W_q = I$, $W_k = \begin{pmatrix} 0 & 0 \\ \ln 3 & 0 \end{pmatrix}$,
# $W_v = \begin{pmatrix} 4 & 0 \\ 0 & 2 \end{pmatrix}$. So
# $S = Q K^\top = \begin{pmatrix} 0 & \ln 3 \\ 0 & 0 \end{pmatrix}$, the softmax of each row
# is $A = \begin{pmatrix} 1/4 & 3/4 \\ 1/2 & 1/2 \end{pmatrix}$ and
# $O = A V = \begin{pmatrix} 1 & 3/2 \\ 2 & 1 \end{pmatrix}$. (A real model scales $S$ by
# $1/\sqrt{d}$ first, a `Scale` node; it passes relevance unchanged.)
#
# Every product is a node: `MatMul` for $Q K^\top$ and $A V$, a `Transpose` for $K^\top$.
# We start from $R = O$ (sum $5.5$) and use $\varepsilon = 0$ throughout.

# %%
def attention_graph(constant):
    """Q, K, V by Dense maps of the tokens; O = softmax(Q K^T) V. constant=0: CP-LRP."""
    g = lrp.Graph()
    x = g.input("x")
    q = g.add(lrp.Dense(np.eye(2)), x, name="q")
    k = g.add(lrp.Dense([[0.0, 0.0], [LN3, 0.0]]), x, name="k")
    v = g.add(lrp.Dense([[4.0, 0.0], [0.0, 2.0]]), x, name="v")
    s = g.add(lrp.MatMul(epsilon=0), q, g.add(lrp.Transpose(1, 2), k, name="kT"), name="qk")
    a = g.add(lrp.Softmax(), s, name="softmax")
    g.output(g.add(lrp.MatMul(epsilon=0, constant=constant), a, v, name="av"))
    return g


X = np.eye(2)[None]                                   # one sample, 2 tokens, 2 features
O = attention_graph(None).forward(X)
print("A =", exact(lrp.Softmax().forward(np.array([[[0, LN3], [0, 0]]]))), " O =", exact(O))

# %% [markdown]
# **AttnLRP at `av`** (Prop. 3.3): each term $z_{jip} = A_{ji} V_{ip}$ of $O_{jp}$ takes
# its share $z_{jip} / O_{jp} \cdot R_{jp}$, and half of it goes to each factor. With
# $R = O$ the shares are the terms themselves:
#
# * $R(A_{ji}) = \tfrac12 A_{ji} \sum_p V_{ip}$: $\tfrac12 (1/4 \cdot 4,\ 3/4 \cdot 2,\
#   1/2 \cdot 4,\ 1/2 \cdot 2) = (1/2, 3/4, 1, 1/2)$;
# * $R(V_{ip}) = \tfrac12 V_{ip} \sum_j A_{ji}$: $\tfrac12 (4 \cdot 3/4,\ 0,\ 0,\
#   2 \cdot 5/4) = (3/2, 0, 0, 5/4)$.
#
# Each factor gets $2.75$, half of $5.5$. **The softmax** (Prop. 3.1) hands
# $R(S_i) = S_i (R_i - A_i \sum_j R_j)$ down, row by row: row 1 has $S = (0, \ln 3)$,
# $R = (1/2, 3/4)$, $\sum = 5/4$, so $R(S_{12}) = \ln 3\,(3/4 - 3/4 \cdot 5/4) =
# -\tfrac{3}{16} \ln 3$; row 2 has $S = 0$ and gets nothing. So all of the $2.75$ that
# reached $A$, and $\tfrac{3}{16}\ln 3$ more, stop here: the ledger books
# $\tfrac{11}{4} + \tfrac{3}{16}\ln 3 \approx 2.9560$ as the softmax's bias (the
# zero-order term of its Taylor expansion). `qk` splits $-\tfrac{3}{16}\ln 3$ uniformly:
# $-\tfrac{3}{32}\ln 3$ to $Q_{11}$ (token 1, through $W_q = I$) and to $K^\top_{12} =
# K_{21} = \ln 3 \cdot x_{22}$ (token 2). With the values' $3/2$ (token 1) and $5/4$
# (token 2) the tokens get $3/2 - \tfrac{3}{32}\ln 3 \approx 1.3970$ and
# $5/4 - \tfrac{3}{32}\ln 3 \approx 1.1470$.
#
# **CP-LRP** holds $A$ constant: $R(V_{ip}) = V_{ip} \sum_j A_{ji}$, twice AttnLRP's,
# $(3, 0, 0, 5/2)$, $A$ gets nothing, and the tokens get $(3, 5/2)$: all of $5.5$.

# %%
for name, constant in (("AttnLRP", None), ("CP-LRP", 0)):
    e = attention_graph(constant).explain(X, output_relevance=O, rule=lrp.Zero())
    R_A, R_V = e.layer("av").relevance_in
    print(f"{name:8s} R(A) = {exact(R_A)}   R(V) = {exact(R_V)}")
    print(f"{name:8s} R(S) / ln 3 = {exact(e.layer('softmax').relevance_in / LN3)}   "
          f"softmax bias = {e.layer('softmax').absorbed_bias[0]:.4f}")
    tokens_R = ", ".join(f"{r:.4f}" for r in e.relevance.sum(axis=2).ravel())
    print(f"{name:8s} R_tokens = ({tokens_R}), sum {e.relevance.sum():.4f} of 5.5")
print(e.ledger())

# %% [markdown]
# The CP-LRP ledger shows $5.5$ arriving at `av` and all of it leaving along `v` (row
# `v`): nothing reaches `softmax`, `qk`, `q` or `k`, and the tokens keep all of it. Under
# AttnLRP the tokens keep $2.75 - \tfrac{3}{16}\ln 3 \approx 2.5440$: the value half, and
# what little the softmax passes on (negative here).
#
# ## 2. LayerNorm by hand: two tokens
#
# $y = \gamma\,(x - \mu)/\sigma + \beta$ per token, with $\gamma = (2, 4, 1)$,
# $\beta = (2, 1, 1)$ and the variance offset $\epsilon = 2$. Token 1 $x = (1, 1, 4)$:
# $\mu = 2$, $\sigma = \sqrt{2 + 2} = 2$, $\hat x = (-1/2, -1/2, 1)$,
# $h = \gamma \hat x = (-1, -2, 1)$, $y = (1, -1, 2)$. Token 2 $x = (4, 1, 1)$: $\mu = 2$,
# $\sigma = 2$, $\hat x = (1, -1/2, -1/2)$, $h = (2, -2, -1/2)$, $y = (4, -1, 1/2)$.
#
# With $1/\sigma$ held constant the layer is linear, and LRP-0 (`Zero()`) runs in two
# steps. From $R = y$: the **affine step** gives $R(\hat x_j) = h_j / y_j \cdot R_j = h_j$
# and books $\beta$ (sum $4$ per token) as bias; the **centring** $c_j = x_j - \mu$ gives
# $R_i = x_i (s_i - \bar s)$ with $s_j = R(\hat x_j)/c_j$:
#
# * token 1: $c = (-1, -1, 2)$, $s = (1, 2, 1/2)$, $\bar s = 7/6$,
#   $R = (1 \cdot (-1/6),\ 1 \cdot 5/6,\ 4 \cdot (-2/3)) = (-1/6, 5/6, -8/3)$, sum $-2 = 2 - 4$;
# * token 2: $c = (2, -1, -1)$, $s = (1, 2, 1/2)$, $\bar s = 7/6$,
#   $R = (4 \cdot (-1/6),\ 1 \cdot 5/6,\ 1 \cdot (-2/3)) = (-2/3, 5/6, -2/3)$,
#   sum $-1/2 = 7/2 - 4$.

# %%
norm = lrp.LayerNorm([2.0, 4.0, 1.0], [2.0, 1.0, 1.0], eps=2.0)
g = lrp.Graph()
g.output(g.add(norm, g.input("x"), name="ln"))
x_ln = np.array([[[1.0, 1.0, 4.0], [4.0, 1.0, 1.0]]])
y = g.forward(x_ln)
e_ln = g.explain(x_ln, output_relevance=y, rule=lrp.Zero())
print("y =", exact(y))
for t in range(2):
    print(f"LayerNorm token {t + 1}: R_x = {exact(e_ln.relevance[0, t])}  "
          f"sum {e_ln.relevance[0, t].sum():+.4f}")
print(e_ln.ledger())

# %% [markdown]
# The ledger's bias column holds $8$: both tokens' $\beta$. With $\beta = 0$ and `Zero()`
# LayerNorm conserves exactly; with `Epsilon(e)` both steps book a stabilizer too.
#
# ## 3. The shipped transformer
#
# `models.sentiment_transformer()` is one pre-LayerNorm encoder block with two attention
# heads, trained with lrp_ref's own backward pass (`scripts/train_sentiment_transformer.py`)
# on the sentiment template of tutorial 9, whose **deciding tokens** are known: the
# adjective of the last clause and its negation, if any. It is a `Graph` of the
# primitives above; `net.table()` lists every node.

# %%
net, vocab = models.sentiment_transformer()
print(net.table())
print(f"held-out accuracy: {tr.held_out_accuracy(net, vocab):.3f} "
      f"({round(tr.held_out_accuracy(net, vocab) * tr.TEST_N)}/{tr.TEST_N})")

# %% [markdown]
# The composites `lrp.composites.attnlrp(1e-6)` and `lrp.composites.cp_lrp(1e-6)` give
# every Dense, LayerNorm and the pooling `Epsilon(1e-6)` and the two `MatMul` nodes the
# rule of their name: AttnLRP's uniform split, or CP-LRP's `A` held constant in `A v`.
# Gradient × Input is taken at the token embeddings (`lrp_ref.text`);
# the raw attention weights and attention rollout (Abnar and Zuidema 2020) score a token by
# the attention it receives, averaged over heads and queries (with one layer, rollout is
# $a_t / 2 + 1/(2T)$: the same ranking, flatter).

# %%
rules = {"AttnLRP": lrp.composites.attnlrp(1e-6), "CP-LRP": lrp.composites.cp_lrp(1e-6)}


def token_scores(ids, target=None):
    """Every method's score per token, for the target (None: the predicted class)."""
    scores = {name: net.explain(ids, target, rule=rule).relevance for name, rule in rules.items()}
    scores["Gradient x Input"] = text.gradient_x_input(net, ids, target)
    foils = tr.attention_scores(net, ids)
    scores["attention weights"], scores["attention rollout"] = foils["attention"], foils["rollout"]
    return scores


sentences = ["the movie was not good .",
             "honestly , the plot was dull , but this film is really brilliant ."]
fig, axes = plt.subplots(2 * 5, 1, figsize=(11, 4.6))
for k, sentence in enumerate(sentences):
    ids = vocab.encode([sentence])
    tokens = sentiment.tokenize(sentence)
    label = sentiment.CLASSES[int(net.forward(ids).argmax())]
    for row, (name, R) in enumerate(token_scores(ids).items()):
        plot.plot_tokens(axes[5 * k + row], tokens, R[0], title=f"{name}", fontsize=11)
        top = [tokens[t] for t in np.argsort(-R[0], kind="stable")[:2]]
        print(f"{label:8s} {name:17s} top two: {top}  "
              + " ".join(f"{t}:{r:+.2f}" for t, r in zip(tokens, R[0])))
fig.tight_layout()

# %% [markdown]
# Both LRP variants put nearly all relevance on the deciding tokens: "not" and "good" (for
# *negative*), "brilliant" (for *positive*) — and, as much, on "dull", the adjective of
# the clause before "but", which the template's rule ignores. Is that the explanation's
# error or the model's habit? Ask the model: blank "dull", or make it "good".

# %%
contrast = sentiment.tokenize(sentences[1])
for word in ("dull", tr.BLANK, "good"):
    changed = [word if t == "dull" else t for t in contrast]
    print(f"first adjective {word:8s} -> positive logit "
          f"{net.forward(vocab.encode([changed]))[0, 1]:.3f}")

# %% [markdown]
# The positive logit is highest with "dull": the model has learned that the clause before
# "but" counts *against* its own adjective (in the template that clause's sentiment is
# independent of the label, so this is a habit the training data allowed, not the rule).
# The LRP explanations show what the model does; the ground-truth scores below, which
# count only the last clause, mark it down. CP-LRP's values are about twice AttnLRP's:
# under AttnLRP half of what reaches `av` goes to the attention weights, and the softmax
# absorbs most of it. The ledgers show where:

# %%
ids = vocab.encode([sentences[0]])
explanations = {name: net.explain(ids, rule=rule) for name, rule in rules.items()}
for name, e in explanations.items():
    worst = max(float(np.abs(r.imbalance()).max()) for r in e.layers)
    print(f"{name:8s} logit {e.output[0, e.target[0]]:.3f}  tokens {e.relevance.sum():.3f}  "
          f"softmax in {e.layer('softmax').relevance_out.sum():+.3f} "
          f"out {e.layer('softmax').relevance_in.sum():+.4f}  "
          f"positions {e.layer('pos').absorbed_bias[0]:+.3f}  largest imbalance {worst:.1e}")
print(explanations["AttnLRP"].ledger())

# %% [markdown]
# Read the AttnLRP ledger from the bottom: the head hands the pooled tokens their share,
# `ln_f` and the MLP's Dense layers book their biases, `res1`/`res2` split between the
# branch and the skip; at `av` the relevance doubles in count (it is split between $A$
# and $V$), and the `softmax` row books almost all of $A$'s half as its bias. The
# `pos` row books the positional embeddings' share (they are a bias to the tokens). The
# raw attention weights, by contrast, are the same for both classes and carry no sign:
# a foil, not an explanation.
#
# ## 4. Against the ground truth
#
# Over the first 300 held-out sentences: the **relevance mass accuracy** (the share of
# positive relevance on the deciding tokens, Arras et al. 2022) and the **token-flipping
# AOPC** (blank the most relevant tokens first, in 5 steps, with `<blank>`, whose embedding
# is zero; a larger mean drop of the target logit is better). The full benchmark,
# 1000 sentences with bootstrap intervals:
# `python benchmarks/explanation_quality.py --task tokens`.

# %%
data = sentiment.make_sentiment(tr.TEST_N, seed=tr.TEST_SEED)
n = 300
all_ids, labels = tr.encode(vocab, data.sentences[:n]), data.labels[:n]
blank = vocab.ids[tr.BLANK]
mass, drop = {}, {}
for index in by_length(all_ids):
    ids = np.stack([all_ids[k] for k in index])
    mask = np.stack([data.deciding[k] for k in index])
    for name, R in token_scores(ids, labels[index]).items():
        mass.setdefault(name, []).extend(relevance_mass_accuracy(R, mask))
        curve = token_flipping(net, ids, R, blank, labels[index], steps=5)
        drop.setdefault(name, []).extend(aopc(curve))
print(f"{'method':17s} mass accuracy   AOPC (MoRF)")
for name in sorted(mass, key=lambda m: -np.mean(mass[m])):
    print(f"{name:17s} {np.mean(mass[name]):.3f}           {np.mean(drop[name]):.3f}")

# %% [markdown]
# On this model CP-LRP scores best on both measures, AttnLRP next; the attention weights
# often rank the deciding tokens first (the benchmark's rank accuracy) but put less of
# their mass there, and rollout, which adds the residual as $1/(2T)$ to every token, is
# flatter still (its flipping curve is the attention weights', as its ranking is).
# Gradient × Input puts the least mass on the deciding tokens: the gradient of a
# well-trained, saturated model is small, and its sign at "not" is the wrong one. That is
# one model on one task — the point of a reference is that such comparisons can now be
# made exactly, with every product's ledger at hand.
