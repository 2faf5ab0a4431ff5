"""lrp_ref.figures: every figure renders to a valid PNG; the helpers pick what they say."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import imread  # noqa: E402

import lrp_ref as lrp  # noqa: E402
from lrp_ref import figures, models  # noqa: E402


def test_every_figure_is_written_as_a_valid_png(tmp_path):
    paths = figures.make(tmp_path)
    assert sorted(p.name for p in paths) == sorted(figures.FIGURES)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(path).shape
        assert height > 200 and width > 300


def test_unknown_figure_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown figure"):
        figures.make(tmp_path, ["nope.png"])


def test_first_of_each_class_picks_distinct_correctly_classified_digits():
    x, y = figures.first_of_each_class("digits_cnn", 5)
    assert len(set(y.tolist())) == 5
    np.testing.assert_array_equal(models.load("digits_cnn").forward(x).argmax(axis=1), y)


def test_with_batchnorm_rule_gives_pass_to_batchnorm_only():
    net = models.load("digits_cnn")
    rules = figures.with_batchnorm_rule(net, lrp.Epsilon(0.1), lrp.Pass())
    for layer, rule in zip(net.layers, rules):
        expected = (lrp.Pass() if isinstance(layer, lrp.BatchNorm2d) else
                    lrp.Epsilon(0.1) if layer.takes_rule else None)
        assert rule == expected
