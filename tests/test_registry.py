"""The layer registry: a model file names only lrp_ref's concrete layer types.

Subclassing never registers anything: a user's class named ``Dense`` does not
change what ``load`` builds, abstract bases cannot be loaded, and ``astype``
keeps every layer's own class (the user's included).
"""

import json

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.layers import LAYER_TYPES


def dense(n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return lrp.Dense(rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out))


def write(path, network, arrays):
    """An npz like save() writes, with a hand-made architecture."""
    header = {"format": "lrp_ref-network-1", "network": network}
    with open(path, "wb") as f:
        np.savez(f, __config__=np.array(json.dumps(header)), **arrays)


def test_the_table_holds_exactly_the_concrete_layer_types():
    assert set(LAYER_TYPES) == {
        "Sequential", "Dense", "Conv2d", "AvgPool2d", "MaxPool2d", "ReLU", "Flatten",
        "Identity", "BatchNorm1d", "BatchNorm2d", "Residual", "Embedding", "LSTM",
        "PositionalEmbedding",
        "LeakyReLU", "ELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "ReLU6", "Tanh",
        "Sigmoid", "Softplus", "Mish",
        "Bidirectional", "Graph", "Add", "Concat", "Mul", "AdaptiveAvgPool2d",
        "AddConstant", "Scale", "ConcatConstant", "Reshape", "Permute", "Transpose",
        "ChannelShuffle", "Slice", "Chunk",
        "Conv1d", "ConvTranspose2d", "AvgPool1d", "MaxPool1d", "AdaptiveMaxPool2d", "Upsample",
        "MatMul", "Product", "Softmax", "LayerNorm", "RMSNorm",
        "MultiheadAttention"}
    assert all(name == cls.__name__ for name, cls in LAYER_TYPES.items())
    with pytest.raises(TypeError):
        LAYER_TYPES["Dense"] = object          # read-only: changed only in its module


def test_defining_a_subclass_registers_nothing():
    before = dict(LAYER_TYPES)

    class Dense(lrp.Dense):                    # noqa: F841 - defined for its side effects
        pass

    class MyLayer(lrp.Layer):                  # noqa: F841
        pass

    assert dict(LAYER_TYPES) == before


def test_a_user_class_named_dense_does_not_change_what_load_builds(tmp_path):
    class Dense(lrp.Layer):                    # same name, unrelated class
        def __init__(self, weight=None, bias=None):
            super().__init__()
            raise AssertionError("load must never call a user's class")

    lrp.save(lrp.Sequential([dense(), lrp.ReLU()]), tmp_path / "net.npz")
    loaded = lrp.load(tmp_path / "net.npz")
    assert type(loaded[0]) is lrp.layers.dense.Dense
    assert type(loaded[0]) is not Dense


@pytest.mark.parametrize("name", ["Layer", "Container", "LinearLayer", "PassThrough", "Activation",
                                  "BatchNorm", "PoolingWindow", "Convolution", "Pool1d"])
def test_a_model_file_naming_an_abstract_base_is_a_value_error(tmp_path, name):
    # each would be buildable from this config if it were looked up: BatchNorm's
    # constructor takes exactly these arrays
    arrays = {f"0.{k}": np.ones(2) for k in ("gamma", "beta", "running_mean", "running_var")}
    write(tmp_path / "bad.npz", {"type": "Sequential", "layers": [{"type": name}]}, arrays)
    with pytest.raises(ValueError, match=f"unknown layer type '{name}'"):
        lrp.load(tmp_path / "bad.npz")


def test_the_error_lists_what_a_model_file_may_name(tmp_path):
    write(tmp_path / "bad.npz", {"type": "Container"}, {})
    with pytest.raises(ValueError, match=r"may name only .*'Bidirectional', 'ChannelShuffle', "
                                         r"'Chunk', 'Concat', 'ConcatConstant', 'Conv1d', "
                                         r"'Conv2d'"):
        lrp.load(tmp_path / "bad.npz")


class ScaledDense(lrp.Dense):
    """A user's subclass with an extra hyperparameter: ``z = scale * (a W + b)``."""

    def __init__(self, weight, bias=None, scale=1.0):
        super().__init__(weight, bias)
        self.scale = scale

    def hyperparameters(self):
        return {"scale": self.scale}

    def _forward(self, a):
        return self.scale * super()._forward(a)


def test_astype_keeps_a_user_subclass_at_any_depth():
    layer = ScaledDense(dense().weight, dense().bias, scale=3.0)
    net = lrp.Sequential([lrp.Residual(lrp.Sequential([layer, lrp.ReLU()]),
                                       ScaledDense(np.ones((3, 2)), scale=2.0)),
                          lrp.Flatten()])
    net32 = net.astype(np.float32)
    top = layer.astype(np.float32)
    assert type(top) is ScaledDense and top.scale == 3.0 and top.weight.dtype == np.float32
    inner = net32[0].body[0]
    assert type(inner) is ScaledDense and inner.scale == 3.0
    assert type(net32[0].shortcut) is ScaledDense and net32[0].shortcut.scale == 2.0
    assert inner.weight.dtype == np.float32 and inner.weight is not layer.weight
    x = np.random.default_rng(1).standard_normal((2, 3))
    # float32 rounding of weights and inputs: relative error a few 1e-7
    np.testing.assert_allclose(net32.forward(x.astype(np.float32)), net.forward(x), rtol=1e-5)


def test_astype_keeps_a_user_class_that_shares_a_builtin_name():
    class Dense(lrp.Dense):
        pass

    net = lrp.Sequential([Dense(np.ones((2, 2))), lrp.layers.dense.Dense(np.ones((2, 2)))])
    converted = net.astype(np.float32)
    assert type(converted[0]) is Dense
    assert type(converted[1]) is lrp.layers.dense.Dense


def test_saving_a_layer_of_an_unregistered_class_is_refused(tmp_path):
    net = lrp.Sequential([lrp.ReLU(), ScaledDense(np.ones((2, 2)))])
    with pytest.raises(ValueError, match=r"layer '1' \(ScaledDense\).* not one of the layer types"):
        lrp.save(net, tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").exists()
