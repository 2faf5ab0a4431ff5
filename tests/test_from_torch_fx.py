"""from_torch on modules that are not nn.Sequential: traced with torch.fx into a Graph.

Hand-written modules (torch only; the torchvision zoo is in tests/oracle/): forward
equality, node names, LRP-0 = Gradient x Input through an addition, and one test per
refusal. Skipped, with the reason, when torch is not importable.
"""

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
F = torch.nn.functional

#: float64 forward in another summation order than torch: rounding only
FORWARD_RTOL = 1e-12


class Block(nn.Module):
    """A basic residual block that calls its ReLU twice (as torchvision's BasicBlock)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.conv1(x))
        out = self.conv2(out)
        out += x
        return self.relu(out)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.block = Block()
        self.branch = nn.Conv2d(3, 2, 1)
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.stem(x)))
        x = self.block(x)
        x = torch.cat([x, self.branch(x)], 1)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.head(torch.flatten(x, 1))


def model():
    torch.manual_seed(0)
    return Net().double().eval()


def forward(m, x):
    with torch.no_grad():
        return m(torch.from_numpy(x)).numpy()


def test_forward_equals_torch_and_nodes_are_named_by_torch():
    m = model()
    net = from_torch(m)
    assert isinstance(net, lrp.Graph)
    x = np.random.default_rng(0).standard_normal((2, 2, 8, 8))
    assert_relevance_close(net.forward(x), forward(m, x), rtol=FORWARD_RTOL)
    names = [node.name for node in net.nodes]
    # module calls by qualified name, the second call of block.relu with ':2',
    # function calls by their fx node names
    assert names == ["stem", "relu", "pool", "block.conv1", "block.relu", "block.conv2", "add",
                     "block.relu:2", "branch", "cat", "adaptive_avg_pool2d", "flatten", "head"]
    assert net["block.relu"] is net["block.relu:2"]          # one module, one layer object
    np.testing.assert_array_equal(net["head"].weight, m.head.weight.detach().numpy().T)


def test_lrp0_equals_gradient_x_input_with_an_exact_addition():
    """LRP-0 on ReLU networks is Gradient x Input (Ancona et al. 2018) when the addition
    splits with epsilon = 0 and pooling is winner-take-all without ties; rounding only."""
    m = model()
    net = from_torch(m, residual_epsilon=0.0)
    x = np.random.default_rng(1).standard_normal((2, 2, 8, 8))
    e = net.explain(x, rule=lrp.Zero(bias=True))
    t = torch.from_numpy(x).requires_grad_(True)
    out = m(t)
    out.gather(1, torch.from_numpy(e.target)[:, None]).sum().backward()
    # with biases the relevance they absorb is not in the input: compare with the
    # bias-free network (all biases zero) where LRP-0 = Gradient x Input exactly
    for p in m.parameters():
        if p.ndim == 1:
            p.data.zero_()
    net0 = from_torch(m, residual_epsilon=0.0)
    e0 = net0.explain(x, rule=lrp.Zero())
    t0 = torch.from_numpy(x).requires_grad_(True)
    m(t0).gather(1, torch.from_numpy(e0.target)[:, None]).sum().backward()
    assert_relevance_close(e0.relevance, (t0.grad * t0).detach().numpy(), rtol=1e-10)
    for record in e.layers:
        assert np.all(np.abs(record.imbalance()) <= 1e-10 * np.abs(e.output).max())


def test_explain_with_a_composite_balances_every_node():
    net = from_torch(model())
    x = np.random.default_rng(2).standard_normal((2, 2, 8, 8))
    e = net.explain(x, rule=lrp.composites.epsilon_plus())
    assert e.layer("block.conv1").rule == lrp.AlphaBeta(1, 0)
    for record in e.layers:
        scale = np.abs(record.relevance_out).max() + 1
        assert np.all(np.abs(record.imbalance()) <= 1e-12 * scale)


# -- refusals: one test per error ---------------------------------------------------------


class Wrap(nn.Module):
    def __init__(self, fn, module=None):
        super().__init__()
        self.fn = fn
        self.m = module if module is not None else nn.Identity()

    def forward(self, x):
        return self.fn(self.m, x)


def wrap(fn, module=None):
    return Wrap(fn, module).double().eval()


def test_an_unsupported_module_names_the_fx_node_and_module():
    with pytest.raises(TypeError, match=r"fx node 'm' \(call_module 'm'\).*ReLU6.*not supported"):
        from_torch(wrap(lambda m, x: m(x), nn.ReLU6()))


def test_an_unsupported_function_names_the_node_and_what_is_converted():
    with pytest.raises(ValueError, match=r"fx node 'sigmoid' \(call_function 'sigmoid'\).*"
                                         r"not supported; from_torch converts"):
        from_torch(wrap(lambda m, x: torch.sigmoid(m(x))))


def test_an_unsupported_method_is_refused():
    with pytest.raises(ValueError, match=r"call_method 'tanh'"):
        from_torch(wrap(lambda m, x: m(x).tanh()))


def test_adding_a_constant_is_refused():
    with pytest.raises(ValueError, match="constant or not a traced tensor"):
        from_torch(wrap(lambda m, x: m(x) + 1.0))


def test_concatenating_along_the_batch_axis_is_refused():
    with pytest.raises(ValueError, match="dim=0"):
        from_torch(wrap(lambda m, x: torch.cat([m(x), x], 0)))


def test_flattening_the_batch_axis_is_refused():
    with pytest.raises(ValueError, match="start_dim=0"):
        from_torch(wrap(lambda m, x: torch.flatten(m(x))))


def test_a_mean_over_other_axes_is_refused():
    with pytest.raises(ValueError, match=r"mean over dims \(1,\)"):
        from_torch(wrap(lambda m, x: m(x).mean((1,))))


def test_training_mode_is_refused():
    m = wrap(lambda m, x: m(x), nn.ReLU()).train()
    with pytest.raises(ValueError, match="training mode"):
        from_torch(m)


def test_a_forward_hook_is_refused():
    m = wrap(lambda m, x: m(x), nn.ReLU())
    m.m.register_forward_hook(lambda module, args, out: out * 2)
    with pytest.raises(ValueError, match=r"torch module 'm' \(ReLU\) has a forward hook"):
        from_torch(m)


def test_a_forward_pre_hook_is_refused():
    m = wrap(lambda m, x: m(x), nn.ReLU())
    m.m.register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    with pytest.raises(ValueError, match="forward pre-hook"):
        from_torch(m)


def test_the_legacy_weight_norm_is_refused_with_its_reason():
    """Its weight is recomputed from weight_g, weight_v by a pre-hook: stale until a forward."""
    linear = torch.nn.utils.weight_norm(nn.Linear(3, 2)).double()
    m = wrap(lambda m, x: m(x), linear)
    with torch.no_grad():
        linear.weight_g.mul_(2)
    with pytest.raises(ValueError, match="weight_norm"):
        from_torch(m)


def test_a_parameter_used_in_forward_is_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(3, dtype=torch.float64))

        def forward(self, x):
            return x * self.s

    with pytest.raises(ValueError, match="get_attr"):
        from_torch(Scale().eval())
