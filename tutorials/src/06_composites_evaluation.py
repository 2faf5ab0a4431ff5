# Source of tutorials/06_composites_evaluation.ipynb (build: python tutorials/build.py 06).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 6 — Composites, and measuring which explanation is better
#
# Tutorial 2 showed that the rule changes the heatmap. Two answers from the LRP
# literature:
#
# 1. **Composites** — different rules for different layers (Montavon et al. 2019, section
#    10.3; Kohlbrenner et al. 2020): LRP-0 near the output where layers are few and
#    dense, LRP-ε in the middle to absorb noise, LRP-γ or αβ lower down to favour positive
#    evidence, and the $z^\mathcal{B}$ (box) rule at the pixels, whose values lie in a
#    known interval.
# 2. **Measurements** — instead of arguing about which heatmap *looks* right, score them:
#    against a known ground truth, and by *pixel flipping* (destroy the pixels an
#    explanation calls most relevant and watch the output fall).
#
# We use the shapes set, `lrp_ref.datasets.make_shapes`: the class (cross, square,
# triangle) is decided by one object among clutter, and each image comes with the exact
# mask of that object.

# %%
# %matplotlib inline
import numpy as np
from matplotlib.figure import Figure

import lrp_ref as lrp
from lrp_ref import evaluation
from lrp_ref.rules import composites
from lrp_ref.viz import plot
from lrp_ref.zoo import models

np.set_printoptions(precision=3, suppress=True)

# %% [markdown]
# ## 1. The data and the model
#
# `shapes_cnn` (shipped, 100% on its test split) reads 32x32 images in $[0, 1]$: three
# conv layers (the middle two in a residual block), max-pooling and a Dense head.

# %%
net = models.load("shapes_cnn")
test = models.shapes_split("test")
classes = models.CARDS["shapes_cnn"].classes
n = 40                                          # images to score (enough for a stable mean)
x, labels, masks = test.images[:n], test.labels[:n], test.masks[:n]
print(net)
print("classes:", classes, " images:", x.shape, " masks:", masks.shape)

# %% [markdown]
# ## 2. A composite is an assignment of rules to layers
#
# A composite is a plain object: called on a network it returns `{path: rule}`, and
# `table(network)` prints that assignment. Zennit's **EpsilonGammaBox** gives the box rule
# to the first convolution, γ to the other convolutions and ε to the Dense layers:
#
# $$z^\mathcal{B}: \; R_i = \sum_j \frac{a_i w_{ij} - l_i w^+_{ij} - h_i w^-_{ij}}
#   {\sum_{i'} (a_{i'} w_{i'j} - l_{i'} w^+_{i'j} - h_{i'} w^-_{i'j})} R_j, \qquad
#   \gamma: \; R_i = \sum_j \frac{a_i (w_{ij} + \gamma w^+_{ij})}
#   {\sum_{i'} a_{i'} (w_{i'j} + \gamma w^+_{i'j})} R_j$$
#
# (with $[l, h] = [0, 1]$ the pixel range; the biases enter the γ denominator as
# $b_j + \gamma b^+_j$). That γ is Montavon et al.'s, written for ReLU inputs at positive
# outputs. Zennit's γ, and so `epsilon_gamma_box`'s (`GeneralizedGamma`), is that formula
# at outputs $z_j > 0$ and its mirror image at $z_j < 0$ ($w^-$ in place of $w^+$, bias
# $b_j + \gamma b^-_j$): every output takes the contributions of its own sign. The two
# differ where relevance reaches negative outputs, e.g. the second convolution of this
# net's residual block (`3.body.2`), whose output feeds the addition, not a ReLU
# (docs/peers.md, difference 3). Montavon et al.'s recipe, with their γ, splits by depth
# instead:

# %%
box = models.CARDS["shapes_cnn"].input_range           # (0.0, 1.0)
gamma_box = composites.epsilon_gamma_box(*box)
recipe = composites.montavon2019(*box)
print(gamma_box.table(net))
print()
print(recipe.table(net))

# %% [markdown]
# ## 3. Heatmaps
#
# Any composite goes where a rule goes (`rule=`). Seven explanations of three test images
# next to the ground-truth mask, each explaining the true class, plus the plain gradient
# as a non-LRP baseline:

# %%
methods = {
    "LRP-0": lrp.Zero(),
    "LRP-ε 0.1": lrp.Epsilon(0.1),
    "LRP-αβ (1, 0)": lrp.AlphaBeta(1, 0),
    "LRP-αβ (2, 1)": lrp.AlphaBeta(2, 1),
    "epsilon_plus": composites.epsilon_plus(),
    "epsilon_gamma_box": gamma_box,
    "montavon2019": recipe,
}
relevance = {name: net.explain(x, target=labels, rule=rule).relevance
             for name, rule in methods.items()}
relevance["Gradient"] = net.gradient(x, labels)
relevance["random"] = np.random.default_rng(0).standard_normal(x.shape)
shown = {"mask": masks[:3, None].astype(float)}
shown.update({name: R[:3] for name, R in relevance.items() if name != "random"})
plot.grid(shown, x[:3], row_labels=[classes[k] for k in labels[:3]])

# %% [markdown]
# By eye: the LRP maps sit on the object; the gradient is spread over the whole image
# (it says where the output is *sensitive*, not what it is *made of*); the composites with
# the box rule also light up empty pixels around the object. That last effect is the box
# rule at work: it measures each pixel against the interval $[0, 1]$, so an empty
# (0-valued) pixel next to the object, which a filter would have liked bright, gets
# relevance too.
#
# ## 4. Scoring against the ground truth
#
# Two measures of Arras et al. (2022), with $P = \max(0, R)$ the positive relevance:
#
# * **relevance mass accuracy** — the share of $\sum P$ inside the mask;
# * **relevance rank accuracy** — of the $K = |\text{mask}|$ most relevant pixels, the
#   share inside the mask.
#
# Both are 1 for a perfect map; a random map scores about the mask's share of the image.

# %%
mass = {name: evaluation.relevance_mass_accuracy(R, masks) for name, R in relevance.items()}
rank = {name: evaluation.relevance_rank_accuracy(R, masks) for name, R in relevance.items()}
print(f"mask share of the image: {masks.mean():.3f}")
print(f"{'method':18s} {'mass accuracy':>14s} {'rank accuracy':>14s}")
for name in relevance:
    print(f"{name:18s} {mass[name].mean():14.3f} {rank[name].mean():14.3f}")

# %% [markdown]
# ## 5. Scoring by pixel flipping
#
# The ground truth says which pixels *decide the class in the data*. Pixel flipping asks
# the *model*: replace 2x2 patches by 0 (the background), most relevant first (**MoRF**),
# 8 of the 256 patches per step, and record the target logit $f(x_k)$ after each of 32
# steps. The faster it falls, the better the explanation found what the model uses. The
# area over the curve, $\text{AOPC} = \frac{1}{L+1} \sum_{k=0}^{L} (f(x_0) - f(x_k))$
# (Samek et al. 2017), summarises it: larger is better. Flipping costs one forward pass
# per step and image, so we score five of the methods on 24 images:

# %%
flipped = ["LRP-ε 0.1", "LRP-αβ (1, 0)", "epsilon_gamma_box", "Gradient", "random"]
curves = {name: evaluation.pixel_flipping(net, x[:24], relevance[name][:24], target=labels[:24],
                                        patch=2, steps=32)
          for name in flipped}
fig = Figure(figsize=(11, 3.4), layout="constrained")
left, right = fig.subplots(1, 2)
for name, curve in curves.items():
    left.plot(np.linspace(0, 100, curve.shape[1]), curve.mean(axis=0), label=name,
              ls="--" if name in ("Gradient", "random") else "-")
left.set_xlabel("% of patches flipped (most relevant first)")
left.set_ylabel("mean target logit")
left.set_xlim(0, 50)
left.legend(fontsize="small")
scores = {name: evaluation.aopc(curve) for name, curve in curves.items()}
right.barh(flipped, [scores[k].mean() for k in flipped], color="tab:red")
right.invert_yaxis()
right.set_xlabel("AOPC (MoRF), larger is better")
fig

# %%
print(f"{'method':18s} {'AOPC':>6s} {'logit after 1 step':>19s}")
for name in sorted(scores, key=lambda k: -scores[k].mean()):
    print(f"{name:18s} {scores[name].mean():6.2f} {curves[name][:, 1].mean():19.2f}")

# %% [markdown]
# ## 6. What the numbers say — and what they do not
#
# On this small network:
#
# * every LRP variant beats the gradient and the random map on the ground truth by a wide
#   margin;
# * the **box composites score lower on mass accuracy** than uniform LRP-ε: the box rule
#   hands relevance to the empty pixels around the object, which lie outside the mask;
# * pixel flipping ranks the methods differently again. LRP-ε brings the logit down
#   furthest in the first step; the gradient is slow at first but catches up; LRP-αβ
#   (1, 0), the best on rank accuracy, comes last of the LRP maps: once its positive
#   pixels are gone it has no ranking left (the rest is all 0, flipped in reading order),
#   and removing counter-evidence lets the logit rise again.
#
# The composites were designed for deep networks (VGG-16 has 13 conv layers), where
# LRP-0's noise accumulates layer after layer; on a 4-layer network there is little to
# accumulate. **So measure on your model and your data** rather than trusting a default —
# and report the measure with the heatmap. `benchmarks/explanation_quality.py` runs this
# comparison on 200 images with bootstrap confidence intervals.
#
# **Exercises.** (1) Change `lrp.Epsilon(0.1)` to `lrp.Epsilon(1.0)`: which score moves?
# (2) Build your own composite — `ZBox(0, 1)` on the first layer and `Epsilon(0.1)`
# elsewhere — as a function `network -> {path: rule}` and score it. (3) Run pixel flipping
# least relevant first (`order="lerf"`): a good explanation keeps the logit up.
