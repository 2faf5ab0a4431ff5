"""from_torch of the element-wise non-linearities: torch's modules (Sequential) and their
functional forms (torch.fx). Needs torch (the optional oracle extra); skipped, with the
reason, when torch is not importable."""

import numpy as np
import pytest

import lrp_ref as lrp
from lrp_ref.interop import peers
from lrp_ref.testing import assert_relevance_close

try:
    torch = peers.import_torch()
except ImportError as exc:
    pytest.skip(f"torch not importable, from_torch tests skipped: {exc}", allow_module_level=True)

from lrp_ref.interop.torch import from_torch  # noqa: E402

nn = torch.nn
F = nn.functional

#: (torch module, the lrp_ref layer it must become): defaults, other parameters, inplace.
MODULES = [
    (nn.LeakyReLU(), lrp.LeakyReLU(0.01)), (nn.LeakyReLU(0.2, inplace=True), lrp.LeakyReLU(0.2)),
    (nn.ELU(alpha=0.5), lrp.ELU(0.5)), (nn.GELU(), lrp.GELU()),
    (nn.GELU(approximate="tanh"), lrp.GELU("tanh")), (nn.SiLU(inplace=True), lrp.SiLU()),
    (nn.Hardswish(), lrp.Hardswish()), (nn.Hardsigmoid(inplace=True), lrp.Hardsigmoid()),
    (nn.ReLU6(inplace=True), lrp.ReLU6()), (nn.Tanh(), lrp.Tanh()), (nn.Sigmoid(), lrp.Sigmoid()),
    (nn.Softplus(), lrp.Softplus()), (nn.Softplus(beta=2, threshold=3), lrp.Softplus(2.0, 3.0)),
    (nn.Mish(), lrp.Mish()),
]

# float64 forward passes of the same network in another summation order (NumPy's GEMM vs
# torch's): rounding only, a few ulps of the largest intermediate values
FORWARD_RTOL = 1e-12


def linear_sandwich(activation, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 6), activation, nn.Linear(6, 3)).double().eval()


def torch_forward(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("module, expected", MODULES, ids=[repr(m) for m, _ in MODULES])
def test_each_module_converts_with_its_parameters_and_the_same_forward(module, expected):
    model = linear_sandwich(module)
    net = from_torch(model)
    assert repr(net[1]) == repr(expected) and type(net[1]) is type(expected)
    # inputs of scale 4: both sides of every kink and saturation (-3, 0, 3, 6, thresholds)
    x = 4 * np.random.default_rng(0).standard_normal((8, 5))
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)


def test_an_invalid_parameter_names_the_module():
    with pytest.raises(ValueError, match=r"torch module '1' \(Softplus\): Softplus: beta must be"):
        from_torch(nn.Sequential(nn.Linear(2, 2), nn.Softplus(beta=0)).eval())


def test_hardtanh_other_than_relu6_is_not_converted():
    with pytest.raises(TypeError, match=r"torch module '0' \(Hardtanh\) is not supported"):
        from_torch(nn.Sequential(nn.Hardtanh(-2, 2)).eval())


class Functional(nn.Module):
    """Every functional form and method the fx import converts, in one chain."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        x = self.fc1(x)
        x = F.gelu(x, approximate="tanh") + F.gelu(x)
        x = F.silu(x) + torch.sigmoid(x) + torch.tanh(x) + F.hardsigmoid(x)
        x = F.hardswish(x) + F.relu6(x, inplace=False) + F.leaky_relu(x, 0.2)
        x = F.elu(x, alpha=0.5) + F.softplus(x, 2, 3) + F.mish(x)
        x = x.sigmoid() + x.tanh() + F.softplus(x, beta=0.5)
        return self.fc2(x)


EXPECTED_NODES = {
    "gelu": lrp.GELU("tanh"), "gelu_1": lrp.GELU(), "silu": lrp.SiLU(), "sigmoid": lrp.Sigmoid(),
    "tanh": lrp.Tanh(), "hardsigmoid": lrp.Hardsigmoid(), "hardswish": lrp.Hardswish(),
    "relu6": lrp.ReLU6(), "leaky_relu": lrp.LeakyReLU(0.2), "elu": lrp.ELU(0.5),
    "softplus": lrp.Softplus(2.0, 3.0), "mish": lrp.Mish(), "sigmoid_1": lrp.Sigmoid(),
    "tanh_1": lrp.Tanh(), "softplus_1": lrp.Softplus(0.5),
}


def test_functional_forms_convert_with_their_parameters_and_the_same_forward():
    torch.manual_seed(0)
    model = Functional().double().eval()
    net = from_torch(model)
    layers = {node.name: node.layer for node in net.nodes}
    for name, expected in EXPECTED_NODES.items():
        assert repr(layers[name]) == repr(expected), name
    x = 3 * np.random.default_rng(1).standard_normal((4, 5))
    assert_relevance_close(net.forward(x), torch_forward(model, x), rtol=FORWARD_RTOL)
    e = net.explain(x, rule=lrp.Epsilon(1e-6))
    for name in EXPECTED_NODES:                    # the identity: what arrives goes on
        np.testing.assert_array_equal(e.layer(name).relevance_in, e.layer(name).relevance_out)


class Wrapped(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_a_functional_activation_with_an_invalid_parameter_names_the_node():
    with pytest.raises(ValueError, match=r"fx node 'gelu' .*approximate must be 'none' or"):
        from_torch(Wrapped(lambda x: F.gelu(x, approximate="erf")).eval())


def test_a_functional_activation_with_an_unknown_argument_is_refused():
    with pytest.raises(ValueError, match=r"fx node 'sigmoid' .*arguments beyond inplace"):
        from_torch(Wrapped(lambda x: torch.sigmoid(x, out=x)).eval())
