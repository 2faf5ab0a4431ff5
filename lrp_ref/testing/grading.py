"""A classroom grader: a student's relevance rule for one layer against the reference.

The student implements one LRP rule for a Dense or a Conv2d layer as a plain
function, arrays in, relevance out:

``layer="dense"``::

    student_fn(a, w, b, R) -> R_in
    a (B, in)   w (in, out)   b (out,)   R (B, out)   ->   R_in (B, in)

``w[i, j]`` is ``w_ij`` of the equations (lrp_ref's Dense layout), so the
forward pass is ``z = a @ w + b``.

``layer="conv"``::

    student_fn(a, w, b, R, stride=s, padding=p) -> R_in
    a (B, C_in, H, W)   w (C_out, C_in, kh, kw)   b (C_out,)   R (B, C_out, Ho, Wo)

a cross-correlation like ``torch.nn.functional.conv2d`` with the same integer
stride and zero padding on both axes; padded positions are not inputs.

The rule's parameters (``epsilon``, ``alpha``, ``beta``, ...) are part of the
assignment: bind them with a lambda or ``functools.partial``. :func:`grade`
runs the function on generated cases — first a fixed list of tricky ones
(biases of both signs, negative pre-activations, negative inputs, zero
inputs, contributions that cancel to ``z_j = 0``, dead outputs, windows that
lie in the padding), then random ones — and compares each result with
lrp_ref's layer under the same rule (scale-relative tolerance, as
:func:`lrp_ref.testing.assert_relevance_close`). All generated numbers are
multiples of 1/4, so every ``z_j`` is exact in float64 whatever the summation
order: a mismatch is a difference in the rule, not rounding.

For the first counterexample the report shows the case (inputs, expected,
got), the conservation ledger of the reference next to the student's total,
and a hint: the grader probes the student's function with one output at a
time (``R = e_j``) to find which outputs ``j`` it treats differently and what
they have in common (``z_j < 0``: the stabilizer's sign; ``b_j != 0``: the
bias term; ...), and recognises alpha and beta swapped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audit import per_sample_sum
from ..layers import Conv2d, Dense, Flatten, LinearLayer
from ..network import Sequential
from ..rules import AlphaBeta, LinearRule, describe
from .compare import max_relative_difference

Array = np.ndarray
StudentFn = Callable[..., Any]

LAYERS = ("dense", "conv")
#: The grader probes at most this many outputs one at a time for the hint.
MAX_PROBES = 128


@dataclass(frozen=True)
class Case:
    """One generated case: the layer's parameters, its input and the output relevance."""

    name: str
    a: Array
    w: Array
    b: Array
    R: Array
    stride: int = 1
    padding: int = 0

    def layer(self, kind: str) -> LinearLayer:
        """The reference layer (Dense or Conv2d) of this case."""
        if kind == "dense":
            return Dense(self.w, self.b)
        return Conv2d(self.w, self.b, stride=self.stride, padding=self.padding)

    def arrays(self, kind: str) -> dict[str, Any]:
        """What the student's function receives, by name (for the report)."""
        out: dict[str, Any] = {"a": self.a, "w": self.w, "b": self.b, "R": self.R}
        if kind == "conv":
            out.update(stride=self.stride, padding=self.padding)
        return out


@dataclass(frozen=True)
class Reference:
    """lrp_ref's answer for a case: input relevance, pre-activations and ledger terms."""

    relevance: Array
    z: Array
    absorbed_bias: Array
    absorbed_stabilizer: Array
    dropped: Array


def reference(case: Case, kind: str, rule: LinearRule, R: Array | None = None,
              a: Array | None = None) -> Reference:
    """Explain ``case`` (optionally with another ``R`` or ``a``) with lrp_ref."""
    a = case.a if a is None else a
    R = case.R if R is None else R
    # a Flatten on top gives explain the (B, outputs) it seeds; it passes R unchanged
    e = Sequential([case.layer(kind), Flatten()]).explain(
        a, target=0, rule=rule, output_relevance=R.reshape(R.shape[0], -1))
    record = e.layer("0")
    return Reference(e.relevance, e.output.reshape(R.shape), record.absorbed_bias,
                     record.absorbed_stabilizer, record.dropped)


def call_student(student_fn: StudentFn, case: Case, kind: str, a: Array | None = None,
                 R: Array | None = None) -> Array:
    """The student's result for ``case`` as a float64 array (copies the inputs first)."""
    a = (case.a if a is None else a).copy()
    R = (case.R if R is None else R).copy()
    # a student's division by zero shows up as NaN or inf in the report, not as warnings
    with np.errstate(all="ignore"):
        if kind == "dense":
            out = student_fn(a, case.w.copy(), case.b.copy(), R)
        else:
            out = student_fn(a, case.w.copy(), case.b.copy(), R, stride=case.stride,
                             padding=case.padding)
    return np.asarray(out, dtype=np.float64)


# -- generated cases -------------------------------------------------------------------------


def _quarters(rng: np.random.Generator, shape: tuple, low: int = -8, high: int = 8,
              zeros: float = 0.15) -> Array:
    """Multiples of 1/4 in ``[low/4, high/4]``, each 0 with probability ``zeros``."""
    x = rng.integers(low, high + 1, size=shape) / 4
    return np.where(rng.random(shape) < zeros, 0.0, x)


def _dense_tricky() -> list[Case]:
    w = np.array([[1.0, 0.5, 0.25], [0.5, 1.0, 0.75], [0.25, 0.5, 1.0]])
    a = np.array([[1.0, 2.0, 0.5], [0.5, 0.25, 1.5]])
    R = np.array([[1.0, -0.5, 2.0], [0.75, 1.0, -1.25]])
    zero = np.zeros(3)
    mixed_w = np.array([[1.0, -0.5, -1.0], [-0.5, 1.0, -0.75], [0.25, -0.5, -1.0]])
    cancel_w = np.array([[1.0, 0.5, 2.0], [-1.0, 0.5, -1.0], [0.0, -1.0, 0.25]])
    dead_w = np.array([[1.0, 0.0, -0.5], [0.5, 0.0, 1.0], [-0.25, 0.0, 0.5]])
    return [
        Case("positive inputs, weights and relevance scale; no bias", a, w, zero, np.abs(R)),
        Case("biases of both signs (z_j > 0)", a, w, np.array([0.5, -0.25, 1.0]), R),
        Case("negative pre-activations z_j < 0", a, mixed_w, np.array([0.25, 0.5, -0.5]), R),
        Case("negative inputs", np.array([[-1.0, 2.0, -0.5], [1.5, -0.75, -1.0]]), mixed_w,
             np.array([-0.25, 0.5, 0.0]), R),
        Case("a zero input (z_j = b_j)", np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.25]]), mixed_w,
             np.array([0.5, 0.0, -0.75]), R),
        Case("contributions cancelling to z_j = 0", np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 0.0]]),
             cancel_w, zero, R),
        Case("a dead output (all weights into it are 0, no bias)", a, dead_w, zero, R),
    ]


def _conv_tricky() -> list[Case]:
    rng = np.random.default_rng(1234)
    a_pos = rng.integers(1, 9, size=(1, 2, 4, 4)) / 4
    w_pos = rng.integers(1, 5, size=(2, 2, 3, 3)) / 4
    w_mixed = w_pos * np.array([1.0, -1.0])[:, None, None, None]
    a_neg = a_pos * np.where(rng.random(a_pos.shape) < 0.5, -1.0, 1.0)
    cancel = np.array([[1.0, -1.0], [1.0, -1.0]])[None, None] * np.ones((2, 2, 1, 1))

    def R(shape: tuple) -> Array:
        return rng.integers(-4, 5, size=shape) / 4

    return [
        Case("positive inputs and weights; no bias", a_pos, w_pos, np.zeros(2),
             np.abs(R((1, 2, 2, 2)))),
        Case("biases of both signs (z_j > 0)", a_pos, w_pos, np.array([0.5, -0.25]),
             R((1, 2, 2, 2))),
        Case("negative pre-activations z_j < 0 (padding 1)", a_pos, w_mixed, np.array([0.25, 0.5]),
             R((1, 2, 4, 4)), padding=1),
        Case("negative inputs (stride 2, padding 1)", a_neg, w_mixed, np.array([-0.25, 0.5]),
             R((1, 2, 2, 2)), stride=2, padding=1),
        Case("a zero input (z_j = b_j)", np.zeros((1, 2, 4, 4)), w_mixed, np.array([0.5, -0.75]),
             R((1, 2, 2, 2))),
        Case("contributions cancelling to z_j = 0", np.ones((1, 2, 3, 3)), cancel, np.zeros(2),
             R((1, 2, 2, 2))),
        Case("windows entirely in the padding (kernel 2, padding 2)", a_pos, w_mixed[:, :, :2, :2],
             np.zeros(2), R((1, 2, 7, 7)), padding=2),
    ]


def _dense_random(rng: np.random.Generator, k: int) -> Case:
    n_in, n_out, batch = (int(v) for v in rng.integers(1, 6, size=3))
    return Case(f"random {k}", _quarters(rng, (batch, n_in)), _quarters(rng, (n_in, n_out)),
                _quarters(rng, (n_out,)), _quarters(rng, (batch, n_out)))


def _conv_random(rng: np.random.Generator, k: int) -> Case:
    c_in, c_out, batch = (int(v) for v in rng.integers(1, 4, size=3))
    kh, kw = (int(v) for v in rng.integers(1, 4, size=2))
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 3))
    H, W = max(kh, int(rng.integers(2, 7))), max(kw, int(rng.integers(2, 7)))
    Ho, Wo = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    return Case(f"random {k}", _quarters(rng, (batch, c_in, H, W)),
                _quarters(rng, (c_out, c_in, kh, kw)), _quarters(rng, (c_out,)),
                _quarters(rng, (batch, c_out, Ho, Wo)), stride, padding)


def cases(layer: str, n_cases: int, seed: int = 0) -> list[Case]:
    """The tricky cases of ``layer`` followed by random ones, ``n_cases`` in all."""
    tricky = _dense_tricky() if layer == "dense" else _conv_tricky()
    rng = np.random.default_rng(seed)
    make = _dense_random if layer == "dense" else _conv_random
    return (tricky + [make(rng, k) for k in range(max(0, n_cases - len(tricky)))])[:n_cases]


# -- the report ------------------------------------------------------------------------------


@dataclass
class Counterexample:
    """The first failed case: what went in, what was expected, what came out, and why."""

    case: Case
    expected: Array
    got: Array | None
    problem: str
    ledger: str
    hint: str


@dataclass
class GradeReport:
    """What :func:`grade` found. ``str(report)`` is the readable report; ``report.ok``
    is True when every case passed."""

    layer: str
    rule: LinearRule
    total: int
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    counterexample: Counterexample | None = None

    @property
    def ok(self) -> bool:
        """Whether every case passed."""
        return not self.failed

    @property
    def hint(self) -> str:
        """The hint for the first counterexample ('' when every case passed)."""
        return "" if self.counterexample is None else self.counterexample.hint

    def __str__(self) -> str:
        head = (f"grade: {self.layer} layer, rule {describe(self.rule)}: "
                f"{len(self.passed)} of {self.total} cases passed")
        if self.ok:
            return head
        c = self.counterexample
        values = {**c.case.arrays(self.layer), "expected": c.expected, "got": c.got}
        shown = [_show(name, value) for name, value in values.items()]
        failed = [f"'{name}'" for name, _ in self.failed]
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        return "\n".join([head, f"first counterexample: case '{c.case.name}'", *shown,
                          f"problem: {c.problem}", c.ledger, f"hint: {c.hint}",
                          f"failed cases ({len(failed)}): " + "; ".join(failed[:5]) + more])


def _show(name: str, value: Any) -> str:
    """``  name = value`` with an array's rows aligned under its first."""
    prefix = f"  {name:8s} = "
    if not isinstance(value, np.ndarray):
        return prefix + repr(value)
    return prefix + np.array2string(value, precision=6, suppress_small=True, max_line_width=100,
                                    prefix=prefix)


# -- grading -----------------------------------------------------------------------------------


def grade(student_fn: StudentFn, layer: str = "dense", *, rule: LinearRule, n_cases: int = 40,
          seed: int = 0, rtol: float = 1e-9) -> GradeReport:
    """Grade a student's implementation of ``rule`` for one layer against lrp_ref.

    Parameters
    ----------
    student_fn : callable
        ``student_fn(a, w, b, R) -> R_in`` for ``layer="dense"``,
        ``student_fn(a, w, b, R, stride=s, padding=p) -> R_in`` for
        ``layer="conv"`` (shapes in the module docstring).
    layer : {"dense", "conv"}
    rule : LinearRule
        The rule the student implements, e.g. ``lrp_ref.Epsilon(0.1)`` or
        ``lrp_ref.AlphaBeta(2, 1)``.
    n_cases : int
        How many cases to run (the tricky ones first, then random ones).
    seed : int
        Seed of the random cases.
    rtol : float
        Scale-relative tolerance per sample (``|got - expected| <= rtol *
        max|expected|``); the cases are exact in float64, so 1e-9 leaves room
        for rounding only.

    Returns
    -------
    GradeReport
        ``report.ok``, ``report.passed``, ``report.failed``,
        ``report.counterexample`` (case, expected, got, ledger, hint);
        ``print(report)`` shows it all.
    """
    if layer not in LAYERS:
        raise ValueError(f"grade: layer must be 'dense' or 'conv', got {layer!r}")
    if not isinstance(rule, LinearRule):
        raise TypeError(f"grade: rule must be a linear rule such as lrp_ref.Epsilon(0.1), "
                        f"got {rule!r}")
    if not callable(student_fn):
        raise TypeError(f"grade: student_fn must be callable, got {student_fn!r}")
    if not (isinstance(n_cases, int) and n_cases >= 1):
        raise ValueError(f"grade: n_cases must be an int >= 1, got {n_cases!r}")
    report = GradeReport(layer, rule, n_cases)
    for case in cases(layer, n_cases, seed):
        expected = reference(case, layer, rule)
        got, problem = _run(student_fn, case, layer, expected.relevance, rtol)
        if problem is None:
            report.passed.append(case.name)
            continue
        report.failed.append((case.name, problem))
        if report.counterexample is None:
            with np.errstate(all="ignore"):  # sums over a student's NaN or inf
                report.counterexample = Counterexample(
                    case, expected.relevance, got, problem, _ledger(case, expected, got),
                    _hint(student_fn, case, layer, rule, expected, got, rtol))
    return report


def _run(student_fn: StudentFn, case: Case, kind: str, expected: Array,
         rtol: float) -> tuple[Array | None, str | None]:
    """The student's result and what is wrong with it (None when it passes)."""
    try:
        got = call_student(student_fn, case, kind)
    except Exception as exc:  # a student's bug is a failed case, not a crash of the grader
        return None, f"your function raised {type(exc).__name__}: {exc}"
    if got.shape != expected.shape:
        return got, f"your result has shape {got.shape}, expected {expected.shape} (like a)"
    if not np.all(np.isfinite(got)):
        return got, f"your result contains {int(np.sum(~np.isfinite(got)))} NaN or inf value(s)"
    difference = max_relative_difference(got, expected)
    if difference > rtol:
        return got, (f"max |got - expected| is {difference:.3g} x max|expected| of its sample "
                     f"(tolerance {rtol:g})")
    return got, None


def _ledger(case: Case, ref: Reference, got: Array | None) -> str:
    """The reference's conservation ledger per sample, with the student's ``sum R_in``."""
    sum_out = per_sample_sum(case.R)
    lines = ["ledger per sample: sum R_out = sum R_in + absorbed_bias + absorbed_stabilizer "
             "+ dropped (reference)"]
    valid = got is not None and got.shape == ref.relevance.shape
    for s in range(case.R.shape[0]):
        line = (f"  sample {s}: sum R_out {sum_out[s]:.6g} = sum R_in "
                f"{per_sample_sum(ref.relevance)[s]:.6g} + bias {ref.absorbed_bias[s]:.6g} + "
                f"stabilizer {ref.absorbed_stabilizer[s]:.6g} + dropped {ref.dropped[s]:.6g}")
        if valid:
            line += f"; yours: sum R_in {per_sample_sum(got)[s]:.6g}"
        lines.append(line)
    return "\n".join(lines)


# -- hints -------------------------------------------------------------------------------------


def _hint(student_fn: StudentFn, case: Case, kind: str, rule: LinearRule, ref: Reference,
          got: Array | None, rtol: float) -> str:
    if got is None:
        return "fix the exception first; the report shows the inputs that caused it"
    if got.shape != ref.relevance.shape:
        return "return one relevance value per input element: R_in has the shape of a"
    if isinstance(rule, AlphaBeta) and _swapped(case, kind, rule, got, rtol):
        return ("alpha and beta are swapped: alpha multiplies the positive shares "
                "z+_ij / z+_j, beta the negative shares z-_ij / z-_j "
                "(R_i = sum_j (alpha z+_ij/z+_j - beta z-_ij/z-_j) R_j)")
    differing = _differing_outputs(student_fn, case, kind, rule, ref, rtol)
    if not np.all(np.isfinite(got)):
        zero = [j for j, info in differing if info["denominator_zero"]]
        return ("a zero denominator must give the share 0, never NaN or inf: the reference "
                "passes nothing down there and books R_j as 'dropped'"
                + (f" (outputs {_names(zero)} of sample 0)" if zero else "")
                + "; with a stabilizer, sign(0) := +1")
    if not differing:
        return ("every single output is redistributed correctly when probed alone, but not "
                "the case as given: check the batch axis (samples must not mix) and the sum "
                "over outputs j")
    infos = [info for _, info in differing]
    names = _names([j for j, _ in differing])
    epsilon = float(getattr(rule, "epsilon", 0.0))
    if epsilon > 0 and all(info["z"] < 0 for info in infos):
        return (f"only outputs with z_j < 0 differ ({names}): the stabilizer is "
                f"epsilon * sign(z_j), so there the denominator is z_j - epsilon; the "
                "absorbed_stabilizer term differs")
    if epsilon > 0 and all(info["z"] == 0 for info in infos):
        return (f"only outputs with z_j = 0 differ ({names}): the stabilizer uses "
                "sign(0) := +1, i.e. the denominator is +epsilon there")
    if all(info["b"] != 0 for info in infos):
        uses_bias = getattr(rule, "bias", False)
        return (f"only outputs with a bias b_j != 0 differ ({names}): the absorbed_bias term "
                "differs; " + ("this rule puts (its form of) b_j into the denominator, so "
                               "the bias absorbs part of R_j"
                               if uses_bias else "this rule leaves the bias out entirely"))
    if all(info["denominator_zero"] for info in infos):
        return (f"only outputs with a zero denominator differ ({names}): there the share is 0 "
                "and R_j is booked as 'dropped'")
    first_j, first = differing[0]
    if abs(first["sum_got"] - first["sum_ref"]) <= 1e-9 * max(1.0, abs(first["sum_ref"])):
        return (f"outputs {names} pass down the right total but split it differently among "
                "the inputs: check the numerator of the share, z_ij (e.g. the signs of a_i "
                f"and w_ij at {_names([first_j])})")
    return (f"outputs {names} differ; for output {_names([first_j])} (z_j = {first['z']:.6g}, "
            f"b_j = {first['b']:.6g}) the reference passes down sum R_i = "
            f"{first['sum_ref']:.6g} of R_j = 1 (absorbed_bias {first['bias']:.6g}, "
            f"absorbed_stabilizer {first['stabilizer']:.6g}, dropped {first['dropped']:.6g}), "
            f"yours {first['sum_got']:.6g}")


def _names(outputs: list[tuple[int, ...]]) -> str:
    shown = ", ".join("j=" + (str(j[0]) if len(j) == 1 else str(j)) for j in outputs[:6])
    return shown + (f" and {len(outputs) - 6} more" if len(outputs) > 6 else "")


def _differing_outputs(student_fn: StudentFn, case: Case, kind: str, rule: LinearRule,
                       ref: Reference, rtol: float) -> list[tuple[tuple[int, ...], dict]]:
    """Probe sample 0 output by output (``R = e_j``); the outputs the student gets wrong."""
    a = case.a[:1]
    out_shape = ref.z.shape[1:]
    b = case.b if kind == "dense" else case.b[:, None, None] * np.ones(out_shape)
    differing = []
    for flat in range(min(int(np.prod(out_shape)), MAX_PROBES)):
        j = tuple(int(v) for v in np.unravel_index(flat, out_shape))
        e_j = np.zeros((1, *out_shape))
        e_j[(0, *j)] = 1.0
        expected = reference(case, kind, rule, R=e_j, a=a)
        try:
            got = call_student(student_fn, case, kind, a=a, R=e_j)
        except Exception:  # the probe is best effort; the case itself reported the error
            continue
        if got.shape != expected.relevance.shape:
            continue
        if np.all(np.isfinite(got)) and max_relative_difference(got, expected.relevance) <= rtol:
            continue
        differing.append((j, {
            "z": float(ref.z[(0, *j)]), "b": float(np.broadcast_to(b, out_shape)[j]),
            "denominator_zero": bool(expected.dropped[0] != 0),
            "sum_ref": float(expected.relevance.sum()),
            "sum_got": float(np.nansum(got)), "bias": float(expected.absorbed_bias[0]),
            "stabilizer": float(expected.absorbed_stabilizer[0]),
            "dropped": float(expected.dropped[0]),
        }))
    return differing


def _swapped(case: Case, kind: str, rule: AlphaBeta, got: Array, rtol: float) -> bool:
    """Whether ``got`` is the alpha-beta rule with alpha and beta exchanged.

    With ``P`` the positive shares (``AlphaBeta(1, 0)``) and ``N`` the
    negative ones (``N = 2 P - AlphaBeta(2, 1)``), the rule is
    ``alpha P - beta N``; swapped, ``beta P - alpha N`` (or its negative,
    ``alpha N - beta P``).
    """
    P = reference(case, kind, AlphaBeta(1, 0, bias=rule.bias)).relevance
    N = 2 * P - reference(case, kind, AlphaBeta(2, 1, bias=rule.bias)).relevance
    swapped = rule.beta * P - rule.alpha * N
    if max_relative_difference(swapped, rule.alpha * P - rule.beta * N) <= rtol:
        return False  # the case cannot tell the two apart
    return any(max_relative_difference(got, s) <= rtol for s in (swapped, -swapped))


__all__ = ["Case", "Counterexample", "GradeReport", "cases", "grade"]
