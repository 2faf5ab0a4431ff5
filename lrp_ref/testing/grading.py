"""A classroom grader: a student's relevance rule for one layer (or a network) against lrp_ref.

The student implements one LRP step as a plain function, arrays in, relevance
out. :func:`grade` runs it on generated cases — first a fixed list of tricky
ones (biases of both signs, negative pre-activations, negative inputs, zero
inputs, contributions that cancel to ``z_j = 0``, dead outputs, windows in the
padding, ties, ...), then random ones — and compares each result with
lrp_ref's layer under the same rule (scale-relative tolerance, as
:func:`lrp_ref.testing.assert_relevance_close`). All generated numbers are
multiples of 1/4, so every ``z_j`` is exact in float64 whatever the summation
order: a mismatch is a difference in the rule, not rounding.

The layers (``layer=``) and the student's call (``lrp_ref.testing.grading_tasks``):

``"dense"``::

    student_fn(a, w, b, R) -> R_in
    a (B, in)   w (in, out)   b (out,)   R (B, out)   ->   R_in (B, in)

``w[i, j]`` is ``w_ij`` of the equations (lrp_ref's Dense layout), so the
forward pass is ``z = a @ w + b``.

``"conv"``::

    student_fn(a, w, b, R, stride=s, padding=p) -> R_in
    a (B, C_in, H, W)   w (C_out, C_in, kh, kw)   b (C_out,)   R (B, C_out, Ho, Wo)

a cross-correlation like ``torch.nn.functional.conv2d`` with the same integer
stride and zero padding on both axes; padded positions are not inputs.

``"avgpool"``, ``"maxpool"``: ``student_fn(a, R, kernel_size=k, stride=s)``
(square windows, no padding); max-pooling is graded in the ``mode`` given
(``"winner"`` or ``"proportional"``). ``"batchnorm"``: ``student_fn(a, gamma,
beta, mean, var, R, eps=e)`` for ``(B, C)`` or ``(B, C, H, W)`` input (the
affine map ``x gamma / sqrt(var + eps) + c`` under the rule). ``"residual"``:
the split of ``R`` at ``y = z_body + z_short``, ``student_fn(z_body,
z_shortcut, R, epsilon=e) -> (R_body, R_short)``. A whole network's
explanation: :func:`lrp_ref.testing.grade_network`.

The rule's parameters (``epsilon``, ``alpha``, ``beta``, ...) are part of the
assignment: bind them with a lambda or ``functools.partial``.

For the first counterexample the report shows the case (inputs, expected,
got), the conservation ledger of the reference next to the student's total,
and a hint (``lrp_ref.testing.grading_hints``): the grader probes the student's
function with one output at a time (``R = e_j``) and names a cause — a ledger
term, the stride, the padding — only when the evidence separates it.
``report.to_dict()`` (JSON-ready) and ``report.score`` are for marking.

What the grader cannot prevent: lrp_ref is public, so a "solution" that calls
``lrp_ref.Dense(w, b).relevance`` passes. :func:`grade` with ``hidden=True``
uses only random cases from a ``seed`` the teacher keeps, so a function
tailored to the published tricky cases does not pass by that; docs/classroom.md
says more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audit import per_sample_sum
from ..rules import LinearRule, describe
from .compare import max_relative_difference
from .grading_hints import hint as make_hint
from .grading_tasks import TASKS, Case, Reference, Task

Array = np.ndarray
StudentFn = Callable[..., Any]

LAYERS = tuple(TASKS)
MODES = ("winner", "proportional")


# -- the report ------------------------------------------------------------------------------


@dataclass
class Counterexample:
    """The first failed case: what went in, what was expected, what came out, and why."""

    case: Case
    arguments: dict[str, Any]
    expected: Array
    got: Array | None
    problem: str
    ledger: str
    hint: str


@dataclass
class GradeReport:
    """What :func:`grade` found. ``str(report)`` is the readable report; ``report.ok``
    is True when every case passed; ``report.score`` the fraction that passed;
    ``report.to_dict()`` / ``report.to_json()`` for a marking sheet."""

    layer: str
    rule: Any
    total: int
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    counterexample: Counterexample | None = None
    #: Remarks that are not failures (e.g. "the submission imports lrp_ref").
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every case passed."""
        return not self.failed

    @property
    def score(self) -> float:
        """The fraction of cases that passed, in [0, 1]."""
        return len(self.passed) / self.total if self.total else 0.0

    @property
    def hint(self) -> str:
        """The hint for the first counterexample ('' when every case passed)."""
        return "" if self.counterexample is None else self.counterexample.hint

    def _setting(self) -> str:
        if isinstance(self.rule, str):
            return f"mode {self.rule!r}"
        return "rule " + describe(self.rule) if self.rule is not None else "its own epsilon"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python (lists, floats, strings): ``json.dumps(report.to_dict())`` works."""
        c = self.counterexample
        return {
            "layer": self.layer, "setting": self._setting(), "total": self.total,
            "passed": len(self.passed), "score": self.score, "ok": self.ok,
            "passed_cases": list(self.passed),
            "failed_cases": [{"case": name, "problem": problem} for name, problem in self.failed],
            "counterexample": None if c is None else {
                "case": c.case.name, "arguments": {k: _plain(v) for k, v in c.arguments.items()},
                "expected": _plain(c.expected), "got": _plain(c.got), "problem": c.problem,
                "ledger": c.ledger, "hint": c.hint},
            "notes": list(self.notes),
        }

    def to_json(self, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict(), **kwargs)``."""
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        head = (f"grade: {self.layer} layer, {self._setting()}: "
                f"{len(self.passed)} of {self.total} cases passed")
        notes = [f"note: {note}" for note in self.notes]
        if self.ok:
            return "\n".join([head, *notes])
        c = self.counterexample
        values = {**c.arguments, "expected": c.expected, "got": c.got}
        shown = [_show(name, value) for name, value in values.items()]
        failed = [f"'{name}'" for name, _ in self.failed]
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        return "\n".join([head, *notes, f"first counterexample: case '{c.case.name}'", *shown,
                          f"problem: {c.problem}", c.ledger, f"hint: {c.hint}",
                          f"failed cases ({len(failed)}): " + "; ".join(failed[:5]) + more])


def _plain(value: Any) -> Any:
    """Arrays as nested lists, NaN and inf as the strings 'nan', 'inf' (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value] if value.ndim else _plain(value.item())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def _show(name: str, value: Any) -> str:
    """``  name = value`` with an array's rows aligned under its first."""
    prefix = f"  {name:8s} = "
    if not isinstance(value, np.ndarray):
        return prefix + repr(value)
    return prefix + np.array2string(value, precision=6, suppress_small=True, max_line_width=100,
                                    prefix=prefix)


# -- grading -----------------------------------------------------------------------------------


def grade(student_fn: StudentFn, layer: str = "dense", *, rule: LinearRule | None = None,
          mode: str | None = None, n_cases: int = 40, seed: int = 0, rtol: float = 1e-9,
          hidden: bool = False) -> GradeReport:
    """Grade a student's implementation of one layer's relevance step against lrp_ref.

    Parameters
    ----------
    student_fn : callable
        The student's function; its call for each ``layer`` is in the module
        docstring (e.g. ``student_fn(a, w, b, R) -> R_in`` for ``"dense"``).
    layer : {"dense", "conv", "avgpool", "maxpool", "batchnorm", "residual"}
    rule : LinearRule, optional
        The rule the student implements, e.g. ``lrp_ref.Epsilon(0.1)`` or
        ``lrp_ref.AlphaBeta(2, 1)``; required for dense, conv, avgpool and
        batchnorm, not taken by maxpool and residual.
    mode : {"winner", "proportional"}, optional
        MaxPool2d's mode, for ``layer="maxpool"`` only.
    n_cases : int
        How many cases to run (the tricky ones first, then random ones).
    seed : int
        Seed of the random cases.
    rtol : float
        Scale-relative tolerance per sample (``|got - expected| <= rtol *
        max|expected|``); the cases are exact in float64, so 1e-9 leaves room
        for rounding only.
    hidden : bool
        Random cases only (none of the published tricky ones): with a ``seed``
        the students do not know, the cases are hidden from them.

    Returns
    -------
    GradeReport
        ``report.ok``, ``report.score``, ``report.passed``, ``report.failed``,
        ``report.counterexample`` (case, expected, got, ledger, hint);
        ``print(report)`` shows it all, ``report.to_dict()`` exports it.
    """
    task = _task(layer)
    setting = _setting(task, rule, mode)
    if not callable(student_fn):
        raise TypeError(f"grade: student_fn must be callable, got {student_fn!r}")
    if not (isinstance(n_cases, int) and n_cases >= 1):
        raise ValueError(f"grade: n_cases must be an int >= 1, got {n_cases!r}")
    report = GradeReport(layer, setting, n_cases)
    graded = task.cases(n_cases, seed, hidden)
    for case in graded:
        expected = task.reference(case, setting)
        got, problem = _run(student_fn, task, case, expected.relevance, rtol)
        if problem is None:
            report.passed.append(case.name)
            continue
        report.failed.append((case.name, problem))
        if report.counterexample is None:
            with np.errstate(all="ignore"):  # sums over a student's NaN or inf
                report.counterexample = Counterexample(
                    case, task.arguments(case), expected.relevance, got, problem,
                    _ledger(case, expected, got),
                    make_hint(student_fn, task, setting, case, expected, got, graded, rtol))
    return report


def _task(layer: str) -> Task:
    if layer not in TASKS:
        raise ValueError(f"grade: layer must be one of {', '.join(map(repr, LAYERS))}, "
                         f"got {layer!r} (a whole network: grade_network)")
    return TASKS[layer]


def _setting(task: Task, rule: Any, mode: Any) -> Any:
    """The rule, the max-pool mode, or None; refuses what the task does not take."""
    if task.setting == "rule":
        if not isinstance(rule, LinearRule):
            raise TypeError(f"grade: rule must be a linear rule such as lrp_ref.Epsilon(0.1), "
                            f"got {rule!r}")
        if mode is not None:
            raise ValueError(f"grade: layer {task.name!r} takes no mode")
        return rule
    if rule is not None:
        raise ValueError(f"grade: layer {task.name!r} takes no rule"
                         + (" (give mode='winner' or 'proportional')"
                            if task.setting == "mode" else " (epsilon is part of each case)"))
    if task.setting == "mode":
        if mode not in MODES:
            raise ValueError(f"grade: mode must be 'winner' or 'proportional', got {mode!r}")
        return mode
    if mode is not None:
        raise ValueError(f"grade: layer {task.name!r} takes no mode")
    return None


def _run(student_fn: StudentFn, task: Task, case: Case, expected: Array,
         rtol: float) -> tuple[Array | None, str | None]:
    """The student's result and what is wrong with it (None when it passes)."""
    try:
        got = task.call_student(student_fn, case)
    except Exception as exc:  # a student's bug is a failed case, not a crash of the grader
        return None, f"your function raised {type(exc).__name__}: {exc}"
    if got.shape != expected.shape:
        return got, f"your result has shape {got.shape}, expected {expected.shape}"
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


__all__ = ["Case", "Counterexample", "GradeReport", "grade"]
