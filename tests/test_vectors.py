"""The known-answer suite (lrp_ref.testing.vectors, docs/vectors.md): deterministic export,
the checker on lrp_ref's own results and on a perturbed copy, the numbers by hand, and the
worked example of docs/vectors.md run through the files alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.cli import main
from lrp_ref.testing import vectors
from lrp_ref.testing.vector_cases import cases

ROOT = Path(__file__).resolve().parents[1]
CASES = {case.name: case for case in cases()}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    directory = tmp_path_factory.mktemp("suite")
    assert main(["vectors", "export", str(directory)]) == 0
    return directory


def lrp_ref_results(directory: Path, dtype_of_case: bool = True) -> Path:
    """lrp_ref's fast path on every case, in the case's dtype, as a results directory."""
    directory.mkdir(exist_ok=True)
    for case in CASES.values():
        start = None if case.output_relevance is None else case.output_relevance.astype(
            case.dtype)
        e = case.net.explain(case.x, target=case.target, rule=case.rule, output_relevance=start)
        np.savez(directory / vectors.file_name(case.name), relevance=e.relevance)
    return directory


def test_export_is_deterministic(suite, tmp_path):
    """A second export writes the same files, byte for byte (zip dates fixed)."""
    again = tmp_path / "again"
    vectors.export(again)
    names = sorted(p.name for p in suite.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    for name in names:
        assert (suite / name).read_bytes() == (again / name).read_bytes(), name


def test_suite_is_small_and_readable_without_lrp_ref(suite):
    """Plain json and np.load (no pickle) read it; a few MB in all; every case listed."""
    manifest = json.loads((suite / "manifest.json").read_text())
    assert manifest["schema"] == "lrp_ref-vectors-2"
    assert [c["name"] for c in manifest["cases"]] == list(CASES)
    assert sum(p.stat().st_size for p in suite.iterdir()) < 6_000_000     # 3.8 MB now
    entry = next(c for c in manifest["cases"] if c["name"] == "conv/eq7-0.5-0.5")
    assert entry["layers"][0] == {"path": "0", "layer": "Conv2d", "container": False,
                                  "rule": {"type": "AlphaBetaEq7", "alpha": 0.5,
                                           "beta": 0.5, "bias": True}}
    assert entry["network"]["layers"][0]["stride"] == [2, 2]
    with np.load(suite / entry["file"], allow_pickle=False) as data:
        assert data["params/0.weight"].shape == (3, 2, 3, 3)      # (C_out, C_in, kh, kw)
        assert data["input"].shape == data["relevance"].shape == (2, 2, 7, 7)
        # every record balances: sum R_out = sum R_in + bias + stabilizer + dropped
        for r in entry["layers"]:
            p = f"layers/{r['path']}/"
            lhs = data[p + "relevance_out"].reshape(2, -1).sum(axis=1)
            rhs = (data[p + "relevance_in"].reshape(2, -1).sum(axis=1) + data[p + "dropped"]
                   + data[p + "absorbed_bias"] + data[p + "absorbed_stabilizer"])
            np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)   # float64 sums


def test_every_dtype_and_group_is_there():
    names = set(CASES)
    for required in ("maxpool/winner", "maxpool/proportional", "batchnorm/pass",
                     "batchnorm/affine-eps-0.25", "residual/eps-1e-6", "avgpool/flat",
                     "composite/vgg/epsilon_plus", "composite/resnet/epsilon_gamma_box",
                     "conv/eq7-0-1", "dense/eps-1e-6-float32",
                     # schema 2: the layers added since
                     "conv2d-groups-dilation/flat", "conv2d-padding-reflect/flat",
                     "conv2d-padding-replicate/zero", "conv2d-padding-circular/alphabeta-2-1",
                     "conv2d-same-even-kernel/zero", "conv1d/wsquare",
                     "convtranspose2d/eps-0.25", "maxpool-ceil-padding/winner",
                     "maxpool-ceil-padding/proportional", "maxpool-dilation-2/winner",
                     "avgpool-exclude-pad/flat", "avgpool-divisor-override/alphabeta-2-1",
                     "adaptive-avgpool-2x4/eps-0.25", "adaptive-maxpool-2x4/proportional",
                     "upsample-nearest/eps-0.25", "upsample-bilinear/flat",
                     "upsample-bilinear-align-corners/eps-0.25", "activation/gelu-tanh",
                     "activation/mish", "graph/mul-gate/eps-1e-6", "graph/product/nested",
                     "transformer/layernorm/pass", "transformer/layernorm/detach-mean-zero",
                     "transformer/rmsnorm/eps-0.25", "transformer/softmax",
                     "transformer/attention/attnlrp", "transformer/attention/cp-lrp",
                     "transformer/attention/attnlrp-float32"):
        assert required in names
    assert CASES["dense/eps-1e-6-float32"].net.layers[0].weight.dtype == np.float32


#: Layer types a model file may name that no case holds yet (token layers: their own suites).
NOT_IN_A_CASE = {"Bidirectional", "Embedding", "LSTM"}


def test_every_layer_type_is_in_a_case():
    """Every type of lrp_ref.registry (docs/vectors.md lists them) is in some case's network,
    but the token layers: a new layer type needs a case (or a conscious entry here)."""
    from lrp_ref.registry import LAYER_TYPES

    used = set()
    for case in CASES.values():
        used |= {type(case.net).__name__} | {type(lay).__name__
                                             for _, lay in case.net.named_layers()}
    assert set(LAYER_TYPES) - used == NOT_IN_A_CASE


def test_every_case_saves_and_loads_through_lrp_ref_io(tmp_path):
    """The manifest's architecture is lrp_ref.save's JSON: every case's network saves, loads
    back with the same config and computes the same forward pass (bit for bit: same
    arrays, same code)."""
    for case in CASES.values():
        path = tmp_path / "net.npz"
        lrp.save(case.net, path)
        loaded = lrp.load(path)
        assert loaded.config() == case.net.config(), case.name
        np.testing.assert_array_equal(loaded.forward(case.x), case.net.forward(case.x),
                                      err_msg=case.name)


def test_checker_passes_lrp_refs_own_results(suite, tmp_path, capsys):
    """lrp_ref's fast path (float32 where the case is float32) against the explicit float64
    answers: every case passes its tolerance."""
    results = lrp_ref_results(tmp_path / "results")
    assert main(["vectors", "check", str(suite), str(results)]) == 0
    out = capsys.readouterr().out
    assert f"{len(CASES)} cases: {len(CASES)} passed, 0 failed, 0 missing" in out
    assert main(["vectors", "check", str(suite), str(results), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {r["status"] for r in report} == {"pass"}
    float32 = [r for r in report if r["name"].endswith("-float32")]
    assert float32 and all(r["rtol"] == 1e-4 for r in float32)


def test_checker_fails_a_perturbed_copy_with_the_report(suite, tmp_path, capsys):
    """One element of dense/zero moved by 1e-6 of its sample's max|R|: that case fails with
    assert_relevance_close's report (where, how much, sums), the others pass; a deleted
    result is 'missing'. Exit code 1."""
    results = lrp_ref_results(tmp_path / "results")
    name = vectors.file_name("dense/zero")
    R = np.load(results / name)["relevance"]
    R[1, 3] += 1e-6 * np.abs(R[1]).max()
    np.savez(results / name, relevance=R)
    (results / vectors.file_name("conv/flat")).unlink()
    assert main(["vectors", "check", str(suite), str(results)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL    dense/zero: relevance: relevance not close: 1 of 10 elements",
                     out)
    assert "largest difference outside the tolerance at index (1, 3)" in out
    assert "MISSING conv/flat" in out
    assert f"{len(CASES)} cases: {len(CASES) - 2} passed, 1 failed, 1 missing" in out
    outcomes = {o.name: o for o in vectors.check(suite, results, "dense/*")}
    assert outcomes["dense/zero"].status == "fail" and outcomes["dense/eps-1e-6"].status == "pass"
    assert "conv/flat" not in outcomes
    assert main(["vectors", "check", str(suite), str(results), "--skip-missing"]) == 1


def test_checker_compares_layers_when_given(suite, tmp_path):
    """A result may add layers/<path>/relevance_in; a wrong one fails the case."""
    results = tmp_path / "results"
    results.mkdir()
    case = CASES["dense/eps-1e-6"]
    e = case.net.explain(case.x, target=case.target, rule=case.rule)
    name = vectors.file_name(case.name)
    np.savez(results / name, relevance=e.relevance,
             **{"layers/2/relevance_in": e.layer("2").relevance_in})
    assert vectors.check(suite, results, case.name)[0].status == "pass"
    np.savez(results / name, relevance=e.relevance,
             **{"layers/2/relevance_in": 2 * e.layer("2").relevance_in})
    outcome = vectors.check(suite, results, case.name)[0]
    assert outcome.status == "fail" and outcome.message.startswith("layers/2/relevance_in")


def test_graph_cases_store_each_input_of_a_merge_node(suite, tmp_path):
    """A Graph case (Add and Concat nodes) exports one relevance_in per input of a merge
    node, layers/<path>/relevance_in/<k>; the checker compares them when given."""
    assert {"graph/add-concat/eps-1e-6", "graph/add-concat/zero-split-0"} <= set(CASES)
    case = CASES["graph/add-concat/zero-split-0"]
    name = vectors.file_name(case.name)
    with np.load(suite / name) as expected:
        assert {"layers/add/relevance_in/0", "layers/add/relevance_in/1",
                "layers/cat/relevance_in/0", "layers/cat/relevance_in/1"} <= set(expected.files)
        assert "layers/add/relevance_in" not in expected.files
    e = case.net.explain(case.x, target=case.target, rule=case.rule)
    results = tmp_path / "results"
    results.mkdir()
    R_a, R_b = e.layer("add").relevance_in
    np.savez(results / name, relevance=e.relevance,
             **{"layers/add/relevance_in/0": R_a, "layers/add/relevance_in/1": R_b})
    assert vectors.check(suite, results, case.name)[0].status == "pass"
    np.savez(results / name, relevance=e.relevance,
             **{"layers/add/relevance_in/0": R_b, "layers/add/relevance_in/1": R_a})
    outcome = vectors.check(suite, results, case.name)[0]
    assert outcome.status == "fail" and outcome.message.startswith("layers/add/relevance_in/0")


def test_every_record_balances_and_merge_nodes_split_as_documented(suite):
    """In every case and record: sum R_out = sum R_in (over a merge node's inputs) + bias +
    stabilizer + dropped (float64 sums of at most a few hundred terms: 1e-10 of the
    largest |R|). The activations pass relevance unchanged (R_in = R_out exactly); Mul gives
    the signal all and the gate nothing; Product gives each of its n factors R / n."""
    manifest = json.loads((suite / "manifest.json").read_text())
    for entry in manifest["cases"]:
        with np.load(suite / entry["file"]) as data:
            B = data["input"].shape[0]
            for r in entry["layers"]:
                p = f"layers/{r['path']}/"
                R_out = data[p + "relevance_out"]
                ins = sorted(k for k in data.files if k.startswith(p + "relevance_in/"))
                R_in = [data[k] for k in ins] or [data[p + "relevance_in"]]
                lhs = R_out.reshape(B, -1).sum(axis=1)
                rhs = (sum(R.reshape(B, -1).sum(axis=1) for R in R_in) + data[p + "dropped"]
                       + data[p + "absorbed_bias"] + data[p + "absorbed_stabilizer"])
                scale = max(np.abs(R_out).max(), *(np.abs(R).max() for R in R_in), 1.0)
                np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-10 * scale,
                                           err_msg=f"{entry['name']} {r['path']}")
                if entry["name"].startswith("activation/") and r["path"] == "1":
                    np.testing.assert_array_equal(R_in[0], R_out)
                if r["layer"] == "Mul":
                    np.testing.assert_array_equal(R_in[0], R_out)
                    np.testing.assert_array_equal(R_in[1], 0 * R_in[1])
                if r["layer"] == "Product":
                    for R in R_in:        # R / n: one division, exact to rounding
                        np.testing.assert_allclose(R, R_out / len(R_in), rtol=1e-15)


def test_new_layouts_in_the_files(suite):
    """Conv1d (C_out, C_in / groups, k), ConvTranspose2d (C_in, C_out / groups, kh, kw),
    LayerNorm gamma and beta, as docs/vectors.md documents them; padding='same' with an
    even kernel saved as per-side pairs ((top, bottom), (left, right))."""
    manifest = {c["name"]: c for c in json.loads((suite / "manifest.json").read_text())["cases"]}
    with np.load(suite / vectors.file_name("conv1d/zero")) as data:
        assert data["params/0.weight"].shape == (4, 1, 3)             # groups 2: C_in / 2 = 1
    with np.load(suite / vectors.file_name("convtranspose2d/zero")) as data:
        assert data["params/0.weight"].shape == (2, 3, 3, 3)
        assert data["input"].shape == (2, 2, 4, 4)
        assert data["layers/0/relevance_out"].shape == (2, 3, 8, 8)
    with np.load(suite / vectors.file_name("transformer/layernorm/zero")) as data:
        assert data["params/1.gamma"].shape == data["params/1.beta"].shape == (4,)
    same = manifest["conv2d-same-even-kernel/zero"]["network"]["layers"][0]
    assert same["padding"] == [[0, 1], [0, 1]]
    assert manifest["transformer/attention/cp-lrp"]["network"]["nodes"][7]["layer"] == {
        "type": "MatMul", "epsilon": 1e-06, "constant": 0}


# -- numbers by hand (docs/vectors.md gives each derivation) -----------------------------------

BY_HAND = {
    "edge/zero-denominator-lrp0": [[0.0, 0.0]],
    "edge/epsilon-at-zero": [[6.0, -6.0]],
    "edge/bias-only": [[0.0, 0.0]],
    "edge/all-negative-alphabeta": [[-1.0, -2.0]],
    "edge/maxpool-ties": [[[[0, 2, 0.5, 0.5], [2, 0, 0.5, 0.5], [0, 0, 3, 0], [0, 0, 0, 3]]]],
    "external/captum/epsilon": [[18.0, 36.0, 54.0], [54.0, 108.0, 162.0]],
    "external/captum/gamma": [[28 / 3, 104 / 3, 52.0]],
    "external/captum/alpha1-beta0": [[12.0, 33.6, 50.4]],
    "external/captum/skip-connection": [[10.0, 18.0]],
    "external/captum/maxpool2d": [[[[0.0, 0.0], [0.0, 6.0]]]],
    "external/captum/tanh": [[0.05 * np.tanh(0.6) * v for v in (1, 2, 3)]],
    "external/captum/maxpool1d": [[[0.0, 0.0], [10.0, 12.0]]],
    "external/innvestigate-273/alpha1-beta0": [[-1.0, 0.0]],
    "external/innvestigate-273/alpha2-beta1": [[-2.0, 0.5]],
    "external/zennit-212/sigmoid-lrp0": [[0.5378828427399902, -0.2689414213699951]],
    "external/lrp-toolbox/maxpool-2x2-ties": [
        [[[0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0], [0.25] * 4, [0.25] * 4]],
        [[[0.25, 0.25, 0, 0], [0.25, 0.25, 1, 0], [0] * 4, [0] * 4]]],
    "external/lrp-toolbox/maxpool-3x3-stride-1": [
        [[[0, 0, 0, 0], [0, 0, 4, 0], [0] * 4, [0] * 4]],
        [[[1 / 6, 1 / 6 + 1 / 3, 0, 0], [1 / 6, 1 / 6 + 2 / 3, 0, 0],
          [1 / 6, 1 / 6 + 2 / 3, 0, 0], [1, 1 / 3, 0, 0]]]],
    # docs/transformers.md, worked on paper (docs/vectors.md repeats each)
    "transformer/by-hand/layernorm-zero": [[-1 / 6, 5 / 6, -8 / 3]],
    "transformer/by-hand/rmsnorm-eps-1": [[4.0, 7.0]],
    "transformer/by-hand/softmax": [[0.0, -3 / 16 * np.log(3)]],
    "transformer/by-hand/attention-attnlrp": [[
        [-3 / 32 * np.log(3), 0, 0, -3 / 32 * np.log(3), 1.5, 0], [0, 0, 0, 0, 0, 1.25]]],
    "transformer/by-hand/attention-cp-lrp": [[[0, 0, 0, 0, 3.0, 0], [0, 0, 0, 0, 0, 2.5]]],
    "transformer/by-hand/product-flat": [[8.0, 8.0, 8.0]],
    "transformer/by-hand/product-left": [[6.0, 6.0, 12.0]],
    "transformer/by-hand/product-right": [[12.0, 6.0, 6.0]],
    "external/lrp-toolbox/maxpool-4x4-channels": [[
        [[0, 0, 0, 0], [0, 0, 1, 0], [0] * 4, [0] * 4],
        [[0] * 4, [0] * 4, [0] * 4, [1, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 1, 0], [0] * 4, [0] * 4]]],
}


@pytest.mark.parametrize("name", list(BY_HAND))
def test_the_shipped_answer_is_the_hand_computed_one(suite, name):
    """Ratios of small integers: exact up to float64 rounding of a few operations (1e-14)."""
    with np.load(suite / vectors.file_name(name)) as data:
        np.testing.assert_allclose(data["relevance"], BY_HAND[name], rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(CASES[name].known["relevance"], BY_HAND[name], rtol=1e-15)


def test_edge_ledgers_by_hand(suite):
    """The ledger entries the derivations state: LRP-0 at z_j = 0 drops R_j = 3; epsilon at
    z_j = 0 gives the stabilizer 3; all-negative AlphaBeta(2, 1) drops alpha R_j = 6; the
    issue-273 AlphaBeta(2, 1) bias takes 0.5."""
    def term(name, key):
        with np.load(suite / vectors.file_name(name)) as data:
            return data[f"layers/0/{key}"]
    np.testing.assert_array_equal(term("edge/zero-denominator-lrp0", "dropped"), [3.0])
    np.testing.assert_array_equal(term("edge/epsilon-at-zero", "absorbed_stabilizer"), [3.0])
    np.testing.assert_array_equal(term("edge/all-negative-alphabeta", "dropped"), [6.0])
    np.testing.assert_allclose(term("external/innvestigate-273/alpha2-beta1",
                                    "absorbed_bias"), [0.5], rtol=1e-15)


# -- the worked example of docs/vectors.md -----------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    text = (ROOT / "docs" / "vectors.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_worked_example_checks_an_epsilon_rule_through_the_files(suite, tmp_path):
    """The Python block runs in a directory holding only the suite, imports no lrp_ref, and
    its results pass `lrp-ref vectors check suite results --skip-missing`."""
    example = next(b for b in doc_blocks("python") if "def epsilon_dense" in b)
    assert not re.search(r"import lrp_ref|from lrp_ref", example)
    os.symlink(suite, tmp_path / "suite")
    run = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    done = eval(run.stdout.strip())           # the printed list of case names
    assert {"dense/eps-1e-6", "dense/eps-0.25", "dense/eps-1e-6-float32",
            "edge/epsilon-at-zero", "edge/bias-only", "edge/negative-logit"} <= set(done)
    command = next(b for b in doc_blocks("bash") if "--skip-missing" in b).split()
    assert command[:3] == ["lrp-ref", "vectors", "check"]
    os.chdir(tmp_path)
    try:
        assert main(command[1:]) == 0
    finally:
        os.chdir(ROOT)
    # the sign convention matters: np.sign(0) = 0 fails epsilon at z_j = 0
    broken = example.replace("np.where(z >= 0, 1.0, -1.0)", "np.sign(z)")
    assert broken != example
    subprocess.run([sys.executable, "-c", broken], cwd=tmp_path, capture_output=True,
                   check=True)
    outcomes = {o.name: o.status for o in vectors.check(tmp_path / "suite",
                                                        tmp_path / "results")}
    assert outcomes["edge/epsilon-at-zero"] == "fail"
    assert outcomes["dense/eps-1e-6"] == "pass"
