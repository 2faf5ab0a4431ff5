# Source of tutorials/01_lrp_by_hand.ipynb (build: python tutorials/build.py 01).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 1 — LRP by hand
#
# Layer-wise Relevance Propagation explains one output of a network, say $f(x) = 5$, by
# handing that number back to the inputs, layer by layer. Each neuron passes the
# relevance it received to the neurons below it **in proportion to how much each of them
# contributed** to it in the forward pass, so that (up to what biases absorb) nothing is
# lost or created on the way: the *conservation* of relevance.
#
# This notebook does every step on a network small enough for paper — 2 inputs, 3 hidden
# ReLU neurons, 1 output — with numbers you can check by hand. We compute each step with
# NumPy as a calculator, then let `lrp_ref` do it (its **explicit** path, which applies
# the equations literally) and read its **ledger**, the book-keeping of where every unit
# of relevance went. The equations are (5), (6) and (7) of docs/theory.md.

# %%
# %matplotlib inline
from fractions import Fraction

import numpy as np
from matplotlib.figure import Figure

import lrp_ref as lrp
from lrp_ref.viz import plot


def exact(values):
    """The entries of an array as small fractions, for comparing with paper."""
    return "(" + ", ".join(str(Fraction(float(v)).limit_denominator(1000))
                           for v in np.ravel(values)) + ")"

# %% [markdown]
# ## 1. The network and its forward pass
#
# Neuron $i$ of one layer, with activation $a_i$, sends $z_{ij} = a_i w_{ij}$ to neuron
# $j$ of the next layer, which adds them up with its bias and applies the ReLU:
#
# $$z_{ij} = a_i w_{ij}, \qquad z_j = \sum_i z_{ij} + b_j, \qquad a_j = \max(0, z_j).$$
#
# Our network (`lrp_ref` stores a Dense weight as `W[i, j]` $= w_{ij}$, shape
# (inputs, outputs), so the forward pass is `a @ W + b`):
#
# $$W_1 = \begin{pmatrix} 1 & -1 & 0.5 \\ 1 & 1 & -1 \end{pmatrix}, \quad
#   b_1 = (0, 0.5, 0), \qquad W_2 = \begin{pmatrix} 1 \\ 2 \\ 1 \end{pmatrix}, \quad
#   b_2 = -1$$
#
# and the input is $x = (1, 2)$. On paper:
#
# * hidden: $z = (1 + 2 + 0,\; -1 + 2 + 0.5,\; 0.5 - 2 + 0) = (3, 1.5, -1.5)$, so
#   $h = \max(0, z) = (3, 1.5, 0)$ — the third neuron is off;
# * output: $f(x) = 3 \cdot 1 + 1.5 \cdot 2 + 0 \cdot 1 - 1 = 5$.

# %%
W1 = np.array([[1.0, -1.0, 0.5],
               [1.0, 1.0, -1.0]])
b1 = np.array([0.0, 0.5, 0.0])
W2 = np.array([[1.0], [2.0], [1.0]])
b2 = np.array([-1.0])
x = np.array([[1.0, 2.0]])          # a batch of one sample: batch first, always

z1 = x @ W1 + b1
h = np.maximum(0, z1)
f = h @ W2 + b2
print("hidden pre-activations z =", exact(z1))
print("hidden activations     h =", exact(h))
print("output              f(x) =", exact(f))

# %% [markdown]
# The same network in `lrp_ref`: a `Sequential` of `Dense`, `ReLU`, `Dense`. Its layers
# have *paths* `"0"`, `"1"`, `"2"` (their positions), which the ledger uses below.

# %%
net = lrp.Sequential([lrp.Dense(W1, b1), lrp.ReLU(), lrp.Dense(W2, b2)])
print(net)
print("f(x) =", net.forward(x))

# %% [markdown]
# ## 2. Equation (5), LRP-0, at the output layer
#
# LRP starts with all relevance at the explained output: $R_{\text{out}} = f(x) = 5$.
# The output neuron $j$ hands it to its inputs $i$ (the hidden activations) in proportion
# to their contributions $z_{ij}$:
#
# $$R_{i \leftarrow j} = \frac{z_{ij}}{z_j} R_j \qquad\text{(5)}, \qquad
#   R_i = \sum_j R_{i \leftarrow j}.$$
#
# On paper: $z_{ij} = h_i w_{ij} = (3 \cdot 1, 1.5 \cdot 2, 0 \cdot 1) = (3, 3, 0)$ and
# $z_j = 3 + 3 + 0 - 1 = 5$, so $R_h = (3, 3, 0) / 5 \cdot 5 = (3, 3, 0)$.
#
# These add up to **6**, not 5: the bias contributed $b_j = -1$ to $z_j$, and it takes
# its share $\frac{b_j}{z_j} R_j = -1$ too. A negative bias pulled the output down, so
# the real inputs receive more than $R_j$. Keep this $-1$ in mind.

# %%
R_out = f                                       # (1, 1): R_j = f(x)
z_ij = h[:, :, None] * W2[None, :, :]           # (batch, i, j): z_ij = h_i w_ij
z_j = z_ij.sum(axis=1) + b2                     # (batch, j)
R_h = (z_ij / z_j[:, None, :] * R_out[:, None, :]).sum(axis=2)
print("z_ij =", exact(z_ij), "  z_j =", exact(z_j))
print("R_h  =", exact(R_h), "  sum:", R_h.sum())
print("the bias takes b_j / z_j * R_j =", exact(b2 / z_j * R_out))

# %% [markdown]
# **The ReLU.** The relevance of $h_i = \max(0, z_i)$ goes unchanged to $z_i$: the ReLU
# is element-wise, there is nothing to share. (The third neuron already received 0: it
# contributed $z_{3j} = 0 \cdot 1$.)
#
# ## 3. Equation (5) at the hidden layer
#
# Now every hidden neuron $j$ shares its $R_j$ between the two inputs. The contributions
# $z_{ij} = x_i w_{ij}$ form a 2 x 3 table (rows: inputs, columns: hidden neurons):
#
# $$z_{ij} = \begin{pmatrix} 1 & -1 & 0.5 \\ 2 & 2 & -2 \end{pmatrix}, \qquad
#   z_j = (3,\; 1.5,\; -1.5) \text{ (with } b_1\text{)}, \qquad R_j = (3, 3, 0).$$
#
# * neuron 1: $R_{1 \leftarrow 1} = \frac{1}{3} \cdot 3 = 1$,
#   $R_{2 \leftarrow 1} = \frac{2}{3} \cdot 3 = 2$;
# * neuron 2: $R_{1 \leftarrow 2} = \frac{-1}{1.5} \cdot 3 = -2$,
#   $R_{2 \leftarrow 2} = \frac{2}{1.5} \cdot 3 = 4$, and its bias takes
#   $\frac{0.5}{1.5} \cdot 3 = 1$;
# * neuron 3: $R_j = 0$, nothing to share.
#
# Summing each row: $R_x = (1 - 2,\; 2 + 4) = (-1, 6)$. Input 1 gets **negative**
# relevance: it pushed neuron 2 down. The total is $5 = f(x)$: the output bias took
# $-1$, the hidden bias $+1$, and they cancel here.

# %%
R_i_from_j = (x[:, :, None] * W1[None]) / z1[:, None, :] * R_h[:, None, :]
print("R_{i<-j} (rows: inputs, columns: hidden neurons):")
print(R_i_from_j[0] + 0.0)                                     # + 0.0 turns -0 into 0
R_x = R_i_from_j.sum(axis=2)
print("R_x =", exact(R_x), "  sum:", R_x.sum(), "  f(x):", f[0, 0])

# %% [markdown]
# ## 4. The same with `lrp_ref`, and its ledger
#
# `explain` does all of this: it seeds the output with the target logit (here the only
# one), walks the layers backwards and records every step. `method="explicit"`
# materialises every $z_{ij}$ and applies the equation literally, as we just did.

# %%
e = net.explain(x, rule=lrp.Zero(), method="explicit")
print("output:", e.output, " target:", e.target)
print("R_h (relevance entering the last layer's input):", exact(e.layer("2").relevance_in))
print("R_x (LRP-0):", exact(e.relevance))

# %% [markdown]
# Every record of the explanation balances its own books:
#
# $$\sum R_{\text{out}} = \sum R_{\text{in}} + \text{absorbed by the bias}
#   + \text{absorbed by the stabilizer} + \text{dropped},$$
#
# with each term computed from the rule's own quantities (the bias term is
# $\sum_j \frac{b_j}{z_j} R_j$), not as a remainder — so `imbalance` is a real check.
# The rows are in the network's order, input first; relevance flows from the bottom row
# up. The two bias entries are the $-1$ and $+1$ we found by hand.

# %%
print(e.ledger())

# %%
plot.ledger_chart(e, title="LRP-0 on the 2-3-1 network")

# %% [markdown]
# ## 5. The fast path: four array operations
#
# Materialising every $z_{ij}$ is fine here but not for a convolutional network. Since
# $\sum_j \frac{a_i w_{ij}}{z_j} R_j = a_i \sum_j w_{ij} \frac{R_j}{z_j}$, the same
# numbers come from four array operations (the *z, s, c, R* steps of Montavon et al.'s
# LRP tutorial), which is what `method="fast"` (the default) does:
#
# 1. $z = $ forward pass of the layer, $z_j = \sum_i a_i w_{ij} + b_j$
# 2. $s_j = R_j / z_j$
# 3. $c_i = \sum_j w_{ij} s_j$ — a backward pass, `s @ W.T`
# 4. $R_i = a_i c_i$
#
# For the hidden layer (with the safe division that gives 0 where $z_j = 0$):

# %%
z = x @ W1 + b1                                           # step 1
s = np.divide(R_h, z, out=np.zeros_like(z), where=z != 0)  # step 2
c = s @ W1.T                                              # step 3
print("four steps:", exact(x * c))                        # step 4
fast = net.explain(x, rule=lrp.Zero(), method="fast")
print("fast path:", exact(fast.relevance), " explicit:", exact(e.relevance))
print("largest difference:", np.abs(fast.relevance - e.relevance).max())

# %% [markdown]
# ## 6. LRP-0 is Gradient x Input here
#
# On a ReLU network (with the biases in the denominators) LRP-0 gives exactly
# *Gradient x Input*, $x_i \, \partial f / \partial x_i$ (Ancona et al. 2018). By hand:
# only neurons 1 and 2 are active, so $\partial f / \partial x_i = \sum_{j \in \{1, 2\}}
# w^{(1)}_{ij} w^{(2)}_j$, i.e. $(1 \cdot 1 - 1 \cdot 2,\; 1 \cdot 1 + 1 \cdot 2) = (-1, 3)$;
# times $x = (1, 2)$: $(-1, 6)$ — our $R_x$. So LRP-0 inherits the noise of gradients in
# deep networks; the next two rules are the remedies.

# %%
print("gradient          :", exact(net.gradient(x)))
print("gradient x input  :", exact(net.gradient_x_input(x)))

# %% [markdown]
# ## 7. Equation (6), LRP-ε
#
# A neuron with $z_j$ close to 0 makes the shares $z_{ij} / z_j$ huge and erratic. LRP-ε
# adds a stabilizer to the denominator:
#
# $$R_{i \leftarrow j} = \frac{z_{ij}}{z_j + \epsilon \cdot \mathrm{sign}(z_j)} R_j
#   \qquad\text{(6)}, \qquad \mathrm{sign}(0) := +1.$$
#
# With a (deliberately large) $\epsilon = 1$:
#
# * output layer: denominator $5 + 1 = 6$, so $R_h = (3, 3, 0) / 6 \cdot 5 =
#   (2.5, 2.5, 0)$; the bias takes $-1/6 \cdot 5 = -5/6$, the stabilizer $+5/6$;
# * neuron 1: denominator $3 + 1 = 4$: $(1/4, 2/4) \cdot 2.5 = (0.625, 1.25)$, the
#   stabilizer takes $0.625$;
# * neuron 2: denominator $1.5 + 1 = 2.5$: $(-1, 2) / 2.5 \cdot 2.5 = (-1, 2)$, the bias
#   takes $0.5$, the stabilizer $1$.
#
# $R_x = (0.625 - 1,\; 1.25 + 2) = (-0.375, 3.25)$, total $2.875$: the stabilizer
# absorbed $5/6 + 1.625$, most of it at the weakly activated neurons.

# %%
e_eps = net.explain(x, rule=lrp.Epsilon(1.0), method="explicit")
print("R_x (LRP-eps, eps = 1):", exact(e_eps.relevance), " sum:", e_eps.relevance.sum())
print(e_eps.ledger())

# %% [markdown]
# ## 8. Equation (7), LRP-αβ
#
# Split every contribution by sign, $z^+_{ij} = \max(0, z_{ij})$ and
# $z^-_{ij} = \min(0, z_{ij})$ (each with its half of the bias:
# $z^+_j = \sum_i z^+_{ij} + \max(0, b_j)$), and redistribute the two halves separately.
# docs/theory.md writes it
#
# $$R_{i \leftarrow j} = \left(\alpha' \frac{z^+_{ij}}{z^+_j}
#   + \beta' \frac{z^-_{ij}}{z^-_j}\right) R_j \qquad\text{(7)}, \qquad
#   \alpha' + \beta' = 1.$$
#
# `lrp_ref`, like Zennit, iNNvestigate and the later LRP papers, writes the same family
# with the negative half *subtracted*, $\alpha \frac{z^+_{ij}}{z^+_j} - \beta
# \frac{z^-_{ij}}{z^-_j}$ with $\alpha - \beta = 1$: `AlphaBeta(2, 1)` is the
# $\alpha' = 2, \beta' = -1$ (`AlphaBeta.from_eq7(2, -1)` builds it from that form).
#
# **$\alpha = 1, \beta = 0$** keeps only the supporting evidence. By hand:
#
# * output layer: $z^+_{ij} = (3, 3, 0)$, and $b_2 = -1$ belongs to the negative half, so
#   $z^+_j = 6$: $R_h = (3, 3, 0) / 6 \cdot 5 = (2.5, 2.5, 0)$;
# * neuron 1: $z^+ = (1, 2)$, $z^+_j = 3$: $(5/6, 5/3)$;
# * neuron 2: $z^+ = (0, 2)$ (input 1's $-1$ is negative), $z^+_j = 2 + 0.5 = 2.5$:
#   $(0, 2)$, the bias takes $0.5$.
#
# $R_x = (5/6,\; 5/3 + 2) = (5/6, 11/3)$: input 1 is no longer negative — its negative
# contribution to neuron 2 is ignored.

# %%
e_ab10 = net.explain(x, rule=lrp.AlphaBeta(1, 0), method="explicit")
print("R_x (alpha=1, beta=0):", exact(e_ab10.relevance))

# %% [markdown]
# **$\alpha = 2, \beta = 1$** weighs the supporting evidence twice and subtracts the
# contradicting evidence once. At neuron 1 there is no negative contribution at all, so
# its negative half has nothing to go to: $\alpha R_j = 10$ goes down and $-\beta R_j =
# -5$ is booked as **dropped** (negative: the rule *created* relevance). At the output
# layer, the negative half consists of the bias $b_2 = -1$ alone: it takes $-\beta R_j =
# -5$ while the positive half hands $\alpha R_j = 10$ to the hidden layer. The result is
# $R_x = (-5/3, 44/3)$, which sums to 13, not 5; the ledger books every step.

# %%
e_ab21 = net.explain(x, rule=lrp.AlphaBeta(2, 1), method="explicit")
print("R_x (alpha=2, beta=1):", exact(e_ab21.relevance), " sum:", e_ab21.relevance.sum())
print(e_ab21.ledger())
# the form of docs/theory.md, alpha' = 2, beta' = -1, gives the same numbers, bit for bit
assert (net.explain(x, rule=lrp.AlphaBeta.from_eq7(2, -1), method="explicit").relevance
        == e_ab21.relevance).all()

# %% [markdown]
# ## 9. Four rules, one network
#
# The same input, the same network, four answers. Each is "correct" for its rule: the
# choice of rule is part of the explanation (docs/theory.md calls this LRP's biggest drawback).

# %%
explanations = {"LRP-0": e, "LRP-ε (ε = 1)": e_eps, "LRP-αβ (1, 0)": e_ab10,
                "LRP-αβ (2, 1)": e_ab21}
fig = Figure(figsize=(9, 2.2), layout="constrained")
for ax, (name, ex) in zip(fig.subplots(1, 4, sharex=True), explanations.items()):
    plot.feature_bars(ex.relevance[0], ["x1", "x2"], ax=ax,
                      title=f"{name}\nsum {ex.relevance.sum():.3g}")
fig

# %%
plot.relevance_flow(explanations, title="sum of relevance entering each layer (f(x) = 5)")

# %% [markdown]
# Reading the flow from left to right (output to input): LRP-0 goes up to 6 at the output
# layer (the negative bias) and back to 5 at the hidden layer (the positive one); LRP-ε
# keeps 5 at the output layer (its bias and stabilizer shares cancel) and loses 2.125 at
# the hidden layer; LRP-αβ(1, 0) loses only the 0.5 the positive hidden bias absorbs; and
# LRP-αβ(2, 1) doubles the relevance at the output layer and gains 3 more at the hidden
# layer (+5 created at neuron 1, 2 absorbed by the bias of neuron 2).
#
# ## 10. Check: paper = `lrp_ref`
#
# The hand results above, once more, against the library (explicit and fast paths).

# %%
by_hand = {"Zero": (lrp.Zero(), [-1, 6]), "Epsilon(1)": (lrp.Epsilon(1.0), [-0.375, 3.25]),
           "AlphaBeta(1, 0)": (lrp.AlphaBeta(1, 0), [5 / 6, 11 / 3]),
           "AlphaBeta(2, 1)": (lrp.AlphaBeta(2, 1), [-5 / 3, 44 / 3])}
for name, (rule, expected) in by_hand.items():
    for method in ("explicit", "fast"):
        got = net.explain(x, rule=rule, method=method).relevance[0]
        assert np.allclose(got, expected, rtol=1e-14, atol=1e-14), (name, method, got)
    print(f"{name:16s} R_x = {exact(expected):14s} paper and lrp_ref agree")

# %% [markdown]
# ## Exercises
#
# 1. Take $x = (2, 1)$. Compute $z$, $h$, $f(x)$ and the LRP-0 relevance $R_x$ on paper,
#    then check with `net.explain(np.array([[2.0, 1.0]]), rule=lrp.Zero())`. Which hidden
#    neurons are active now?
# 2. Why does the third hidden neuron never receive relevance for $x = (1, 2)$, under
#    any rule?
# 3. What happens to $R_x$ under LRP-ε as $\epsilon$ grows (try 10 and 1000)? Read the
#    `absorbed_stabilizer` column of the ledger.
# 4. `lrp.Zero(bias=False)` leaves the biases out of the denominators (the forward pass is
#    unchanged). Compute $R_x$ by hand and check. Is relevance conserved now?
