"""lrp_ref.interop.torch.from_torch: forward equality, paths, errors. Needs torch (the
optional oracle extra); skipped, with the reason, when torch is not importable."""

import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.interop import peers
from lrp_ref.testing import assert_relevance_close

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, from_torch tests skipped: {exc}", allow_module_level=True)

from lrp_ref.interop.torch import BranchSum, ResidualBlock, from_torch  # noqa: E402

from torch_nets import residual_block, resnet_style, torch_cnns, vgg_style  # noqa: E402

nn = torch.nn


def torch_forward(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def lrp_paths(net):
    return [path for path, _ in net.named_layers()]


def torch_paths(model):
    """torch's module names, minus the root and the additions of ResidualBlocks."""
    return [name for name, module in model.named_modules()
            if name and not isinstance(module, BranchSum)]


# float64 forward passes of the same network in another summation order (im2col GEMM vs
# torch's convolution): rounding only, a few ulps of the largest intermediate values
FORWARD_RTOL = 1e-12


@given(torch_cnns(), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_forward_equals_torch_and_paths_equal_module_names(drawn, batch, seed):
    model, shape = drawn
    x = np.random.default_rng(seed).standard_normal((batch, *shape))
    net = from_torch(model)
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)
    assert lrp_paths(net) == torch_paths(model)
    assert net.dtype == np.float64


@pytest.mark.parametrize("build, shape", [(lambda: vgg_style(batchnorm=True), (3, 16, 16)),
                                          (resnet_style, (3, 12, 12))])
def test_named_networks_forward_and_paths(build, shape):
    model = build()
    x = np.random.default_rng(0).standard_normal((2, *shape))
    net = from_torch(model)
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)
    assert lrp_paths(net) == torch_paths(model)


def test_layer_types_parameters_and_nesting():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2)),
                          nn.Identity(), nn.Linear(3, 2, bias=False)).eval()
    net = from_torch(model)
    assert [type(layer).__name__ for _, layer in net.named_layers()] == [
        "Dense", "Sequential", "ReLU", "Identity", "Identity", "Dense"]
    # Dense weight is (in, out): torch's (out, in) transposed; a missing bias is zeros
    np.testing.assert_array_equal(net[0].weight, model[0].weight.detach().double().numpy().T)
    np.testing.assert_array_equal(net[3].bias, np.zeros(2))
    x = np.random.default_rng(0).standard_normal((3, 4))
    # float32 torch parameters, converted exactly to float64; torch computes in float32
    assert_relevance_close(net.forward(x), torch_forward(model, x.astype(np.float32)), rtol=1e-6)
    assert from_torch(model, dtype=np.float32).dtype == np.float32


def test_same_padding_batchnorm_without_affine_and_residual_epsilon():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding="same"), nn.BatchNorm2d(3, affine=False),
                          residual_block(3, projection=True), nn.ReLU(), nn.Flatten())
    model[1].running_var.fill_(2.0)
    model = model.double().eval()
    net = from_torch(model, residual_epsilon=0.0)
    assert net[0].window.padding == (1, 1) and net[2].epsilon == 0.0
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5))
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)


def test_embedding_goes_through_the_rnn_hook():
    model = nn.Sequential(nn.Embedding(7, 3), nn.Flatten(), nn.Linear(12, 2)).double().eval()
    net = from_torch(model)
    ids = np.array([[1, 0, 6, 2], [3, 3, 4, 5]])
    assert isinstance(net[0], lrp.Embedding)
    assert_relevance_close(net.forward(ids), model(torch.from_numpy(ids)).detach().numpy(),
                           rtol=FORWARD_RTOL)


def test_residual_block_is_a_torch_module_that_pickles():
    block = ResidualBlock(nn.Linear(3, 3))
    assert [name for name, _ in block.named_children()] == ["body", "sum"]
    again = pickle.loads(pickle.dumps(block))
    assert type(again) is ResidualBlock and isinstance(again.sum, BranchSum)
    x = torch.randn(2, 3)
    with torch.no_grad():
        np.testing.assert_array_equal(block(x).numpy(), (block.body(x) + x).numpy())


def test_torch_is_imported_lazily():
    code = ("import sys, lrp_ref, lrp_ref.interop.torch\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("module, error, text", [
    (nn.Sequential(nn.Linear(2, 2), nn.Softsign()), TypeError,
     "torch module '1' (Softsign) is not supported"),
    (nn.Sequential(nn.Sequential(nn.ReLU(), nn.SELU())), TypeError,
     "torch module '0.1' (SELU) is not supported"),
    (nn.Sequential(nn.MaxPool2d(2, return_indices=True)), ValueError,
     "torch module '0' (MaxPool2d): return_indices=True is not supported"),
    (nn.Sequential(nn.AdaptiveMaxPool2d(2, return_indices=True)), ValueError,
     "return_indices=True"),
    (nn.Sequential(nn.AdaptiveAvgPool2d((None, 2))), ValueError, "output_size=(None, 2)"),
    (nn.Sequential(nn.Upsample(scale_factor=2, mode="bicubic")), ValueError,
     "mode='bicubic' is not supported"),
    (nn.Sequential(nn.Upsample(scale_factor=2, recompute_scale_factor=True)), ValueError,
     "recompute_scale_factor=True is not supported"),
    (nn.Sequential(nn.BatchNorm1d(3, track_running_stats=False)), ValueError,
     "torch module '0' (BatchNorm1d) has no running statistics"),
    (nn.Sequential(nn.Flatten(0)), ValueError, "(start_dim, end_dim)=(0, -1)"),
    (nn.Sequential(nn.LSTM(2, 3, num_layers=2, batch_first=True)), ValueError, "num_layers=2"),
])
def test_unsupported_modules_and_options_name_the_module(module, error, text):
    with pytest.raises(error, match=re.escape(text)):
        from_torch(module.eval())


def test_training_mode_root_type_and_named_children_are_refused():
    from collections import OrderedDict

    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.ReLU()))
    with pytest.raises(ValueError, match=r"torch module \(root\) \(Sequential\) is in training "
                                         r"mode; call model.eval\(\)"):
        from_torch(model)
    model.eval()
    model[1][0].train()
    with pytest.raises(ValueError, match=r"torch module '1.0' \(Dropout\) is in training mode"):
        from_torch(model)
    with pytest.raises(TypeError, match="converts a network.*got a single Linear"):
        from_torch(nn.Linear(2, 2).eval())
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2))).eval()
    with pytest.raises(ValueError, match=r"names its children \['fc'\]"):
        from_torch(named)


def test_a_module_used_twice_in_a_sequential_converts_at_both_positions():
    """Issue 22's reproducer: nn.Sequential(Linear, relu, Linear, relu) with one ReLU object
    converted to 3 layers (torch's named_children lists a module once): the last ReLU was
    dropped and the forward differed. Both positions convert, with torch's names."""
    torch.manual_seed(0)
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu).double().eval()
    net = from_torch(model)
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "ReLU", "Dense", "ReLU"]
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)


@pytest.mark.parametrize("hook", ["forward", "pre"])
def test_a_hooked_module_in_a_sequential_is_refused(hook):
    """Issue 22: forward hooks and pre-hooks change the forward without the converter
    seeing them; the Sequential path refuses them, as the torch.fx path does."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU()).double().eval()
    if hook == "forward":
        model[0].register_forward_hook(lambda module, args, out: out * 2)
    else:
        model[0].register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    with pytest.raises(ValueError, match=r"torch module '0' \(Linear\) has a forward"):
        from_torch(model)


class NormActivation(nn.Sequential):
    """torchvision's Conv2dNormActivation in miniature: an nn.Sequential subclass keeping
    Sequential's forward."""

    def __init__(self):
        super().__init__(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())


class Doubled(nn.Sequential):
    """A subclass with a forward of its own: not a chain of its children."""

    def __init__(self):
        super().__init__(nn.Linear(3, 3))

    def forward(self, x):
        return 2 * self[0](x)


def test_a_sequential_subclass_keeping_its_forward_converts_as_a_sequential():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    for module, path in ((NormActivation(), "0"), (nn.Sequential(NormActivation()), "0.0")):
        torch.manual_seed(0)
        module = module.double().eval()
        net = from_torch(module)
        explanation = net.explain(x, output_relevance=np.ones((2, 3, 4, 4)),
                                  rule=lrp.Epsilon(1e-6))
        assert path in [record.path for record in explanation.layers]
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(net.forward(x), expected, rtol=1e-12)
    doubled = Doubled().double().eval()             # traced: its own forward is kept
    y = np.random.default_rng(1).standard_normal((2, 3))
    with torch.no_grad():
        expected = doubled(torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(from_torch(doubled).forward(y), expected, rtol=1e-12)
