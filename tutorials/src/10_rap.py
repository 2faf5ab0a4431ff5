# Source of tutorials/10_rap.ipynb (build: python tutorials/build.py 10).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 10 — RAP, as its authors' code computes it, beside αβ and CLRP
#
# **Relative attributing propagation** (RAP; Nam, Gur, Choi, Wolf and Lee, AAAI 2020) is
# one of the developments of LRP named in docs/theory.md (section 7). It wants to
# separate *relevant* (positive) and *irrelevant* (negative) evidence by the relative
# influence of the units. The versions of its paper describe different procedures, so
# `lrp_ref.extensions.rap` reproduces what the method is compared through in practice:
# the authors' released code (`wjNam/Relative_Attributing_Propagation`,
# `modules/layers.py`). Every choice of that code that the paper does not state is
# named, with its file and function, in docs/extensions.md ("RAP") and in the module's
# docstring. This notebook works one example by hand, then puts RAP beside LRP-αβ and
# contrastive LRP (CLRP) on the shapes CNN and reads its ledger.

# %%
# %matplotlib inline
from fractions import Fraction

import numpy as np

import lrp_ref as lrp
from lrp_ref import evaluation
from lrp_ref.extensions.contrastive import clrp
from lrp_ref.extensions.rap import rap
from lrp_ref.viz import plot
from lrp_ref.zoo import models

np.set_printoptions(precision=3, suppress=True)


def exact(values):
    """The entries of an array as small fractions, for comparing with paper."""
    return "(" + ", ".join(str(Fraction(float(v)).limit_denominator(1000))
                           for v in np.ravel(values)) + ")"

# %% [markdown]
# ## 1. By hand: the first step
#
# A 3-2-2 network, $x = (1, 2, -1)$. The hidden layer computes $h = x W_1 = (4, 1)$
# (both ReLUs active, no bias), the output $y = h W_2 + b = (3, -3)$: class 0.
#
# The authors seed the output with a one-hot of value 1 and use it only to pick the
# column $t$ of the target. Their **first step** (`first_prop`) hands every input its
# contribution $z_i = h_i w_{it} = (4, -2)$ and shares the bias $b_t = 1$ between the
# positive ($\text{Pos} = 4$) and negative ($\text{Neg} = -2$) contributions in proportion
# to their totals: $b\,\text{Pos}/(\text{Pos}+\text{Neg}) = 2$ to input 0,
# $b\,\text{Neg}/(\text{Pos}+\text{Neg}) = -1$ to input 1. So $r = (6, -3)$, which sums to
# $y_0 = 3$. Then `redistribute` gives every input $|r_i| \sum r / \sum |r|$:
# $(6, 3) \cdot 3/9 = (2, 1)$. Both positive — the negative contribution of $h_1$ now
# counts *for* the class, by its magnitude.

# %%
W1 = np.array([[1.0, -1.0], [1.0, 1.5], [-1.0, 1.0]])
W2 = np.array([[1.0, -1.0], [-2.0, 1.0]])
net = lrp.Sequential([lrp.Dense(W1), lrp.ReLU(), lrp.Dense(W2, np.array([1.0, 0.0]))])
x = np.array([[1.0, 2.0, -1.0]])
e = rap(net, x, box_input=False)
print("output y =", exact(e.output))
print("R_h (first step) =", exact(e.layer("2").relevance_in))

# %% [markdown]
# ## 2. By hand: the general step and its shift
#
# Below the output, each Dense or Conv2d splits its inputs into a half with $a_i > 0$
# and a half with $a_i < 0$. In each, $u_{ij} = |a_i| w^+_{ij}$ goes through its own total
# $U_j$ and $v_{ij} = |a_i| |w^-_{ij}|$ through $U_j + V_j$:
#
# $$C_i = \sum_j \Big(\frac{u_{ij}}{U_j} + \frac{v_{ij}}{U_j + V_j}\Big) R_j .$$
#
# That hands down *more* than arrives, so `shift_rel` takes the excess off the non-zero
# entries of the half, in equal parts. With $R_h = (2, 1)$:
#
# * positive half (inputs 0, 1): $C = (1/3 \cdot 2 + 1/4 \cdot 1,\; 2/3 \cdot 2 + 1) =
#   (11/12, 7/3)$, sum $13/4$; shift $(13/4 - 3)/2 = 1/8$ each: $(19/24, 53/24)$;
# * negative half (input 2): $C = 1 \cdot 2 + 1 \cdot 1 = 3$, no shift.
#
# Each half is shifted to the *full* $\sum R_h = 3$, so this layer, whose input has both
# signs, hands down 6: it **creates** a second copy. The authors' networks never show it
# (every layer but the first reads a ReLU's output, and the first takes the $z^\mathcal{B}$
# rule, section 5); the ledger books it as `dropped` $= -3$.

# %%
print("R_x (general step) =", exact(e.relevance))
print(e.rap_ledger())

# %% [markdown]
# ## 3. On the shapes CNN, beside LRP-αβ and CLRP
#
# `shapes_cnn` reads 32x32 images in $[0, 1]$; the class (cross, square, triangle) is
# decided by one object among clutter, and each test image comes with its mask. Beside
# RAP: LRP-αβ (2, 1) (evidence for and against), LRP-αβ (1, 0) (only for), and CLRP
# (Gu et al. 2018) with αβ (1, 0) and the "others" dual (what speaks for the class and
# not for the other two). All explain the true class.

# %%
cnn = models.load("shapes_cnn")
test = models.shapes_split("test")
classes = models.CARDS["shapes_cnn"].classes
n = 40
images, labels, masks = test.images[:n], test.labels[:n], test.masks[:n]
explained = rap(cnn, images, target=labels)
relevance = {
    "RAP": explained.relevance,
    "LRP-αβ (2, 1)": cnn.explain(images, target=labels, rule=lrp.AlphaBeta(2, 1)).relevance,
    "LRP-αβ (1, 0)": cnn.explain(images, target=labels, rule=lrp.AlphaBeta(1, 0)).relevance,
    "CLRP αβ (1, 0)": clrp(cnn, images, target=labels, rule=lrp.AlphaBeta(1, 0)).relevance,
}
shown = {"mask": masks[:3, None].astype(float)}
shown.update({name: R[:3] for name, R in relevance.items()})
plot.grid(shown, images[:3], row_labels=[classes[k] for k in labels[:3]], colorbar=False)

# %% [markdown]
# RAP's heatmap keeps both signs, like αβ (2, 1), but its negative relevance has other
# origins: not inhibiting contributions, but the shift, which pushes the smallest positive
# shares below zero, and the residual addition, whose body output can be negative where
# the sum is positive. Scored against the masks (relevance mass and rank accuracy, Arras
# et al. 2022, of the positive part; tutorial 6):

# %%
print(f"{'method':16s} {'mass accuracy':>14s} {'rank accuracy':>14s}")
for name, R in relevance.items():
    mass = evaluation.relevance_mass_accuracy(R, masks).mean()
    rank = evaluation.relevance_rank_accuracy(R, masks).mean()
    print(f"{name:16s} {mass:14.3f} {rank:14.3f}")

# %% [markdown]
# ## 4. RAP's ledger
#
# Every RAP step books what the relevant ($R^+$) and irrelevant ($R^-$) parts carry, what
# it handed down before the shift (`spread`), what the shift took off, and what was
# absorbed or created. On this ReLU network every general step conserves — the shift
# restores the sum exactly — so the input relevance sums to the target logit:

# %%
print(explained.rap_ledger(sample=0))
y = explained.output[np.arange(n), labels]
print(f"max |sum R - y_t| over {n} images: "
      f"{np.abs(explained.input_relevance_sum() - y).max():.1e}")
shift = sum(r.shift for r in explained.layers if r.rule is not None and r.rule.step == "rap")
print(f"the shifts move {np.mean(shift / y):.2f} y_t per image on average")

# %% [markdown]
# The shifts move a large part of the relevance: summed over the three convolutions that
# take the general step, about as much as the logit itself. The shift is RAP's own: the
# paper does not state it, and it depends on which entries are exactly 0.
#
# ## 5. One choice made explicit: the input layer
#
# The authors' code gives the $z^\mathcal{B}$ (box) rule, with the image's minimum and
# maximum as bounds, to a Conv2d whose input has **3 channels** — the RGB input of their
# models. This network reads one channel, so their code would give its input layer the
# general step. `lrp_ref` decides by position (`box_input=True`, the default: the first
# layer takes $z^\mathcal{B}$) and offers the code's behaviour for this input as
# `box_input=False`. (The other such choice, `first_step`, replaces the code's test
# `R.max() == 1`.)

# %%
general = rap(cnn, images, target=labels, box_input=False).relevance
for name, R in (("RAP", relevance["RAP"]), ("RAP box_input=False", general)):
    mass = evaluation.relevance_mass_accuracy(R, masks).mean()
    print(f"{name:20s} mass accuracy {mass:.3f}")

# %% [markdown]
# As in tutorial 6, the box rule sends relevance to the empty pixels around the object
# (it measures each pixel against $[0, 1]$), which lie outside the mask; the general step
# gives an empty pixel nothing, since every share is proportional to $|a_i|$.
#
# **Exercises.** (1) Explain the hand network's class 1 ($y_1 = -3$): every relevance is
# negative — check $R_h = (-12/5, -3/5)$ by hand. (2) Replace the first Dense by the
# 1x1 Conv2d with weight `W1.T[:, :, None, None]` on `x.reshape(1, 3, 1, 1)` and explain
# class 1 again: the Conv2d step routes negative relevance only through the negative
# weights (docs/extensions.md, RAP item 4), and the heatmap changes.
