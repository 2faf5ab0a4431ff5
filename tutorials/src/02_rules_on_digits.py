# Source of tutorials/02_rules_on_digits.ipynb (build: python tutorials/build.py 02).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 2 — Rules side by side on handwritten digits
#
# docs/theory.md (section 7) calls **rule dependence** LRP's biggest drawback: "depending on which
# rule (ε-LRP, αβ-LRP) and which hyperparameters ($\epsilon, \alpha, \beta$) are used,
# the explanation (heatmap) changes. There is no single correct explanation." This
# notebook makes that visible on a real (small) model: the shipped digits MLP, trained on
# the 8x8 UCI handwritten digits.
#
# The three rules, with $z_{ij} = a_i w_{ij}$ and $z_j = \sum_i z_{ij} + b_j$:
#
# $$\text{(5) LRP-0:}\quad R_i = \sum_j \frac{z_{ij}}{z_j} R_j \qquad
#   \text{(6) LRP-ε:}\quad R_i = \sum_j \frac{z_{ij}}{z_j + \epsilon\,\mathrm{sign}(z_j)} R_j$$
#
# $$\text{(7) LRP-αβ:}\quad R_i = \sum_j \left(\alpha \frac{z^+_{ij}}{z^+_j}
#   - \beta \frac{z^-_{ij}}{z^-_j}\right) R_j, \qquad \alpha - \beta = 1$$
#
# (`lrp_ref` writes eq. (7) with $\beta$ subtracted, like Zennit and iNNvestigate; the
# form of docs/theory.md, $\alpha' + \beta' = 1$, is `AlphaBeta.from_eq7` — tutorial 1 works both.)

# %%
# %matplotlib inline
import numpy as np
from matplotlib.figure import Figure

import lrp_ref as lrp
from lrp_ref.viz import plot
from lrp_ref.zoo import models

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The model and the data
#
# `digits_mlp` is `Flatten -> Dense 64-64-32-10` with ReLUs, trained by
# `scripts/train_models.py` with `lrp_ref`'s own backpropagation. Pixels lie in $[0, 1]$
# (0 white, 1 black).

# %%
net = models.load("digits_mlp")
x, y = models.data("digits_mlp", "test")
print(net)
predicted = net.forward(x).argmax(axis=1)
print(f"test accuracy: {np.mean(predicted == y):.1%} of {len(y)} digits")
sample = x[[0, 1, 2, 3, 5]]                 # five test digits for the pictures

# %% [markdown]
# ## 2. Five rules, five heatmaps
#
# Red pixels speak **for** the predicted digit, blue ones against it; white is 0. Each
# heatmap has its own symmetric colour range, so we compare *patterns*. Each row is labelled
# with the true digit and the network's prediction, which is the class explained: the second
# digit is a **5 that the network misclassifies as 9**, so its heatmaps show what made the
# network say 9 (one of the 13 test digits it gets wrong).

# %%
rules = {
    "LRP-0": lrp.Zero(),
    "LRP-ε 0.1": lrp.Epsilon(0.1),
    "LRP-ε 1": lrp.Epsilon(1.0),
    "LRP-αβ (1, 0)": lrp.AlphaBeta(1, 0),
    "LRP-αβ (2, 1)": lrp.AlphaBeta(2, 1),
}
labels = [f"label {t}, predicted {p}" for t, p in zip(y[[0, 1, 2, 3, 5]],
                                                     predicted[[0, 1, 2, 3, 5]])]
plot.compare_rules(net, sample, rules, row_labels=labels)

# %% [markdown]
# What changes from rule to rule:
#
# * **LRP-0** is Gradient x Input on this ReLU network (tutorial 1): speckled, with many
#   pixels of both signs;
# * **LRP-ε** dampens the contributions of weakly activated neurons (their $z_j$ is small
#   next to $\epsilon$): as $\epsilon$ grows the maps become smoother and sparser, and
#   less relevance reaches the pixels;
# * **LRP-αβ (1, 0)** passes only supporting evidence: no pixel is blue, and the map
#   covers the strokes;
# * **LRP-αβ (2, 1)** adds counter-evidence back, with more contrast than LRP-0.
#
# ## 3. How much relevance reaches the pixels?
#
# The conservation principle (docs/theory.md, section 2) says $\sum_i R_i \approx f(x)$.
# Over the whole test set, the median ratio $\sum_i R_i / f_{\text{target}}(x)$ and the
# share of negative pixels:

# %%
logit = net.forward(x)[np.arange(len(x)), predicted]
relevance = {name: net.explain(x, rule=rule).relevance.reshape(len(x), -1)
             for name, rule in rules.items()}
print(f"{'rule':15s} {'sum R / logit':>14s} {'negative pixels':>16s}")
for name, R in relevance.items():
    print(f"{name:15s} {np.median(R.sum(axis=1) / logit):14.2f} {np.mean(R < 0):16.1%}")

# %% [markdown]
# LRP-0 and αβ conserve (up to what the biases take); LRP-ε 1 keeps about half: the
# stabilizer absorbs the rest (the ledger shows where — see tutorial 1). αβ (1, 0) has no
# negative pixels at all: by construction it cannot say "this pixel speaks against".
#
# ## 4. Do the rules agree? Pixel rankings
#
# Two measures between every pair of rules, averaged over the 450 test digits: the
# correlation of the two heatmaps, and the overlap of their 10 most relevant pixels.

# %%
names = list(relevance)


def correlation(a, b):
    """Pearson correlation of two heatmaps, per digit."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def top_overlap(a, b, k=10):
    """The share of the k most relevant pixels two heatmaps have in common, per digit."""
    top_a, top_b = np.argsort(-a, axis=1)[:, :k], np.argsort(-b, axis=1)[:, :k]
    return np.array([len(set(p) & set(q)) / k for p, q in zip(top_a, top_b)])


corr = np.array([[correlation(relevance[a], relevance[b]).mean() for b in names] for a in names])
overlap = np.array([[top_overlap(relevance[a], relevance[b]).mean() for b in names]
                    for a in names])
fig = Figure(figsize=(10, 4), layout="constrained")
for ax, matrix, title in zip(fig.subplots(1, 2), (corr, overlap),
                             ("correlation of the heatmaps", "overlap of the top-10 pixels")):
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center",
                color="white" if v < 0.6 else "black", fontsize=8)
    ax.set_title(title)
fig.colorbar(im, ax=fig.axes, shrink=0.8)
fig

# %%
print("top-10 overlap, LRP-0 vs LRP-αβ (1, 0):", round(overlap[0, 3], 2))
print("top-10 overlap, LRP-0 vs LRP-ε 0.1:   ", round(overlap[0, 1], 2))

# %% [markdown]
# LRP-0 and LRP-ε agree closely, LRP-αβ (2, 1) roughly; **LRP-αβ (1, 0) shares only
# about 6 of its 10 most relevant pixels with LRP-0**. Asked "which pixels made the
# network say 7?", the rules give visibly different answers — the drawback docs/theory.md
# warns about.
#
# ## 5. One knob: ε
#
# Even within one rule the hyperparameter matters. One digit, ε from 0 to 10:

# %%
epsilons = [0.0, 0.01, 0.1, 1.0, 10.0]
digit = x[[0]]
fig = plot.grid({f"ε = {eps:g}": net.explain(digit, rule=lrp.Epsilon(eps)).relevance
                 for eps in epsilons}, digit, row_labels=[f"digit {y[0]}"])
fig

# %%
for eps in epsilons:
    e = net.explain(digit, rule=lrp.Epsilon(eps))
    absorbed = sum(r.absorbed_stabilizer[0] for r in e.layers)
    print(f"ε = {eps:5g}: sum R = {e.relevance.sum():6.3f} of logit {e.output[0, e.target[0]]:.3f}"
          f"; the stabilizers absorbed {absorbed:6.3f}")

# %% [markdown]
# With large ε the map concentrates on the strongest paths through the network, and the
# stabilizers absorb most of the relevance: the explanation becomes sparser and *less
# complete*.
#
# ## What to take away
#
# * The rule is part of the explanation. Report it (`lrp_ref` records it for every layer:
#   `e.rules()`), and when you compare heatmaps, compare heatmaps made with the same rule.
# * The ledger says how much of $f(x)$ each rule hands to the pixels; it does not say
#   which map is *right*. Tutorial 6 measures that with pixel flipping and on data whose
#   deciding pixels are known.
#
# **Exercises.** (1) Explain a digit for a class the network did *not* predict
# (`target=3`): where is the evidence against? (2) Find the test digits on which LRP-0 and
# LRP-αβ (1, 0) disagree most (lowest top-10 overlap) and show them with
# `plot.compare_rules`. (3) Try `lrp.AlphaBeta.from_eq7(0.5, 0.5)` (eq. (7) with as
# much weight on the counter-evidence as on the evidence) and `from_eq7(0, 1)`: what do
# they show? Why is `lrp.AlphaBeta(0.5, -0.5)`, the same rule, refused?
