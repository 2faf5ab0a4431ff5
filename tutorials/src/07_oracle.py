# Source of tutorials/07_oracle.ipynb (build: python tutorials/build.py 07).
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 7 — `lrp_ref` as an oracle: testing another LRP implementation
#
# You maintain an LRP implementation — your own, or a library such as Zennit or Captum —
# and want to know that it computes what it claims. `lrp_ref` is built for that: every
# rule is documented to the last convention (bias, the sign of the stabilizer at 0, ties),
# both its paths agree to float64 rounding, and `lrp_ref.testing.assert_relevance_close`
# compares two relevance maps and explains a failure.
#
# This notebook tests two implementations:
#
# 1. a homemade NumPy LRP-ε with a **deliberate bug** — one that casual testing misses;
# 2. **Zennit**, when it is installed (the optional `oracle` extra,
#    `pip install '.[oracle]'`); without it those cells say so and skip.

# %%
from importlib.metadata import version

import numpy as np

import lrp_ref as lrp
from lrp_ref.interop.torch import from_torch  # imports torch only when called
from lrp_ref.testing import assert_relevance_close, max_relative_difference
from lrp_ref.zoo import models

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. The tolerance: relative to each sample's largest relevance
#
# A relevance map is full of near-zeros, so an element-wise relative tolerance fails on
# rounding noise, and an absolute one depends on the scale of the logits.
# `assert_relevance_close(actual, expected, rtol, atol)` requires, for every sample $b$
# and element $i$,
#
# $$|\text{actual}_{b,i} - \text{expected}_{b,i}| \le \text{atol} + \text{rtol} \cdot
#   \max_i |\text{expected}_{b,i}|.$$
#
# ## 2. The implementation under test
#
# A compact LRP-ε for a ReLU MLP, in the four steps of Montavon et al.'s tutorial
# ($z$, $s$, $c$, $R$). It takes the weights of the shipped digits MLP as a list of
# `(W, b)`. It has one bug, on the marked line. Can you see it before the test does?

# %%
net = models.load("digits_mlp")
layers = [(layer.weight, layer.bias) for layer in net.layers if isinstance(layer, lrp.Dense)]
x, _ = models.data("digits_mlp", "test")
x = x[:20]


def my_lrp_epsilon(layers, x, target, epsilon):
    """LRP-epsilon for Dense-ReLU-...-Dense, explaining the logit ``target`` per sample."""
    activations = [x.reshape(len(x), -1)]
    for k, (W, b) in enumerate(layers):
        z = activations[-1] @ W + b
        activations.append(np.maximum(z, 0) if k < len(layers) - 1 else z)
    logits = activations[-1]
    R = np.zeros_like(logits)
    R[np.arange(len(x)), target] = logits[np.arange(len(x)), target]
    for (W, b), a in zip(reversed(layers), reversed(activations[:-1])):
        z = a @ W + b                                   # step 1
        s = R / (z + epsilon)                           # step 2   <- the bug is here
        c = s @ W.T                                     # step 3
        R = a * c                                       # step 4
    return R.reshape(x.shape)

# %% [markdown]
# ## 3. A first test — and it passes
#
# The natural first test: explain the predicted class with the default ε and compare with
# the reference.

# %%
predicted = net.forward(x).argmax(axis=1)
reference = net.explain(x, target=predicted, rule=lrp.Epsilon(1e-6)).relevance
mine = my_lrp_epsilon(layers, x, predicted, 1e-6)
assert_relevance_close(mine, reference, rtol=1e-9)
print("test 1 passed: largest difference",
      f"{max_relative_difference(mine, reference):.1e} x max|R| of its sample")

# %% [markdown]
# ## 4. A test where the convention matters
#
# The stabilizer of eq. (6) is $\epsilon \cdot \mathrm{sign}(z_j)$: it pushes $z_j$ *away*
# from 0. The homemade code adds $+\epsilon$ always, which differs only where $z_j < 0$. In
# a ReLU network no relevance reaches a hidden neuron with $z_j < 0$ (its activation is
# 0), so the bug can only show at the **output** — when the explained logit is negative.
# The predicted class almost never has a negative logit; the *least* likely class does.
# And a large ε makes the difference big. So a good test explains the other classes too,
# with a large ε:

# %%
least_likely = net.forward(x).argmin(axis=1)
reference = net.explain(x, target=least_likely, rule=lrp.Epsilon(0.5)).relevance
mine = my_lrp_epsilon(layers, x, least_likely, 0.5)
try:
    assert_relevance_close(mine, reference, rtol=1e-9)
except AssertionError as failure:
    print(failure)

# %% [markdown]
# The report reads:
#
# * the share of elements outside the tolerance, the largest difference and where it is;
# * per sample, `sum actual` and `sum expected`: their difference is **not** zero, so the
#   two implementations disagree on *how much* relevance reaches the input — a bias,
#   stabilizer or dropped-relevance convention — not merely on how it is distributed.
#
# The reference's ledger says how much its stabilizers took; the top layer's entry is
# the one the bug changes:

# %%
e = net.explain(x[:1], target=least_likely[:1], rule=lrp.Epsilon(0.5))
print(f"target logit {e.output[0, e.target[0]]:+.4f}")
print(e.ledger())

# %% [markdown]
# The fix is the sign: $z + \epsilon\,\mathrm{sign}(z)$ with $\mathrm{sign}(0) := +1$.

# %%
def fixed_lrp_epsilon(layers, x, target, epsilon):
    """As ``my_lrp_epsilon``, with the stabilizer epsilon * sign(z), sign(0) := +1."""
    activations = [x.reshape(len(x), -1)]
    for k, (W, b) in enumerate(layers):
        z = activations[-1] @ W + b
        activations.append(np.maximum(z, 0) if k < len(layers) - 1 else z)
    logits = activations[-1]
    R = np.zeros_like(logits)
    R[np.arange(len(x)), target] = logits[np.arange(len(x)), target]
    for (W, b), a in zip(reversed(layers), reversed(activations[:-1])):
        z = a @ W + b
        s = R / (z + epsilon * np.where(z >= 0, 1.0, -1.0))
        c = s @ W.T
        R = a * c
    return R.reshape(x.shape)


for target in (predicted, least_likely):
    for epsilon in (1e-6, 0.5):
        reference = net.explain(x, target=target, rule=lrp.Epsilon(epsilon)).relevance
        assert_relevance_close(fixed_lrp_epsilon(layers, x, target, epsilon), reference,
                               rtol=1e-9)
print("fixed: every target and epsilon passes at rtol=1e-9")

# %% [markdown]
# **What made the second test find the bug:** it went where the conventions live —
# negative outputs, a large stabilizer. The same goes for biases (test with and without:
# `lrp.Epsilon(eps, bias=False)`), zero denominators (inputs of exact zeros) and, for
# pooling, ties. `rtol=1e-9` is safe in float64: both sides compute the same sums.
#
# ## 5. Zennit against the reference
#
# Zennit is a PyTorch LRP library. `lrp_ref.interop.torch.from_torch` converts a
# `torch.nn.Sequential` into an `lrp_ref` network with the same forward pass and torch's
# module names as layer paths, so the two can be compared layer by layer.

# %%
try:
    import torch
    import zennit
    print(f"torch {version('torch')} and zennit {version('zennit')} are installed: comparing")
except ImportError as missing:
    torch = zennit = None
    print(f"Zennit is not available, so section 5 is skipped ({missing})")

# %% [markdown]
# The digits MLP as a torch model (float64, evaluation mode), converted back, and both
# explained with LRP-ε. Zennit's `Gradient` attributor takes the output relevance as a
# function of the output; we give it lrp_ref's default, $\text{onehot}(t) \cdot f(x)$.

# %%
def zennit_relevance(model, x, target, rule):
    """Zennit's input relevance with ``rule`` on every Linear layer."""
    composite = zennit.composites.LayerMapComposite([(torch.nn.Linear, rule)])
    onehot = torch.nn.functional.one_hot(torch.as_tensor(target), 10).double()
    with zennit.attribution.Gradient(model, composite) as attributor:
        _, relevance = attributor(torch.from_numpy(x).requires_grad_(True),
                                  lambda output: output * onehot)
    return relevance.detach().numpy()


if zennit is not None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10)).double().eval()
    with torch.no_grad():
        for module, (W, b) in zip(model[1::2], layers):
            module.weight.copy_(torch.from_numpy(W.T))
            module.bias.copy_(torch.from_numpy(b))
    converted = from_torch(model)
    print(converted)
    expected = converted.explain(x, target=predicted, rule=lrp.Epsilon(0.5)).relevance
    actual = zennit_relevance(model, x, predicted, zennit.rules.Epsilon(0.5))
    assert_relevance_close(actual, expected, rtol=1e-9)
    print("Zennit Epsilon(0.5) = lrp_ref Epsilon(0.5): largest difference",
          f"{max_relative_difference(actual, expected):.1e}")

# %% [markdown]
# A **convention difference**, found the same way: Zennit's `ZPlus` keeps the positive part
# of the bias in its denominator, `lrp_ref.ZPlus` (the z+ rule of Montavon et al. 2017) has
# none. The report's non-zero `sum diff` points at the bias; the rule Zennit actually
# computes is `lrp_ref.AlphaBeta(1, 0)` (documented in `docs/peers.md`).

# %%
if zennit is not None:
    actual = zennit_relevance(model, x, predicted, zennit.rules.ZPlus(stabilizer=1e-30))
    try:
        assert_relevance_close(actual, converted.explain(x, target=predicted,
                                                          rule=lrp.ZPlus()).relevance)
    except AssertionError as failure:
        print("\n".join(str(failure).splitlines()[:6]), "\n...")
    assert_relevance_close(actual, converted.explain(x, target=predicted,
                                                     rule=lrp.AlphaBeta(1, 0)).relevance,
                           rtol=1e-9)
    print("Zennit ZPlus = lrp_ref AlphaBeta(1, 0)")

# %% [markdown]
# ## What to take away
#
# * Compare with `assert_relevance_close` at a scale-relative tolerance; `rtol=1e-9` is
#   right for float64 implementations of the same equation.
# * Test where conventions live: negative outputs, large ε, biases on and off, zero
#   denominators, ties. A test on the predicted class with a tiny ε can pass a wrong
#   implementation.
# * Read the report's `sum diff`: non-zero means a different amount of relevance was
#   absorbed (bias, stabilizer, dropped); zero means the same amount, distributed
#   differently.
# * `lrp_ref.testing` also has hypothesis strategies (`dense_networks`, `conv_networks`,
#   `inputs_for`, `rules`) to generate random networks and inputs for such tests.
#
# **Exercises.** (1) Give `my_lrp_epsilon` a second bug — leave out `+ b` in step 1 — and
# find a test that catches it. (2) Which targets and inputs make `Epsilon(1e-6)` and
# `Zero()` differ by more than `rtol=1e-6`? (3) With Zennit installed, compare
# `zennit.rules.AlphaBeta(2, 1)` with `lrp.AlphaBeta(2, 1)`.
