# Source of tutorials/11_graphs.ipynb (build: python tutorials/build.py 11).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 11 — Networks that are graphs: skip connections, concatenation, torchvision
#
# Real networks are not chains. A ResNet adds a block's input to its output (a *skip
# connection*), a DenseNet concatenates every layer's output with its input, and a
# tensor read by two layers sends relevance back along both. `lrp_ref.Graph` holds such
# a network: a directed acyclic graph of named nodes, each one layer reading one or more
# nodes. This notebook builds a residual block and a concatenation by hand, with numbers
# you can check on paper, reads their ledgers node by node, and then imports a whole
# torchvision ResNet-18 with `from_torch` and explains it with a composite.
#
# Three things are new compared with a `Sequential` (docs/conventions.md, "Graphs"):
#
# * **`Add`** splits the relevance of a sum $z = \sum_k x_k$ in proportion to its terms,
#   $R_k = x_k / (z + \epsilon\,\mathrm{sign}(z))\, R$ (the $\epsilon$ share is booked as
#   absorbed stabilizer; $\epsilon = 0$ makes LRP-0 equal Gradient × Input);
# * **`Concat`** hands each input its slice of the relevance;
# * **fan-out**: a tensor read by several nodes receives the *sum* of the relevances
#   they send back — exact, so the ledger books nothing for it.

# %%
# %matplotlib inline
from fractions import Fraction

import numpy as np

import lrp_ref as lrp

np.set_printoptions(precision=4, suppress=True)


def exact(values):
    """The entries of an array as small fractions, for comparing with paper."""
    return "(" + ", ".join(str(Fraction(float(v)).limit_denominator(1000))
                           for v in np.ravel(values)) + ")"

# %% [markdown]
# ## 1. A residual block by hand
#
# $x = (1, 2)$ goes through a branch $h = \mathrm{ReLU}(x W_1)$, $b = h W_2$ and is added
# back: $s = b + x$; a head sums $s$: $y = s_1 + s_2$. With
# $W_1 = \begin{pmatrix} 1 & -1 \\ 1 & 1 \end{pmatrix}$ (weights are `(in, out)`) and
# $W_2 = \begin{pmatrix} 1 & 0 \\ 0 & -1 \end{pmatrix}$:
# $x W_1 = (3, 1)$, $h = (3, 1)$, $b = (3, -1)$, $s = (4, 1)$, $y = 5$.

# %%
g = lrp.Graph()
x_in = g.input("x")
h = g.add(lrp.Dense([[1.0, -1.0], [1.0, 1.0]]), x_in, name="branch.fc1")
h = g.add(lrp.ReLU(), h, name="branch.relu")
b = g.add(lrp.Dense([[1.0, 0.0], [0.0, -1.0]]), h, name="branch.fc2")
s = g.add(lrp.Add(epsilon=0.0), b, x_in, name="add")      # the skip connection
g.output(g.add(lrp.Dense([[1.0], [1.0]]), s, name="head"))
print(g.table())

# %% [markdown]
# LRP-0 from $R_y = y = 5$, by hand:
#
# * head: $R_s = s_i \cdot 1 / 5 \cdot 5 = (4, 1)$;
# * `add`: the branch gets $b_j / s_j \cdot R_{s_j} = (3/4 \cdot 4,\ -1/1 \cdot 1) = (3, -1)$,
#   the skip $x_j / s_j \cdot R_{s_j} = (1, 2)$;
# * `branch.fc2` (one non-zero weight per output): $R_h = (3, -1)$; the ReLU passes it;
# * `branch.fc1`: output 1 gives $(1, 2)/3 \cdot 3 = (1, 2)$, output 2 gives
#   $(-1, 2)/1 \cdot (-1) = (1, -2)$: the branch sends $(2, 0)$ to $x$;
# * fan-out at $x$: $(2, 0) + (1, 2) = (3, 2)$, which sums to $y = 5$.

# %%
x = np.array([[1.0, 2.0]])
e = g.explain(x, rule=lrp.Zero())
print("R_x (ResNet block) =", exact(e.relevance), " sum:", e.relevance.sum())
print("Gradient x Input   =", exact(g.gradient_x_input(x)))
print(e.ledger())

# %% [markdown]
# Gradient × Input gives the same $(3, 2)$: on a ReLU network LRP-0 equals it (Ancona et
# al. 2018), and `Add(epsilon=0)` keeps that true through the skip connection. Each row
# of the ledger is one node; the `add` row shows what arrived at the sum (its output)
# and what left towards both of its inputs.
#
# With the default `Add(epsilon=1e-6)` (Zennit's `Norm` rule on its `Sum`), a small share
# of the relevance goes to the stabilizer, and the ledger says how much:

# %%
g_eps = lrp.Graph()
x_in = g_eps.input("x")
h = g_eps.add(lrp.Dense([[1.0, -1.0], [1.0, 1.0]]), x_in, name="branch.fc1")
h = g_eps.add(lrp.ReLU(), h, name="branch.relu")
b = g_eps.add(lrp.Dense([[1.0, 0.0], [0.0, -1.0]]), h, name="branch.fc2")
s = g_eps.add(lrp.Add(epsilon=0.1), b, x_in, name="add")
g_eps.output(g_eps.add(lrp.Dense([[1.0], [1.0]]), s, name="head"))
e_eps = g_eps.explain(x, rule=lrp.Zero())
record = e_eps.layer("add")
print(f"add with epsilon 0.1: stabilizer took {record.absorbed_stabilizer[0]:.6f} of "
      f"{record.relevance_out.sum():.1f}; R_x = {e_eps.relevance.ravel()}")

# %% [markdown]
# ## 2. A DenseNet-style concatenation
#
# A DenseNet layer appends its output to its input: $c = [x, \mathrm{ReLU}(x w)]$. With
# $x = (1, 2)$, $w = (1, 1)^T$ and a head that sums $c$: $c = (1, 2, 3)$, $y = 6$. LRP-0
# gives $R_c = (1, 2, 3)$; `Concat` hands $x$ its slice $(1, 2)$ and the branch its $3$,
# which the branch's Dense layer shares as $(1, 2)$; fan-out adds: $R_x = (2, 4)$.

# %%
d = lrp.Graph()
x_in = d.input("x")
branch = d.add(lrp.Dense([[1.0], [1.0]]), x_in, name="layer.fc")
branch = d.add(lrp.ReLU(), branch, name="layer.relu")
c = d.add(lrp.Concat(axis=1), x_in, branch, name="cat")
d.output(d.add(lrp.Dense([[1.0], [1.0], [1.0]]), c, name="head"))
e_cat = d.explain(x, rule=lrp.Zero())
print("R_x (concatenation) =", exact(e_cat.relevance))
for r in e_cat.layers:
    print(f"{r.path:10s} {r.layer:8s} sum R_out {r.relevance_out.sum():+.3f}   "
          f"imbalance {float(r.imbalance()[0]):+.1e}")

# %% [markdown]
# ## 3. A torchvision ResNet-18, imported whole
#
# `from_torch` converts any `torch.nn.Module` in eval mode: a `Sequential` layer by layer,
# anything else by tracing its forward with `torch.fx`. Module calls become nodes named
# by torch's module names (`layer1.0.conv1`); a module called twice — torchvision's
# BasicBlock calls its `relu` twice — gets a second node `layer1.0.relu:2`; the additions
# become `Add` nodes (`add`, `add_1`, ...). torch is optional (the `oracle` extra): without
# it this section says so and stops.

# %%
try:
    import torch
    import torchvision

    from lrp_ref.interop.torch import from_torch
    from lrp_ref.rules.canonize import merge_batchnorm
except ImportError as missing:
    torch = None
    print(f"torch/torchvision not available, section 3 is skipped ({missing})")

# %%
if torch is not None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).double().eval()
    net = from_torch(model)
    images = np.random.default_rng(0).standard_normal((1, 3, 64, 64))
    with torch.no_grad():
        logits = model(torch.from_numpy(images)).numpy()
    print(f"{len(net.nodes)} nodes; first: {[n.name for n in net.nodes[:6]]}")
    print(f"forward: max |lrp_ref - torch| / max |torch| = "
          f"{np.abs(net.forward(images) - logits).max() / np.abs(logits).max():.1e}")

# %% [markdown]
# Explained with Zennit's `EpsilonPlus` composite (ε on the fully connected layer, z⁺ on
# the convolutions), after folding every BatchNorm into the convolution before it, as
# Zennit's ResNet canonizer does. The input relevance sums to the target logit up to
# what the ledger books as absorbed by biases and stabilizers.

# %%
if torch is not None:
    merged = merge_batchnorm(net)
    e_resnet = merged.explain(images, rule=lrp.composites.epsilon_plus())
    target = int(e_resnet.target[0])
    booked = sum(float(r.ledger.total()[0]) for r in e_resnet.layers if not r.container)
    print(f"target {target}: logit {e_resnet.output[0, target]:.4f}, "
          f"sum R_input {e_resnet.relevance.sum():.4f}, booked by the ledger {booked:.4f}")
    worst = max(abs(float(r.imbalance()[0])) for r in e_resnet.layers)
    print(f"largest imbalance of any node: {worst:.1e}")
    print("\n".join(e_resnet.ledger().splitlines()[:8]))

# %%
figure = None
if torch is not None:
    from lrp_ref.viz import plot
    figure = plot.heatmap(e_resnet.relevance[0], title="ResNet-18 (random weights), "
                          "EpsilonPlus")
figure
