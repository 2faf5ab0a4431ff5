# Source of tutorials/05_batchnorm_residual.ipynb (build: python tutorials/build.py 05).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 5 — The hard cases: BatchNorm and residual connections
#
# docs/theory.md (section 6) names two parts of modern networks where plain LRP is not enough:
#
# * **batch normalization** "depends on the mean and variance of the whole batch", so it
#   must be treated as a linear map or folded away;
# * **residual connections** $y = f(x) + x$: the relevance of $y$ must be *split* between
#   the branch $f(x)$ and the skip $x$.
#
# For each we work a tiny example by hand, then look at a shipped network: the digits CNN
# (Conv-BatchNorm-ReLU-MaxPool blocks) and the shapes CNN (with a residual block). The
# ledger tells us, every time, where relevance was absorbed or injected.

# %%
# %matplotlib inline
import numpy as np
from matplotlib.figure import Figure

import lrp_ref as lrp
from lrp_ref.rules import canonize
from lrp_ref.viz import plot
from lrp_ref.zoo import models

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Part A — BatchNorm
#
# ### A1. At inference, BatchNorm is an affine map
#
# With its running statistics frozen, BatchNorm computes per channel
#
# $$y = \gamma \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta = a x + c, \qquad
#   a = \frac{\gamma}{\sqrt{\sigma^2 + \varepsilon}}, \quad c = \beta - a \mu.$$
#
# For LRP this is a linear layer in which input $i$ feeds only output $i$: one
# contribution $z_{ii} = a x_i$ and a bias $c$. Three treatments:
#
# | treatment | how | $R_{\text{in}}$ |
# |---|---|---|
# | **affine** | any linear rule, $c$ is a bias | LRP-0: $\frac{a x}{a x + c} R_{\text{out}}$ |
# | **pass** | `Pass()` | $R_{\text{out}}$ |
# | **folded** | `canonize.merge_batchnorm` merges it into the layer before | (that layer's rule) |
#
# By hand, with $a = 1.5$ (take $\gamma = 1.5, \mu = 0, \sigma^2 = 1, \varepsilon = 0$),
# $x = 2$ and $R_{\text{out}} = 1$:
#
# * $c = +1$: $y = 4$, $R_{\text{in}} = 3/4$ — the shift **absorbs** $1/4$;
# * $c = -2$: $y = 1$, $R_{\text{in}} = 3/1 = 3$ — the shift **injects** $2$ (its ledger
#   entry is $-2$): the input receives three times what arrived;
# * $c = -2.9$: $y = 0.1$, $R_{\text{in}} = 30$ — near $y = 0$ the share explodes.

# %%
bn = lrp.BatchNorm1d(gamma=[1.5, 1.5, 1.5], beta=[1.0, -2.0, -2.9],
                     running_mean=[0.0, 0.0, 0.0], running_var=[1.0, 1.0, 1.0], eps=0.0)
x = np.array([[2.0, 2.0, 2.0]])
print("a =", bn.weight, " c =", bn.bias, " y =", bn.forward(x))
R_out = np.ones((1, 3))
for rule in (lrp.Zero(), lrp.Epsilon(0.1), lrp.Pass()):
    print(f"{lrp.rules.describe(rule):22s} R_in = {bn.relevance(R_out, rule)}")

# %% [markdown]
# LRP-ε bounds the explosion ($3 / (0.1 + 0.1) = 15$ instead of 30) but does not remove
# it. The share $R_{\text{in}} / R_{\text{out}}$ as the shift $c$ moves through
# $-a x = -3$:

# %%
c = np.linspace(-6, 3, 901)
y = 3.0 + c
fig = Figure(figsize=(6, 3), layout="constrained")
ax = fig.subplots()
ax.plot(c, np.where(np.abs(y) > 1e-9, 3.0 / np.where(y == 0, 1, y), np.nan), label="LRP-0")
ax.plot(c, 3.0 / (y + 0.1 * np.where(y >= 0, 1, -1)), label="LRP-ε (ε = 0.1)")
ax.axhline(1, color="tab:green", label="Pass()")
ax.axvline(-3, color="gray", lw=0.6)
ax.set_ylim(-20, 20)
ax.set_xlabel("shift c  (a x = 3)")
ax.set_ylabel("R_in / R_out")
ax.legend()
fig

# %% [markdown]
# ### A2. Three treatments on the digits CNN
#
# The shipped `digits_cnn` has two Conv2d-BatchNorm2d-ReLU-MaxPool2d blocks. We explain
# eight test digits three ways:
#
# * **affine**: a single rule for every layer — BatchNorm takes it too;
# * **pass**: `Pass()` for the BatchNorm layers, the rule elsewhere. A *composite* is any
#   function `network -> {path: rule}`, so two lines make one;
# * **folded**: `canonize.merge_batchnorm(net)` returns a copy with each BatchNorm merged
#   into the Conv2d before it ($W' = W a$, $b' = a b + c$) — the same forward pass.

# %%
net = models.load("digits_cnn")
folded = canonize.merge_batchnorm(net)
x, labels = models.data("digits_cnn", "test")
x, labels = x[:8], labels[:8]
print(net)
print("folded network:", len(folded.layers), "layers; same logits:",
      np.allclose(net.forward(x), folded.forward(x), rtol=1e-12, atol=1e-12))


def pass_batchnorm(rule):
    """A composite: Pass() for every BatchNorm, ``rule`` for the other rule-taking layers."""
    return lambda network: {
        path: lrp.Pass() if isinstance(layer, (lrp.BatchNorm1d, lrp.BatchNorm2d)) else rule
        for path, layer in network.named_layers() if layer.takes_rule}


def treatments(rule):
    return {"affine": net.explain(x, rule=rule),
            "pass": net.explain(x, rule=pass_batchnorm(rule)),
            "folded": folded.explain(x, rule=rule)}

# %% [markdown]
# **Under LRP-0, affine and folded agree exactly** (the factor $a$ cancels: $\frac{a
# x_i w_{ij}}{a z_j + c}$ is the folded layer's share), while pass differs — and can be
# wild: with `Pass()` the Conv2d below divides by its *own* pre-BatchNorm $z_j$, which may
# be close to 0 where the normalised output is not.

# %%
lrp0 = treatments(lrp.Zero())
logit = lrp0["affine"].output[np.arange(8), lrp0["affine"].target]
print("logits          ", logit)
for name, e in lrp0.items():
    print(f"sum R_x {name:8s}", e.input_relevance_sum(),
          f" max |R| {np.abs(e.relevance).max():7.2f}")
print("affine vs folded, largest difference:",
      np.abs(lrp0["affine"].relevance - lrp0["folded"].relevance).max())

# %% [markdown]
# **Under LRP-ε the three differ**: the folded layer has one stabilizer where the affine
# treatment has two (Conv2d and BatchNorm), and pass has no BatchNorm bias at all.

# %%
lrp_eps = treatments(lrp.Epsilon(0.1))
for name, e in lrp_eps.items():
    print(f"sum R_x {name:8s}", e.input_relevance_sum())
plot.grid({f"{name} (ε = 0.1)": e.relevance[:4] for name, e in lrp_eps.items()}, x[:4],
          row_labels=[f"digit {k}" for k in labels[:4]])

# %% [markdown]
# Affine and folded look alike (they differ only in where the stabilizers sit); pass moves
# relevance around noticeably. The totals differ in all three. The ledger of the affine
# treatment shows what the BatchNorm shifts took (the Conv2d biases are about 0: a bias
# before BatchNorm is redundant, and training left it there):

# %%
print(lrp_eps["affine"].ledger(sample=0))

# %%
plot.ledger_chart(lrp_eps["affine"], sample=0, title="digits CNN, LRP-ε, BatchNorm affine")

# %% [markdown]
# Which to choose? Zennit's composites use **pass** (BatchNorm is "not a real layer");
# canonizing first (**folded**) gives BatchNorm's shift to the rule of the layer it belongs
# to, which is what Zennit's `MergeBatchNorm` canonizer and most LRP papers do;
# **affine** is what a rule applied to "every linear layer" does (Captum's treatment).
# The ledger makes the difference visible; `lrp_ref` does not pick for you.
#
# ## Part B — Residual connections
#
# ### B1. Copying relevance doubles it
#
# A residual block computes $y = \text{body}(x) + \text{shortcut}(x)$. The gradient is
# copied into both branches — relevance must not be: if both branches received all of
# $R_y$, the input would get about twice the relevance. `lrp_ref` splits it in
# proportion to the two contributions, the ε-rule for a sum:
#
# $$R_{\text{body}} = \frac{z_{\text{body}}}{z + \epsilon\,\mathrm{sign}(z)} R_y, \qquad
#   R_{\text{short}} = \frac{z_{\text{short}}}{z + \epsilon\,\mathrm{sign}(z)} R_y,
#   \qquad z = z_{\text{body}} + z_{\text{short}},$$
#
# then propagates each through its branch and adds the two at $x$.
#
# By hand: one input $x = 2$, body $= $ `Dense(1.5, bias -1)` so body$(x) = 2$, identity
# shortcut $= 2$, $y = 4$, then an output layer $f = 1 \cdot y = 4$. With LRP-0:
#
# * split: $R_{\text{body}} = \frac{2}{4} \cdot 4 = 2$, $R_{\text{short}} = 2$;
# * body: $z_{x} = 1.5 \cdot 2 = 3$, $z = 2$: $R_x \mathrel{+}= \frac{3}{2} \cdot 2 = 3$
#   (the bias takes $-1$); shortcut: $R_x \mathrel{+}= 2$;
# * $R_x = 5$. Also Gradient x Input: $f = 2.5 x - 1$, $x f'(x) = 5$.
#
# Copying instead would give $\frac{3}{2} \cdot 4 + 4 = 10$.

# %%
toy = lrp.Sequential([
    lrp.Residual(lrp.Sequential([lrp.Dense([[1.5]], [-1.0])]), epsilon=0.0),
    lrp.Dense([[1.0]]),
])
x1 = np.array([[2.0]])
e_toy = toy.explain(x1, rule=lrp.Zero())
print("f(x) =", e_toy.output[0, 0], " R_x =", e_toy.relevance[0, 0],
      " Gradient x Input =", toy.gradient_x_input(x1)[0, 0])
R_y, R_body = e_toy.layer("0").relevance_out[0, 0], e_toy.layer("0.body").relevance_out[0, 0]
print("split: R_body =", R_body, " R_short =", R_y - R_body)
print(e_toy.ledger())

# %% [markdown]
# The Residual's row is a *container* record: it covers its body (row `0.body`, and its
# layers below it) plus the split, and balances on its own. With `epsilon=0` the split is
# exact and LRP-0 through the block equals Gradient x Input; the default `epsilon=1e-6`
# (Zennit's ResNet canonizer) keeps a tiny share, booked as `absorbed_stabilizer`.
#
# ### B2. The shapes CNN
#
# The shipped `shapes_cnn` decides between a cross, a square and a triangle placed among
# clutter; its middle is a residual block of two 3x3 convolutions with an identity
# shortcut.

# %%
shapes_net = models.load("shapes_cnn")
shapes = models.shapes_split("test")
images, masks = shapes.images[:4], shapes.masks[:4]
print(shapes_net)
e_shapes = shapes_net.explain(images, rule=lrp.Epsilon(0.1))
print(e_shapes.ledger(sample=0))

# %% [markdown]
# Reading the ledger from the bottom up: the relevance that enters the Residual (row `3`,
# `sum R_out`) is split; the body's share enters row `3.body`, the rest takes the identity
# shortcut, and both meet at the Residual's input (`sum R_in` of row `3`). Here the body's
# share (8.91) is *larger* than what arrived (8.16): on balance the shortcut's
# contribution to the block's output was negative, and so is its share (-0.75). The
# ledger chart with `containers=True` shows the Residual and its body as bars of their own:

# %%
plot.ledger_chart(e_shapes, sample=0, containers=True,
                  title="shapes CNN, LRP-ε (0.1): every record balances")

# %% [markdown]
# Is the split right? LRP-0 on a ReLU network equals Gradient x Input only if every sum
# is split in proportion to its parts. Through this block it does — up to the split's
# stabilizer ($\epsilon = 10^{-6}$), which leaves a relative difference of a few $10^{-5}$:

# %%
e0 = shapes_net.explain(images, rule=lrp.Zero())
gxi = shapes_net.gradient_x_input(images)
print("max |LRP-0 - Gradient x Input| / max |Gradient x Input|:",
      f"{np.abs(e0.relevance - gxi).max() / np.abs(gxi).max():.1e}")

# %% [markdown]
# Finally the heatmaps, over the input, with the ground-truth object marked: the
# relevance concentrates on the deciding shape, not the clutter.

# %%
fig = Figure(figsize=(10, 2.8), layout="constrained")
for ax, image, R, mask, target in zip(fig.subplots(1, 4), images, e_shapes.relevance, masks,
                                      e_shapes.target):
    plot.overlay(image, R, ax=ax, title=f"{models.CARDS['shapes_cnn'].classes[target]}",
                 colorbar=False)
    ax.contour(mask, levels=[0.5], colors="green", linewidths=0.8)
fig

# %% [markdown]
# ## What to take away
#
# * BatchNorm at inference is an affine map. Its shift absorbs or **injects** relevance
#   (affine), is ignored (pass), or joins the bias of the layer before (folded); under
#   LRP-0 affine = folded, under other rules all three differ. Check the ledger.
# * A residual block must **split** relevance between its branches, never copy it. The
#   proportional split keeps LRP-0 = Gradient x Input.
#
# **Exercises.** (1) In A1, which shift $c$ makes the input receive *negative* relevance
# under LRP-0? (2) Explain the digits CNN with `lrp.AlphaBeta(1, 0)` under the three
# treatments and compare the sums. (3) Build the toy residual net with `epsilon=1e-6`:
# what does its ledger book as `absorbed_stabilizer`?
