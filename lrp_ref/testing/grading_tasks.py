"""What the grader can grade: one task per layer, its student call, its cases and its reference.

A task fixes how the student's function is called (the arrays before ``R``
positionally, the integers and floats by keyword), the reference layer of
lrp_ref that answers each case, and the cases: first a fixed list of tricky
ones, then random ones. All generated numbers are multiples of 1/4 (BatchNorm
variances are powers of 4, so ``1/sqrt(var)`` is exact too): every ``z_j`` is
exact in float64 whatever the summation order, and a mismatch is a difference
in the rule, not rounding. The tasks::

    task       the student's function                                   graded against
    dense      f(a, w, b, R) -> R_in                                    Dense
    conv       f(a, w, b, R, stride=s, padding=p) -> R_in               Conv2d
    avgpool    f(a, R, kernel_size=k, stride=s) -> R_in                 AvgPool2d
    maxpool    f(a, R, kernel_size=k, stride=s) -> R_in                 MaxPool2d(mode)
    batchnorm  f(a, gamma, beta, mean, var, R, eps=e) -> R_in           BatchNorm1d/2d
    residual   f(z_body, z_shortcut, R, epsilon=e) -> (R_body, R_short) Residual
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Flatten,
    Layer,
    MaxPool2d,
    Residual,
)
from ..network import Sequential
from ..rules import Rule, Zero

Array = np.ndarray


@dataclass(frozen=True)
class Case:
    """One generated case: the layer input ``a``, the output relevance ``R`` and the
    layer's parameters (``w``, ``b``, ``stride``, ``padding``, ... by task)."""

    name: str
    a: Array
    R: Array
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def w(self) -> Array:
        return self.params["w"]

    @property
    def b(self) -> Array:
        return self.params["b"]

    @property
    def stride(self) -> int:
        return self.params.get("stride", 1)

    @property
    def padding(self) -> int:
        return self.params.get("padding", 0)


@dataclass(frozen=True)
class Reference:
    """lrp_ref's answer for a case: input relevance, layer output and ledger terms."""

    relevance: Array
    z: Array
    absorbed_bias: Array
    absorbed_stabilizer: Array
    dropped: Array


@dataclass(frozen=True)
class Task:
    """How one kind of layer is graded (module docstring)."""

    name: str
    call: str
    arrays: tuple[str, ...]
    keywords: tuple[str, ...]
    layer: Callable[[Case, Any], Layer]
    tricky: Callable[[], list[Case]]
    random: Callable[[np.random.Generator, int], Case]
    #: what grade's ``rule`` slot holds: "rule" (a LinearRule), "mode" (MaxPool2d's) or
    #: "none" (the Residual's epsilon is part of each case)
    setting: str = "rule"
    #: The reference network's input for a case (the Residual's is (z_body, z_short)).
    x: Callable[[Case], Array] = lambda case: case.a
    #: The student's return value as one array comparable with the reference.
    result: Callable[[Any], Array] = lambda out: np.asarray(out, dtype=np.float64)
    #: Task-specific properties of output j of a case (for the hints).
    features: Callable[[Case, tuple[int, ...]], dict[str, bool]] = lambda case, j: {}
    #: Parameters with a batch axis like ``a`` (the Residual's z_shortcut).
    batched: tuple[str, ...] = ()

    def rows(self, case: Case, index: Any, R: Array | None = None) -> Case:
        """``case`` with only the samples ``index`` of ``a`` (and of batched parameters)."""
        params = {**case.params, **{n: case.params[n][index] for n in self.batched}}
        return Case(case.name, case.a[index], case.R[index] if R is None else R, params)

    def arguments(self, case: Case) -> dict[str, Any]:
        """What the student's function receives, by name, in call order."""
        return {"a" if self.name != "residual" else "z_body": case.a,
                **{n: case.params[n] for n in self.arrays}, "R": case.R,
                **{n: case.params[n] for n in self.keywords}}

    def call_student(self, fn: Callable, case: Case) -> Array:
        """The student's result for ``case`` (copies of the inputs) as a float64 array."""
        a, R = case.a.copy(), case.R.copy()
        arrays = [np.copy(case.params[n]) for n in self.arrays]
        keywords = {n: case.params[n] for n in self.keywords}
        # a student's division by zero shows up as NaN or inf in the report, not as warnings
        with np.errstate(all="ignore"):
            return self.result(fn(a, *arrays, R, **keywords))

    def reference(self, case: Case, setting: Any) -> Reference:
        """Explain ``case`` with lrp_ref's layer under ``setting`` (a rule or a mode)."""
        x, R = self.x(case), case.R
        rule = setting if isinstance(setting, Rule) else Zero()
        # a Flatten on top gives explain the (B, outputs) it seeds; it passes R unchanged
        e = Sequential([self.layer(case, setting), Flatten()]).explain(
            x, target=0, rule=rule, output_relevance=R.reshape(R.shape[0], -1))
        record = e.layer("0")
        ledger = record.ledger
        return Reference(e.relevance, e.output.reshape(R.shape), ledger.absorbed_bias,
                         ledger.absorbed_stabilizer, ledger.dropped)

    def cases(self, n_cases: int, seed: int = 0, hidden: bool = False) -> list[Case]:
        """The tricky cases followed by random ones, ``n_cases`` in all; ``hidden``: only
        random ones (from ``seed``, which the teacher keeps to themselves)."""
        tricky = [] if hidden else self.tricky()
        rng = np.random.default_rng(seed)
        extra = max(0, n_cases - len(tricky))
        return (tricky + [self.random(rng, k) for k in range(extra)])[:n_cases]


# -- helpers for the cases ---------------------------------------------------------------------


def quarters(rng: np.random.Generator, shape: tuple, low: int = -8, high: int = 8,
             zeros: float = 0.15) -> Array:
    """Multiples of 1/4 in ``[low/4, high/4]``, each 0 with probability ``zeros``."""
    x = rng.integers(low, high + 1, size=shape) / 4
    return np.where(rng.random(shape) < zeros, 0.0, x)


def out_size(n: int, k: int, stride: int, padding: int = 0) -> int:
    return (n + 2 * padding - k) // stride + 1


def window_rows(case: Case, p: int, k: int) -> tuple[int, int]:
    """First and last row (in the unpadded input) of output row ``p``'s window."""
    first = p * case.stride - case.padding
    return first, first + k - 1


# -- dense and conv -----------------------------------------------------------------------------


def dense_case(name: str, a: Any, w: Any, b: Any, R: Any) -> Case:
    return Case(name, np.asarray(a, float), np.asarray(R, float),
                {"w": np.asarray(w, float), "b": np.asarray(b, float)})


def conv_case(name: str, a: Array, w: Array, b: Array, R: Array, stride: int = 1,
              padding: int = 0) -> Case:
    return Case(name, a, R, {"w": w, "b": np.asarray(b, float), "stride": stride,
                             "padding": padding})


def dense_tricky() -> list[Case]:
    w = np.array([[1.0, 0.5, 0.25], [0.5, 1.0, 0.75], [0.25, 0.5, 1.0]])
    a = np.array([[1.0, 2.0, 0.5], [0.5, 0.25, 1.5]])
    R = np.array([[1.0, -0.5, 2.0], [0.75, 1.0, -1.25]])
    zero = np.zeros(3)
    mixed_w = np.array([[1.0, -0.5, -1.0], [-0.5, 1.0, -0.75], [0.25, -0.5, -1.0]])
    cancel_w = np.array([[1.0, 0.5, 2.0], [-1.0, 0.5, -1.0], [0.0, -1.0, 0.25]])
    dead_w = np.array([[1.0, 0.0, -0.5], [0.5, 0.0, 1.0], [-0.25, 0.0, 0.5]])
    return [
        dense_case("positive inputs, weights and relevance scale; no bias", a, w, zero,
                   np.abs(R)),
        dense_case("biases of both signs (z_j > 0)", a, w, [0.5, -0.25, 1.0], R),
        dense_case("negative pre-activations z_j < 0", a, mixed_w, [0.25, 0.5, -0.5], R),
        dense_case("negative inputs", [[-1.0, 2.0, -0.5], [1.5, -0.75, -1.0]], mixed_w,
                   [-0.25, 0.5, 0.0], R),
        dense_case("a zero input (z_j = b_j)", [[0.0, 0.0, 0.0], [1.0, 0.5, 0.25]], mixed_w,
                   [0.5, 0.0, -0.75], R),
        dense_case("contributions cancelling to z_j = 0", [[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]],
                   cancel_w, zero, R),
        dense_case("a dead output (all weights into it are 0, no bias)", a, dead_w, zero, R),
    ]


def conv_tricky() -> list[Case]:
    rng = np.random.default_rng(1234)
    a_pos = rng.integers(1, 9, size=(1, 2, 4, 4)) / 4
    w_pos = rng.integers(1, 5, size=(2, 2, 3, 3)) / 4
    w_mixed = w_pos * np.array([1.0, -1.0])[:, None, None, None]
    a_neg = a_pos * np.where(rng.random(a_pos.shape) < 0.5, -1.0, 1.0)
    cancel = np.array([[1.0, -1.0], [1.0, -1.0]])[None, None] * np.ones((2, 2, 1, 1))

    def R(shape: tuple) -> Array:
        return rng.integers(-4, 5, size=shape) / 4

    return [
        conv_case("positive inputs and weights; no bias", a_pos, w_pos, np.zeros(2),
                  np.abs(R((1, 2, 2, 2)))),
        conv_case("biases of both signs (z_j > 0)", a_pos, w_pos, [0.5, -0.25], R((1, 2, 2, 2))),
        conv_case("negative pre-activations z_j < 0 (padding 1)", a_pos, w_mixed, [0.25, 0.5],
                  R((1, 2, 4, 4)), padding=1),
        conv_case("negative inputs (stride 2, padding 1)", a_neg, w_mixed, [-0.25, 0.5],
                  R((1, 2, 2, 2)), stride=2, padding=1),
        conv_case("a zero input (z_j = b_j)", np.zeros((1, 2, 4, 4)), w_mixed, [0.5, -0.75],
                  R((1, 2, 2, 2))),
        conv_case("contributions cancelling to z_j = 0", np.ones((1, 2, 3, 3)), cancel,
                  np.zeros(2), R((1, 2, 2, 2))),
        conv_case("windows entirely in the padding (kernel 2, padding 2)", a_pos,
                  w_mixed[:, :, :2, :2], np.zeros(2), R((1, 2, 7, 7)), padding=2),
        conv_case("stride 2, no padding, one channel without bias",
                  np.abs(a_neg[:, :, :, :]), w_pos[:, :, :2, :2], [0.0, 0.75],
                  R((1, 2, 2, 2)), stride=2),
    ]


def dense_random(rng: np.random.Generator, k: int) -> Case:
    n_in, n_out, batch = (int(v) for v in rng.integers(1, 6, size=3))
    return dense_case(f"random {k}", quarters(rng, (batch, n_in)), quarters(rng, (n_in, n_out)),
                      quarters(rng, (n_out,)), quarters(rng, (batch, n_out)))


def conv_random(rng: np.random.Generator, k: int) -> Case:
    c_in, c_out, batch = (int(v) for v in rng.integers(1, 4, size=3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 3))
    H, W = max(kh, int(rng.integers(2, 7))), max(kw, int(rng.integers(2, 7)))
    Ho, Wo = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    return conv_case(f"random {k}", quarters(rng, (batch, c_in, H, W)),
                     quarters(rng, (c_out, c_in, kh, kw)), quarters(rng, (c_out,)),
                     quarters(rng, (batch, c_out, Ho, Wo)), stride, padding)


def conv_features(case: Case, j: tuple[int, ...]) -> dict[str, bool]:
    """Whether output ``j = (c, p, q)``'s window reaches into the padding."""
    _, _, H, W = case.a.shape
    _, _, kh, kw = case.w.shape
    top, bottom = window_rows(case, j[1], kh)
    left, right = window_rows(case, j[2], kw)
    return {"in_padding": top < 0 or left < 0 or bottom >= H or right >= W}


# -- pooling -----------------------------------------------------------------------------------


def pool_case(name: str, a: Array, R: Array | None, kernel_size: int, stride: int,
              rng: np.random.Generator) -> Case:
    B, C, H, W = a.shape
    if R is None:
        R = quarters(rng, (B, C, out_size(H, kernel_size, stride),
                           out_size(W, kernel_size, stride)), zeros=0.0)
    return Case(name, a, R, {"kernel_size": kernel_size, "stride": stride})


def pool_tricky() -> list[Case]:
    rng = np.random.default_rng(4321)
    pos = rng.integers(1, 9, size=(1, 2, 4, 4)) / 4
    ties = np.array([[[[1.0, 1.0, 0.5, 0.25], [0.5, 0.25, 0.75, 0.75],
                       [0.25, 0.25, 0.25, 0.25], [2.0, 0.5, 0.5, 2.0]]]])
    signs = pos * np.where(rng.random(pos.shape) < 0.5, -1.0, 1.0)
    cancel = np.array([[[[1.0, -1.0, 0.5, 0.5], [0.5, -0.5, -0.5, -0.5]]]])
    return [
        pool_case("positive inputs, non-overlapping 2x2 windows", pos, None, 2, 2, rng),
        pool_case("ties within windows", ties, None, 2, 2, rng),
        pool_case("overlapping windows (kernel 3, stride 1)", pos, None, 3, 1, rng),
        pool_case("negative inputs (kernel 2, stride 1)", signs, None, 2, 1, rng),
        pool_case("windows whose inputs sum to 0", cancel, None, 2, 2, rng),
        pool_case("a window size that does not divide the input (kernel 3, stride 2)",
                  rng.integers(0, 9, size=(2, 1, 5, 6)) / 4, None, 3, 2, rng),
    ]


def pool_random(rng: np.random.Generator, k: int, low: int = -8) -> Case:
    # kernels 1, 2, 4: the average's weight 1 / k^2 is a power of 2, so z_j is exact and
    # its sign (the stabilizer's) does not depend on rounding
    kernel, stride = (1, 2, 4)[int(rng.integers(0, 3))], int(rng.integers(1, 4))
    B, C = (int(v) for v in rng.integers(1, 4, size=2))
    H, W = (kernel + int(v) for v in rng.integers(0, 5, size=2))
    return pool_case(f"random {k}", quarters(rng, (B, C, H, W), low=low), None, kernel,
                     stride, rng)


def pool_features(case: Case, j: tuple[int, ...]) -> dict[str, bool]:
    """Overlapping windows (case) and ties for the maximum (output ``j = (c, p, q)``)."""
    k, s = case.params["kernel_size"], case.params["stride"]
    window = case.a[0, j[0], j[1] * s:j[1] * s + k, j[2] * s:j[2] * s + k]
    return {"overlap": s < k, "stride": s > 1, "tie": int(np.sum(window == window.max())) > 1}


# -- batchnorm ---------------------------------------------------------------------------------


def batchnorm_case(name: str, a: Array, gamma: Any, beta: Any, mean: Any, var: Any,
                   rng: np.random.Generator) -> Case:
    R = quarters(rng, a.shape, zeros=0.0)
    return Case(name, a, R, {"gamma": np.asarray(gamma, float), "beta": np.asarray(beta, float),
                             "mean": np.asarray(mean, float), "var": np.asarray(var, float),
                             "eps": 0.0})


def batchnorm_tricky() -> list[Case]:
    rng = np.random.default_rng(99)
    a = rng.integers(-8, 9, size=(2, 3)) / 4
    image = rng.integers(-8, 9, size=(1, 2, 3, 3)) / 4
    return [
        batchnorm_case("gamma > 0, no shift (beta = mean = 0)", np.abs(a), [1.0, 2.0, 0.5],
                       [0, 0, 0], [0, 0, 0], [1.0, 4.0, 0.25], rng),
        batchnorm_case("a shift c = beta - mean * gamma / sqrt(var) of both signs", a,
                       [1.0, 0.5, 2.0], [0.5, -0.25, 0.0], [0.25, 0.5, -1.0],
                       [1.0, 0.25, 4.0], rng),
        batchnorm_case("negative gamma", a, [-1.0, 0.5, -2.0], [0.25, 0.0, 0.5], [0, 0, 0],
                       [4.0, 1.0, 1.0], rng),
        batchnorm_case("an output z_j = 0 (x gamma / sqrt(var) = -c)",
                       np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]]), [1.0, 1.0, 1.0],
                       [-1.0, 0.0, 0.0], [0.0, 0.0, 0.5], [1.0, 1.0, 1.0], rng),
        batchnorm_case("images (B, C, H, W): one scale and shift per channel", image,
                       [0.5, -1.0], [0.25, 0.5], [0.5, -0.25], [0.25, 4.0], rng),
    ]


def batchnorm_random(rng: np.random.Generator, k: int) -> Case:
    C = int(rng.integers(1, 5))
    shape = (int(rng.integers(1, 4)), C) + ((2, 3) if rng.random() < 0.5 else ())
    return batchnorm_case(f"random {k}", quarters(rng, shape), quarters(rng, (C,)),
                          quarters(rng, (C,)), quarters(rng, (C,)),
                          4.0 ** rng.integers(-2, 2, size=C), rng)


def batchnorm_layer(case: Case, setting: Any) -> Layer:
    p = case.params
    kind = BatchNorm1d if case.a.ndim == 2 else BatchNorm2d
    return kind(p["gamma"], p["beta"], p["mean"], p["var"], eps=p["eps"])


def batchnorm_features(case: Case, j: tuple[int, ...]) -> dict[str, bool]:
    """Whether channel ``j[0]`` has a shift ``c != 0`` (the bias of the affine map)."""
    p = case.params
    c = p["beta"] - p["mean"] * p["gamma"] / np.sqrt(p["var"] + p["eps"])
    return {"bias": bool(c[j[0]] != 0), "negative_scale": bool(p["gamma"][j[0]] < 0)}


# -- the residual split ------------------------------------------------------------------------


def residual_case(name: str, z_body: Any, z_short: Any, R: Any, epsilon: float) -> Case:
    return Case(name, np.asarray(z_body, float), np.asarray(R, float),
                {"z_shortcut": np.asarray(z_short, float), "epsilon": epsilon})


def residual_tricky() -> list[Case]:
    return [
        residual_case("both branches positive", [[1.0, 2.0, 0.5]], [[1.0, 0.5, 0.25]],
                      [[1.0, -0.5, 2.0]], 0.25),
        residual_case("branches of opposite signs", [[2.0, -1.0, 0.5], [-0.5, 1.0, 3.0]],
                      [[-1.0, 2.0, -0.25], [1.0, -0.25, -1.0]],
                      [[1.0, 0.5, -1.0], [0.25, 1.0, 1.0]], 0.25),
        residual_case("a negative sum z_body + z_short < 0", [[-2.0, -0.5]], [[0.5, -0.25]],
                      [[1.0, 2.0]], 0.25),
        residual_case("branches cancelling to a sum of 0", [[1.0, -0.5, 0.0]],
                      [[-1.0, 0.5, 0.0]], [[1.0, 1.0, 1.0]], 0.25),
        residual_case("no stabilizer (epsilon = 0), a sum of 0 dropped", [[1.0, 2.0, -0.5]],
                      [[-1.0, 0.5, 0.25]], [[1.0, 1.0, 1.0]], 0.0),
    ]


def residual_random(rng: np.random.Generator, k: int) -> Case:
    B, F = (int(v) for v in rng.integers(1, 5, size=2))
    return residual_case(f"random {k}", quarters(rng, (B, F)), quarters(rng, (B, F)),
                         quarters(rng, (B, F)), [0.0, 0.25, 1.0][int(rng.integers(0, 3))])


def residual_layer(case: Case, setting: Any) -> Layer:
    """``Residual`` over the input ``x = (z_body, z_short)``: each branch a Dense that selects
    its half. Under LRP-0 a selector passes ``R_branch`` to its half exactly, so the input
    relevance is ``(R_body, R_short)``, the split itself."""
    F = case.a.shape[1]
    body, shortcut = np.eye(2 * F)[:, :F], np.eye(2 * F)[:, F:]
    return Residual(Dense(body, np.zeros(F)), Dense(shortcut, np.zeros(F)),
                    epsilon=case.params["epsilon"])


def residual_result(out: Any) -> Array:
    """``(R_body, R_short)`` side by side, like the reference's input relevance."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"return the pair (R_body, R_short), got {type(out).__name__}")
    R_body, R_short = (np.asarray(r, dtype=np.float64) for r in out)
    if R_body.shape != R_short.shape:
        raise ValueError(f"R_body {R_body.shape} and R_short {R_short.shape} differ in shape")
    return np.concatenate([R_body, R_short], axis=1)


# -- the registry ------------------------------------------------------------------------------

TASKS: dict[str, Task] = {
    "dense": Task("dense", "f(a, w, b, R) -> R_in", ("w", "b"), (),
                  lambda case, _: Dense(case.w, case.b), dense_tricky, dense_random),
    "conv": Task("conv", "f(a, w, b, R, stride=s, padding=p) -> R_in", ("w", "b"),
                 ("stride", "padding"),
                 lambda case, _: Conv2d(case.w, case.b, stride=case.stride,
                                        padding=case.padding),
                 conv_tricky, conv_random, features=lambda case, j: {
                     "stride": case.stride > 1, "padding": case.padding > 0,
                     **conv_features(case, j)}),
    "avgpool": Task("avgpool", "f(a, R, kernel_size=k, stride=s) -> R_in", (),
                    ("kernel_size", "stride"),
                    lambda case, _: AvgPool2d(case.params["kernel_size"], case.stride),
                    pool_tricky, pool_random, features=pool_features),
    "maxpool": Task("maxpool", "f(a, R, kernel_size=k, stride=s) -> R_in", (),
                    ("kernel_size", "stride"),
                    lambda case, mode: MaxPool2d(case.params["kernel_size"], case.stride,
                                                 mode=mode),
                    pool_tricky, pool_random, setting="mode", features=pool_features),
    "batchnorm": Task("batchnorm", "f(a, gamma, beta, mean, var, R, eps=e) -> R_in",
                      ("gamma", "beta", "mean", "var"), ("eps",), batchnorm_layer,
                      batchnorm_tricky, batchnorm_random, features=batchnorm_features),
    "residual": Task("residual", "f(z_body, z_shortcut, R, epsilon=e) -> (R_body, R_short)",
                     ("z_shortcut",), ("epsilon",), residual_layer, residual_tricky,
                     residual_random, setting="none", batched=("z_shortcut",),
                     x=lambda case: np.concatenate([case.a, case.params["z_shortcut"]], axis=1),
                     result=residual_result),
}
