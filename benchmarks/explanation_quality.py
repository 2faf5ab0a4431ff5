"""Explanation quality on held-out shapes images: which rule explains best?

The shapes data (``lrp_ref.datasets.make_shapes``) come with the exact pixel
mask of the object that decides the class, so an explanation can be scored
against ground truth. On the held-out split of the shipped ``shapes_cnn``
(``lrp_ref.models``), for every rule of ``lrp_ref.rules`` (applied to all
layers, default parameters), every composite of ``lrp_ref.composites``, RAP
(``lrp_ref.extensions.rap``, with and without the box input) and the
baselines Gradient, sensitivity ``|Gradient|``, Gradient x Input and
random noise (standard normal, seeded), it measures per
image (the target is the true label):

* relevance mass accuracy and relevance rank accuracy (Arras et al. 2022) of
  the heatmap against the object mask;
* AOPC of the MoRF pixel-flipping curve (Samek et al. 2017): 2x2 patches,
  ``--steps`` steps until the whole image is flipped, zero fill (the
  background value);

and reports means with 95% bootstrap percentile intervals over images
(``--boot`` resamples, seeded). It writes ``explanation_quality.md`` (the
table) and ``explanation_quality.png`` (bars with intervals, and the mean
MoRF curves) to ``--out`` (default ``figures/``).

Rules are discovered at run time: every ``LinearRule`` of ``lrp_ref.rules``
that can be built without arguments, applied uniformly (``ZBox`` needs bounds
and belongs to the input layer only, so it appears through the composites),
and every composite factory whose only required arguments are the input
bounds ``low``/``high`` (the model card's input range, ``[0, 1]``).

``--task tokens`` does the same for text: the shipped sentiment transformer
(``lrp_ref.zoo.models.sentiment_transformer``) on its held-out sentences,
whose deciding tokens (the last clause's adjective and negation) are known,
for AttnLRP and CP-LRP (``lrp_ref.composites.attnlrp(1e-6)`` and ``cp_lrp(1e-6)``:
Epsilon(1e-6) on every Dense, LayerNorm and the pooling), Gradient x Input at the embeddings
(``lrp_ref.text``), the raw attention weights and attention rollout
(``lrp_ref.zoo.transformer.attention_scores``) and random scores: mass and rank
accuracy on the deciding tokens, and the AOPC of the MoRF token-flipping curve
(``lrp_ref.evaluation.token_flipping``: ``--steps`` steps, every token finally
replaced by the blank token, whose embedding is zero). It writes
``explanation_quality_tokens.md`` and ``explanation_quality_tokens.png``.

Usage::

    python benchmarks/explanation_quality.py            # 200 test images, about 2 minutes
    python benchmarks/explanation_quality.py --quick    # 6 images, seconds (CI smoke test)
    python benchmarks/explanation_quality.py --task tokens           # 1000 sentences
    python benchmarks/explanation_quality.py --task tokens --quick   # 24 sentences
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import lrp_ref as lrp
from lrp_ref import rules as rule_module
from lrp_ref.evaluation import (
    aopc,
    pixel_flipping,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    token_flipping,
)
from lrp_ref.extensions import text
from lrp_ref.extensions.rap import rap
from lrp_ref.rules import composites as composite_module
from lrp_ref.zoo import models, sentiment
from lrp_ref.zoo import transformer as tr
from lrp_ref.zoo.train import by_length

Array = np.ndarray
Method = Callable[[lrp.Sequential, Array, Array], Array]

ROOT = Path(__file__).resolve().parent.parent
INPUT_RANGE = (0.0, 1.0)
PATCH = 2
METRICS = ("mass accuracy", "rank accuracy", "AOPC (MoRF)")


@dataclass(frozen=True)
class Setup:
    """The model, the held-out images with their masks, and where they came from."""

    net: lrp.Sequential
    images: Array
    labels: Array
    masks: Array
    source: str


def shipped_model(n: int) -> Setup:
    """The shipped ``shapes_cnn`` and the first ``n`` images of its held-out test split."""
    test = models.shapes_split("test")
    source = ("shipped `lrp_ref.models.load('shapes_cnn')`, test split "
              f"`make_shapes({models.SHAPES_SPLITS['test']['n']}, "
              f"seed={models.SHAPES_SPLITS['test']['seed']})`")
    return Setup(models.load("shapes_cnn"), test.images[:n], test.labels[:n], test.masks[:n],
                 source)


def discover_methods(low: float, high: float) -> dict[str, Method]:
    """Every rule and composite available now, plus the gradient baselines and random."""
    methods: dict[str, Method] = {}
    for name in rule_module.__all__:
        cls = getattr(rule_module, name)
        if (inspect.isclass(cls) and issubclass(cls, rule_module.LinearRule)
                and cls is not rule_module.LinearRule and _buildable(cls, {})):
            methods[rule_module.describe(cls())] = _lrp(cls())
    for name in composite_module.__all__:
        factory = getattr(composite_module, name)
        if (inspect.isfunction(factory) and name != "uniform"
                and _buildable(factory, {"low": low, "high": high})):
            composite = _call(factory, {"low": low, "high": high})
            if isinstance(composite, composite_module.Composite):
                methods[repr(composite)] = _lrp(composite)
    # RAP (Nam et al. 2020) as its authors' code computes it (docs/extensions.md): the input
    # layer with z^B (lrp_ref's default) and with the general step (the code's on 1 channel)
    methods["RAP"] = lambda net, x, t: rap(net, x, t).relevance
    methods["RAP, box_input=False"] = lambda net, x, t: rap(net, x, t, box_input=False).relevance
    methods["Gradient"] = lambda net, x, t: net.gradient(x, t)
    methods["Sensitivity (abs. gradient)"] = lambda net, x, t: np.abs(net.gradient(x, t))
    methods["Gradient x Input"] = lambda net, x, t: net.gradient_x_input(x, t)
    methods["random"] = lambda net, x, t: np.random.default_rng(0).standard_normal(x.shape)
    return methods


def _required(function: Callable) -> set[str]:
    return {p.name for p in inspect.signature(function).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _buildable(function: Callable, available: dict[str, float]) -> bool:
    return _required(function) <= set(available)


def _call(function: Callable, available: dict[str, float]) -> object:
    return function(**{name: available[name] for name in _required(function)})


def _lrp(rule: object) -> Method:
    return lambda net, x, t: net.explain(x, target=t, rule=rule).relevance


def evaluate_method(method: Method, setup: Setup, steps: int) -> dict[str, Array]:
    """Per-image scores and MoRF curves of one method."""
    x, y = setup.images, setup.labels
    R = method(setup.net, x, y)
    curve = pixel_flipping(setup.net, x, R, y, order="morf", patch=PATCH, steps=steps,
                           fill="zeros")
    return {"mass accuracy": relevance_mass_accuracy(R, setup.masks),
            "rank accuracy": relevance_rank_accuracy(R, setup.masks),
            "AOPC (MoRF)": aopc(curve), "curve": curve}


def bootstrap_interval(values: Array, resamples: int, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the mean over images."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def summarise(results: dict[str, dict[str, Array]], resamples: int) -> dict[str, dict]:
    return {name: {metric: (float(scores[metric].mean()),
                            *bootstrap_interval(scores[metric], resamples))
                   for metric in METRICS}
            for name, scores in results.items()}


def write_table(summary: dict[str, dict], path: Path, meta: dict[str, str]) -> str:
    """The markdown table (sorted by mass accuracy), with the run's settings above it."""
    lines = [
        "# Explanation quality on held-out shapes images",
        "",
        *(f"* {key}: {value}" for key, value in meta.items()),
        "",
        "Mean over images with a 95% bootstrap interval. Mass and rank accuracy: "
        "higher = more positive relevance on the deciding object (Arras et al. 2022); "
        "AOPC (MoRF): higher = the target logit falls faster when the most relevant "
        "2x2 patches are zeroed first (Samek et al. 2017). AOPC is in logit units and "
        "the logits' scale varies from image to image, so its intervals are wide; every "
        "method sees the same images, so compare methods image by image (paired) rather "
        "than by overlapping intervals.",
        "",
        "| method | mass accuracy | rank accuracy | AOPC (MoRF) |",
        "|---|---|---|---|",
    ]
    for name, row in sorted(summary.items(), key=lambda item: -item[1]["mass accuracy"][0]):
        cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row[k] for k in METRICS)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def label(name: str) -> str:
    """A short plot label: a composite's name without its (long) parameter list."""
    return name.split("(")[0] if len(name) > 28 else name


def plot(summary: dict[str, dict], results: dict[str, dict[str, Array]], path: Path) -> None:
    """Three bar panels with intervals above, the mean MoRF curves below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(summary, key=lambda n: summary[n]["mass accuracy"][0])
    fig = plt.figure(figsize=(15, 0.3 * len(names) + 7.5))
    grid = fig.add_gridspec(2, 3, height_ratios=[0.3 * len(names) + 1, 5])
    for k, metric in enumerate(METRICS):
        ax = fig.add_subplot(grid[0, k])
        mean = np.array([summary[n][metric][0] for n in names])
        low = mean - np.array([summary[n][metric][1] for n in names])
        high = np.array([summary[n][metric][2] for n in names]) - mean
        ax.barh(np.arange(len(names)), mean, xerr=[low, high], color="tab:blue", capsize=2)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels([label(n) for n in names] if k == 0 else [], fontsize=8)
        ax.set_title(f"{metric} (mean, 95% bootstrap CI)", fontsize=10)
    ax = fig.add_subplot(grid[1, :])
    # one colour per curve (tab20 has 20 distinct ones), and the line style cycling too, so
    # that neighbours in the legend differ twice
    colours, styles = plt.get_cmap("tab20").colors, ["-", "--", ":", "-."]
    for k, name in enumerate(reversed(names)):
        curve = results[name]["curve"].mean(axis=0)
        ax.plot(np.linspace(0, 1, len(curve)), curve, styles[k % 4], label=label(name),
                color=colours[(2 * k) % 20 + (2 * k) // 20 % 2], linewidth=1.4)
    ax.set_xlabel("fraction of 2x2 patches set to 0, most relevant first (MoRF)")
    ax.set_ylabel("mean target logit")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- tokens: the shipped sentiment transformer --------------------------------------------

TokenMethod = Callable[[lrp.Graph, Array, Array], Array]


def token_methods() -> dict[str, TokenMethod]:
    """AttnLRP, CP-LRP, Gradient x Input, attention weights and rollout, random."""
    net, _ = models.sentiment_transformer()
    rules = {"AttnLRP": lrp.composites.attnlrp(1e-6), "CP-LRP": lrp.composites.cp_lrp(1e-6)}
    methods: dict[str, TokenMethod] = {
        name: (lambda net, ids, t, r=rule: net.explain(ids, t, rule=r).relevance)
        for name, rule in rules.items()}
    methods["Gradient x Input"] = lambda net, ids, t: text.gradient_x_input(net, ids, t)
    methods["attention weights"] = lambda net, ids, t: tr.attention_scores(net, ids)["attention"]
    methods["attention rollout"] = lambda net, ids, t: tr.attention_scores(net, ids)["rollout"]
    methods["random"] = lambda net, ids, t: np.random.default_rng(0).standard_normal(ids.shape)
    return methods


def evaluate_tokens(n: int, steps: int) -> tuple[dict[str, dict[str, Array]], float]:
    """Per-sentence scores and MoRF curves of every token method, and the model's accuracy.

    The first ``n`` held-out sentences, grouped by length (each group one batch);
    target = the true label.
    """
    net, vocab = models.sentiment_transformer()
    data = sentiment.make_sentiment(tr.TEST_N, seed=tr.TEST_SEED)
    ids = tr.encode(vocab, data.sentences[:n])
    labels, blank = data.labels[:n], vocab.ids[tr.BLANK]
    results: dict[str, dict[str, Array]] = {}
    correct = 0
    for name, method in token_methods().items():
        scores = {m: np.empty(n) for m in METRICS}
        scores["curve"] = np.empty((n, steps + 1))
        for index in by_length(ids):
            batch, y = np.stack([ids[k] for k in index]), labels[index]
            mask = np.stack([data.deciding[k] for k in index])
            R = method(net, batch, y)
            scores["mass accuracy"][index] = relevance_mass_accuracy(R, mask)
            scores["rank accuracy"][index] = relevance_rank_accuracy(R, mask)
            curve = token_flipping(net, batch, R, blank, y, order="morf", steps=steps)
            scores["curve"][index] = curve
            scores["AOPC (MoRF)"][index] = aopc(curve)
            if name == "random":
                correct += int((net.forward(batch).argmax(axis=1) == y).sum())
        results[name] = scores
    return results, correct / n


def plot_tokens(summary: dict[str, dict], results: dict[str, dict[str, Array]],
                path: Path) -> None:
    """Three bar panels with intervals, and the mean MoRF token-flipping curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(summary, key=lambda n: summary[n]["mass accuracy"][0])
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.2))
    for ax, metric in zip(axes, METRICS):
        mean = np.array([summary[n][metric][0] for n in names])
        low = mean - np.array([summary[n][metric][1] for n in names])
        high = np.array([summary[n][metric][2] for n in names]) - mean
        ax.barh(np.arange(len(names)), mean, xerr=[low, high], color="tab:blue", capsize=2)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels(names if metric == METRICS[0] else [], fontsize=8)
        ax.set_title(f"{metric} (mean, 95% CI)", fontsize=10)
    for name in reversed(names):
        curve = results[name]["curve"].mean(axis=0)
        axes[3].plot(np.linspace(0, 1, len(curve)), curve, label=name)
    axes[3].set_xlabel("fraction of tokens blanked, most relevant first")
    axes[3].set_ylabel("mean target logit")
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main_tokens(n: int, steps: int, resamples: int, out: Path, quick: bool) -> dict[str, dict]:
    start = time.perf_counter()
    results, accuracy = evaluate_tokens(n, steps)
    summary = summarise(results, resamples)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": "shipped `lrp_ref.zoo.models.sentiment_transformer()`, held-out "
                     f"`make_sentiment({tr.TEST_N}, seed={tr.TEST_SEED})`",
            "sentences": f"the first {n} (model accuracy on them {accuracy:.1%}); "
                         "target = true label; deciding tokens = the last clause's "
                         "adjective and negation",
            "LRP": "Epsilon(1e-6) on every Dense, LayerNorm and the pooling; AttnLRP: "
                   "uniform MatMul split, softmax Prop. 3.1; CP-LRP: A held constant in A v",
            "token flipping": f"MoRF, {steps} steps, tokens replaced by `<blank>` "
                              "(zero embedding, position kept)",
            "intervals": f"95% percentile bootstrap over sentences, {resamples} resamples, "
                         "seed 0",
            "command": "python benchmarks/explanation_quality.py --task tokens"
                       + (" --quick" if quick else ""),
            "run time": f"{time.perf_counter() - start:.0f} s"}
    lines = ["# Explanation quality on held-out sentiment sentences (tokens)", "",
             *(f"* {key}: {value}" for key, value in meta.items()), "",
             "Mean over sentences with a 95% bootstrap interval. Mass and rank accuracy: "
             "higher = more positive relevance on the deciding tokens; AOPC (MoRF): higher "
             "= the target logit falls faster when the most relevant tokens are blanked "
             "first.", "",
             "| method | mass accuracy | rank accuracy | AOPC (MoRF) |", "|---|---|---|---|"]
    for name, row in sorted(summary.items(), key=lambda item: -item[1]["mass accuracy"][0]):
        cells = [f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in (row[k] for k in METRICS)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "explanation_quality_tokens.md").write_text(table)
    print(table)
    plot_tokens(summary, results, out / "explanation_quality_tokens.png")
    return summary


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=("shapes", "tokens"), default="shapes",
                        help="shapes images and the shipped CNN, or sentences and the "
                             "shipped transformer")
    parser.add_argument("--quick", action="store_true",
                        help="6 images or 24 sentences, 4 steps: a smoke run")
    parser.add_argument("--n", type=int, default=None,
                        help="test images (default 200) or sentences (default 1000)")
    parser.add_argument("--steps", type=int, default=None,
                        help="flipping steps (default 64 for images, 10 for tokens)")
    parser.add_argument("--boot", type=int, default=None, help="bootstrap resamples")
    parser.add_argument("--out", type=Path, default=ROOT / "figures")
    args = parser.parse_args(argv)
    if args.task == "tokens":
        return main_tokens(args.n or (24 if args.quick else 1000),
                           args.steps or (4 if args.quick else 10),
                           args.boot or (200 if args.quick else 2000), args.out, args.quick)
    n = args.n or (6 if args.quick else 200)
    steps = args.steps or (4 if args.quick else 64)
    resamples = args.boot or (200 if args.quick else 2000)

    start = time.perf_counter()
    setup = shipped_model(n)
    methods = discover_methods(*INPUT_RANGE)
    results = {name: evaluate_method(method, setup, steps) for name, method in methods.items()}
    summary = summarise(results, resamples)
    accuracy = float(np.mean(setup.net.forward(setup.images).argmax(axis=1) == setup.labels))
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"model": setup.source,
            "images": f"the first {n} test images (model accuracy on them "
                      f"{accuracy:.1%}); target = true label",
            "pixel flipping": f"MoRF, {PATCH}x{PATCH} patches, {steps} steps, zero fill",
            "intervals": f"95% percentile bootstrap over images, {resamples} resamples, seed 0",
            "command": "python benchmarks/explanation_quality.py"
                       + (" --quick" if args.quick else ""),
            "run time": f"{time.perf_counter() - start:.0f} s"}
    print(write_table(summary, args.out / "explanation_quality.md", meta))
    plot(summary, results, args.out / "explanation_quality.png")
    return summary


if __name__ == "__main__":
    main()
