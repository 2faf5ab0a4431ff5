"""The ``lrp-ref`` command end to end, on temporary directories."""

import shutil
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.image import imread, imsave  # noqa: E402

import lrp_ref as lrp  # noqa: E402
from lrp_ref import models  # noqa: E402
from lrp_ref.cli import main  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(args, capsys):
    """``lrp-ref ARGS`` in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_valid_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert imread(path).ndim == 3                 # decodes to an RGBA image


@pytest.fixture
def files(tmp_path):
    """A shipped model copied as a plain .npz, a digit, a batch, a PNG and a credit row."""
    x, _ = models.data("digits_cnn", "test")
    shutil.copy(models.path("digits_cnn"), tmp_path / "cnn.npz")
    shutil.copy(models.path("credit_mlp"), tmp_path / "credit.npz")
    np.save(tmp_path / "x.npy", x[0])                       # one sample (1, 8, 8)
    np.save(tmp_path / "batch.npy", x[:3])                  # a batch (3, 1, 8, 8)
    imsave(tmp_path / "digit.png", x[0, 0], cmap="gray", vmin=0, vmax=1)
    np.save(tmp_path / "applicant.npy", models.data("credit_mlp", "test")[0][0])
    return tmp_path


def test_demo_without_arguments_prints_the_ledgers_and_writes_nothing(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(["demo"], capsys)
    assert code == 0
    assert out.count("ledger of digit 0:") == 3
    assert "sum R_out" in out and "BatchNorm2d" in out
    assert list(tmp_path.iterdir()) == []


def test_demo_writes_valid_pngs(tmp_path, capsys):
    code, out, _ = run(["demo", "--out", tmp_path / "demo", "-n", "2"], capsys)
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert written == ["demo_alphabeta.png", "demo_comparison.png", "demo_eps.png",
                       "demo_ledger.png", "demo_lrp0.png"]
    for name in written:
        assert_valid_png(tmp_path / "demo" / name)
        assert f"wrote {tmp_path / 'demo' / name}" in out


def test_explain_round_trip_single_sample(files, capsys):
    code, out, _ = run(["explain", "--model", files / "cnn.npz", "--input", files / "x.npy",
                        "--rule", "eps:0.1", "--out", files / "R.npy",
                        "--heatmap", files / "H.png"], capsys)
    assert code == 0
    x = np.load(files / "x.npy")
    R = np.load(files / "R.npy")
    assert R.shape == x.shape                      # no batch axis added to the output
    expected = lrp.load(files / "cnn.npz").explain(x[None], rule=lrp.Epsilon(0.1))
    # the same computation in the same order: agreement to rounding
    np.testing.assert_allclose(R, expected.relevance[0], rtol=1e-12, atol=1e-14)
    assert f"explained class {expected.target[0]}" in out
    assert_valid_png(files / "H.png")


def test_explain_batch_with_target_and_explicit_method(files, capsys):
    code, out, _ = run(["explain", "--model", files / "cnn.npz", "--input",
                        files / "batch.npy", "--rule", "alphabeta:2,1", "--target", 3,
                        "--method", "explicit", "--out", files / "R.npy", "--ledger"],
                       capsys)
    assert code == 0
    x = np.load(files / "batch.npy")
    fast = lrp.load(files / "cnn.npz").explain(x, target=3, rule=lrp.AlphaBeta(2, 1))
    # explicit vs fast path: 1e-12 relative to the largest entry (docs/conventions.md)
    np.testing.assert_allclose(np.load(files / "R.npy"), fast.relevance, rtol=0,
                               atol=1e-12 * np.abs(fast.relevance).max())
    assert out.count("explained class 3") == 3
    assert "imbalance" in out                      # --ledger printed the table


def test_explain_png_input(files, capsys):
    code, _, _ = run(["explain", "--model", files / "cnn.npz", "--input", files / "digit.png",
                      "--rule", "epsilon_gamma_box:0,1", "--out", files / "R.npy"], capsys)
    assert code == 0
    grey = imread(files / "digit.png")[..., :3].mean(axis=2)     # what the PNG holds
    from lrp_ref.rules.composites import epsilon_gamma_box
    expected = lrp.load(files / "cnn.npz").explain(grey[None, None],
                                                   rule=epsilon_gamma_box(0, 1))
    np.testing.assert_allclose(np.load(files / "R.npy"), expected.relevance[0], rtol=1e-12,
                               atol=1e-14)
    # 8-bit PNG: the pixels are the digit to within one grey level
    np.testing.assert_allclose(grey, np.load(files / "x.npy")[0], atol=1 / 255 + 1e-12)


def test_explain_tabular_input_draws_bars(files, capsys):
    code, out, _ = run(["explain", "--model", files / "credit.npz", "--input",
                        files / "applicant.npy", "--rule", "zero", "--out", files / "R.npy",
                        "--heatmap", files / "bars.png"], capsys)
    assert code == 0
    assert np.load(files / "R.npy").shape == (7,)
    assert_valid_png(files / "bars.png")


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.npz", "--input", "x.npy", "--rule", "eps"],
     "model file not found: missing.npz"),
    (["--model", "cnn.npz", "--input", "missing.npy", "--rule", "eps"],
     "input file not found"),
    (["--model", "x.npy", "--input", "x.npy", "--rule", "eps"], "not an lrp_ref model file"),
    (["--model", "cnn.npz", "--input", "cnn.npz", "--rule", "eps"],
     "must be a .npy array or a .png image"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "foo"], "unknown rule 'foo'"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "alphabeta:1,1"],
     "does not conserve relevance"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "zbox:0"], "zbox takes 2"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps:x"], "'x' is not a number"),
    (["--model", "cnn.npz", "--input", "applicant.npy", "--rule", "eps"],
     "does not fit the model: layer '0' (Conv2d): expected input of shape (B, 1, *, *)"),
    (["--model", "credit.npz", "--input", "x.npy", "--rule", "eps"],
     "layer '0' (Dense): expected input of shape (B, 7) or (B, ..., 7), got (1, 8, 8)"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--target", "10"],
     "target must lie in [0, 10)"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--out", "R.txt"],
     "--out must name a .npy file"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--out", "no/R.npy"],
     "--out: directory not found"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--heatmap", "H.jpg"],
     "--heatmap must name a .png file"),
    (["--model", "cnn.npz", "--input", "x.npy"], "the following arguments are required: --rule"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--target", "two"],
     "invalid int value: 'two'"),
    (["--model", "cnn.npz", "--input", "x.npy", "--rule", "eps", "--method", "slow"],
     "invalid choice: 'slow'"),
])
def test_explain_bad_input_one_line_error_nonzero_exit(files, capsys, monkeypatch, args,
                                                       message):
    monkeypatch.chdir(files)
    before = sorted(files.iterdir())
    code, out, err = run(["explain", *args], capsys)
    assert code != 0
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("lrp-ref explain: error: ")
    assert message in err
    assert "Traceback" not in err and out == ""
    assert sorted(files.iterdir()) == before       # nothing written


def test_help_texts_teach_the_rule_syntax_and_give_examples(capsys):
    code, out, _ = run(["explain", "--help"], capsys)
    assert code == 0
    for text in ("eps[:E]", "alphabeta[:A,B]", "zbox:L,H", "epsilon_gamma_box:L,H[,G]",
                 "eq. (5) of docs/theory.md", "examples:", "lrp-ref explain --model"):
        assert text in out
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and all(c in out for c in ("demo", "explain", "figures"))


def test_unknown_command_is_a_one_line_error(capsys):
    code, _, err = run(["bogus"], capsys)
    assert code == 2 and err.count("\n") == 1 and "invalid choice: 'bogus'" in err


def test_figures_command_writes_the_requested_figure(tmp_path, capsys):
    code, out, _ = run(["figures", "--out", tmp_path, "--only", "ledger_chart.png"], capsys)
    assert code == 0 and "wrote" in out
    assert [p.name for p in tmp_path.iterdir()] == ["ledger_chart.png"]
    assert_valid_png(tmp_path / "ledger_chart.png")
    code, _, err = run(["figures", "--out", tmp_path, "--only", "nope.png"], capsys)
    assert code == 1 and "unknown figure(s) ['nope.png']" in err


def test_the_module_runs_as_a_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lrp_ref.cli", "explain", "--model",
                           tmp_path / "none.npz", "--input", "x.npy", "--rule", "eps"],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == f"lrp-ref explain: error: model file not found: " \
                          f"{tmp_path / 'none.npz'}\n"
