"""Convolution options against torch itself (float64): nn.Conv1d, nn.Conv2d and
nn.ConvTranspose2d with random groups, strides, paddings ('same' included), dilations,
padding modes and output paddings, converted by from_torch — forward, input and parameter
gradients, and both relevance paths on the converted layer. Skipped when torch is not
importable (the optional oracle extra).

Tolerances: float64 sums of at most a few dozen products in another order than torch's
(im2col GEMM vs torch's convolution): 1e-12 relative to the sum of the terms' magnitudes;
explicit vs fast: 1e-12 times ``naive.rounding_scale`` as in tests/test_conv.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrp_ref as lrp
from lrp_ref.interop import peers

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, torch comparisons skipped: {exc}",
                allow_module_level=True)

from lrp_ref.interop.torch import from_torch  # noqa: E402

import naive  # noqa: E402

nn = torch.nn
F = torch.nn.functional
torch.set_num_threads(1)     # tiny convolutions: a thread pool costs more than the work


@st.composite
def torch_convolutions(draw):
    """``(module, sample_shape)``: a float64 torch convolution with random options."""
    kind = draw(st.sampled_from(["Conv1d", "Conv2d", "ConvTranspose2d"]))
    rank = 1 if kind == "Conv1d" else 2
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    if kind == "ConvTranspose2d":
        stride = tuple(draw(st.integers(1, 3)) for _ in range(2))
        padding = tuple(draw(st.integers(0, 2)) for _ in range(2))
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                               for s, d in zip(stride, dilation))
        least = [max(1, -(-(2 * p - e - op + 1) // s) + 1)
                 for p, e, op, s in zip(padding, extent, output_padding, stride)]
        size = [draw(st.integers(n, max(n, 5))) for n in least]
        module = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, output_padding,
                                    groups, dilation=dilation)
    else:
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        if draw(st.booleans()):
            stride, padding = (1,) * rank, "same"
            pads = [e - 1 for e in extent]                     # at most this on a side
        else:
            stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
            padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
            pads = list(padding)
        # a window fits; reflect pads less than the size, circular at most the size
        size = [draw(st.integers(max(1, e - 2 * q, q + 1), max(6, e, q + 1)))
                for e, q in zip(extent, pads)]
        conv = nn.Conv1d if rank == 1 else nn.Conv2d
        module = conv(c_in, c_out, kernel, stride, padding, dilation, groups,
                      bias=draw(st.booleans()), padding_mode=mode)
    return module.double().eval(), (c_in, *size)


@given(torch_convolutions(), st.integers(1, 2), st.integers(0, 2**31 - 1))
def test_forward_gradients_and_relevance_against_torch(drawn, batch, seed):
    module, shape = drawn
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *shape))
    layer = from_torch(nn.Sequential(module).eval())[0]
    x_t = torch.from_numpy(x).requires_grad_()
    z_t = module(x_t)
    z = layer.forward(x)
    magnitude = np.abs(x).max() * module.weight.abs().sum().item() + 1
    np.testing.assert_allclose(z, z_t.detach().numpy(), rtol=0, atol=1e-12 * magnitude)
    g = rng.standard_normal(z.shape)
    z_t.backward(torch.from_numpy(g))
    grad_x = layer.backward(g)
    scale = np.abs(g).sum() * (np.abs(x).max() + np.abs(layer.weight).max())
    np.testing.assert_allclose(grad_x, x_t.grad.numpy(), rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(layer.grad_weight, module.weight.grad.numpy(), rtol=0,
                               atol=1e-12 * scale)
    if module.bias is not None:
        np.testing.assert_allclose(layer.grad_bias, module.bias.grad.numpy(), rtol=0,
                                   atol=1e-12 * scale)
    naive.assert_explicit_equals_fast(layer, x, rng.standard_normal(z.shape),
                                      lrp.AlphaBeta(2, 1))


def test_converted_types_and_options():
    model = nn.Sequential(
        nn.Conv1d(4, 4, 4, padding="same", groups=4, padding_mode="reflect"),
        nn.Conv1d(4, 2, 3, dilation=2, stride=2),
    ).double().eval()
    net = from_torch(model)
    assert [type(layer) for layer in net.layers] == [lrp.Conv1d, lrp.Conv1d]
    assert net[0].config() == {"type": "Conv1d", "stride": 1, "padding": [1, 2], "groups": 4,
                               "padding_mode": "reflect"}
    assert net[1].config() == {"type": "Conv1d", "stride": 2, "padding": 0, "dilation": 2}
    t = from_torch(nn.Sequential(nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1,
                                                    output_padding=1, groups=2)).eval())
    assert t[0].config() == {"type": "ConvTranspose2d", "stride": [2, 2], "padding": [1, 1],
                             "output_padding": [1, 1], "groups": 2}


def test_a_traced_depthwise_separable_block():
    """MobileNet's block (depthwise 3x3, pointwise 1x1) inside a module traced with fx."""

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4)
            self.pointwise = nn.Conv2d(4, 6, 1)

        def forward(self, x):
            return self.pointwise(torch.relu(self.depthwise(x))).flatten(1)

    torch.manual_seed(0)
    model = Block().double().eval()
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5))
    net = from_torch(model)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-12, atol=1e-12)
    e = net.explain(x, rule=lrp.composites.epsilon_gamma_box(-3.0, 3.0))
    assert np.all(np.isfinite(e.relevance))
    assert e.layer("depthwise").rule == lrp.ZBox(-3.0, 3.0)


def test_an_ecg_style_conv1d_network():
    """Conv1d - BatchNorm1d on (B, C, L) - ReLU - Conv1d (strided, dilated) - Flatten -
    Linear from torch: the same forward, also after folding the BatchNorm, and an
    explanation whose ledger balances at every layer (1e-10 of the relevance moved)."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(2, 4, 5, padding="same", padding_mode="replicate"),
                          nn.BatchNorm1d(4), nn.ReLU(),
                          nn.Conv1d(4, 4, 3, stride=2, dilation=2, groups=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6, 3)).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 1.5)
    model.eval()
    x = np.random.default_rng(3).standard_normal((2, 2, 16))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    net = from_torch(model)
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-12, atol=1e-12)
    folded = lrp.canonize.merge_batchnorm(net)
    np.testing.assert_allclose(folded.forward(x), expected, rtol=1e-12, atol=1e-12)
    e = net.explain(x, rule=lrp.composites.epsilon_plus_flat())
    for record in e.layers:
        moved = np.abs(record.relevance_out).sum() + 1e-300
        assert np.abs(record.imbalance()).max() <= 1e-10 * moved


@pytest.mark.parametrize("module", [nn.MaxPool1d(3, 2, padding=1), nn.MaxPool1d(2),
                                    nn.AvgPool1d(3, 2), nn.AvgPool1d(2)], ids=repr)
def test_1d_pools_forward_and_gradient_against_torch(module):
    x = np.random.default_rng(1).standard_normal((2, 3, 9))
    net = from_torch(nn.Sequential(module).eval())
    layer = net[0]
    x_t = torch.from_numpy(x).requires_grad_()
    z_t = module(x_t)
    np.testing.assert_allclose(layer.forward(x), z_t.detach().numpy(), rtol=1e-14)
    g = np.random.default_rng(2).standard_normal(z_t.shape)
    z_t.backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.backward(g), x_t.grad.numpy(), rtol=1e-14)


@given(seed=st.integers(0, 2**31 - 1), groups=st.integers(1, 4), multiplier=st.integers(1, 3),
       kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)), batch=st.integers(1, 2))
def test_depthwise_kernels_against_torch(seed, groups, multiplier, kernel, stride, padding,
                                         dilation, batch):
    """The shifted-slice kernels of a depthwise convolution (``kernels.depthwise_*``, one
    input channel per group, any multiplier) are F.conv2d with ``groups``, its adjoint
    F.conv_transpose2d (``output_padding`` restoring the input's size) and torch's weight
    gradient. Sums of at most 5 * 5 * 3 = 75 products (the weight gradient: batch * Ho *
    Wo <= 2 * 100) in another order: 1e-12 of the sum of the magnitudes (~200 u)."""
    from lrp_ref.engine import kernels
    from lrp_ref.engine.patches import Window

    rng = np.random.default_rng(seed)
    window = Window(kernel, stride, padding, dilation)
    size = tuple(max(e - 2 * p, 1) + 3 for e, p in zip(window.extent, padding))
    x = rng.standard_normal((batch, groups, *size))
    w = rng.standard_normal((groups * multiplier, 1, *kernel))
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = kernels.depthwise_convolve(x, w, window, groups)
    np.testing.assert_allclose(z, F.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                           **options).numpy(),
                               rtol=0, atol=1e-12 * np.abs(x).max() * np.abs(w).sum())
    s = rng.standard_normal(z.shape)
    # the rows and columns of the input no window reaches: torch's output_padding
    output_padding = tuple(n + 2 * p - e - (m - 1) * st_ for n, p, e, m, st_ in zip(
        size, padding, window.extent, z.shape[2:], stride))
    c = kernels.depthwise_transposed(s, w, window, size, groups)
    expected = F.conv_transpose2d(torch.from_numpy(s), torch.from_numpy(w),
                                  output_padding=output_padding, **options).numpy()
    np.testing.assert_allclose(c, expected, rtol=0,
                               atol=1e-12 * np.abs(s).max() * np.abs(w).sum())
    grad = torch.nn.grad.conv2d_weight(torch.from_numpy(x), w.shape, torch.from_numpy(s),
                                       **options).numpy()
    np.testing.assert_allclose(kernels.depthwise_weight_gradient(x, s, window, w.shape, groups),
                               grad, rtol=0, atol=1e-12 * np.abs(s).sum() * np.abs(x).max())
