"""Plots of explanations and of the conservation audit (matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``show()``: save it with ``fig.savefig(path)``, or let Jupyter display it. The
figures are built with matplotlib's object API (no ``pyplot`` state), so a
notebook shows each one once and nothing is left open. Functions that take
``ax`` draw into that Axes and return its figure.

Heatmaps follow the LRP convention: relevance is summed over the channel axis,
drawn with a diverging colormap (red positive, blue negative, white 0) whose
limits are symmetric, ``[-L, L]`` with ``L = max |R|`` unless given, so the
colour of 0 is always white and positive and negative evidence are comparable.

Nothing in the core imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..audit import per_sample_sum
from ..network import Explanation
from ..rules import Rule, describe

Array = np.ndarray

#: The default diverging colormap: blue (negative), white (0), red (positive).
CMAP = "bwr"


def image_2d(array: Any, name: str = "relevance") -> Array:
    """``(H, W)``: a map summed over its channel axis.

    Accepts ``(H, W)``, ``(C, H, W)`` or a batch of one ``(1, C, H, W)``.
    """
    a = np.asarray(array, dtype=float)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 3:
        a = a.sum(axis=0)
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), (C, H, W) or (1, C, H, W), "
                         f"got {np.shape(array)}; pick one sample, e.g. e.relevance[0]")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def symmetric_limit(relevance: Array, limit: float | None = None) -> float:
    """``L`` of the colour range ``[-L, L]``: ``limit``, else ``max |R|`` (1 if all 0)."""
    if limit is not None:
        if not (np.isfinite(limit) and limit > 0):
            raise ValueError(f"limit must be a finite number > 0, got {limit!r}")
        return float(limit)
    peak = float(np.abs(relevance).max(initial=0.0))
    return peak if peak > 0 else 1.0


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return Figure(figsize=figsize, layout="constrained").subplots() if ax is None else ax


def _draw(ax: Axes, relevance: Array, limit: float | None, cmap: str, colorbar: bool,
          alpha: Any = None) -> None:
    """One relevance map on ``ax`` with symmetric colour limits."""
    L = symmetric_limit(relevance, limit)
    im = ax.imshow(relevance, cmap=cmap, vmin=-L, vmax=L, alpha=alpha,
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8)


def heatmap(relevance: Any, ax: Axes | None = None, *, title: str | None = None,
            cmap: str = CMAP, limit: float | None = None, colorbar: bool = True) -> Figure:
    """A relevance heatmap: channel sum, diverging colormap, symmetric limits, colorbar.

    Parameters
    ----------
    relevance : array_like
        ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` (e.g. ``e.relevance[0]``);
        summed over the channel axis.
    ax : matplotlib Axes, optional
        Draw into this Axes; a new figure when None.
    title : str, optional
    cmap : str
        A diverging colormap (default ``"bwr"``).
    limit : float, optional
        Colour range ``[-limit, limit]``; default ``max |R|``.
    colorbar : bool

    Returns
    -------
    matplotlib.figure.Figure
    """
    R = image_2d(relevance)
    ax = _axes(ax, (3.2, 2.6))
    _draw(ax, R, limit, cmap, colorbar)
    if title:
        ax.set_title(title)
    return ax.figure


def overlay(image: Any, relevance: Any, ax: Axes | None = None, *, title: str | None = None,
            cmap: str = CMAP, limit: float | None = None, colorbar: bool = True,
            opacity: float = 0.9) -> Figure:
    """The relevance drawn over the input: grey image below, heatmap on top.

    The input is drawn in light grey (its darkest pixel half grey); the
    heatmap's opacity at each pixel is ``opacity * |R| / L``, so pixels
    without relevance show the input and strongly relevant ones the colour.

    Parameters
    ----------
    image : array_like
        The input, ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` (shown as the
        mean over channels, in grey).
    relevance : array_like
        Same spatial size as ``image``; see :func:`heatmap`.
    ax, title, cmap, limit, colorbar
        As in :func:`heatmap`.
    opacity : float
        The heatmap's opacity where ``|R| = L``, in ``[0, 1]``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    R = image_2d(relevance)
    shown = np.asarray(image, dtype=float)
    channels = shown.shape[-3] if shown.ndim >= 3 else 1
    picture = image_2d(shown, "image") / channels
    if picture.shape != R.shape:
        raise ValueError(f"image {picture.shape} and relevance {R.shape} differ in size")
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity!r}")
    ax = _axes(ax, (3.2, 2.6))
    low, high = picture.min(), picture.max()
    # the input in light grey (its darkest pixel at half grey), so the colours stay visible
    ax.imshow(picture, cmap="gray_r", vmin=low, vmax=high + (high - low) + 1e-12,
              interpolation="nearest")
    L = symmetric_limit(R, limit)
    _draw(ax, R, L, cmap, colorbar, alpha=opacity * np.clip(np.abs(R) / L, 0, 1))
    if title:
        ax.set_title(title)
    return ax.figure


def grid(relevances: Mapping[str, Any], images: Any = None, *,
         row_labels: Sequence[str] | None = None, cmap: str = CMAP,
         shared_limits: bool = False, colorbar: bool = True,
         cell: float = 1.7) -> Figure:
    """Heatmaps of several methods (columns) for several samples (rows).

    Parameters
    ----------
    relevances : mapping str -> array
        Column title -> relevance of a batch, ``(B, ...)`` (one row per sample).
    images : array, optional
        The inputs ``(B, ...)``, shown in grey in a first column.
    row_labels : sequence of str, optional
        One label per row (e.g. the class).
    shared_limits : bool
        One colour range per row, ``max |R|`` over its heatmaps (compare
        magnitudes between methods); default: each heatmap its own range
        (compare patterns).
    colorbar : bool
        A colorbar beside every heatmap.
    cell : float
        Size of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not relevances:
        raise ValueError("grid needs at least one relevance map")
    columns = {name: np.asarray(r, dtype=float) for name, r in relevances.items()}
    rows = {len(r) for r in columns.values()}
    if len(rows) != 1:
        raise ValueError(f"every relevance needs the same batch size, got {sorted(rows)}")
    n_rows = rows.pop()
    if images is not None and len(images) != n_rows:
        raise ValueError(f"images has {len(images)} samples, the relevances {n_rows}")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {n_rows} rows")
    n_cols = len(columns) + (images is not None)
    fig = Figure(figsize=(cell * n_cols * (1.25 if colorbar else 1), cell * n_rows + 0.4),
                 layout="constrained")
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for row in range(n_rows):
        maps = {name: image_2d(r[row]) for name, r in columns.items()}
        shared = max(symmetric_limit(m) for m in maps.values()) if shared_limits else None
        col = 0
        if images is not None:
            axes[row, 0].imshow(image_2d(images[row], "image"), cmap="gray_r",
                                interpolation="nearest")
            axes[row, 0].set_xticks([])
            axes[row, 0].set_yticks([])
            col = 1
            if row == 0:
                axes[0, 0].set_title("input")
        for name, m in maps.items():
            _draw(axes[row, col], m, shared, cmap, colorbar)
            if row == 0:
                axes[0, col].set_title(name)
            col += 1
        if row_labels is not None:
            axes[row, 0].set_ylabel(row_labels[row])
    return fig


def compare_rules(net: Any, x: Any, rules: Mapping[str, Any] | Sequence[Any],
                  target: Any = None, *, method: str = "fast", row_labels: Any = None,
                  **grid_options: Any) -> Figure:
    """Explain ``x`` with every rule and show the heatmaps side by side.

    Parameters
    ----------
    net : Sequential
    x : array
        A small batch of images ``(B, C, H, W)``.
    rules : mapping str -> rule, or sequence of rules
        Anything ``explain`` accepts as ``rule`` (a Rule, a rule list, a
        composite); a sequence is titled with each rule's description.
    target : int, sequence of int or None
        As in ``explain`` (None: each sample's argmax).
    method : {"fast", "explicit"}
    row_labels : sequence of str, optional
        Default: ``"class <target>"`` per sample.
    **grid_options
        Passed to :func:`grid` (``shared_limits``, ``colorbar``, ``cmap``, ``cell``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    named = dict(rules) if isinstance(rules, Mapping) else {_title(r): r for r in rules}
    explanations = {name: net.explain(x, target=target, rule=rule, method=method)
                    for name, rule in named.items()}
    first = next(iter(explanations.values()))
    if row_labels is None:
        row_labels = [f"class {t}" for t in first.target]
    return grid({name: e.relevance for name, e in explanations.items()}, np.asarray(x),
                row_labels=row_labels, **grid_options)


def _title(rule: Any) -> str:
    return describe(rule) if isinstance(rule, Rule) else repr(rule)


def _shown_records(e: Explanation, containers: bool) -> list:
    """Records worth a bar: layers with a rule or a nonzero ledger term (not ReLU/Flatten)."""
    out = []
    for r in e.layers:
        if r.container and not containers:
            continue
        if r.rule is None and not r.container and not np.any(r.ledger.total()):
            continue
        out.append(r)
    return out


def _label(record: Any) -> str:
    rule = "" if record.container else "\n" + describe(record.rule)
    return f"{record.path} {record.layer}{rule}"


def ledger_chart(explanation: Explanation, sample: int = 0, *, containers: bool = False,
                 title: str | None = None) -> Figure:
    """The conservation ledger of one sample as bar charts, one group per layer.

    Top: ``sum R_out`` (arriving at the layer's output) and ``sum R_in``
    (leaving at its input). Bottom, on its own scale: the ledger terms
    ``absorbed_bias``, ``absorbed_stabilizer`` and ``dropped`` (and
    ``conditioned`` when a CRP condition removed relevance), which close the
    balance ``sum R_out = sum R_in + bias + stabilizer + dropped (+ conditioned)``.
    Layers without a rule whose ledger is all zero (ReLU, Flatten, a winner
    MaxPool2d) are left out.

    Parameters
    ----------
    explanation : Explanation
    sample : int
        Which sample of the batch.
    containers : bool
        Also show the records of Residual blocks and nested Sequentials (their
        ledger sums their children's plus their own).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    records = _shown_records(explanation, containers)
    if not records:
        raise ValueError("the explanation has no layer with a rule or a ledger entry")
    terms = {"absorbed_bias": "tab:orange", "absorbed_stabilizer": "tab:purple",
             "dropped": "tab:gray"}
    if any(np.any(r.conditioned) for r in records):
        terms["conditioned"] = "tab:olive"
    x = np.arange(len(records))
    fig = Figure(figsize=(max(5.0, 1.3 * len(records) + 1.5), 5.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    width = 0.38
    R_out = [per_sample_sum(r.relevance_out)[sample] for r in records]
    R_in = [per_sample_sum(r.relevance_in)[sample] for r in records]
    top.bar(x - width / 2, R_out, width, label="sum R_out", color="tab:red")
    top.bar(x + width / 2, R_in, width, label="sum R_in", color="tab:blue")
    top.axhline(0, color="black", linewidth=0.6)
    top.set_ylabel("relevance")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    width = 0.8 / len(terms)
    for k, (name, colour) in enumerate(terms.items()):
        values = [getattr(r, name)[sample] for r in records]
        bottom.bar(x - 0.4 + width * (k + 0.5), values, width, label=name, color=colour)
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_ylabel("ledger term")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    bottom.set_xticks(x, [_label(r) for r in records], fontsize="small")
    bottom.set_xlabel("layer (input on the left; relevance flows from right to left)")
    top.set_title(title or f"conservation ledger, sample {sample} "
                           f"(target {explanation.target[sample]})")
    return fig


def relevance_flow(explanations: Explanation | Mapping[str, Explanation], sample: int = 0, *,
                   ax: Axes | None = None, title: str | None = None) -> Figure:
    """Relevance per layer, from the output (left) to the input (right).

    For each top-level layer the curve shows ``sum R`` at its input; the first
    point is the relevance at the output (the target logit). Where a curve
    drops, a layer absorbed relevance (bias, stabilizer) or dropped it; where
    it rises, a layer injected it. For a single explanation the positive and
    negative parts, ``sum max(R, 0)`` and ``sum min(R, 0)``, are drawn too:
    their gap grows where a rule such as alpha-beta creates counter-evidence.

    Parameters
    ----------
    explanations : Explanation or mapping str -> Explanation
        One explanation, or several of the same network (e.g. one per rule).
    sample : int
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    named = ({"sum R": explanations} if isinstance(explanations, Explanation)
             else dict(explanations))
    if not named:
        raise ValueError("relevance_flow needs at least one explanation")
    ax = _axes(ax, (6.4, 3.4))
    labels: list[str] = []
    for name, e in named.items():
        top = [r for r in e.layers if "." not in r.path][::-1]
        if any(isinstance(r.relevance_in, tuple) for r in top):
            raise ValueError("relevance_flow draws a chain of layers; this explanation has "
                             "merge nodes (a Graph's Add, Concat or Mul): use ledger_chart")
        stages = [top[0].relevance_out[sample]] + [r.relevance_in[sample] for r in top]
        labels = ["output"] + [f"{r.path} {r.layer}" for r in top]
        x = np.arange(len(stages))
        ax.plot(x, [s.sum() for s in stages], marker="o", label=name)
        if len(named) == 1:
            ax.plot(x, [np.maximum(s, 0).sum() for s in stages], "--", color="tab:red",
                    label="positive part")
            ax.plot(x, [np.minimum(s, 0).sum() for s in stages], "--", color="tab:blue",
                    label="negative part")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=45, ha="right", fontsize="small")
    ax.set_ylabel("relevance at the layer's input")
    ax.set_title(title or f"relevance flow, sample {sample}")
    ax.legend(fontsize="small")
    return ax.figure


def feature_bars(relevance: Any, names: Sequence[str], ax: Axes | None = None, *,
                 title: str | None = None, reference: Any = None,
                 reference_label: str = "reference") -> Figure:
    """Relevance per named feature as horizontal bars (tabular data).

    Parameters
    ----------
    relevance : array_like, shape (F,)
        One sample's relevance, or an aggregate (e.g. the mean over samples).
    names : sequence of str
        The ``F`` feature names.
    ax : matplotlib Axes, optional
    title : str, optional
    reference : array_like, shape (F,), optional
        Drawn as black markers beside the bars, e.g. a known true effect.
    reference_label : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    R = np.asarray(relevance, dtype=float)
    if R.shape != (len(names),):
        raise ValueError(f"relevance must have one value per name ({len(names)}), "
                         f"got shape {R.shape}")
    ax = _axes(ax, (5.0, 0.35 * len(names) + 1.2))
    y = np.arange(len(names))[::-1]
    ax.barh(y, R, color=np.where(R >= 0, "tab:red", "tab:blue"))
    if reference is not None:
        ax.scatter(np.asarray(reference, dtype=float), y, color="black", marker="D",
                   zorder=3, label=reference_label)
        ax.legend(fontsize="small")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(y, list(names))
    ax.set_xlabel("relevance")
    if title:
        ax.set_title(title)
    return ax.figure


def plot_tokens(ax: Axes, tokens: Sequence[str], relevance: Array, title: str | None = None,
                cmap: str = CMAP, fontsize: int = 13, title_width: float = 0.18) -> Figure:
    """Draw ``tokens`` in a row on ``ax``, each on a background coloured by its relevance.

    Colours are symmetric around 0 (``cmap`` from blue through white to red),
    scaled to the largest ``|relevance|`` of the row: red supports the explained
    class, blue speaks against it.

    Parameters
    ----------
    ax : matplotlib Axes
    tokens : sequence of str
    relevance : ndarray, shape (T,)
    title : str, optional
        Written at the left of the row; the tokens start at ``title_width``
        (axes fraction) or after the title if it is wider, so that rows align.

    Returns
    -------
    matplotlib.figure.Figure
        The figure of ``ax``.
    """
    relevance = np.asarray(relevance, dtype=float)
    if relevance.shape != (len(tokens),):
        raise ValueError(f"plot_tokens: relevance must have shape ({len(tokens)},), "
                         f"got {relevance.shape}")
    scale = float(np.abs(relevance).max()) or 1.0
    colours = matplotlib.colormaps[cmap](0.5 + 0.5 * relevance / scale)
    ax.set_axis_off()
    x = 0.0
    if title is not None:
        label = ax.text(x, 0.5, title, fontsize=fontsize, va="center", ha="left",
                        transform=ax.transAxes, fontweight="bold")
        x = max(title_width, _width(ax, label) + 0.02)
    for token, colour in zip(tokens, colours):
        text = ax.text(x, 0.5, token, fontsize=fontsize, va="center", ha="left",
                       transform=ax.transAxes,
                       bbox={"facecolor": colour, "edgecolor": "none", "pad": 2})
        x += _width(ax, text) + 0.01
    return ax.figure


def _width(ax: Axes, text: Any) -> float:
    """The width of a drawn text in axes coordinates (measured by the figure's renderer)."""
    return text.get_window_extent().width / ax.get_window_extent().width

__all__ = ["CMAP", "compare_rules", "feature_bars", "grid", "heatmap", "image_2d",
           "ledger_chart", "overlay", "plot_tokens", "relevance_flow", "symmetric_limit"]
