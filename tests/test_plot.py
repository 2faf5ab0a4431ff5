"""lrp_ref.plot on small inputs: figures returned, symmetric colour limits, the right data."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import lrp_ref as lrp  # noqa: E402
from lrp_ref import plot  # noqa: E402
from lrp_ref.audit import per_sample_sum  # noqa: E402


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """plot builds figures without pyplot: nothing is opened, nothing could be shown."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def tiny_cnn():
    rng = np.random.default_rng(0)
    return lrp.Sequential([
        lrp.Conv2d(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2) * 0.1, padding=1),
        lrp.ReLU(), lrp.MaxPool2d(2), lrp.Flatten(),
        lrp.Dense(rng.standard_normal((8, 3)), rng.standard_normal(3) * 0.1),
    ])


def clim(ax):
    return ax.images[-1].get_clim()


def test_heatmap_sums_channels_and_has_symmetric_limits_and_a_colorbar():
    R = np.zeros((3, 4, 5))
    R[0, 1, 2], R[2, 1, 2], R[1, 3, 0] = 2.0, 1.5, -0.5
    fig = plot.heatmap(R, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), R.sum(axis=0))
    assert clim(ax) == (-3.5, 3.5)                 # max |channel sum| = 2 + 1.5
    assert len(fig.axes) == 2                      # the heatmap and its colorbar
    assert ax.get_title() == "t"


def test_heatmap_accepts_a_batch_of_one_and_a_given_limit():
    fig = plot.heatmap(np.full((1, 1, 2, 2), -0.25), limit=2.0, colorbar=False)
    assert clim(fig.axes[0]) == (-2.0, 2.0) and len(fig.axes) == 1


def test_all_zero_relevance_gets_finite_symmetric_limits():
    assert clim(plot.heatmap(np.zeros((2, 2))).axes[0]) == (-1.0, 1.0)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 1, 3, 3)), "pick one sample"),
    (np.zeros(4), r"must have shape \(H, W\)"),
    (np.array([[np.nan, 0.0]]), "NaN"),
])
def test_heatmap_refuses_what_it_cannot_draw(bad, match):
    with pytest.raises(ValueError, match=match):
        plot.heatmap(bad)


def test_heatmap_refuses_a_bad_limit():
    with pytest.raises(ValueError, match="limit"):
        plot.heatmap(np.ones((2, 2)), limit=0)


def test_heatmap_draws_into_a_given_axes():
    fig = Figure()
    ax = fig.subplots()
    assert plot.heatmap(np.eye(3), ax=ax) is fig


def test_overlay_scales_opacity_by_relevance_and_keeps_limits_symmetric():
    image = np.linspace(0, 1, 9).reshape(1, 3, 3)
    R = np.array([[0.0, 1.0, -2.0], [0, 0, 0], [0, 0, 0.5]])
    fig = plot.overlay(image, R, opacity=0.8)
    ax = fig.axes[0]
    assert len(ax.images) == 2                      # the input, then the heatmap
    assert clim(ax) == (-2.0, 2.0)
    np.testing.assert_allclose(ax.images[1].get_alpha(), 0.8 * np.abs(R) / 2.0)


def test_overlay_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="differ in size"):
        plot.overlay(np.zeros((4, 4)), np.zeros((3, 3)))


def test_grid_has_one_panel_per_sample_and_method_with_own_or_shared_limits():
    R = {"a": np.array([[[[1.0, -1.0]]], [[[0.0, 4.0]]]]), "b": np.array([[[[0.5, 0]]],
                                                                       [[[-2.0, 1.0]]]])}
    fig = plot.grid(R, images=np.zeros((2, 1, 1, 2)), row_labels=["x", "y"], colorbar=False)
    assert len(fig.axes) == 2 * 3
    panels = np.array(fig.axes).reshape(2, 3)
    assert [clim(ax) for ax in panels[:, 1]] == [(-1.0, 1.0), (-4.0, 4.0)]
    assert [clim(ax) for ax in panels[:, 2]] == [(-0.5, 0.5), (-2.0, 2.0)]
    assert [ax.get_title() for ax in panels[0]] == ["input", "a", "b"]
    assert panels[1, 0].get_ylabel() == "y"
    shared = np.array(plot.grid(R, shared_limits=True, colorbar=False).axes).reshape(2, 2)
    assert [clim(ax) for ax in shared[1]] == [(-4.0, 4.0), (-4.0, 4.0)]


def test_grid_refuses_inconsistent_batches():
    with pytest.raises(ValueError, match="same batch size"):
        plot.grid({"a": np.zeros((2, 3, 3)), "b": np.zeros((1, 3, 3))})


def test_compare_rules_shows_each_rules_relevance():
    net, x = tiny_cnn(), np.random.default_rng(1).random((2, 3, 4, 4))
    rules = {"LRP-0": lrp.Zero(), "eps": lrp.Epsilon(0.5)}
    fig = plot.compare_rules(net, x, rules, target=1, colorbar=False)
    panels = np.array(fig.axes).reshape(2, 3)
    for col, rule in enumerate(rules.values(), start=1):
        expected = net.explain(x, target=1, rule=rule).relevance.sum(axis=1)
        for row in range(2):
            np.testing.assert_allclose(panels[row, col].images[0].get_array(), expected[row],
                                       rtol=1e-12)
    assert panels[0, 0].get_ylabel() == "class 1"
    untitled = plot.compare_rules(net, x, [lrp.Zero()], colorbar=False)
    assert untitled.axes[1].get_title() == "Zero(True)"


def test_ledger_chart_bars_are_the_ledger():
    net, x = tiny_cnn(), np.random.default_rng(2).random((2, 3, 4, 4))
    e = net.explain(x, rule=lrp.Epsilon(0.1))
    fig = plot.ledger_chart(e, sample=1)
    top, bottom = fig.axes[:2]
    shown = [e.layer("0"), e.layer("4")]            # ReLU, MaxPool, Flatten have no entry
    heights = [p.get_height() for p in top.patches]
    expected = [per_sample_sum(r.relevance_out)[1] for r in shown] + \
               [per_sample_sum(r.relevance_in)[1] for r in shown]
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    terms = [p.get_height() for p in bottom.patches]
    expected_terms = [getattr(r, name)[1] for name in ("absorbed_bias", "absorbed_stabilizer",
                                                       "dropped") for r in shown]
    np.testing.assert_allclose(terms, expected_terms, rtol=1e-12)
    assert [t.get_text().split("\n")[0] for t in bottom.get_xticklabels()] == ["0 Conv2d",
                                                                                "4 Dense"]


def test_relevance_flow_starts_at_the_logit_and_ends_at_the_input_sum():
    net, x = tiny_cnn(), np.random.default_rng(3).random((1, 3, 4, 4))
    e = net.explain(x, rule=lrp.Zero())
    fig = plot.relevance_flow(e)
    total = fig.axes[0].lines[0].get_ydata()
    assert len(total) == len(net) + 1
    assert total[0] == pytest.approx(e.output[0, e.target[0]], rel=1e-12)
    assert total[-1] == pytest.approx(e.relevance.sum(), rel=1e-12)
    several = plot.relevance_flow({"0": e, "ab": net.explain(x, rule=lrp.AlphaBeta(2, 1))})
    assert [line.get_label() for line in several.axes[0].lines[:2]] == ["0", "ab"]


def test_feature_bars_draw_one_bar_per_feature_with_reference_markers():
    fig = plot.feature_bars([0.5, -1.0, 0.0], ["a", "b", "c"], reference=[1, -1, 0])
    ax = fig.axes[0]
    assert [p.get_width() for p in ax.patches] == [0.5, -1.0, 0.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="one value per name"):
        plot.feature_bars([1.0, 2.0], ["a"])


def test_figures_can_be_saved_as_png(tmp_path):
    path = tmp_path / "h.png"
    plot.heatmap(np.eye(4)).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_core_does_not_import_matplotlib():
    """Nor do the text helpers: relevance-coloured tokens are drawn by plot.plot_tokens."""
    code = "import sys, lrp_ref, lrp_ref.extensions.text; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_plot_tokens_colours_by_sign():
    fig = Figure(figsize=(6, 0.6))
    ax = fig.subplots()
    assert plot.plot_tokens(ax, ["not", "good", "."], np.array([2.0, -1.0, 0.0]),
                            title="LRP") is fig
    labels = [t for t in ax.texts if t.get_text() != "LRP"]
    assert [t.get_text() for t in labels] == ["not", "good", "."]
    red, blue, white = (t.get_bbox_patch().get_facecolor() for t in labels)
    assert red[0] > red[2] and blue[2] > blue[0] and np.allclose(white[:3], 1, atol=0.01)
    starts = [t.get_position()[0] for t in labels]
    assert starts[0] >= 0.18 and starts[0] < starts[1] < starts[2]   # in a row, after the title
    with pytest.raises(ValueError, match=r"relevance must have shape \(3,\)"):
        plot.plot_tokens(ax, ["a", "b", "c"], np.zeros(2))

