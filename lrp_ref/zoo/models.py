"""Pretrained models shipped with lrp_ref, and the data they were trained and tested on.

Four small networks, trained by ``scripts/train_models.py`` with lrp_ref's own
forward and backward (``lrp_ref.train``: Adam, softmax cross-entropy, seeded)
and saved with :func:`lrp_ref.save` in ``lrp_ref/zoo/data/<name>.npz``:

==============  ================================================  ================
name            architecture                                      test accuracy
==============  ================================================  ================
``digits_mlp``  Flatten, Dense 64-64-32-10 (ReLU)                 97.11% (437/450)
``digits_cnn``  2 x [Conv2d 3x3, BatchNorm2d, ReLU, MaxPool2d 2],  97.11% (437/450)
                Flatten, Dense 64-32-10 (ReLU)
``credit_mlp``  Dense 7-16-8-2 (ReLU)                             78.2% (782/1000)
``shapes_cnn``  Conv2d 1-8, ReLU, MaxPool2d 2,                    100% (600/600)
                Residual(Conv2d 8-8, ReLU, Conv2d 8-8), ReLU,
                MaxPool2d 2, Conv2d 8-16, ReLU, MaxPool2d 2,
                Flatten, Dense 256-3
==============  ================================================  ================

A fifth, ``sentiment_transformer`` (:func:`sentiment_transformer`), is a
Graph for token ids of any length, not an array model: one pre-LayerNorm
encoder block with two attention heads, every matrix product a node
(:mod:`lrp_ref.zoo.transformer`), trained by
``scripts/train_sentiment_transformer.py`` on ``make_sentiment(4000, seed=0)``;
it classifies :data:`SENTIMENT_TRANSFORMER_ACCURACY` of the held-out
``make_sentiment(1000, seed=1)`` correctly (999/1000).

The accuracies are on the held-out split of :func:`data` (``split="test"``),
never used in training; ``tests/test_models.py`` checks that the shipped files
reach them. The credit labels are Bernoulli draws from a known logistic rule
(:func:`lrp_ref.datasets.make_credit`), so no model can be perfect: the
generating rule itself classifies 80.3% (803/1000) of the test split
correctly. Every model outputs logits (no softmax). The image models take
inputs in ``[0, 1]``, so ``ZBox(0, 1)`` is their natural input-layer rule;
``credit_mlp`` takes standardised features. ``digits_cnn``'s BatchNorm layers
are inference-mode affine maps with statistics fitted on the training set
(``scripts/train_models.py`` says how). ``docs/models.md`` has the details.

Usage::

    import lrp_ref
    from lrp_ref.zoo import models
    net = models.load("digits_cnn")
    x, y = models.data("digits_cnn", "test")       # (450, 1, 8, 8), (450,)
    e = net.explain(x[:4], rule=lrp_ref.Epsilon(0.1))
    models.CARDS["digits_cnn"].classes              # ("0", ..., "9")
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Literal

import numpy as np

from ..io import load as load_network
from ..layers.base import Layer, build
from .datasets import SHAPE_CLASSES, ShapesData, load_digits, make_credit, make_shapes
from .sentiment import Vocabulary

Array = np.ndarray
Split = Literal["train", "test"]

#: ``make_credit(CREDIT_N, seed=CREDIT_SEED)``: the first ``CREDIT_N_TRAIN`` rows train.
CREDIT_N, CREDIT_N_TRAIN, CREDIT_SEED = 5000, 4000, 0
#: ``make_shapes(n, seed=seed)`` of each split.
SHAPES_SPLITS: dict[str, dict[str, int]] = {"train": {"n": 3000, "seed": 1},
                                            "test": {"n": 600, "seed": 2}}


@dataclass(frozen=True)
class ModelCard:
    """What a shipped model is: its data, classes and documented test accuracy.

    Attributes
    ----------
    name : str
    description : str
        The architecture in one line.
    dataset : str
        How :func:`data` builds the splits.
    classes : tuple of str
        The meaning of each output logit.
    test_accuracy : float
        The fraction of the test split classified correctly (measured by
        ``scripts/train_models.py``; checked by ``tests/test_models.py``).
    input_range : tuple of float
        ``(low, high)`` of the inputs, for ``ZBox``; None for unbounded inputs.
    """

    name: str
    description: str
    dataset: str
    classes: tuple[str, ...]
    test_accuracy: float
    input_range: tuple[float, float] | None


_DIGITS = tuple(str(k) for k in range(10))

CARDS: dict[str, ModelCard] = {
    card.name: card for card in (
        ModelCard("digits_mlp", "Flatten, Dense 64-64-32-10 with ReLU",
                  "load_digits('train'/'test'): 1,347 / 450 8x8 images",
                  _DIGITS, 437 / 450, (0.0, 1.0)),
        ModelCard("digits_cnn", "2 x [Conv2d 3x3 pad 1, BatchNorm2d, ReLU, MaxPool2d 2], "
                  "Flatten, Dense 64-32-10 with ReLU",
                  "load_digits('train'/'test'): 1,347 / 450 8x8 images",
                  _DIGITS, 437 / 450, (0.0, 1.0)),
        ModelCard("credit_mlp", "Dense 7-16-8-2 with ReLU",
                  f"make_credit({CREDIT_N}, seed={CREDIT_SEED}): first {CREDIT_N_TRAIN} rows "
                  f"train, last {CREDIT_N - CREDIT_N_TRAIN} test",
                  ("repaid", "default"), 782 / 1000, None),
        ModelCard("shapes_cnn", "Conv2d 1-8, ReLU, MaxPool2d 2, Residual(Conv2d 8-8, ReLU, "
                  "Conv2d 8-8), ReLU, MaxPool2d 2, Conv2d 8-16, ReLU, MaxPool2d 2, Flatten, "
                  "Dense 256-3",
                  "make_shapes(3000, seed=1) train, make_shapes(600, seed=2) test; "
                  "32x32 images",
                  SHAPE_CLASSES, 600 / 600, (0.0, 1.0)),
    )
}


def _check_name(name: str) -> ModelCard:
    if name not in CARDS:
        raise ValueError(f"unknown model {name!r}; the shipped models are {sorted(CARDS)}")
    return CARDS[name]


def path(name: str) -> Any:
    """The package resource of model ``name`` (``lrp_ref/zoo/data/<name>.npz``)."""
    _check_name(name)
    return files("lrp_ref.zoo") / "data" / f"{name}.npz"


def load(name: str, maxpool_mode: str | None = None) -> Layer:
    """Load the shipped model ``name`` (see :data:`CARDS`).

    Parameters
    ----------
    name : {"digits_mlp", "digits_cnn", "credit_mlp", "shapes_cnn"}
    maxpool_mode : {"winner", "proportional"}, optional
        Set the relevance mode of every MaxPool2d (the forward pass is the same
        either way); None keeps the saved ``"winner"``.

    Returns
    -------
    Sequential
    """
    _check_name(name)
    with path(name).open("rb") as f:
        net = load_network(f)
    return net if maxpool_mode is None else with_maxpool_mode(net, maxpool_mode)


def with_maxpool_mode(net: Layer, mode: str) -> Layer:
    """A copy of ``net`` whose MaxPool2d layers (at any depth) use relevance ``mode``."""

    def rewrite(config: Any) -> Any:
        if isinstance(config, dict):
            out = {k: rewrite(v) for k, v in config.items()}
            if config.get("type") == "MaxPool2d":
                out["mode"] = mode
            return out
        if isinstance(config, list):
            return [rewrite(v) for v in config]
        return config

    return build(rewrite(net.config()), {k: v.copy() for k, v in net.state().items()})


#: Accuracy of ``sentiment_transformer`` on ``make_sentiment(1000, seed=1)``: 999/1000
#: (measured by ``scripts/train_sentiment_transformer.py``; tests/test_sentiment_transformer.py).
SENTIMENT_TRANSFORMER_ACCURACY = 999 / 1000


def sentiment_transformer() -> tuple[Layer, Vocabulary]:
    """The shipped sentiment transformer (a Graph) and its vocabulary.

    The vocabulary is :func:`lrp_ref.zoo.transformer.vocabulary`: the sentiment
    template's tokens and ``"<blank>"`` (a deleted word, zero embedding).
    Usage::

        net, vocab = models.sentiment_transformer()
        ids = vocab.encode(["the movie was not good ."])      # (1, 6)
        e = net.explain(ids, rule=lrp_ref.Epsilon(1e-6))        # e.relevance: (1, 6)
    """
    from .transformer import vocabulary

    with (files("lrp_ref.zoo") / "data" / "sentiment_transformer.npz").open("rb") as f:
        net = load_network(f)
    vocab = vocabulary()
    if net["embed"].weight.shape[0] != len(vocab):
        raise ValueError(f"sentiment_transformer: the model has {net['embed'].weight.shape[0]}"
                         f" token rows, the vocabulary {len(vocab)} tokens")
    return net, vocab


def shapes_split(split: Split) -> ShapesData:
    """The shapes images (with their ground-truth masks) of the shapes_cnn split."""
    if split not in SHAPES_SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return make_shapes(**SHAPES_SPLITS[split])


def data(name: str, split: Split = "test") -> tuple[Array, Array]:
    """The inputs and labels model ``name`` was trained (``"train"``) or tested on.

    Returns
    -------
    x : ndarray
        float64, batch first, in the model's input shape.
    y : ndarray
        int64 labels.
    """
    _check_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if name.startswith("digits"):
        return load_digits(split)
    if name == "credit_mlp":
        credit = make_credit(CREDIT_N, seed=CREDIT_SEED)
        rows = slice(0, CREDIT_N_TRAIN) if split == "train" else slice(CREDIT_N_TRAIN, None)
        return credit.X[rows], credit.y[rows]
    shapes = shapes_split(split)
    return shapes.images, shapes.labels


__all__ = ["CARDS", "SENTIMENT_TRANSFORMER_ACCURACY", "ModelCard", "data", "load", "path",
           "sentiment_transformer", "shapes_split", "with_maxpool_mode"]
