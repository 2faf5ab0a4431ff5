"""The grader's hint: what the evidence says about a student's bug, and nothing more.

A hint names a cause only when the evidence separates it. The grader probes
the student's function one output at a time (``R = e_j``, sample 0) over the
graded cases and marks every probed output with its properties: a bias
``b_j != 0``, ``z_j < 0``, ``z_j = 0``, a zero denominator, a stride above 1,
padding, a window in the padding, a tie in a max-pool window, ... A property
explains the bug when every differing output has it **and** some probed
outputs lack it (and pass). Of the properties that explain, the narrowest is
named; when two explain equally and neither is narrower, the hint says that
the cases do not separate them and blames neither. Only then does a hint name
a ledger term (``absorbed_bias`` for the bias, ``absorbed_stabilizer`` for
the sign of ``z_j``, ``dropped`` for a zero denominator).

Before that, two checks read the failing case as a whole: alpha-beta with
alpha and beta swapped or with the beta half added (the other sign
convention of eq. (7)), and a convolution whose input relevance is the padded
relevance cropped at the wrong offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..rules import AlphaBeta
from .compare import max_relative_difference
from .grading_tasks import Case, Reference, Task

Array = np.ndarray

#: At most this many outputs of one case are probed, and at most this many cases.
PROBES_PER_CASE = 16
PROBED_CASES = 24


@dataclass(frozen=True)
class Probe:
    """Output ``j`` of sample 0 of a case, probed alone: did the student get it right?"""

    case: str
    j: tuple[int, ...]
    passed: bool
    features: dict[str, bool]
    sum_ref: float
    sum_got: float
    z: float
    finite: bool
    #: whether sample 0 of the case has a zero denominator (or z_j = 0) at any output
    zero_in_case: bool


#: property -> how a hint names it (the outputs "with ...")
PROPERTIES = {
    "bias": "a bias b_j != 0",
    "z_negative": "z_j < 0",
    "z_zero": "z_j = 0",
    "denominator_zero": "a zero denominator",
    "stride": "stride > 1",
    "padding": "padding > 0",
    "in_padding": "a window reaching into the padding",
    "overlap": "overlapping windows (stride < kernel)",
    "tie": "a tie for the window maximum",
    "negative_scale": "a negative scale gamma",
}

#: what the outputs without the property are called ("the outputs with ... pass")
ABSENT = {
    "bias": "b_j = 0", "z_negative": "z_j >= 0", "z_zero": "z_j != 0",
    "denominator_zero": "a non-zero denominator", "stride": "stride 1",
    "padding": "padding 0", "in_padding": "windows inside the input",
    "overlap": "non-overlapping windows", "tie": "a single maximum",
    "negative_scale": "gamma >= 0",
}


def explanation(prop: str, rule: Any, task: Task) -> str:
    """What a separating property means for the rule: where to look, which ledger term."""
    epsilon = float(getattr(rule, "epsilon", 0.0) or 0.0)
    if prop == "bias":
        if getattr(rule, "bias", False):
            return ("this rule puts (its form of) b_j into the denominator, so the bias absorbs "
                    "part of R_j: the absorbed_bias term differs")
        return "this rule leaves the bias out entirely (bias=False): the absorbed_bias term differs"
    if prop == "z_negative" and epsilon > 0:
        return ("the stabilizer is epsilon * sign(z_j), so there the denominator is "
                "z_j - epsilon: the absorbed_stabilizer term differs")
    if prop == "z_zero" and epsilon > 0:
        return "the stabilizer uses sign(0) := +1, i.e. the denominator is +epsilon there"
    if prop == "denominator_zero":
        return "there the share is 0 and R_j is booked as 'dropped'"
    if prop == "stride":
        return ("output (p, q) reads the window that starts at (p * stride, q * stride) of the "
                "(padded) input; its relevance must go back to that window")
    if prop == "padding":
        return ("padded positions are not inputs: relevance goes to the padded input and is "
                "then cropped to rows and columns padding .. padding + H - 1")
    if prop == "in_padding":
        return "padded positions are not inputs: they get no relevance"
    if prop == "overlap":
        return "where windows overlap, an input collects relevance from every window it is in"
    if prop == "tie":
        return ("in mode 'winner' a tie splits R_j equally among the maxima"
                if task.name == "maxpool" else "")
    if prop == "negative_scale":
        return "z_ij = a_i * gamma_i / sqrt(var_i + eps) changes sign with gamma"
    return ""


def probe(fn: Callable, task: Task, setting: Any, cases: list[Case],
          rtol: float) -> list[Probe]:
    """Probe sample 0 of each case, output by output (a spread of at most PROBES_PER_CASE)."""
    probes = []
    for case in cases[:PROBED_CASES]:
        ref_z = task.reference(case, setting).z[0]
        n = ref_z.size
        flats = np.unique(np.linspace(0, n - 1, min(n, PROBES_PER_CASE)).round().astype(int))
        shape = ref_z.shape
        R = np.zeros((len(flats), *shape))
        R.reshape(len(flats), -1)[np.arange(len(flats)), flats] = 1.0
        batch = task.rows(case, np.zeros(len(flats), dtype=int), R)   # sample 0, repeated
        expected = task.reference(batch, setting)
        # a student's 0/0 at one output spreads NaN to all inputs, whichever j is probed
        zero_in_case = bool(np.any(expected.dropped != 0) or np.any(ref_z == 0))
        for k, flat in enumerate(flats):
            j = tuple(int(v) for v in np.unravel_index(flat, shape))
            one = task.rows(batch, slice(k, k + 1))
            try:
                got = task.call_student(fn, one)
            except Exception:  # the probe is best effort; the case itself reported the error
                continue
            want = expected.relevance[k:k + 1]
            if got.shape != want.shape:
                continue
            passed = bool(np.all(np.isfinite(got))
                          and max_relative_difference(got, want) <= rtol)
            z = float(ref_z[j])
            features = {"z_negative": z < 0, "z_zero": z == 0,
                        "denominator_zero": bool(expected.dropped[k] != 0),
                        "bias": _bias(case, task, j), **task.features(case, j)}
            probes.append(Probe(case.name, j, passed, features, float(want.sum()),
                                float(np.nansum(got)), z, bool(np.all(np.isfinite(got))),
                                zero_in_case))
    return probes


def _bias(case: Case, task: Task, j: tuple[int, ...]) -> bool:
    if "b" not in case.params:
        return False
    b = case.params["b"]
    return bool(b[j[-1]] != 0) if task.name == "dense" else bool(b[j[0]] != 0)


def separating(probes: list[Probe], rule: Any) -> list[str]:
    """The narrowest properties that every differing output has and some probed output lacks."""
    failed = {k for k, p in enumerate(probes) if not p.passed}
    epsilon = float(getattr(rule, "epsilon", 0.0) or 0.0)
    sets = {}
    for prop in PROPERTIES:
        if prop == "z_zero" and epsilon == 0:
            continue  # without a stabilizer, z_j = 0 is the zero denominator
        members = {k for k, p in enumerate(probes) if p.features.get(prop, False)}
        if failed <= members and len(members) < len(probes):
            sets[prop] = members
    return [prop for prop, members in sets.items()
            if not any(other < members for other in sets.values())]


def hint(fn: Callable, task: Task, setting: Any, case: Case, ref: Reference,
         got: Array | None, cases: list[Case], rtol: float) -> str:
    """The hint for the first counterexample (module docstring)."""
    if got is None:
        return "fix the exception first; the report shows the inputs that caused it"
    if got.shape != ref.relevance.shape:
        return (f"return one relevance value per input element: expected shape "
                f"{ref.relevance.shape}, got {got.shape}")
    if isinstance(setting, AlphaBeta):
        convention = _alpha_beta_convention(task, case, setting, got, rtol)
        if convention:
            return convention
    if task.name == "conv" and case.padding > 0:
        crop = _crop_offset(task, case, setting, ref, got, rtol)
        if crop:
            return crop
    probes = probe(fn, task, setting, cases, rtol)
    failed = [p for p in probes if not p.passed]
    if not np.all(np.isfinite(got)):
        bad = [p for p in probes if not p.finite]
        if bad and all(p.zero_in_case for p in bad):
            return (f"a zero denominator must give the share 0, never NaN or inf: the "
                    f"{len(bad)} probes where yours gives NaN or inf are all of cases with a "
                    "zero denominator (or z_j = 0), and the others are finite; there the "
                    "reference passes nothing down and books R_j as 'dropped' (with a "
                    "stabilizer, sign(0) := +1)")
        return ("your result holds NaN or inf; find the operation that produces it on the "
                "counterexample above (a division, a log, a square root)")
    if not failed:
        return ("every single output is redistributed correctly when probed alone, but not "
                "the case as given: check the batch axis (samples must not mix) and the sum "
                "over outputs j")
    evidence = (f"{len(failed)} of {len(probes)} outputs probed one at a time (R = e_j) over "
                f"{len({p.case for p in probes})} cases differ")
    props = separating(probes, setting)
    if len(props) == 1:
        prop = props[0]
        passing = sum(1 for p in probes if not p.features.get(prop, False))
        meaning = explanation(prop, setting, task)
        return (f"only outputs with {PROPERTIES[prop]} differ ({evidence}; the {passing} "
                f"with {ABSENT[prop]} pass)" + (f": {meaning}" if meaning else ""))
    if props:
        return (f"{evidence}; all of them have " + " and ".join(PROPERTIES[p] for p in props)
                + ", and the cases do not separate these: compare your function with the "
                "equation on the counterexample above")
    first = failed[0]
    if abs(first.sum_got - first.sum_ref) <= 1e-9 * max(1.0, abs(first.sum_ref)):
        return (f"{evidence}; they pass down the right total but split it differently "
                f"among the inputs: check the numerator of the share, z_ij (e.g. the signs of "
                f"a_i and w_ij; first at j={_name(first.j)} of case '{first.case}')")
    return (f"{evidence}, with nothing in common that the cases single out; for output "
            f"j={_name(first.j)} of case '{first.case}' (z_j = {first.z:.6g}) the reference "
            f"passes down sum R_i = {first.sum_ref:.6g} of R_j = 1, yours {first.sum_got:.6g}")


def _name(j: tuple[int, ...]) -> str:
    return str(j[0]) if len(j) == 1 else str(j)


def _alpha_beta_convention(task: Task, case: Case, rule: AlphaBeta, got: Array,
                           rtol: float) -> str:
    """Whether ``got`` is alpha-beta with alpha and beta swapped or the beta half added.

    With ``P`` the positive shares (``AlphaBeta(1, 0)``) and ``N`` the negative
    ones (``N = 2 P - AlphaBeta(2, 1)``), the rule is ``alpha P - beta N``;
    swapped, ``beta P - alpha N`` (or its negative); added, ``alpha P + beta N``.
    """
    P = task.reference(case, AlphaBeta(1, 0, bias=rule.bias)).relevance
    N = 2 * P - task.reference(case, AlphaBeta(2, 1, bias=rule.bias)).relevance
    right = rule.alpha * P - rule.beta * N

    def matches(candidate: Array) -> bool:
        # only when the case tells the candidate apart from the right answer
        return (max_relative_difference(candidate, right) > rtol
                and max_relative_difference(got, candidate) <= rtol)

    swapped = rule.beta * P - rule.alpha * N
    if matches(swapped) or matches(-swapped):
        return ("alpha and beta are swapped: alpha multiplies the positive shares "
                "z+_ij / z+_j, beta the negative shares z-_ij / z-_j "
                "(R_i = sum_j (alpha z+_ij/z+_j - beta z-_ij/z-_j) R_j)")
    if matches(rule.alpha * P + rule.beta * N):
        return ("your function adds the beta half (alpha z+/z+ + beta z-/z-): that is the "
                "sign convention of eq. (7) with alpha' + beta' = 1. lrp_ref's AlphaBeta uses "
                "alpha - beta = 1 and subtracts it, R_i = sum_j (alpha z+_ij/z+_j - beta "
                "z-_ij/z-_j) R_j; AlphaBeta.from_eq7(alpha', beta') is the other form, "
                "with beta = -beta'")
    return ""


def _crop_offset(task: Task, case: Case, setting: Any, ref: Reference, got: Array,
                 rtol: float) -> str:
    """Whether ``got`` is the padded input's relevance cropped at another offset.

    The padded input's relevance is the reference for the zero-padded input
    without padding; it applies where padding and a zero input are the same to
    the rule (checked: cropped at ``padding`` it must give the reference).
    """
    p = case.padding
    padded = Case(case.name, np.pad(case.a, ((0, 0), (0, 0), (p, p), (p, p))), case.R,
                  {**case.params, "padding": 0})
    full = task.reference(padded, setting).relevance
    H, W = case.a.shape[2:]
    if max_relative_difference(full[:, :, p:p + H, p:p + W], ref.relevance) > rtol:
        return ""
    for top in range(2 * p + 1):
        for left in range(2 * p + 1):
            if (top, left) != (p, p) and max_relative_difference(
                    full[:, :, top:top + H, left:left + W], got) <= rtol:
                where = (f"rows and columns from {top}" if top == left
                         else f"rows from {top} and columns from {left}")
                return (f"your result is the relevance of the padded input cropped at the wrong "
                        f"offset: {where} instead of from {p} (padding = {p}); keep rows "
                        f"{p} .. {p} + H - 1 and columns {p} .. {p} + W - 1")
    return ""
