# Source of tutorials/08_classroom_assignment.ipynb (build: python tutorials/build.py 08).
# The student cell holds a stub on purpose: the solution must not be in the notebook.
# tests/test_tutorials.py executes the notebook as shipped and once with a correct
# solution (written in the test) put in place of the student cell.
# A cell's last expression is what the notebook shows:
# ruff: noqa: B018

# %% [markdown]
# # Tutorial 8 — Assignment: the ε-rule for a Dense layer
#
# You fill in one cell — marked **STUDENT CELL** — and run the grader below it: it calls
# your function on 40 generated cases, compares each result with `lrp_ref`'s Dense layer
# under the same rule, and for the first case that fails shows the inputs, the expected
# and your relevance, the conservation ledger and a hint.
#
# *Teachers:* this notebook is the students' copy and holds no solution.
# `lrp-ref assignment epsilon_dense --out DIR` writes this assignment as a student and a
# teacher notebook (with the solution and grading on hidden cases), and
# `lrp-ref grade SUBMISSIONS/ --assignment epsilon_dense` grades a folder of them; the
# classroom page of the documentation (docs/classroom.md) says what the grader can and
# cannot prevent.

# %%
import numpy as np

import lrp_ref as lrp
from lrp_ref.testing import grade

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The rule
#
# A Dense layer computes $z_j = \sum_i a_i w_{ij} + b_j$ from its input $a$. Given the
# relevance $R_j$ of its outputs, the ε-rule — eq. (6) of docs/theory.md — hands each
# input
#
# $$R_i = \sum_j \frac{a_i w_{ij}}{z_j + \epsilon \cdot \mathrm{sign}(z_j)} R_j,
#   \qquad \mathrm{sign}(z_j) = \begin{cases} +1 & z_j \ge 0 \\ -1 & z_j < 0
#   \end{cases}$$
#
# (note: $\mathrm{sign}(0) := +1$, and the bias $b_j$ is part of $z_j$).
#
# **Your task:** write `lrp_epsilon_dense(a, w, b, R, epsilon)` with
#
# | argument | shape | meaning |
# |---|---|---|
# | `a` | `(B, n_in)` | the layer's input, a batch of $B$ samples |
# | `w` | `(n_in, n_out)` | weights, `w[i, j]` $= w_{ij}$ (so $z$ = `a @ w + b`) |
# | `b` | `(n_out,)` | biases |
# | `R` | `(B, n_out)` | relevance of the outputs |
# | `epsilon` | float | $\epsilon > 0$ |
#
# returning `R_in` of shape `(B, n_in)`. Use NumPy, no loops over the batch (hint: the
# sum over $j$ is a matrix product). The samples of a batch must not mix.

# %% [markdown]
# ## STUDENT CELL
#
# Replace the body of the function below with your implementation.

# %%
# STUDENT CELL: your implementation of the epsilon rule (eq. 6) for a Dense layer
def lrp_epsilon_dense(a, w, b, R, epsilon):
    """Return R_in, shape (B, n_in): eq. (6) applied to the Dense layer z = a @ w + b."""
    return np.zeros_like(a)   # a stub: replace this line with your implementation

# %% [markdown]
# ## Check by hand first
#
# The hidden layer of tutorial 1: $a = (1, 2)$,
# $w = \begin{pmatrix} 1 & -1 & 0.5 \\ 1 & 1 & -1 \end{pmatrix}$, $b = (0, 0.5, 0)$,
# $R = (2.5, 2.5, 0)$ and $\epsilon = 1$. On paper: neuron 1 has $z_1 = 3$, denominator
# 4, and gives $(1, 2) \cdot 2.5 / 4 = (0.625, 1.25)$; neuron 2 has $z_2 = 1.5$,
# denominator $2.5$, and gives $(-1, 2) \cdot 2.5 / 2.5 = (-1, 2)$; neuron 3 has
# $R_3 = 0$. So $R_{\text{in}} = (-0.375, 3.25)$.

# %%
a = np.array([[1.0, 2.0]])
w = np.array([[1.0, -1.0, 0.5], [1.0, 1.0, -1.0]])
b = np.array([0.0, 0.5, 0.0])
R = np.array([[2.5, 2.5, 0.0]])
mine = lrp_epsilon_dense(a, w, b, R, epsilon=1.0)
print("yours:   ", mine)
print("expected:", np.array([[-0.375, 3.25]]))
print("hand check:", "passed" if np.allclose(mine, [[-0.375, 3.25]]) else "not yet")

# %% [markdown]
# ## The grader
#
# Now the generated cases, with $\epsilon = 0.1$. Read the report from the top: how many
# cases passed, the first counterexample, the ledger and the hint.

# %%
report = grade(lambda a, w, b, R: lrp_epsilon_dense(a, w, b, R, epsilon=0.1),
               layer="dense", rule=lrp.Epsilon(0.1))
print(report)

# %% [markdown]
# When all 40 cases pass, you are done. If you want more:
#
# 1. **αβ-rule.** Write `lrp_alphabeta_dense(a, w, b, R, alpha, beta)` for eq. (7) in
#    `lrp_ref`'s convention, $R_i = \sum_j (\alpha \frac{z^+_{ij}}{z^+_j} - \beta
#    \frac{z^-_{ij}}{z^-_j}) R_j$ with $z^\pm_j = \sum_i z^\pm_{ij} + b^\pm_j$, and grade it
#    with `rule=lrp.AlphaBeta(2, 1)`. What must your function do where $z^-_j = 0$?
# 2. **Conservation.** For your ε-rule, compute $\sum_i R_i$ and compare with $\sum_j
#    R_j$. Which two terms of the ledger account for the difference?
