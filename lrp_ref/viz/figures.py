"""The figures of the README and the docs, regenerated from the shipped models.

Run ``lrp-ref figures --out figures`` (the command-line entry point, :mod:`lrp_ref.cli`).
Each entry of :data:`FIGURES` is a function returning a matplotlib Figure, so a
notebook can draw any of them (``figures.maxpool_modes()``) and change its
arguments. Everything is deterministic: the shipped weights, the fixed test
splits and the first test samples of distinct classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..evaluation import relevance_mass_accuracy
from ..layers import BatchNorm
from ..network import Sequential
from ..rules import AlphaBeta, Epsilon, Pass, Rule, Zero
from ..rules.canonize import merge_batchnorm
from ..rules.composites import epsilon_gamma_box, epsilon_plus_flat
from ..zoo import models
from . import plot

Array = np.ndarray


def first_of_each_class(name: str, n: int) -> tuple[Array, Array]:
    """The first ``n`` correctly classified test samples of model ``name``, distinct classes."""
    net = models.load(name)
    x, y = models.data(name, "test")
    predicted = net.forward(x).argmax(axis=1)
    picked: list[int] = []
    for k in np.flatnonzero(predicted == y):
        if y[k] not in y[picked]:
            picked.append(int(k))
        if len(picked) == n:
            break
    return x[picked], y[picked]


def rule_comparison(n: int = 4) -> Figure:
    """Rule dependence (the drawback docs/theory.md names, section 7): one digit per row,
    one rule per column."""
    net = models.load("digits_cnn")
    x, y = first_of_each_class("digits_cnn", n)
    rules = {"LRP-0": Zero(), "LRP-ε 0.1": Epsilon(0.1), "LRP-α2β1": AlphaBeta(2, 1),
             "LRP-α1β0": AlphaBeta(1, 0), "ε-γ-box": epsilon_gamma_box(0, 1)}
    fig = plot.compare_rules(net, x, rules, row_labels=[f"digit {d}" for d in y])
    fig.suptitle("The same prediction, five rules (digits CNN; red: for the class, "
                 "blue: against)")
    return fig


def ledger(index: int = 0) -> Figure:
    """The conservation ledger of one digit under LRP-epsilon: BatchNorm shifts inject."""
    net = models.load("digits_cnn")
    x, _ = first_of_each_class("digits_cnn", index + 1)
    e = net.explain(x[index:index + 1], rule=Epsilon(0.1))
    return plot.ledger_chart(e, title="Where the relevance goes: digits CNN, LRP-ε 0.1 "
                                      f"(target {e.target[0]})")


def relevance_flow(index: int = 0) -> Figure:
    """Relevance per layer under three rules, from the logit to the pixels."""
    net = models.load("digits_cnn")
    x, _ = first_of_each_class("digits_cnn", index + 1)
    x = x[index:index + 1]
    explanations = {name: net.explain(x, rule=rule) for name, rule in
                    (("LRP-0", Zero()), ("LRP-ε 0.1", Epsilon(0.1)),
                     ("LRP-α2β1", AlphaBeta(2, 1)))}
    return plot.relevance_flow(explanations, title="Relevance at each layer's input, "
                                                   "digits CNN")


def maxpool_modes(n: int = 4) -> Figure:
    """MaxPool2d's two relevance modes on the digits CNN, and their difference."""
    x, y = first_of_each_class("digits_cnn", n)
    rule = Epsilon(0.1)
    winner = models.load("digits_cnn").explain(x, rule=rule).relevance
    proportional = models.load("digits_cnn", maxpool_mode="proportional").explain(
        x, rule=rule).relevance
    fig = plot.grid({"winner": winner, "proportional": proportional,
                     "proportional − winner": proportional - winner}, x,
                    row_labels=[f"digit {d}" for d in y], shared_limits=True)
    fig.suptitle("MaxPool2d: winner-take-all or proportional\n"
                 "(LRP-ε 0.1; one colour scale per row)")
    return fig


def with_batchnorm_rule(net: Sequential, rule: Rule, batchnorm: Rule) -> list[Any]:
    """A rule list: ``batchnorm`` for the (top-level) BatchNorm layers, ``rule`` for the rest."""
    return [None if not layer.takes_rule else batchnorm if isinstance(layer, BatchNorm)
            else rule for layer in net.layers]


def batchnorm_treatments(index: int = 0) -> Figure:
    """One digit under the three BatchNorm treatments, for LRP-ε and LRP-α2β1."""
    net = models.load("digits_cnn")
    x, y = first_of_each_class("digits_cnn", index + 1)
    x = x[index:index + 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # every BatchNorm must fold
        folded = merge_batchnorm(net)
    rules = {"LRP-ε 0.1": Epsilon(0.1), "LRP-α2β1": AlphaBeta(2, 1)}
    fig = Figure(figsize=(12.0, 7.2), layout="constrained")
    axes = fig.subplots(len(rules), 4)
    for row, (name, rule) in enumerate(rules.items()):
        runs = {"affine (rule on BN)": net.explain(x, rule=rule),
                "Pass() on BN": net.explain(x, rule=with_batchnorm_rule(net, rule, Pass())),
                "folded into Conv2d": folded.explain(x, rule=rule)}
        axes[row, 0].imshow(plot.image_2d(x[0]), cmap="gray_r")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_ylabel(name)
        for col, (treatment, e) in enumerate(runs.items(), start=1):
            terms = [sum(getattr(r, term)[0] for r in e.layers if not r.container)
                     for term in ("absorbed_bias", "absorbed_stabilizer", "dropped")]
            plot.heatmap(e.relevance[0], ax=axes[row, col], title=(
                f"{treatment}\nΣR = {e.relevance.sum():.2f}\n"
                "bias {:+.2f}, stabilizer {:+.2f}\ndropped {:+.2f}".format(*terms)))
    logit = runs["affine (rule on BN)"].output[0].max()
    axes[0, 0].set_title(f"digit {y[index]}\nlogit {logit:.2f}")
    fig.suptitle("BatchNorm, three treatments (digits CNN). ΣR at the input, and the ledger "
                 "summed over layers:\nbias (BN shifts included) and stabilizer absorbed, "
                 "dropped (a negative entry: relevance injected or created)")
    return fig


def shapes_ground_truth(n: int = 4) -> Figure:
    """Heatmaps on the shapes set with the deciding object's mask; mass inside it."""
    net = models.load("shapes_cnn")
    test = models.shapes_split("test")
    predicted = net.forward(test.images).argmax(axis=1)
    # correctly classified images, the classes in turn: cross, square, triangle, cross, ...
    right = [np.flatnonzero((predicted == test.labels) & (test.labels == c))
             for c in range(len(test.class_names))]
    picked = [right[k % len(right)][k // len(right)] for k in range(n)]
    x, masks, labels = test.images[picked], test.masks[picked], test.labels[picked]
    rules = {"LRP-ε 0.01": Epsilon(0.01), "LRP-α1β0": AlphaBeta(1, 0),
             "ε-plus-flat": epsilon_plus_flat(), "ε-γ-box": epsilon_gamma_box(0, 1)}
    relevances = {name: net.explain(x, rule=rule).relevance for name, rule in rules.items()}
    fig = Figure(figsize=(2.6 * (len(rules) + 1), 2.6 * len(x) + 0.6), layout="constrained")
    axes = fig.subplots(len(x), len(rules) + 1, squeeze=False)
    for row in range(len(x)):
        ax = axes[row, 0]
        ax.imshow(x[row, 0], cmap="gray_r", interpolation="nearest")
        ax.contour(masks[row], levels=[0.5], colors="tab:green", linewidths=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(test.class_names[labels[row]])
        for col, (name, R) in enumerate(relevances.items(), start=1):
            mass = relevance_mass_accuracy(R[row:row + 1], masks[row:row + 1])[0]
            title = f"mass in object {mass:.0%}"
            plot.heatmap(R[row], ax=axes[row, col], colorbar=False,
                         title=f"{name}\n{title}" if row == 0 else title)
    axes[0, 0].set_title("input, object outlined")
    fig.suptitle("Shapes CNN: heatmaps (red +, blue −; each its own symmetric scale) and the "
                 "share of positive relevance inside the deciding object")
    return fig


#: File name -> the function drawing it.
FIGURES: dict[str, Callable[[], Figure]] = {
    "rule_comparison_digits.png": rule_comparison,
    "ledger_chart.png": ledger,
    "relevance_flow.png": relevance_flow,
    "maxpool_modes.png": maxpool_modes,
    "batchnorm_treatments.png": batchnorm_treatments,
    "shapes_ground_truth.png": shapes_ground_truth,
}


def make(out: Path | str, names: Iterable[str] | None = None, dpi: int = 110) -> list[Path]:
    """Draw the figures ``names`` (default: all) into directory ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(FIGURES) if names is None else list(names)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; the figures are {sorted(FIGURES)}")
    paths = []
    for name in names:
        FIGURES[name]().savefig(out / name, dpi=dpi, bbox_inches="tight")
        paths.append(out / name)
    return paths

