"""Run the LRP Toolbox's own Python layers next to lrp_ref, rule by rule, and show the bugs
docs/peers.md ("LRP Toolbox") lists. Not part of CI: the Toolbox is not a package (it is a
repository, sebastian-lapuschkin/lrp_toolbox); point this script at its ``python/``
directory, the one holding ``modules/``:

    PYTHONPATH=$PWD python scripts/lrp_toolbox_agreement.py /path/to/lrp_toolbox/python

The Toolbox's layers are NHWC (``(N, H, W, D)``) with ``Convolution.W`` of shape
``(h, w, d, n)``, valid convolutions; this script converts to lrp_ref's NCHW layers. Its
code uses ``np.float``, which NumPy 1.24 removed: the script sets ``np.float = float``
before calling it (the only change). Prints one line per comparison: the largest
``|toolbox - lrp_ref| / max|lrp_ref|`` over the batch, or what the Toolbox returned.
"""

from __future__ import annotations

import sys

import numpy as np

import lrp_ref as lrp

if not hasattr(np, "float"):
    np.float = float  # noqa: NPY001 (the Toolbox uses np.float, removed in NumPy 1.24)


def largest(theirs: np.ndarray, ours: np.ndarray) -> float:
    return float(np.abs(theirs - ours).max() / np.abs(ours).max())


def show(label: str, value: float | str) -> None:
    text = value if isinstance(value, str) else f"{value:.2g}"
    print(f"{label:<86} {text}")


def nchw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2)


def nhwc(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 2, 3, 1)


def rules(alpha_values=(0.5, 1.0, 2.0, 0.0)) -> list[tuple[str, float | None, lrp.Rule]]:
    out = [("simple", None, lrp.Zero()), ("epsilon", 0.25, lrp.Epsilon(0.25)),
           ("flat", None, lrp.Flat()), ("ww", None, lrp.WSquare())]
    out += [("alphabeta", a, lrp.AlphaBeta.from_eq7(a, 1 - a)) for a in alpha_values]
    return out


def linear_and_convolution(modules) -> None:
    rng = np.random.default_rng(0)
    print("-- Linear (W (m, n), our Dense layout) and Convolution (NHWC, W (h, w, d, n))")
    X, W, B = rng.standard_normal((4, 6)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    R = rng.standard_normal((4, 5))
    theirs = modules.Linear(6, 5)
    theirs.W, theirs.B = W, B
    theirs.forward(X)
    ours = lrp.Dense(W, B)
    ours.forward(X)
    for var, param, rule in rules():
        show(f"Linear.lrp(R, {var!r}, {param}) vs {rule!r}",
             largest(theirs.lrp(R, var, param), ours.relevance(R, rule)))
    X = rng.standard_normal((2, 7, 7, 3))
    W, B = rng.standard_normal((3, 3, 3, 4)), rng.standard_normal(4)
    theirs = modules.Convolution((3, 3, 3, 4), stride=(2, 2))
    theirs.W, theirs.B = W, B
    Y = theirs.forward(X)
    ours = lrp.Conv2d(W.transpose(3, 2, 0, 1), B, stride=2)
    show("Convolution.forward vs Conv2d(W.transpose(3, 2, 0, 1), stride=2)",
         largest(Y, nhwc(ours.forward(nchw(X)))))
    R = rng.standard_normal(Y.shape)
    for var, param, rule in rules():
        show(f"Convolution.lrp(R, {var!r}, {param}) vs {rule!r}",
             largest(theirs.lrp(R, var, param), nhwc(ours.relevance(nchw(R), rule))))


def pools(modules) -> None:
    rng = np.random.default_rng(1)
    print("-- SumPool (window sum / sqrt(kh kw)) against AvgPool2d; MaxPool")
    X = rng.standard_normal((2, 6, 6, 2))
    for (k, s) in (((2, 2), (2, 2)), ((3, 3), (1, 1))):
        theirs = modules.SumPool(k, s)
        Y = theirs.forward(X)
        ours = lrp.AvgPool2d(k[0], s[0])
        show(f"SumPool({k}, {s}).forward vs AvgPool2d * sqrt(kh kw)",
             largest(Y, nhwc(ours.forward(nchw(X))) * np.sqrt(k[0] * k[1])))
        R = rng.standard_normal(Y.shape)
        area = k[0] * k[1]
        for var, param, rule in (("simple", None, lrp.Epsilon(1e-12 / area)),
                                 ("epsilon", 0.25, lrp.Epsilon(0.25 / area)),
                                 ("flat", None, lrp.Flat()), ("ww", None, lrp.Flat()),
                                 ("alphabeta", 1.0, lrp.AlphaBeta(1, 0))):
            show(f"  SumPool.lrp(R, {var!r}, {param}) vs {rule!r}",
                 largest(theirs.lrp(R, var, param), nhwc(ours.relevance(nchw(R), rule))))
        show("  ... 'epsilon' 0.25 vs Epsilon(0.25) (the window mean stabilised instead)",
             largest(theirs.lrp(R, "epsilon", 0.25),
                     nhwc(ours.relevance(nchw(R), lrp.Epsilon(0.25)))))
    X = np.round(rng.standard_normal((2, 6, 6, 2)))              # ties in some windows
    for (k, s) in (((2, 2), (2, 2)), ((3, 3), (1, 1))):
        theirs = modules.MaxPool(k, s)
        Y = theirs.forward(X)
        R = rng.standard_normal(Y.shape)
        ours = lrp.MaxPool2d(k[0], s[0], mode="winner")
        ours.forward(nchw(X))
        for var, param in (("simple", None), ("epsilon", 0.25), ("alphabeta", 2.0)):
            show(f"MaxPool({k}, {s}).lrp(R, {var!r}, {param}) vs MaxPool2d(mode='winner')",
                 largest(theirs.lrp(R, var, param), nhwc(ours.relevance(nchw(R)))))
        flat = lrp.AvgPool2d(k[0], s[0])
        flat.forward(nchw(X))
        for var in ("flat", "ww"):
            show(f"MaxPool({k}, {s}).lrp(R, {var!r}) vs AvgPool2d(k, s) under Flat()",
                 largest(theirs.lrp(R, var), nhwc(flat.relevance(nchw(R), lrp.Flat()))))


def bugs(modules) -> None:
    print("-- the bugs")
    # SumPool._alphabeta_lrp, alpha * beta != 0: the beta half is multiplied by R_j twice
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1, 4, 4, 1))
    theirs = modules.SumPool((2, 2), (2, 2))
    theirs.forward(X)
    ours = lrp.AvgPool2d(2)
    ours.forward(nchw(X))
    for scale in (1.0, 3.0):
        R = np.full((1, 2, 2, 1), scale)
        for alpha in (2.0, 0.5):
            rule = lrp.AlphaBeta.from_eq7(alpha, 1 - alpha)
            show(f"SumPool.lrp(R = {scale:g} everywhere, 'alphabeta', {alpha}) vs {rule!r}",
                 largest(theirs.lrp(R, "alphabeta", alpha), nhwc(ours.relevance(nchw(R),
                                                                                  rule))))
    R = rng.uniform(0.5, 3.0, (1, 2, 2, 1))
    alpha, beta = 2.0, -1.0
    plus = nhwc(ours.relevance(nchw(R), lrp.AlphaBeta.from_eq7(1.0, 0.0)))
    minus = nhwc(ours.relevance(nchw(R), lrp.AlphaBeta.from_eq7(0.0, 1.0)))
    spread = np.repeat(np.repeat(R, 2, axis=1), 2, axis=2)      # R_j at every input i of j
    show("  ... random R: vs alpha R+ + beta R- R_j (the beta half times R_j once more)",
         largest(theirs.lrp(R, "alphabeta", alpha), alpha * plus + beta * minus * spread))

    # Linear._alphabeta_lrp_slow: a zero denominator makes the whole sample NaN
    W = np.array([[1.0, -1.0], [2.0, -2.0], [-1.0, -0.5]])       # output 1: z+_j = 0 if x >= 0
    B = np.array([0.5, 0.0])
    X = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 2.0]])            # sample 0: z+_1 = 0; sample 1 not
    R = np.array([[1.0, 2.0], [1.0, 2.0]])
    theirs = modules.Linear(3, 2)
    theirs.W, theirs.B = W, B
    theirs.forward(X)
    ours = lrp.Dense(W, B)
    ours.forward(X)
    slow = theirs.lrp(R, "alphabeta_slow", 2.0)
    show("Linear.lrp(R, 'alphabeta_slow', 2.0), sample 0 (z+_1 = 0): NaN elements",
         f"{int(np.isnan(slow[0]).sum())} of {slow.shape[1]}: {slow[0]}")
    show("  ... sample 1 vs AlphaBeta(2, 1)",
         largest(slow[1:], ours.relevance(R, lrp.AlphaBeta(2, 1))[1:]))
    show("  ... Linear.lrp(R, 'alphabeta', 2.0) (the default path), sample 0 vs AlphaBeta(2, 1)",
         largest(theirs.lrp(R, "alphabeta", 2.0)[:1], ours.relevance(R, lrp.AlphaBeta(2, 1))[:1]))

    # Convolution._alphabeta_lrp_slow: NaNs zeroed after the sum over filters
    W = np.stack([np.full((2, 2, 1), 1.0), np.full((2, 2, 1), -1.0)], axis=-1)  # (2, 2, 1, 2)
    B = np.zeros(2)
    X = np.abs(rng.standard_normal((1, 3, 3, 1))) + 0.1         # filter 1: every z+_ij = 0
    theirs = modules.Convolution((2, 2, 1, 2), stride=(1, 1))
    theirs.W, theirs.B = W, B
    Y = theirs.forward(X)
    R = np.ones(Y.shape)
    ours = lrp.Conv2d(W.transpose(3, 2, 0, 1), B)
    ours.forward(nchw(X))
    expected = nhwc(ours.relevance(nchw(R), lrp.AlphaBeta(1, 0)))
    slow = theirs.lrp(R, "alphabeta_slow", 1.0)
    show("Convolution.lrp(R = 1, 'alphabeta_slow', 1.0), filter 2 with no z+: sum R_x",
         f"{slow.sum():.3g} (AlphaBeta(1, 0): {expected.sum():.3g}, filter 1's share)")
    show("  ... Convolution.lrp(R, 'alphabeta', 1.0) (the default path) vs AlphaBeta(1, 0)",
         largest(theirs.lrp(R, "alphabeta", 1.0), expected))

    # 'simple' at z_j = 0: its 1e-16 stabilizer, no NaN, but shares of 1e16
    theirs = modules.Linear(2, 1)
    theirs.W, theirs.B = np.array([[1.0], [-1.0]]), np.zeros(1)
    theirs.forward(np.array([[1.0, 1.0]]))
    show("Linear.lrp(R = 3, 'simple') at z_j = 1 - 1 = 0 (lrp_ref's Zero(): 0, 0; 3 dropped)",
         str(theirs.lrp(np.array([[3.0]]), "simple")))


def main(path: str) -> None:
    sys.path.insert(0, path)
    import modules  # the Toolbox's python/modules

    linear_and_convolution(modules)
    pools(modules)
    with np.errstate(invalid="ignore", divide="ignore"):     # its 0/0, shown as NaN
        bugs(modules)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
