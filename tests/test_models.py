"""The shipped models: documented accuracy on the held-out split, architecture, loaders."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.zoo import models
from lrp_ref.zoo.train import accuracy

NAMES = sorted(models.CARDS)


@pytest.fixture(scope="module", params=NAMES)
def shipped(request):
    name = request.param
    return name, models.load(name), models.data(name, "test")


def test_the_four_models_of_the_issue_ship():
    assert NAMES == ["credit_mlp", "digits_cnn", "digits_mlp", "shapes_cnn"]


def test_reaches_documented_test_accuracy(shipped):
    name, net, (x, y) = shipped
    card = models.CARDS[name]
    # the card stores correct/total as a fraction; compare counts, not rounded floats
    assert round(accuracy(net, x, y) * len(y)) >= round(card.test_accuracy * len(y))


def test_digits_models_reach_95_percent():
    for name in ("digits_mlp", "digits_cnn"):
        assert models.CARDS[name].test_accuracy >= 0.95


def test_one_logit_per_class_and_float64(shipped):
    name, net, (x, _) = shipped
    out = net.forward(x[:3])
    assert out.shape == (3, len(models.CARDS[name].classes))
    assert net.dtype == np.float64


def test_inputs_lie_in_the_documented_range(shipped):
    name, _, (x, _) = shipped
    card = models.CARDS[name]
    if card.input_range is not None:
        low, high = card.input_range
        assert x.min() >= low and x.max() <= high


def test_architectures_have_the_documented_hard_cases():
    types = {name: {type(layer).__name__ for _, layer in models.load(name).named_layers()}
             for name in NAMES}
    assert {"Conv2d", "BatchNorm2d", "MaxPool2d"} <= types["digits_cnn"]
    assert {"Conv2d", "Residual", "MaxPool2d"} <= types["shapes_cnn"]
    assert types["digits_mlp"] == types["credit_mlp"] | {"Flatten"} == {"Dense", "ReLU",
                                                                          "Flatten"}


def test_train_and_test_splits_are_disjoint_and_fixed():
    x_train, _ = models.data("credit_mlp", "train")
    x_test, y_test = models.data("credit_mlp", "test")
    assert len(x_train) == models.CREDIT_N_TRAIN
    assert len(x_test) == models.CREDIT_N - models.CREDIT_N_TRAIN
    assert not (x_train[:, None, :] == x_test[None, :, :]).all(axis=2).any()
    np.testing.assert_array_equal(models.data("credit_mlp", "test")[1], y_test)
    test = models.shapes_split("test")
    assert test.images.shape == (models.SHAPES_SPLITS["test"]["n"], 1, 32, 32)
    assert test.masks.shape == (len(test.images), 32, 32)


def test_maxpool_mode_changes_relevance_but_not_the_forward_pass():
    x, _ = models.data("digits_cnn", "test")
    winner = models.load("digits_cnn")
    proportional = models.load("digits_cnn", maxpool_mode="proportional")
    modes = {layer.mode for _, layer in proportional.named_layers()
             if isinstance(layer, lrp.MaxPool2d)}
    assert modes == {"proportional"}
    np.testing.assert_array_equal(winner.forward(x[:5]), proportional.forward(x[:5]))
    a = winner.explain(x[:5], rule=lrp.Epsilon(1e-6)).relevance
    b = proportional.explain(x[:5], rule=lrp.Epsilon(1e-6)).relevance
    assert not np.allclose(a, b)


def test_unknown_names_and_splits_are_refused():
    with pytest.raises(ValueError, match="unknown model 'vgg16'"):
        models.load("vgg16")
    with pytest.raises(ValueError, match="split must be"):
        models.data("digits_mlp", "validation")
    with pytest.raises(ValueError, match="mode must be"):
        models.load("digits_cnn", maxpool_mode="average")
