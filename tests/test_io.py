"""Model files: bit-exact round trips, and tampered files refused without unpickling."""

import io
import json
import zipfile

import numpy as np
import pytest

import lrp_ref as lrp


def network() -> lrp.Sequential:
    rng = np.random.default_rng(3)
    return lrp.Sequential([
        lrp.Dense(rng.standard_normal((3, 4)), rng.standard_normal(4)), lrp.ReLU(),
        lrp.Sequential([lrp.Identity(), lrp.Dense(rng.standard_normal((4, 2)))]), lrp.Flatten(),
    ])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    net = network().astype(dtype)
    lrp.save(net, tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert repr(loaded) == repr(net)
    assert loaded.config() == net.config()
    for key, array in net.state().items():
        assert loaded.state()[key].dtype == array.dtype
        np.testing.assert_array_equal(loaded.state()[key], array)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(dtype)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


def rewrite(path, config=None, arrays=None):
    """Write an npz like save() would, with a chosen config and arrays."""
    with open(path, "wb") as f:
        np.savez(f, __config__=np.array(json.dumps(config)), **(arrays or {}))


def saved(tmp_path):
    net = network()
    lrp.save(net, tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "__config__"}
    return {"format": "lrp_ref-network-1", "network": net.config()}, arrays


def test_truncated_file_is_refused(tmp_path):
    lrp.save(network(), tmp_path / "net.npz")
    data = (tmp_path / "net.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="lrp_ref model file"):
        lrp.load(tmp_path / "bad.npz")


def test_not_an_npz_is_refused(tmp_path):
    (tmp_path / "bad.npz").write_text("hello")
    with pytest.raises(ValueError, match="lrp_ref model file"):
        lrp.load(tmp_path / "bad.npz")


def test_plain_npy_is_refused(tmp_path):
    np.save(tmp_path / "weights.npy", np.ones(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        lrp.load(tmp_path / "weights.npy")


def test_unknown_layer_type_is_refused(tmp_path):
    config, arrays = saved(tmp_path)
    config["network"]["layers"][1]["type"] = "os.system"
    rewrite(tmp_path / "bad.npz", config, arrays)
    with pytest.raises(ValueError, match="unknown layer type 'os.system'"):
        lrp.load(tmp_path / "bad.npz")


def test_missing_and_extra_arrays_are_refused(tmp_path):
    config, arrays = saved(tmp_path)
    rewrite(tmp_path / "missing.npz", config, {k: v for k, v in arrays.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="missing array '0.bias'"):
        lrp.load(tmp_path / "missing.npz")
    rewrite(tmp_path / "extra.npz", config, {**arrays, "9.weight": np.ones(2)})
    with pytest.raises(ValueError, match="unused arrays"):
        lrp.load(tmp_path / "extra.npz")


def test_wrong_shape_and_bad_hyperparameters_are_refused(tmp_path):
    config, arrays = saved(tmp_path)
    rewrite(tmp_path / "shape.npz", config, {**arrays, "0.bias": np.ones(7)})
    with pytest.raises(ValueError, match="bias must have shape"):
        lrp.load(tmp_path / "shape.npz")
    config["network"]["layers"][0]["activation"] = "evil"
    rewrite(tmp_path / "kw.npz", config, arrays)
    with pytest.raises(ValueError, match="malformed"):
        lrp.load(tmp_path / "kw.npz")
    rewrite(tmp_path / "format.npz", {"format": "other", "network": config["network"]}, arrays)
    with pytest.raises(ValueError, match="format"):
        lrp.load(tmp_path / "format.npz")


def test_pickled_arrays_are_never_loaded(tmp_path):
    """An object array can only be stored by pickling; load must refuse it."""
    config, arrays = saved(tmp_path)
    buffer = io.BytesIO()
    np.savez(buffer, __config__=np.array(json.dumps(config)),
             **{**arrays, "0.weight": np.array([object()], dtype=object)})
    (tmp_path / "pickle.npz").write_bytes(buffer.getvalue())
    with zipfile.ZipFile(tmp_path / "pickle.npz") as z:
        assert "0.weight.npy" in z.namelist()
    with pytest.raises(ValueError, match="lrp_ref model file"):
        lrp.load(tmp_path / "pickle.npz")


@pytest.mark.parametrize("pool", [lrp.AdaptiveAvgPool2d((2, 4)), lrp.AdaptiveMaxPool2d((2, 4))])
def test_pools_with_index_windows_save_after_a_forward(tmp_path, pool):
    """An adaptive pool of 6x6 to 2x4 has uneven, overlapping windows (index tables, no
    padding); saving after a forward used to fail on the padding check of strided windows."""
    net = lrp.Sequential([pool, lrp.Flatten()])
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6))
    y = net.forward(x)
    lrp.save(net, tmp_path / "net.npz")
    np.testing.assert_array_equal(lrp.load(tmp_path / "net.npz").forward(x), y)
