"""Grading a whole network's explanation: a student's ``explain`` against lrp_ref's.

The network reaches the student as plain data, a list of layers (dicts)::

    {"type": "dense", "path": "0", "w": (in, out), "b": (out,)}
    {"type": "relu", "path": "1"}
    {"type": "residual", "path": "2", "epsilon": e, "body": [layers...]}   # y = body(x) + x

(paths as lrp_ref names them: ``"2.body.0"`` inside a Residual). The student
supplies either

* a full implementation ``f(layers, x, target) -> R`` that runs the forward
  pass, seeds the output with the target logit (``R_L = onehot(target) *
  f(x)``) and propagates it back under the rule; ``R`` is the input relevance,
  or a dict ``{path: relevance at that layer's input}`` for every layer (its
  ledger: the grader then names the first layer, from the top, that differs);
* or per-layer functions ``{"dense": f(a, w, b, R), "residual": f(z_body,
  z_shortcut, R, epsilon=e)}`` (the calls of :func:`lrp_ref.testing.grade`),
  which :func:`compose` chains into a full implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import Dense, ReLU, Residual
from ..network import Explanation, Sequential
from ..rules import LinearRule
from .compare import max_relative_difference
from .grading import Counterexample, GradeReport
from .grading_tasks import Case, quarters

Array = np.ndarray


# -- networks as plain data ----------------------------------------------------------------


def build(layers: list[dict], prefix: str = "") -> Sequential:
    """The lrp_ref Sequential that the plain layer list describes."""
    built = []
    for layer in layers:
        kind = layer["type"]
        if kind == "dense":
            built.append(Dense(layer["w"], layer["b"]))
        elif kind == "relu":
            built.append(ReLU())
        elif kind == "residual":
            built.append(Residual(build(layer["body"]), epsilon=layer["epsilon"]))
        else:
            raise ValueError(f"grade_network: unknown layer type {kind!r}")
    return Sequential(built)


def _dense(path: str, w: Array, b: Array) -> dict:
    return {"type": "dense", "path": path, "w": w, "b": b}


def random_network(rng: np.random.Generator, k: int) -> tuple[str, list[dict], Array, Array]:
    """A Dense-ReLU network with one residual block, its input and targets."""
    n_in, width, n_out, batch = (int(v) for v in rng.integers(2, 5, size=4))
    body = [_dense("2.body.0", quarters(rng, (width, width)), quarters(rng, (width,))),
            {"type": "relu", "path": "2.body.1"},
            _dense("2.body.2", quarters(rng, (width, width)), quarters(rng, (width,)))]
    layers = [_dense("0", quarters(rng, (n_in, width)), quarters(rng, (width,))),
              {"type": "relu", "path": "1"},
              {"type": "residual", "path": "2", "epsilon": [0.0, 0.25][k % 2], "body": body},
              {"type": "relu", "path": "3"},
              _dense("4", quarters(rng, (width, n_out)), quarters(rng, (n_out,)))]
    x = quarters(rng, (batch, n_in), zeros=0.1)
    return f"random network {k}", layers, x, rng.integers(0, n_out, size=batch)


def network_cases(n_cases: int, seed: int) -> list[tuple[str, list[dict], Array, Array]]:
    rng = np.random.default_rng(seed)
    return [random_network(rng, k) for k in range(n_cases)]


# -- per-layer functions chained ---------------------------------------------------------------


def compose(functions: dict[str, Callable]) -> Callable:
    """A full implementation from per-layer functions (module docstring).

    The forward pass is plain NumPy here; ReLU passes relevance unchanged; the
    returned dict holds the relevance at every layer's input, by path.
    """
    missing = {"dense", "residual"} - set(functions)
    if missing:
        raise ValueError(f"compose: give a function for {sorted(missing)}")

    def run(layers: list[dict], a: Array) -> list[Array]:
        inputs = []
        for layer in layers:
            inputs.append(a)
            if layer["type"] == "dense":
                a = a @ layer["w"] + layer["b"]
            elif layer["type"] == "relu":
                a = np.maximum(a, 0)
            else:
                a = run(layer["body"], a)[-1] + a
        return [*inputs, a]

    def back(layers: list[dict], inputs: list[Array], R: Array, out: dict) -> Array:
        for layer, a in zip(reversed(layers), reversed(inputs[:-1])):
            if layer["type"] == "dense":
                R = functions["dense"](a, layer["w"], layer["b"], R)
            elif layer["type"] == "residual":
                body_inputs = run(layer["body"], a)
                R_body, R_short = functions["residual"](body_inputs[-1], a, R,
                                                        epsilon=layer["epsilon"])
                R = back(layer["body"], body_inputs, np.asarray(R_body), out) + R_short
            out[layer["path"]] = R
        return R

    def explain(layers: list[dict], x: Array, target: Array) -> dict[str, Array]:
        inputs = run(layers, x)
        logits = inputs[-1]
        R = np.zeros_like(logits)
        R[np.arange(len(x)), target] = logits[np.arange(len(x)), target]
        out: dict[str, Array] = {}
        back(layers, inputs, R, out)
        return out

    return explain


# -- grading -----------------------------------------------------------------------------------


def grade_network(student: Callable | dict, *, rule: LinearRule, n_cases: int = 10,
                  seed: int = 0, rtol: float = 1e-9) -> GradeReport:
    """Grade a student's explanation of whole networks (Dense, ReLU, a Residual block).

    Parameters
    ----------
    student : callable or dict
        ``f(layers, x, target)`` returning the input relevance or ``{path:
        relevance at that layer's input}``; or per-layer functions
        ``{"dense": ..., "residual": ...}`` (module docstring).
    rule : LinearRule
        The rule of every Dense layer (the Residual splits with its own epsilon).
    n_cases, seed, rtol
        As in :func:`lrp_ref.testing.grade`; every case is a random network
        (``seed`` chooses them, so a teacher's seed hides them).

    Returns
    -------
    GradeReport
        With ``layer="network"``; its counterexample's ledger is the
        reference's per-layer ledger with the student's sums beside it.
    """
    if not isinstance(rule, LinearRule):
        raise TypeError(f"grade_network: rule must be a linear rule, got {rule!r}")
    fn = compose(student) if isinstance(student, dict) else student
    if not callable(fn):
        raise TypeError(f"grade_network: student must be callable or a dict, got {student!r}")
    report = GradeReport("network", rule, n_cases)
    for name, layers, x, target in network_cases(n_cases, seed):
        e = build(layers).explain(x, target=target, rule=rule)
        problem, got, layer_hint = _check(fn, layers, x, target, e, rtol)
        if problem is None:
            report.passed.append(name)
            continue
        report.failed.append((name, problem))
        if report.counterexample is None:
            arguments = {"layers": layers, "x": x, "target": target}
            report.counterexample = Counterexample(
                Case(name, x, e.output, {"layers": layers}), arguments, e.relevance,
                got, problem, _ledger(e, got), layer_hint)
    return report


def _check(fn: Callable, layers: list[dict], x: Array, target: Array, e: Explanation,
           rtol: float) -> tuple[str | None, Any, str]:
    """What is wrong with the student's result (None), the result, and a hint."""
    try:
        with np.errstate(all="ignore"):
            out = fn(_copy(layers), x.copy(), target.copy())
    except Exception as exc:  # a student's bug is a failed case, not a crash of the grader
        return (f"your function raised {type(exc).__name__}: {exc}", None,
                "fix the exception first; the report shows the network that caused it")
    per_layer = out if isinstance(out, dict) else {"0": out}
    if "0" not in per_layer:
        return ("your result has no relevance for the input (path '0')", None,
                "return the input relevance, or {path: relevance at that layer's input}")
    got = np.asarray(per_layer["0"], dtype=np.float64)
    if got.shape != e.relevance.shape or not np.all(np.isfinite(got)):
        return (f"your input relevance has shape {got.shape} (expected {e.relevance.shape}) or "
                "holds NaN or inf", got, "a zero denominator gives the share 0, never NaN")
    # top down: the first layer whose input relevance differs is where the bug is
    for record in reversed(e.layers):
        if record.path not in per_layer:
            continue
        mine = np.asarray(per_layer[record.path], dtype=np.float64)
        if mine.shape != record.relevance_in.shape or (
                max_relative_difference(mine, record.relevance_in) > rtol):
            difference = max_relative_difference(got, e.relevance)
            where = (f"the relevance first differs at the input of layer '{record.path}' "
                     f"({record.layer}); every layer above it agrees"
                     + (_split_above(layers, record.path) or ": the step at that layer is wrong"))
            if set(per_layer) == {"0"}:
                where = ("return {path: relevance at that layer's input} for every layer to "
                         "see the first layer, from the top, where yours differs")
            if difference <= rtol:
                return (f"the input relevance is right but layer '{record.path}' is not", got,
                        where)
            return (f"max |got - expected| is {difference:.3g} x max|expected| of its sample "
                    f"(tolerance {rtol:g})", got, where)
    return None, got, ""


def _split_above(layers: list[dict], path: str) -> str:
    """For a Residual and the top layer of its body: where the split comes in."""
    for layer in layers:
        if layer["type"] == "residual" and path == layer["path"]:
            return (f": the residual split at '{path}' (R_body and R_short) or the sum of "
                    "the two branches' input relevance")
        if layer["type"] == "residual":
            top = layer["body"][-1]["path"]
            if path == top:
                return (f": the step at that layer is wrong, or the residual split at "
                        f"'{layer['path']}' that hands it R_body "
                        f"= z_body / (z + epsilon sign(z)) R")
            inner = _split_above(layer["body"], path)
            if inner:
                return inner
    return ""


def _copy(layers: list[dict]) -> list[dict]:
    return [{k: (_copy(v) if k == "body" else np.copy(v) if isinstance(v, np.ndarray) else v)
             for k, v in layer.items()} for layer in layers]


def _ledger(e: Explanation, got: Array | None) -> str:
    lines = ["reference ledger of sample 0:", e.ledger(0)]
    if got is not None and got.shape == e.relevance.shape:
        lines.append(f"yours: sum R_in at the input {got[0].sum():.6g} "
                     f"(reference {e.relevance[0].sum():.6g})")
    return "\n".join(lines)


__all__ = ["build", "compose", "grade_network"]
