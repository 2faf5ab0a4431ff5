"""Known-answer vectors: lrp_ref's answers as files any language can read, and their checker.

``export(directory)`` writes one ``<case>.npz`` per case and a ``manifest.json``
(schema :data:`SCHEMA`, documented in docs/vectors.md); ``check(suite,
results)`` compares another implementation's ``<case>.npz`` result files with
the suite, per case, in the terms of :func:`assert_relevance_close`. The
command line is ``lrp-ref vectors export DIR`` and ``lrp-ref vectors check DIR
RESULTS [--json]``.

A case is a small network (parameters in lrp_ref's layouts: NCHW, Dense weight
``(in, out)``, Conv2d weight ``(C_out, C_in, kh, kw)``), an input, the output
relevance to start from, the rule of every layer, and the expected relevance:
at the input and at every layer's output and input, with the ledger terms. The
expected arrays are computed in float64 on the explicit path (every ``z_ij``
formed, the equations of :mod:`lrp_ref.rules.equations` applied literally),
also for the float32 cases, whose parameters and input are float32 numbers.

The files are deterministic: the same lrp_ref version writes the same bytes
(zip members stored with a fixed date, keys in a fixed order, JSON with sorted
keys).
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..network import one_hot
from ..rules import Rule
from .compare import assert_relevance_close, max_relative_difference
from .vector_cases import Case, cases

Array = np.ndarray

#: The format of the files; a reader checks it before reading anything else. Version 2
#: added layer types (and so parameter layouts): docs/vectors.md, "Schema versions".
SCHEMA = "lrp_ref-vectors-2"
MANIFEST = "manifest.json"
#: The date every zip member carries, so that a re-export writes the same bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# -- export -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def describe_rule(rule: Rule | None) -> dict[str, Any] | None:
    """A rule as JSON: its type and every parameter, e.g. ``{"type": "Epsilon", ...}``."""
    if rule is None:
        return None
    fields = getattr(rule, "__dataclass_fields__", {})
    return {"type": type(rule).__name__,
            **{name: _json_value(getattr(rule, name)) for name in fields}}


def compute(case: Case) -> tuple[dict[str, Array], dict[str, Any]]:
    """The arrays of a case's file and its manifest entry (expected values in float64)."""
    net64 = case.net.astype(np.float64)
    x64 = case.x.astype(np.float64)
    e = net64.explain(x64, target=case.target, rule=case.rule, method="explicit",
                      output_relevance=case.output_relevance)
    seed = case.output_relevance
    if seed is None:
        seed = one_hot(e.output, e.target, logit=True)
    arrays: dict[str, Array] = {"input": case.x, "output": e.output,
                                "output_relevance": np.asarray(seed, np.float64),
                                "relevance": e.relevance}
    if case.target is not None:
        arrays["target"] = np.asarray(case.target, np.int64)
    for key, value in case.net.state().items():
        arrays[f"params/{key}"] = value
    records = []
    for r in e.layers:
        prefix = f"layers/{r.path}/"
        arrays[prefix + "relevance_out"] = r.relevance_out
        if isinstance(r.relevance_in, tuple):       # a merge node: one array per input
            for k, R_k in enumerate(r.relevance_in):
                arrays[f"{prefix}relevance_in/{k}"] = R_k
        else:
            arrays[prefix + "relevance_in"] = r.relevance_in
        for term in ("absorbed_bias", "absorbed_stabilizer", "dropped"):
            arrays[prefix + term] = getattr(r, term)
        records.append({"path": r.path, "layer": r.layer, "container": r.container,
                        "rule": describe_rule(r.rule)})
    entry = {
        "name": case.name, "file": file_name(case.name), "about": case.about,
        "dtype": case.dtype, "network": case.net.config(), "layers": records,
        "rule": repr(case.rule) if not isinstance(case.rule, list) else None,
        "start": "output_relevance" if case.output_relevance is not None else
        "onehot(target) * output",
        "target": None if case.target is None else [int(t) for t in case.target],
        "tolerance": {"rtol": case.rtol, "atol": 0.0, "why": case.why},
        "source": case.source, "peer": case.peer,
    }
    return arrays, entry


#: A result key compared per layer: ``layers/<path>/relevance_in``, and for a merge node
#: (Add, Concat, Mul) one ``layers/<path>/relevance_in/<k>`` per input ``k``.
LAYER_KEY = re.compile(r"layers/.+/relevance_in(/\d+)?")


def file_name(name: str) -> str:
    """``dense/eps-1e-6`` -> ``dense__eps-1e-6.npz`` (one flat directory)."""
    return name.replace("/", "__") + ".npz"


def write_npz(path: Path, arrays: dict[str, Array]) -> None:
    """An ``.npz`` NumPy reads, with the same bytes for the same arrays (fixed zip dates)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def export(directory: str | Path) -> list[Path]:
    """Write every case and ``manifest.json`` into ``directory``; returns the paths."""
    from .. import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    entries, paths = [], []
    for case in cases():
        arrays, entry = compute(case)
        write_npz(directory / entry["file"], arrays)
        entries.append(entry)
        paths.append(directory / entry["file"])
    manifest = {"schema": SCHEMA, "lrp_ref_version": __version__,
                "layout": LAYOUT, "cases": entries}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return [*paths, directory / MANIFEST]


LAYOUT = {
    "batch": "axis 0 of every array is the batch (B)",
    "images": "NCHW: (B, C, H, W)",
    "Dense.weight": "(in, out): z_j = sum_i a_i W[i, j] + b[j]",
    "Conv2d.weight": "(C_out, C_in / groups, kh, kw), cross-correlation as "
                     "torch.nn.functional.conv2d",
    "Conv1d.weight": "(C_out, C_in / groups, k), as torch.nn.functional.conv1d",
    "ConvTranspose2d.weight": "(C_in, C_out / groups, kh, kw), as "
                              "torch.nn.functional.conv_transpose2d",
    "LayerNorm": "gamma, beta of the normalised (trailing) shape; RMSNorm: gamma",
    "keys": "input, output, output_relevance, relevance, target (if any), params/<path>.<name>, "
            "layers/<path>/{relevance_out, relevance_in (relevance_in/<k> for input k of a "
            "merge node), absorbed_bias, absorbed_stabilizer, dropped}",
    "expected": "float64, computed on lrp_ref's explicit path",
}


# -- check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: ``status`` is ``pass``, ``fail`` or ``missing``."""

    name: str
    status: str
    rtol: float
    difference: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "rtol": self.rtol,
                "max_relative_difference": self.difference, "message": self.message}


def read_manifest(suite: str | Path) -> dict[str, Any]:
    path = Path(suite) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{path}: no manifest (write the suite with lrp-ref vectors export)")
    manifest = json.loads(path.read_text())
    if manifest.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {manifest.get('schema')!r}, this checker reads "
                         f"{SCHEMA!r}")
    return manifest


def check(suite: str | Path, results: str | Path, pattern: str = "*") -> list[CaseResult]:
    """Compare ``results/<file>`` (key ``relevance``, shaped like ``input``) with the suite.

    Every case whose name matches ``pattern`` (an fnmatch pattern such as
    ``"dense/eps*"``) is checked with its rtol, per sample relative to the
    largest expected relevance (:func:`assert_relevance_close`). Optional keys
    ``layers/<path>/relevance_in`` (``.../relevance_in/<k>`` for input ``k`` of a
    merge node) in a result file are checked the same way.
    """
    suite, results = Path(suite), Path(results)
    outcomes = []
    for entry in read_manifest(suite)["cases"]:
        if not fnmatch.fnmatchcase(entry["name"], pattern):
            continue
        rtol = entry["tolerance"]["rtol"]
        theirs = results / entry["file"]
        if not theirs.is_file():
            outcomes.append(CaseResult(entry["name"], "missing", rtol,
                                       message=f"no result file {theirs}"))
            continue
        with np.load(suite / entry["file"], allow_pickle=False) as expected, \
                np.load(theirs, allow_pickle=False) as actual:
            outcomes.append(_compare(entry["name"], rtol, expected, actual))
    return outcomes


def _compare(name: str, rtol: float, expected: Any, actual: Any) -> CaseResult:
    keys = ["relevance"] + sorted(k for k in actual.files if LAYER_KEY.fullmatch(k))
    if "relevance" not in actual.files:
        return CaseResult(name, "fail", rtol, message="the result file has no 'relevance'")
    worst = 0.0
    for key in keys:
        if key not in expected.files:
            return CaseResult(name, "fail", rtol, message=f"{key}: not in the suite")
        try:
            assert_relevance_close(actual[key], expected[key], rtol=rtol)
        except AssertionError as error:
            return CaseResult(name, "fail", rtol, message=f"{key}: {error}")
        worst = max(worst, max_relative_difference(actual[key], expected[key]))
    return CaseResult(name, "pass", rtol, worst)


def report(outcomes: list[CaseResult]) -> str:
    """One line per case, the failure messages of :func:`assert_relevance_close`, a summary."""
    lines = []
    for o in outcomes:
        if o.status == "pass":
            lines.append(f"PASS    {o.name}: max relative difference {o.difference:.3g} "
                         f"<= rtol {o.rtol:g}")
        else:
            lines.append(f"{o.status.upper():7} {o.name}: " + o.message.replace("\n", "\n    "))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "missing")}
    lines.append(f"{len(outcomes)} cases: {counts['pass']} passed, {counts['fail']} failed, "
                 f"{counts['missing']} missing")
    return "\n".join(lines)


__all__ = ["Case", "CaseResult", "SCHEMA", "cases", "check", "compute", "export", "report"]
