"""Fuzzing (issue 22, point 6): random networks, inputs at extreme scales, random rules;
random damage to model files.

Properties: no NaN or inf leaves ``explain`` (a result is finite, or the call is a
ValueError naming the layer that overflowed); the ledger balances relative to the
relevance that passes; the fast path equals the explicit one. A damaged model file is a
ValueError or loads as the network that was saved, never another exception.

Bounded for CI (a quarter of the profile's examples: 50 under the ``ci`` profile); run
``pytest tests/test_fuzz.py --hypothesis-profile=fuzz`` for ten times as many.
"""

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.testing import conv_networks, dense_networks, inputs_for, rules

EXAMPLES = max(10, settings.default.max_examples // 4)

#: The decimal exponents of the input scales tried per dtype, subnormals included.
SCALES = {np.float64: [-310, -300, -150, -30, -6, 0, 6, 30, 150, 300],
          np.float32: [-42, -38, -20, -6, 0, 6, 20, 38],
          np.float16: [-6, -3, 0, 2, 4]}
#: Agreement of the two paths and ledger balance, relative to the relevance passing a
#: layer: float64 rounding through a few layers is ~1e-15, float32 ~1e-7, float16 ~1e-3;
#: the bounds leave two orders of magnitude for cancellation (alpha-beta's two halves).
TOLERANCE = {np.float64: 1e-11, np.float32: 1e-4, np.float16: 0.1}


@st.composite
def residual_networks(draw):
    """A Dense, then a residual block (Dense, ReLU, Dense; identity skip), then a Dense."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_in, width, n_out = (draw(st.integers(1, 5)) for _ in range(3))
    eps = draw(st.sampled_from([0.0, 1e-310, 1e-6, 0.1]))

    def dense(n, m):
        return lrp.Dense(rng.standard_normal((n, m)), rng.standard_normal(m))

    block = lrp.Sequential([dense(width, width), lrp.ReLU(), dense(width, width)])
    return lrp.Sequential([dense(n_in, width), lrp.Residual(block, epsilon=eps),
                           dense(width, n_out)])


@st.composite
def cases(draw):
    net = draw(st.one_of(dense_networks(), conv_networks(), residual_networks()))
    x = draw(inputs_for(net))
    dtype = draw(st.sampled_from(list(SCALES)))
    scale = 10.0 ** draw(st.sampled_from(SCALES[dtype]))
    with np.errstate(over="ignore", under="ignore"):
        x = (x * scale).astype(dtype)
    return net.astype(dtype), x, draw(rules()), dtype


def explained(net, x, rule, method):
    """The Explanation, or None when the call refused an overflow (naming the layer)."""
    try:
        with np.errstate(all="ignore"):     # overflow is what is under test
            return net.explain(x, rule=rule, method=method)
    except ValueError as error:
        message = str(error)
        assert "overflowed" in message or "NaN or inf" in message, message
        assert "layer '" in message or "Sequential" in message, message
        return None


@settings(max_examples=EXAMPLES)
@given(cases())
def test_no_inf_or_nan_and_both_paths_agree(case):
    net, x, rule, dtype = case
    if not np.all(np.isfinite(x)):
        return                                  # an input beyond the dtype: nothing to test
    fast, explicit = (explained(net, x, rule, m) for m in ("fast", "explicit"))
    for e in (fast, explicit):
        if e is not None:
            assert np.all(np.isfinite(e.relevance))
    # Near the subnormal range a product a_i w_ij keeps only a few bits, and the two paths
    # round different products (explicit: z_ij / z_j; fast: a_i (w_ij R_j / z_j)); there
    # only the absence of inf and NaN is asserted, not agreement to rounding.
    info = np.finfo(dtype)
    magnitude = np.abs(x.astype(np.float64))
    if np.any((magnitude != 0) & (magnitude < float(info.tiny) * 2.0**16)):
        return
    for e in (fast, explicit):
        if e is None:
            continue
        for record in e.layers:
            if record.container:
                continue
            passing = (np.abs(record.relevance_out).sum(dtype=np.float64)
                       + np.abs(record.relevance_in).sum(dtype=np.float64))
            gap = (record.relevance_out.sum(dtype=np.float64)
                   - record.relevance_in.sum(dtype=np.float64)
                   - record.ledger.total().sum(dtype=np.float64))
            assert abs(gap) <= TOLERANCE[dtype] * passing + np.finfo(dtype).tiny, record.path
    if fast is not None and explicit is not None:
        passing = (np.abs(explicit.relevance).sum(dtype=np.float64)
                   + np.abs(explicit.layers[-1].relevance_out).sum(dtype=np.float64))
        difference = np.abs(fast.relevance.astype(np.float64) - explicit.relevance).sum()
        assert difference <= TOLERANCE[dtype] * passing + np.finfo(dtype).tiny


@st.composite
def damaged_files(draw):
    net = draw(st.one_of(dense_networks(max_depth=2), conv_networks(max_blocks=1)))
    with tempfile.TemporaryDirectory() as folder:
        lrp.save(net, Path(folder) / "net.npz")
        data = bytearray((Path(folder) / "net.npz").read_bytes())
    kind = draw(st.sampled_from(["flip", "truncate", "overwrite"]))
    if kind == "flip":
        for bit in draw(st.lists(st.integers(0, 8 * len(data) - 1), min_size=1, max_size=4)):
            data[bit // 8] ^= 1 << (bit % 8)
    elif kind == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    else:                                       # e.g. an .npy header's shape or a size field
        start = draw(st.integers(0, len(data) - 1))
        data[start:start + 4] = draw(st.binary(min_size=4, max_size=4))
    return net, bytes(data)


@settings(max_examples=EXAMPLES)
@given(damaged_files())
def test_a_damaged_model_file_is_a_value_error_or_the_same_network(tmp_path_factory, case):
    net, data = case
    path = tmp_path_factory.mktemp("fuzz") / "net.npz"
    path.write_bytes(data)
    try:
        loaded = lrp.load(path)
    except ValueError:
        return
    assert loaded.config() == net.config()
    for key, array in net.state().items():
        np.testing.assert_array_equal(loaded.state()[key], array)


def test_the_fuzz_profile_runs_ten_times_the_ci_examples():
    ci, fuzz = settings.get_profile("ci"), settings.get_profile("fuzz")
    assert fuzz.max_examples == 10 * ci.max_examples
