"""RAP: Relative Attributing Propagation, as the authors' released code computes it.

Nam, Gur, Choi, Wolf and Lee, "Relative Attributing Propagation: Interpreting
the Comparative Contributions of Individual Units in Deep Neural Networks",
AAAI 2020 (arXiv:1904.00605). The versions of the paper describe different
procedures (docs/extensions.md), so this module follows the one precise
description there is: the authors' code, ``wjNam/Relative_Attributing_Propagation``,
``modules/layers.py`` (method ``RAP_relprop`` of each layer class), driven by
``main.py`` (seed ``T``, a one-hot of value 1 at the predicted class) and
``modules/vgg.py`` / ``modules/resnet.py`` (the order of the layers). What
follows is what that code computes, in lrp_ref's symbols; each choice that the
paper does not state is marked **[code]** with the function it comes from.
No code was copied; results agree with it up to float rounding (``safe_divide``
there adds nothing where the denominator is non-zero and gives 0 where it is 0,
which is what ``0 where the denominator is 0`` means below).

Notation: ``a`` the layer input, ``w`` its weight (Dense ``(in, out)``),
``w+ = max(0, w)``, ``w- = min(0, w)``, ``R_j`` the relevance at the output,
``R+ = max(0, R)``, ``R- = min(0, R)``. Every step is per sample; sums run over
one sample's entries.

1. **First step** (``Linear.RAP_relprop``: ``first_prop``, then ``redistribute``),
   at the output Dense for the target ``t``. With ``z_i = a_i w_it``::

       Pos = sum_i (a+_i w+_it + a-_i w-_it),   Neg = sum_i (a+_i w-_it + a-_i w+_it)
       Z1  = sum_i a+_i w+_it,                  Z2  = sum_i a+_i w-_it
       r_i = z_i + a+_i w+_it / Z1 * b_t Pos / (Pos + Neg)
                 + a+_i w-_it / Z2 * b_t Neg / (Pos + Neg)
       R_i = |r_i| * sum_i r_i / sum_i |r_i|                     (redistribute)

   (each fraction 0 where its denominator is 0). So the bias is split between
   the positive and the negative contributions in proportion to their totals,
   but **[code]** only along the contributions of positive inputs; and
   **[code]** ``redistribute`` hands every input relevance of the sign of
   ``y_t``, in proportion to ``|r_i|``. ``sum_i r_i = y_t`` when every bias
   share finds an input; what does not (``Z1 = 0``, ``Z2 = 0`` or
   ``Pos + Neg = 0``) is booked as ``absorbed_bias``. The authors seed with
   the one-hot ``T`` and use it only as a mask, so the relevance spread is the
   logit ``y_t``; lrp_ref records ``onehot(t) * y_t`` as the output relevance
   (conservation then reads ``sum R = y_t``, the check ``main.py`` prints).

2. **General step** of a Dense or Conv2d (``Linear``/``Conv2d.RAP_relprop``:
   ``backward`` -> ``f`` -> ``pos_prop`` -> ``shift_rel``). The inputs are split
   into the half with ``a_i > 0`` and the half with ``a_i < 0``. In each half,
   with ``u_ij = |a_i| w+_ij``, ``v_ij = |a_i| |w-_ij|``, ``U_j = sum_i u_ij``,
   ``V_j = sum_i v_ij`` (in the positive half ``u`` are the positive
   contributions and ``v`` the negative ones; in the negative half the roles
   swap: **[code]** ``f`` pairs the weight signs, not the contribution signs)::

       Dense:   C_i = sum_j u_ij R_j / U_j  + v_ij R_j / (U_j + V_j)
       Conv2d:  C_i = sum_j u_ij R+_j / U_j + v_ij (R_j / (U_j + V_j) + R-_j / V_j)

   The relevance ``R+`` ("relevant") and ``R-`` ("irrelevant") are propagated
   separately (``pos_prop``); **[code]** they differ only in the Conv2d step,
   where ``R-`` goes through the ``v`` (negative-weight) terms alone, while the
   Dense step treats ``R-`` like ``R+`` (``S1n`` is divided by ``Za1`` in
   ``Linear`` and by ``Za2`` in ``Conv2d``). The ``v`` terms hand down more
   than arrives (in the Dense step ``sum_i C_i`` exceeds ``sum_j R_j`` by
   ``sum_j R_j V_j / (U_j + V_j)`` over the ``j`` with ``U_j != 0``).
   **[code]** ``shift_rel`` then subtracts the excess uniformly from the
   non-zero entries of the half::

       n = #{i : C_i != 0},   C_i <- C_i - [C_i != 0] (sum_i C_i - sum_j R_j) / n

   which makes small positive entries negative: this is where negative
   ("irrelevant") relevance arises. **[code]** Each half is shifted to the
   full ``sum_j R_j``, so a layer whose input has both signs hands down
   ``2 sum_j R_j``: the second copy is booked as ``dropped < 0`` (created).
   After a ReLU the negative half is empty and the step conserves; a half
   with no non-zero entry is not shifted and hands down nothing. The bias is
   not used (**[code]** its handling is commented out in ``backward``).

3. **Input layer**: z^B with per-sample bounds (``Conv2d.RAP_relprop``:
   ``final_backward``; Montavon et al. 2017), ``l = min(x)``, ``h = max(x)``
   over the sample's entries::

       R_i = sum_j (a_i w_ij - l w+_ij - h w-_ij) / sum_i (...) * R_j

   (lrp_ref's ``ZBox(l, h)``; padded positions hold 0 for ``a``, ``l``,
   ``h``; a zero denominator drops ``R_j``). The numerators are formed as
   ``(a_i - l) w+_ij + (a_i - h) w-_ij >= 0``, so a denominator that is 0 in
   exact arithmetic is exactly 0; the code's ``conv(x, w) - conv(l, w+) -
   conv(h, w-)`` leaves a rounding residue there (every input of ``j`` on the
   bound its weight selects, as in a two-input layer) and arbitrary shares.

4. **Pooling** (``RelPropSimple``: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d) and
   the residual **addition** (``Add``): LRP-0 through the gradient,
   ``R_i = a_i * (d z / d a)^T (R / z)``. For MaxPool2d the gradient goes to
   the first maximum of each window in row-major order (PyTorch's argmax), so
   **[code]** a tie gives all to the first maximum (lrp_ref's
   ``MaxPool2d(mode="winner")`` would split it). The addition ``y = z_body +
   z_short`` gives ``z_branch R / y`` to each branch; the two input
   relevances are summed (``Bottleneck.RAP_relprop``: ``x1 + x``; the
   ``Clone`` of ``BasicBlock`` fails to run in the authors' code, so only the
   plain sum is defined). A projection shortcut (the code's ``downsample``)
   takes its share through its own layers; the ``epsilon`` of
   ``lrp_ref.Residual`` is not used. A zero denominator drops ``R_j``.

5. **BatchNorm** (``BatchNorm2d.RAP_relprop``): the code subtracts a share
   ``beta / n`` of the shift from ``R`` at the ``n`` non-zero entries of each
   channel, propagates both parts through ``x w / (x w)`` and adds them again,
   with **[code]** ``w = gamma / sqrt(running_var^2 + eps)``. Both the share
   and the squared variance cancel: ``R_in = R`` where ``x gamma != 0``, else
   0 (dropped). lrp_ref computes this exact value (the authors' float result
   differs from it by rounding) for BatchNorm1d and BatchNorm2d.

6. ReLU, Flatten, Identity (an imported Dropout) hand ``R`` through.

Choices lrp_ref makes where the code's behaviour depends on an accident of
representation (each an explicit parameter):

* ``first_step``: the code takes the first step wherever a Linear receives
  relevance whose maximum is exactly 1 (``R_p.max() == 1``, over the whole
  batch), i.e. at the output when seeded with ``T``. lrp_ref takes it at the
  output layer, always and per sample (``first_step=True``); a hidden layer
  whose relevance happens to peak at 1 takes the general step. (Only a
  Linear has a first step in the code: a network ending in a convolution
  would spread the one-hot itself, a relevance of 1, not ``y_t``; lrp_ref
  asks for a Dense at the output.) ``first_step=False`` gives the general
  step at the output on the seed ``onehot(t) * y_t``: what the code computes
  when handed LRP's seed ``output * T`` (maximum not 1).
* ``box_input``: the code gives z^B to a Conv2d whose input has 3 channels
  (``self.X.shape[1] == 3``: an RGB image); lrp_ref gives it to the network's
  first layer, a Dense or Conv2d (``box_input=True``), whatever its channels.
  ``box_input=False`` gives that layer the general step, which is what the
  code does for a grayscale image or a Linear input layer (with both input
  signs it doubles the relevance, item 2).

The result is a :class:`RAPExplanation` whose records (:class:`RAPRecord`)
carry the ledger of :mod:`lrp_ref.audit` (``Explanation.ledger()``) and, per
step, what the relevant and irrelevant parts carry and what the shift moves
(``RAPExplanation.rap_ledger()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audit import LayerRecord, Ledger, dropped_relevance, per_sample_sum
from ..engine.kernels import safe_divide
from ..layers import AvgPool2d, BatchNorm, Conv2d, Dense, Layer, MaxPool2d, Residual
from ..layers.base import as_float_array, where
from ..layers.calls import Trace, at, join, tracing
from ..layers.elementwise import PassThrough
from ..network import Explanation, Sequential, select_targets

Array = np.ndarray


@dataclass(frozen=True)
class RAPStep:
    """Which RAP step a layer took (the "rule" column of the ledger).

    ``step`` is ``"first"`` (first_prop + redistribute), ``"rap"`` (the general
    Dense/Conv2d step), ``"box"`` (z^B at the input), ``"lrp-0"`` (pooling),
    ``"batchnorm"``, ``"pass"`` or ``"add"`` (a Residual's split).
    """

    step: str


@dataclass(frozen=True)
class RAPRecord(LayerRecord):
    """A :class:`~lrp_ref.audit.LayerRecord` with what a RAP step did, per sample ``(B,)``.

    ``relevant``/``irrelevant``: the sums of ``R+`` and ``R-`` arriving at the
    output. ``spread``: what the step handed to the inputs before the shift
    (first step: ``sum_i r_i`` before redistribution). ``shift``: what
    ``shift_rel`` subtracted in all (0 for steps without a shift). The ledger
    balances: ``sum R_out = sum R_in + absorbed_bias + dropped``, and
    ``sum R_in = spread - shift``.
    """

    relevant: Array | None = None
    irrelevant: Array | None = None
    spread: Array | None = None
    shift: Array | None = None


@dataclass(frozen=True)
class RAPExplanation(Explanation):
    """The result of :func:`rap`: an :class:`~lrp_ref.Explanation` of :class:`RAPRecord` s."""

    def rap_ledger(self, sample: int = 0) -> str:
        """One sample's RAP ledger as a text table: the parts, the shift, what was lost."""
        header = ("path", "layer", "step", "sum R_out", "relevant", "irrelevant", "spread",
                  "shift", "sum R_in", "bias", "dropped")
        rows = [header]
        for r in self.layers:
            numbers = (per_sample_sum(r.relevance_out), r.relevant, r.irrelevant, r.spread,
                       r.shift, per_sample_sum(r.relevance_in), r.absorbed_bias, r.dropped)
            step = "(container)" if r.container else r.rule.step
            rows.append((r.path, r.layer, step, *(f"{v[sample]:+.6g}" for v in numbers)))
        widths = [max(len(row[k]) for row in rows) for k in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if k < 3 else cell.rjust(w)
                           for k, (cell, w) in enumerate(zip(row, widths))) for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def rap(net: Sequential, x: Array, target: Any = None, first_step: bool = True,
        box_input: bool = True) -> RAPExplanation:
    """Relative Attributing Propagation (Nam et al. 2020) as the authors' code computes it.

    Parameters
    ----------
    net : Sequential
        Of Dense, Conv2d, ReLU, MaxPool2d, AvgPool2d, BatchNorm1d/2d, Flatten,
        Identity, nested Sequential and Residual; with ``first_step`` its last
        layer is a Dense (the logits).
    x : ndarray
        Input batch.
    target : int, sequence of int or None
        The class ``t`` (None: each sample's argmax).
    first_step : bool
        The output Dense takes the first step (module docstring, item 1);
        False: the general step on ``onehot(t) * y_t``.
    box_input : bool
        The first layer (Dense or Conv2d) takes z^B with the sample's min and
        max as bounds (item 3); False: the general step.

    Returns
    -------
    RAPExplanation
        ``relevance`` like ``x``, ``output``, ``target`` and one
        :class:`RAPRecord` per layer in traversal order.
    """
    for flag, name in ((first_step, "first_step"), (box_input, "box_input")):
        if not isinstance(flag, bool):
            raise TypeError(f"rap: {name} must be True or False, got {flag!r}")
    if not isinstance(net, Sequential) or not net.layers:
        raise TypeError(f"rap needs a non-empty Sequential, got {type(net).__name__}")
    steps = _plan(net, first_step, box_input)
    x = as_float_array(x, net.dtype or np.float64, "rap")
    tape: dict[str, tuple[Array, ...]] = {}
    with tracing(Trace()):                  # what the layers' forwards keep: this call's
        output = _forward(net, x, tape, "")
        target = select_targets(output, target)
        samples = np.arange(len(target))
        R = np.zeros_like(output)
        R[samples, target] = output[samples, target]
        records: list[RAPRecord] = []
        relevance = _propagate(net, R, _Context(steps, tape, target), records, "")
    order = {path: k for k, (path, _) in enumerate(net.named_layers())}
    records.sort(key=lambda r: order[r.path])
    return RAPExplanation(relevance, output, target, records)


# -- which step each layer takes -------------------------------------------------------------

def _plan(net: Sequential, first_step: bool, box_input: bool) -> dict[str, str]:
    """``{path: step}`` for every layer; raises before any computation on a layer RAP lacks."""
    steps: dict[str, str] = {}
    for path, layer in net.named_layers():
        if isinstance(layer, (Sequential, Residual)):
            steps[path] = "add" if isinstance(layer, Residual) else "sequential"
        elif isinstance(layer, (Dense, Conv2d)):
            steps[path] = "rap"
        elif isinstance(layer, (MaxPool2d, AvgPool2d)):
            steps[path] = "lrp-0"
        elif isinstance(layer, BatchNorm):
            steps[path] = "batchnorm"
        elif isinstance(layer, PassThrough):
            steps[path] = "pass"
        else:
            raise TypeError(f"rap: {where(path, layer)} is not covered by RAP (Dense, Conv2d, "
                            "ReLU, MaxPool2d, AvgPool2d, BatchNorm, Flatten, Identity, "
                            "Sequential, Residual)")
    first, last = net.layers[0], net.layers[-1]
    if box_input:
        if not isinstance(first, (Dense, Conv2d)):
            raise ValueError(f"rap: box_input=True gives z^B to the first layer, which must be "
                             f"a Dense or Conv2d; {where('0', first)} is not (pass "
                             "box_input=False)")
        steps["0"] = "box"
    if first_step:
        if not isinstance(last, Dense):
            raise TypeError(f"rap: the first step needs the last layer to be a Dense (the "
                            f"logits), got {where(str(len(net.layers) - 1), last)}; pass "
                            "first_step=False")
        steps[str(len(net.layers) - 1)] = "first"  # precedence over "box" in a one-layer net
    return steps


@dataclass(frozen=True)
class _Context:
    steps: dict[str, str]
    tape: dict[str, tuple[Array, ...]]   # leaf: (a, z); Residual: (a, z_body, z_short)
    target: Array


def _forward(layer: Layer, a: Array, tape: dict[str, tuple[Array, ...]], path: str) -> Array:
    """The forward pass, keeping every layer's input and output (a Residual's two branches)."""
    if isinstance(layer, Sequential):
        for name, child in layer.children():
            a = _forward(child, a, tape, join(path, name))
        return a
    if isinstance(layer, Residual):
        z_body = _forward(layer.body, a, tape, join(path, "body"))
        z_short = (a if layer.shortcut is None
                   else _forward(layer.shortcut, a, tape, join(path, "shortcut")))
        tape[path] = (a, z_body, z_short)
        return z_body + z_short
    with at(path):
        z = layer.forward(a)
    tape[path] = (a, z)
    return z


# -- the propagation -----------------------------------------------------------------------

def _propagate(layer: Layer, R: Array, ctx: _Context, records: list[RAPRecord],
               path: str) -> Array:
    """``R_in`` of ``layer`` (at ``path``) from ``R`` at its output; appends its record(s)."""
    if isinstance(layer, (Sequential, Residual)):
        return _container(layer, R, ctx, records, path)
    a, z = ctx.tape[path]
    step = ctx.steps[path]
    with at(path):
        if step == "first":
            R_in, ledger, spread, shift = _first_step(layer, a, R, ctx.target)
        elif step == "rap":
            R_in, ledger, spread, shift = _general_step(layer, a, R)
        else:
            R_in, ledger = _STEPS[step](layer, a, z, R)
            spread, shift = per_sample_sum(R_in), np.zeros(len(R), R.dtype)
    records.append(_record(layer, path, step, R_in, R, ledger, spread, shift))
    return R_in


def _container(layer: Sequential | Residual, R: Array, ctx: _Context,
               records: list[RAPRecord], path: str) -> Array:
    start = len(records)
    if isinstance(layer, Sequential):
        R_in = R
        for name, child in reversed(layer.children()):
            R_in = _propagate(child, R_in, ctx, records, join(path, name))
        own = Ledger.zeros(len(R), R.dtype)
    else:
        # Add: R_branch = z_branch R / (z_body + z_short), 0 where the sum is 0 (dropped)
        _, z_body, z_short = ctx.tape[path]
        s, zero = safe_divide(R, z_body + z_short)
        R_in = _propagate(layer.body, z_body * s, ctx, records, join(path, "body"))
        R_short = z_short * s
        R_in = R_in + (R_short if layer.shortcut is None
                       else _propagate(layer.shortcut, R_short, ctx, records,
                                       join(path, "shortcut")))
        no = np.zeros(len(R), R.dtype)
        own = Ledger(no, no, dropped_relevance(zero, R))
    if path:
        children = {join(path, name) for name, _ in layer.children()}
        mine = [r for r in records[start:] if r.path in children]
        ledger = sum((r.ledger for r in mine), own)
        shift = sum((r.shift for r in mine), np.zeros(len(R), R.dtype))
        records.append(_record(layer, path, "add" if isinstance(layer, Residual)
                               else "sequential", R_in, R, ledger, per_sample_sum(R_in), shift,
                               container=True))
    return R_in


def _record(layer: Layer, path: str, step: str, R_in: Array, R: Array, ledger: Ledger,
            spread: Array, shift: Array, container: bool = False) -> RAPRecord:
    return RAPRecord(path, type(layer).__name__, None if container else RAPStep(step),
                     R_in, R, ledger, container, per_sample_sum(np.maximum(R, 0)),
                     per_sample_sum(np.minimum(R, 0)), spread, shift)


def _first_step(layer: Dense, a: Array, R: Array,
                target: Array) -> tuple[Array, Ledger, Array, Array]:
    """Item 1 of the module docstring: first_prop, then redistribute."""
    w_t = layer.weight[:, target].T                        # (B, in): the column of each target
    b_t = layer.bias[target]
    a_pos, a_neg = np.maximum(a, 0), np.minimum(a, 0)
    w_pos, w_neg = np.maximum(w_t, 0), np.minimum(w_t, 0)
    pos = (a_pos * w_pos + a_neg * w_neg).sum(axis=1)
    neg = (a_pos * w_neg + a_neg * w_pos).sum(axis=1)
    Z1, Z2 = (a_pos * w_pos).sum(axis=1), (a_pos * w_neg).sum(axis=1)
    b_pos = b_t * safe_divide(pos, pos + neg)[0]          # the bias's positive share
    b_neg = b_t * safe_divide(neg, pos + neg)[0]
    r = (a * w_t + a_pos * w_pos * safe_divide(b_pos, Z1)[0][:, None]
         + a_pos * w_neg * safe_divide(b_neg, Z2)[0][:, None])
    landed = np.where(Z1 != 0, b_pos, 0) + np.where(Z2 != 0, b_neg, 0)
    total = r.sum(axis=1)
    R_in = np.abs(r) * safe_divide(total, np.abs(r).sum(axis=1))[0][:, None]
    no = np.zeros(len(R), R.dtype)
    return R_in, Ledger(b_t - landed, no, no), total, no


def _general_step(layer: Dense | Conv2d, a: Array,
                  R: Array) -> tuple[Array, Ledger, Array, Array]:
    """Item 2 of the module docstring: both input halves, each shifted to ``sum_j R_j``."""
    w_pos, w_abs_neg = np.maximum(layer.weight, 0), -np.minimum(layer.weight, 0)
    total = per_sample_sum(R)
    R_in = np.zeros_like(a)
    spread, shift, handed = (np.zeros(len(R), R.dtype) for _ in range(3))
    for sign in (1, -1):
        a_half = np.where(sign * a > 0, np.abs(a), 0)     # |a_i| on the half, 0 elsewhere
        if not a_half.any():
            continue
        U, V = layer.linear(a_half, w_pos), layer.linear(a_half, w_abs_neg)
        if isinstance(layer, Conv2d):                      # R- only through the v terms
            R_neg = np.minimum(R, 0)
            s_u = safe_divide(np.maximum(R, 0), U)[0]
            s_v = safe_divide(R, U + V)[0] + safe_divide(R_neg, V)[0]
        else:
            s_u, s_v = safe_divide(R, U)[0], safe_divide(R, U + V)[0]
        C = a_half * (layer.linear_T(s_u, w_pos) + layer.linear_T(s_v, w_abs_neg))
        # shift_rel: the excess over sum_j R_j, taken evenly from the non-zero entries
        nonzero = C != 0
        n = per_sample_sum(nonzero.astype(C.dtype))
        excess = per_sample_sum(C) - total
        per_entry = safe_divide(excess, n)[0]
        R_in += C - nonzero * per_entry.reshape((-1,) + (1,) * (C.ndim - 1))
        spread += per_sample_sum(C)
        shift += np.where(n > 0, excess, 0)
        handed += np.where(n > 0, total, 0)
    no = np.zeros(len(R), R.dtype)
    return R_in, Ledger(no, no, total - handed), spread, shift


def _box_step(layer: Dense | Conv2d, a: Array, z: Array, R: Array) -> tuple[Array, Ledger]:
    """Item 3: z^B with the sample's own minimum ``l`` and maximum ``h`` as bounds.

    The numerators ``a_i w_ij - l w+_ij - h w-_ij`` are formed as
    ``(a_i - l) w+_ij + (a_i - h) w-_ij``: two non-negative terms, so a
    denominator that is 0 in exact arithmetic is 0 here too. (Forming
    ``sum a w - sum l w+ - sum h w-`` cancels: where every input of ``j`` sits
    on the bound its weight's sign selects, a rounding residue is left and the
    shares become arbitrary.)
    """
    flat = a.reshape(len(a), -1)
    bounds = (len(a),) + (1,) * (a.ndim - 1)
    above_low = a - flat.min(axis=1).reshape(bounds)            # a - l >= 0
    below_high = a - flat.max(axis=1).reshape(bounds)           # a - h <= 0
    w_pos, w_neg = np.maximum(layer.weight, 0), np.minimum(layer.weight, 0)
    s, zero = safe_divide(R, layer.linear(above_low, w_pos) + layer.linear(below_high, w_neg))
    R_in = above_low * layer.linear_T(s, w_pos) + below_high * layer.linear_T(s, w_neg)
    no = np.zeros(len(R), R.dtype)
    return R_in, Ledger(no, no, dropped_relevance(zero, R))


def _lrp0_step(layer: MaxPool2d | AvgPool2d, a: Array, z: Array,
               R: Array) -> tuple[Array, Ledger]:
    """Item 4: ``a * (dz/da)^T (R / z)``; MaxPool2d's gradient picks the first maximum."""
    s, zero = safe_divide(R, z)
    no = np.zeros(len(R), R.dtype)
    return a * layer.backward(s), Ledger(no, no, dropped_relevance(zero, R))


def _batchnorm_step(layer: BatchNorm, a: Array, z: Array, R: Array) -> tuple[Array, Ledger]:
    """Item 5: ``R`` passes where ``x gamma != 0``."""
    gamma = layer.gamma.reshape((-1,) + (1,) * (a.ndim - 2))
    lost = (a * gamma) == 0
    no = np.zeros(len(R), R.dtype)
    return np.where(lost, 0, R), Ledger(no, no, dropped_relevance(lost, R))


def _pass_step(layer: Layer, a: Array, z: Array, R: Array) -> tuple[Array, Ledger]:
    """Item 6: ReLU, Flatten, Identity."""
    return R.reshape(a.shape), Ledger.zeros(len(R), R.dtype)


_STEPS = {"box": _box_step, "lrp-0": _lrp0_step, "batchnorm": _batchnorm_step,
          "pass": _pass_step}


__all__ = ["RAPExplanation", "RAPRecord", "RAPStep", "rap"]
