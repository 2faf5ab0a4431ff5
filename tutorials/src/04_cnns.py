# Source of tutorials/04_cnns.ipynb (build: python tutorials/build.py 04).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 4 — Convolutional networks: convolution, max-pooling, two paths
#
# The theory (docs/theory.md, section 5): LRP is at its best on CNNs ("which pixels made
# the network say *dog*?").
# A CNN adds two layer types to tutorial 1's Dense and ReLU:
#
# * **convolution** — still a linear layer, so equations (5)-(7) apply unchanged, once we
#   say which inputs $i$ feed which output $j$;
# * **max-pooling** — *not* linear: docs/theory.md (section 6) calls the usual
#   winner-take-all treatment "a heuristic, not the only correct one". `lrp_ref` offers two modes.
#
# We work both by hand, then explain the shipped digits CNN, check that the explicit
# and fast paths agree, and see when LRP-0 equals Gradient x Input.

# %%
# %matplotlib inline
import time

import numpy as np

import lrp_ref as lrp
from lrp_ref.rules import canonize
from lrp_ref.viz import plot
from lrp_ref.zoo import models

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. Convolution by hand
#
# A convolution (cross-correlation, as in PyTorch) slides a kernel $w$ over the input.
# Output $j = (o, p, q)$ — channel $o$ at position $(p, q)$ — sees the window of inputs
# $i = (c, p + u, q + v)$:
#
# $$z_j = \sum_{c, u, v} a_{c, p+u, q+v}\, w_{o, c, u, v} + b_o, \qquad
#   z_{ij} = a_i w_{ij} \text{ for the } i \text{ in } j\text{'s window.}$$
#
# So a Conv2d is a Dense layer with shared weights and most $w_{ij} = 0$: eq. (5) reads
# $R_i = \sum_j \frac{z_{ij}}{z_j} R_j$ over the windows that contain $i$.
#
# By hand: a 3x3 input, one 2x2 kernel, no bias, stride 1 — a 2x2 output:
#
# $$a = \begin{pmatrix} 1 & 2 & 0 \\ 0 & 1 & 3 \\ 2 & 0 & 1 \end{pmatrix}, \quad
#   w = \begin{pmatrix} 1 & -1 \\ 0 & 2 \end{pmatrix} \quad\Rightarrow\quad
#   z = \begin{pmatrix} 1 - 2 + 0 + 2 & 2 - 0 + 0 + 6 \\ 0 - 1 + 0 + 0 & 1 - 3 + 0 + 2
#   \end{pmatrix} = \begin{pmatrix} 1 & 8 \\ -1 & 0 \end{pmatrix}.$$
#
# Take $R_{\text{out}} = \begin{pmatrix} 1 & 2 \\ 0 & 1 \end{pmatrix}$ and LRP-0:
#
# * window $(0, 0)$: $z_{ij} = (1, -2, 0, 2)$, $z_j = 1$, $R_j = 1$: shares
#   $(1, -2, 0, 2)$ to the inputs $(0,0), (0,1), (1,0), (1,1)$;
# * window $(0, 1)$: $z_{ij} = (2, 0, 0, 6)$, $z_j = 8$, $R_j = 2$: shares
#   $(0.5, 0, 0, 1.5)$ to $(0,1), (0,2), (1,1), (1,2)$;
# * window $(1, 0)$: $R_j = 0$;
# * window $(1, 1)$: $z_j = 0$ — the contributions $(1, -3, 0, 2)$ cancel. Eq. (5) divides
#   by zero; `lrp_ref` passes nothing down and books $R_j = 1$ as **dropped**.
#
# Adding up where windows overlap: $R_{(0,1)} = -2 + 0.5 = -1.5$,
# $R_{(1,1)} = 2 + 0 = 2$, so
# $R_{\text{in}} = \begin{pmatrix} 1 & -1.5 & 0 \\ 0 & 2 & 1.5 \\ 0 & 0 & 0 \end{pmatrix}$,
# total $3 = 4 - 1$ (dropped).

# %%
a = np.array([[[[1.0, 2.0, 0.0], [0.0, 1.0, 3.0], [2.0, 0.0, 1.0]]]])   # (B, C, H, W)
w = np.array([[[[1.0, -1.0], [0.0, 2.0]]]])                           # (C_out, C_in, kh, kw)
conv_net = lrp.Sequential([lrp.Conv2d(w, [0.0])])
print("z =\n", conv_net.forward(a)[0, 0])
R_out = np.array([[[[1.0, 2.0], [0.0, 1.0]]]])
e = conv_net.explain(a, output_relevance=R_out, rule=lrp.Zero(), method="explicit")
print("R_in =\n", e.relevance[0, 0])
print(e.ledger())

# %% [markdown]
# With LRP-ε the zero window no longer drops its relevance — $\mathrm{sign}(0) := +1$, so
# its denominator is $+\epsilon$ — but its shares $(1, -3, 0, 2) / \epsilon$ are huge for
# a small $\epsilon$. A cancelling window is exactly where explanations get noisy:

# %%
for eps in (1.0, 0.1, 0.01):
    R_eps = conv_net.explain(a, output_relevance=R_out, rule=lrp.Epsilon(eps)).relevance
    print(f"ε = {eps:<5g} R_in =", R_eps[0, 0].ravel())

# %% [markdown]
# ## 2. Max-pooling by hand: two modes
#
# A 2x2 max-pool outputs the largest of four inputs. There are no contributions $z_{ij}$
# that add up to the output, so no linear rule applies; the layer takes no rule, and its
# `mode` decides how $R_j$ goes down:
#
# $$\text{winner:}\quad R_i = \frac{[a_i = z_j]}{n_j} R_j \quad (n_j = \text{number of
#   maxima}), \qquad \text{proportional:}\quad R_i = \frac{a_i}{\sum_{i'} a_{i'}} R_j.$$
#
# Two windows side by side, $\begin{pmatrix} 1 & 3 \\ 2 & 0 \end{pmatrix}$ with $R = 6$
# and $\begin{pmatrix} 2 & 2 \\ 1 & 0 \end{pmatrix}$ (a tie) with $R = 5$:
#
# * winner: $(0, 6, 0, 0)$ and $(2.5, 2.5, 0, 0)$ — a tie splits equally;
# * proportional: $(1, 3, 2, 0)$ and $(2, 2, 1, 0)$ — the window is treated like a sum.
#
# The *gradient* of a max-pool goes to one maximum only (PyTorch takes the first), so on a
# tie Gradient x Input and LRP-0 distribute differently (they agree on the total).

# %%
a_pool = np.array([[[[1.0, 3.0, 2.0, 2.0], [2.0, 0.0, 1.0, 0.0]]]])     # two 2x2 windows
R_pool = np.array([[[[6.0, 5.0]]]])
for mode in ("winner", "proportional"):
    pool = lrp.MaxPool2d(2, mode=mode)
    print(f"{mode:12s} z = {pool.forward(a_pool).ravel()}  R_in =\n{pool.relevance(R_pool)[0, 0]}")
pool = lrp.MaxPool2d(2)
pool.forward(a_pool)
print("gradient of the max (R as the upstream gradient):\n", pool.backward(R_pool)[0, 0])

# %% [markdown]
# ## 3. The digits CNN, both pooling modes
#
# `digits_cnn` is two Conv2d-BatchNorm2d-ReLU-MaxPool2d blocks and a Dense head (97% on
# the test digits). To keep this notebook about convolution and pooling we fold the
# BatchNorm layers into the convolutions first (tutorial 5 is about the alternatives).
# `models.load(..., maxpool_mode=...)` sets the pooling mode; the forward pass is the same.

# %%
x, y = models.data("digits_cnn", "test")
nets = {mode: canonize.merge_batchnorm(models.load("digits_cnn", maxpool_mode=mode))
        for mode in ("winner", "proportional")}
print(nets["winner"])
sample = x[:5]
rule = lrp.Epsilon(0.1)
explained = {mode: net.explain(sample, rule=rule) for mode, net in nets.items()}
plot.grid({f"LRP-ε 0.1, {mode}": e.relevance for mode, e in explained.items()}, sample,
          row_labels=[f"predicted {k}" for k in explained["winner"].target])

# %% [markdown]
# Winner-take-all concentrates relevance on fewer pixels (only the maximum of each
# window passes it down); proportional spreads it over every active input of the window.
# Neither is "the" answer — it is a modelling choice, and the ledger shows that neither
# absorbs anything: a max-pool conserves relevance in both modes.

# %%
for mode, e in explained.items():
    pools = [r for r in e.layers if r.layer == "MaxPool2d"]
    balance = max(abs(r.relevance_out.sum() - r.relevance_in.sum()) for r in pools)
    print(f"{mode:12s} max-pool layers {[r.path for r in pools]}: "
          f"largest |sum R_out - sum R_in| = {balance:.1e}")

# %% [markdown]
# ## 4. Explicit and fast paths agree
#
# The **explicit** path materialises every contribution $z_{ij}$ (for a convolution: per
# output position and window element) and applies the equation literally, as in section 1.
# The **fast** path computes the same numbers with four array operations — the *z, s, c,
# R* steps of Montavon et al.'s tutorial, where step 3 is a transposed convolution:
#
# $$z = \text{conv}(a, w) + b, \qquad s = R / z, \qquad c = \text{conv}^\top(s, w),
#   \qquad R_{\text{in}} = a \odot c.$$
#
# On the shapes CNN (32x32 images, 16 at a time):

# %%
shapes_net = models.load("shapes_cnn")
images = models.shapes_split("test").images[:16]
timings, results = {}, {}
for method in ("fast", "explicit"):
    start = time.perf_counter()
    results[method] = shapes_net.explain(images, rule=lrp.AlphaBeta(2, 1), method=method)
    timings[method] = time.perf_counter() - start
difference = np.abs(results["fast"].relevance - results["explicit"].relevance).max()
print(f"largest difference, relative to max |R|: "
      f"{difference / np.abs(results['fast'].relevance).max():.1e}")
print(f"fast {timings['fast']:.3f} s, explicit {timings['explicit']:.3f} s")

# %% [markdown]
# They agree to float64 rounding (about $10^{-16}$); the explicit path is an order of
# magnitude slower and refuses inputs whose $z_{ij}$ would exceed
# `lrp_ref.engine.linear.EXPLICIT_MAX_BYTES` (256 MiB). Use it to *check*, the fast path
# to *work*.
#
# ## 5. LRP-0 = Gradient x Input — with winner pooling
#
# Tutorial 1 showed LRP-0 = Gradient x Input on a ReLU network. Through a max-pool this
# holds in **winner** mode, where relevance, like the gradient, goes to the maximum — but
# not in proportional mode, which shares relevance with inputs the gradient ignores. Per
# test digit:

# %%
agree = {}
for mode, net in nets.items():
    R0 = net.explain(x, rule=lrp.Zero()).relevance
    gxi = net.gradient_x_input(x)
    per_digit = np.abs(R0 - gxi).reshape(len(x), -1).max(axis=1) / np.abs(gxi).max()
    agree[mode] = per_digit < 1e-12
    print(f"{mode:12s} LRP-0 = Gradient x Input (to 1e-12 of max |R|) on "
          f"{agree[mode].sum()} of {len(x)} test digits")

# %% [markdown]
# In winner mode the exceptions are **ties**: two equal maxima in a window (digit pixels
# take only 17 values, so equal patches give equal activations). Relevance splits a tie,
# the gradient takes the first maximum. Nudge the input by $10^{-9}$ to break the ties,
# and the two agree again:

# %%
odd = np.flatnonzero(~agree["winner"])
nudged = x[odd] + 1e-9 * np.random.default_rng(0).standard_normal(x[odd].shape)
R0 = nets["winner"].explain(nudged, rule=lrp.Zero()).relevance
gxi = nets["winner"].gradient_x_input(nudged)
print("exceptions:", odd, " after the nudge, max relative difference:",
      f"{np.abs(R0 - gxi).max() / np.abs(gxi).max():.1e}")

# %% [markdown]
# ## What to take away
#
# * A convolution is a linear layer: eqs. (5)-(7) apply per window, and relevance from
#   overlapping windows adds up at each input. A window whose contributions cancel
#   ($z_j = 0$) drops its relevance under LRP-0 and amplifies it under LRP-ε with small ε.
# * Max-pooling needs a choice: **winner** (LRP-0 stays Gradient x Input) or
#   **proportional** (smoother maps). Both conserve relevance.
# * The explicit path is the equation, the fast path the same numbers quickly.
#
# **Exercises.** (1) Redo section 1 with stride 2 and padding 1 (`lrp.Conv2d(w, [0.0],
# stride=2, padding=1)`): which windows now lie partly in the padding, and does padding
# take relevance? (2) Compare the two pooling modes under `lrp.AlphaBeta(1, 0)`.
# (3) Construct a window with a three-way tie and check the winner split by hand.
