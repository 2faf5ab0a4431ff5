"""from_torch on modules that are not nn.Sequential: traced with torch.fx into a Graph.

Hand-written modules (torch only; the torchvision zoo is in tests/oracle/): forward
equality, node names, LRP-0 = Gradient x Input through an addition, and one test per
refusal. Skipped, with the reason, when torch is not importable.
"""

import operator

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
    with pytest.raises(TypeError, match=r"fx node 'm' \(call_module 'm'\).*SELU.*not supported"):
        from_torch(wrap(lambda m, x: m(x), nn.SELU()))


def test_an_unsupported_function_names_the_node_and_what_is_converted():
    with pytest.raises(ValueError, match=r"fx node 'exp' \(call_function 'exp'\).*"
                                         r"not supported; from_torch converts"):
        from_torch(wrap(lambda m, x: torch.exp(m(x))))


def test_an_unsupported_method_is_refused():
    with pytest.raises(ValueError, match=r"call_method 'exp'"):
        from_torch(wrap(lambda m, x: m(x).exp()))


def test_a_constant_where_a_tensor_is_needed_is_refused():
    with pytest.raises(ValueError, match="constant or not a traced tensor"):
        from_torch(wrap(lambda m, x: m(x) * [2.0, 3.0]))


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


def test_a_parameter_used_other_than_added_or_multiplied_is_refused():
    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.ones(1, 3, dtype=torch.float64))

        def forward(self, x):
            return torch.cat([x, self.p], 1)

    with pytest.raises(ValueError, match=r"fx node 'cat'.*parameter or buffer \('p'\).*"
                                         r"AddConstant.*Scale"):
        from_torch(Cat().eval())


# -- shape-only nodes, constants and gates ------------------------------------------------


class Shapes(nn.Module):
    """Every shape-only function and method, a constant added and multiplied, a parameter."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 1)
        self.gamma = nn.Parameter(torch.linspace(-1.0, 2.0, 6, dtype=torch.float64))
        self.register_buffer("shift", torch.linspace(0.5, 1.0, 4, dtype=torch.float64))
        self.head = nn.Linear(9, 3)

    def forward(self, x):                                   # x: (B, 2, 3, 2)
        h = self.conv(x)                                    # (B, 4, 3, 2)
        a, b = h.chunk(2, dim=1)                            # (B, 2, 3, 2) each
        c = torch.split(h, [1, 3], 1)[1]                    # (B, 3, 3, 2)
        d = x.split(1, dim=-1)[0]                           # (B, 2, 3, 1)
        h = torch.cat([a.permute(0, 1, 3, 2), b.transpose(2, 3)], 1).contiguous()  # (B, 4, 2, 3)
        h = h.view(h.size(0), 4, -1)                        # (B, 4, 6)
        h = (h * self.gamma + 1.0) * 0.5                    # (B, 4, 6)
        h = torch.reshape(h, (h.shape[0], 6, 4)) + self.shift   # (B, 6, 4)
        h = h[:, 1:, ...][..., ::2]                         # (B, 5, 2)
        e = c[:, :, 0, 1] + d[:, 0, :, 0]                   # (B, 3)
        return self.head(torch.cat([h.reshape(-1, 10)[:, :6], e], 1))


def test_shape_nodes_constants_and_parameters_convert_and_equal_torch():
    torch.manual_seed(1)
    m = Shapes().double().eval()
    net = from_torch(m)
    kinds = {node.name: type(node.layer).__name__ for node in net.nodes}
    assert kinds["getitem"] == "Chunk" and kinds["getitem_1"] == "Chunk"
    assert [kinds[k] for k in ("getitem_2", "getitem_3")] == ["Slice", "Slice"]
    assert [kinds[k] for k in ("permute", "transpose", "contiguous", "view")] == [
        "Permute", "Transpose", "Identity", "Reshape"]
    assert kinds["mul"] == "Scale" and kinds["add"] == "AddConstant"
    assert kinds["mul_1"] == "Scale" and kinds["add_1"] == "AddConstant"
    assert net["view"].shape == (4, -1) and net["reshape"].shape == (6, 4)
    np.testing.assert_array_equal(net["mul"].scale, m.gamma.detach().numpy())
    np.testing.assert_array_equal(net["add_1"].constant, m.shift.numpy())
    assert net["getitem_3"].index == (Ellipsis, slice(0, 1, None))
    x = np.random.default_rng(0).standard_normal((3, 2, 3, 2))
    assert_relevance_close(net.forward(x), forward(m, x), rtol=FORWARD_RTOL)
    e = net.explain(x, rule=lrp.Epsilon(0.01))
    for record in e.layers:                                  # every node balances
        R_in = record.relevance_in if isinstance(record.relevance_in, tuple) else (
            record.relevance_in,)
        np.testing.assert_allclose(
            sum(per_sample_sum(r) for r in R_in) + record.ledger.total(),
            per_sample_sum(record.relevance_out), rtol=1e-10, atol=1e-12)  # rounding only
    assert all(not e.layer(k).ledger.total().any() for k in ("getitem", "view", "mul"))
    assert e.layer("add").absorbed_bias.any()               # the constant 1.0 is a bias


def per_sample_sum(a):
    return a.reshape(a.shape[0], -1).sum(axis=1)


def test_a_float32_import_keeps_the_constants_in_float32():
    torch.manual_seed(1)
    net = from_torch(Shapes().double().eval(), dtype=np.float32)
    assert net["mul"].scale.dtype == np.float32 and net["add"].constant.dtype == np.float32


def test_view_with_one_computed_size_becomes_minus_one():
    """y.view(b, c, 1, 1) with c = x.size(1): the one computed entry is -1."""
    def fn(m, x):
        b, c = x.size(0), x.size(1)
        return m(x).view(b, -1).view(b, c * 1, 1, 1)

    net = from_torch(wrap(fn))
    assert [n.layer.shape for n in net.nodes if isinstance(n.layer, lrp.Reshape)] == [
        (-1,), (-1, 1, 1)]
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_array_equal(net.forward(x), x.reshape(2, 3, 1, 1))


def torch_channel_shuffle(x, groups: int):
    """torchvision.models.shufflenetv2.channel_shuffle (torchvision 0.2x), as written there."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    x = x.view(batchsize, num_channels, height, width)
    return x


class Shuffle(nn.Module):
    def forward(self, x):
        return torch_channel_shuffle(x, 3)


def test_a_traced_channel_shuffle_is_refused_for_its_computed_sizes():
    with pytest.raises(ValueError, match=r"fx node 'view' \(call_method 'view'\).*3 size\(s\) "
                                         r"computed from sizes;"):
        from_torch(Shuffle().eval())


def test_torchvisions_channel_shuffle_converts_to_channel_shuffle(monkeypatch):
    """With torchvision's module imported (here a stand-in holding the same function), the
    call is kept whole by the tracer and becomes one ChannelShuffle node."""
    import sys
    import types

    module = types.ModuleType("torchvision.models.shufflenetv2")
    module.channel_shuffle = torch_channel_shuffle
    monkeypatch.setitem(sys.modules, "torchvision.models.shufflenetv2", module)
    net = from_torch(Shuffle().eval())
    assert [type(n.layer).__name__ for n in net.nodes] == ["ChannelShuffle"]
    assert net.nodes[0].layer.groups == 3
    x = np.random.default_rng(0).standard_normal((2, 6, 2, 3))
    np.testing.assert_array_equal(net.forward(x), forward(Shuffle().eval(), x))


def test_shape_refusals_name_the_node():
    with pytest.raises(ValueError, match=r"fx node 'view'.*first entry is 2.*x.size\(0\)"):
        from_torch(wrap(lambda m, x: m(x).view(2, -1)))
    with pytest.raises(ValueError, match=r"fx node 'getitem'.*the index 0.*whole batch axis"):
        from_torch(wrap(lambda m, x: m(x)[0]))
    with pytest.raises(ValueError, match=r"no None"):
        from_torch(wrap(lambda m, x: m(x)[:, None]))
    with pytest.raises(ValueError, match=r"fx node 'chunk'.*dim=0"):
        from_torch(wrap(lambda m, x: m(x).chunk(2)[0]))
    with pytest.raises(ValueError, match=r"fx node 'permute'.*dims\[0\] = 0"):
        from_torch(wrap(lambda m, x: m(x).permute(1, 0)))
    with pytest.raises(ValueError, match=r"fx node 'cat'.*tuple of a chunk or split"):
        from_torch(wrap(lambda m, x: torch.cat(m(x).chunk(2, 1), 1)))
    with pytest.raises(ValueError, match=r"fx node 'add'.*a size \(x.size\(\), x.shape\)"):
        from_torch(wrap(lambda m, x: m(x) + x.size(1) + x))


# -- gates ----------------------------------------------------------------------------------


class SE(nn.Module):
    """torchvision's SqueezeExcitation with a functional sigmoid: ``scale * input``."""

    def __init__(self):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(4, 2, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(2, 4, 1)

    def forward(self, x):
        scale = torch.sigmoid(self.fc2(self.relu(self.fc1(self.avgpool(x)))))
        return scale * x


def test_the_gate_is_found_by_the_node_that_made_it():
    from lrp_ref.interop.fx import gate_of

    class Gates(nn.Module):
        def __init__(self):
            super().__init__()
            self.hs = nn.Hardsigmoid()

        def forward(self, x):
            return (x * torch.sigmoid(x), self.hs(x).view(x.size(0), -1) * x, x.sigmoid() * x,
                    F.hardsigmoid(x)[:, :1] * x, x * x, x.sigmoid() * torch.sigmoid(x))

    m = Gates().eval()
    graph = torch.fx.symbolic_trace(m).graph
    products = [n for n in graph.nodes if n.target is operator.mul]
    assert [gate_of(*n.args, m, torch) for n in products] == [1, 0, 0, 0, None, None]


def test_a_product_of_two_signals_is_refused():
    with pytest.raises(ValueError, match=r"fx node 'mul'.*not exactly one is a gate"):
        from_torch(wrap(lambda m, x: m(x) * x))


def test_a_squeeze_excitation_block_imports_with_its_gate():
    """torch.sigmoid converts to lrp_ref.Sigmoid and the product becomes Mul(signal, gate):
    the input takes all relevance of the product."""
    torch.manual_seed(0)
    m = SE().double().eval()
    net = from_torch(m)
    mul = next(n for n in net.nodes if isinstance(n.layer, lrp.Mul))
    assert mul.name == "mul" and mul.inputs == ("x", "sigmoid")
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3))
    assert_relevance_close(net.forward(x), forward(m, x), rtol=FORWARD_RTOL)
    R = np.random.default_rng(1).standard_normal((2, 4, 3, 3))
    e = net.explain(x, output_relevance=R, rule=lrp.Epsilon())
    R_signal, R_gate = e.layer("mul").relevance_in
    np.testing.assert_array_equal(R_signal, R)
    np.testing.assert_array_equal(R_gate, np.zeros((2, 4, 1, 1)))


def test_split_pieces_and_a_minus_one_batch_entry_equal_torch():
    """split(x, 2, 1) of 5 channels: pieces 0:2, 2:4 and the short 4:5; a list split's
    piece -1; view(-1, 5) keeps the batch here, as torch does."""
    def fn(m, x):
        pieces = torch.split(m(x), 2, 1)
        last = x.split([3, 2], dim=1)[-1]
        return torch.cat([pieces[2], pieces[0], last], 1).view(-1, 5)

    m = wrap(fn)
    net = from_torch(m)
    # fx numbers the getitems in the order Python evaluates them: `last` first
    assert [net[k].index for k in ("getitem", "getitem_1", "getitem_2")] == [
        (slice(3, 5, None),), (slice(4, 6, None),), (slice(0, 2, None),)]
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_array_equal(net.forward(x), forward(m, x))


def test_subtracting_and_dividing_by_constants_convert_to_add_constant_and_scale():
    """(x - mean) / std with buffers, then - 1 and / 4: AddConstant(-c) and Scale(1 / c);
    x - c is x + (-c) exactly, x / c is x (1 / c) to a rounding."""
    class Normalize(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64))
            self.register_buffer("std", torch.tensor([0.25, 3.0, 0.7], dtype=torch.float64))

        def forward(self, x):
            return torch.div(x.sub(self.mean) / self.std - 1, 4.0)

    m = Normalize().eval()
    net = from_torch(m)
    assert [type(n.layer).__name__ for n in net.nodes] == ["AddConstant", "Scale",
                                                            "AddConstant", "Scale"]
    np.testing.assert_array_equal(net["sub"].constant, [-0.5, 1.0, -2.0])
    assert float(net["sub_1"].constant) == -1.0 and float(net["div"].scale) == 0.25
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert_relevance_close(net.forward(x), forward(m, x), rtol=FORWARD_RTOL)


def test_a_constant_minus_a_tensor_and_a_division_by_zero_are_refused():
    with pytest.raises(ValueError, match=r"fx node 'sub'.*converts x - c of a tensor x and a "
                                         r"constant c"):
        from_torch(wrap(lambda m, x: 1.0 - m(x)))
    with pytest.raises(ValueError, match=r"fx node 'truediv'.*holds 0"):
        from_torch(wrap(lambda m, x: m(x) / 0.0))


def test_a_size_of_the_reshaped_tensor_at_its_own_axis_is_kept():
    """b, c, h, w = x.size(): x.view(b, c, -1) keeps x's own axis 1, Reshape((0, -1)); the
    module's output m(x) is another fx node, so there c is a computed size: m(x).view(b, c, 4)
    is Reshape((-1, 4)), and m(x).view(b, c, -1) (two unknowns) is refused."""
    def fn(m, x):
        b, c, h, w = x.size()
        return x.view(b, c, -1) + m(x).view(b, c, 4)

    m = wrap(fn)
    net = from_torch(m)
    assert net["view"].shape == (0, -1) and net["view_1"].shape == (-1, 4)
    x = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    np.testing.assert_array_equal(net.forward(x), forward(m, x))

    def two_unknowns(m, x):
        b, c, h, w = x.size()
        return m(x).view(b, c, -1)

    with pytest.raises(ValueError, match=r"fx node 'view'.*1 size\(s\) computed from sizes "
                                         r"and a -1"):
        from_torch(wrap(two_unknowns))


def torch_stochastic_depth(input, p: float, mode: str, training: bool = True):
    """torchvision.ops.stochastic_depth's eval path (it returns its input when not training)."""
    if not training or p == 0.0:
        return input
    raise AssertionError("the stand-in models eval mode only")


class Depth(nn.Module):
    def __init__(self, training_flag):
        super().__init__()
        self.flag = training_flag

    def forward(self, x):
        return x + torch_stochastic_depth(2 * x, 0.2, "row", self.flag)


def test_torchvisions_stochastic_depth_in_eval_mode_is_an_identity_node(monkeypatch):
    """EfficientNet's and ConvNeXt's StochasticDepth call torchvision's function with
    training=False in eval mode: one Identity node named by the call, the forward unchanged."""
    import sys
    import types

    module = types.ModuleType("torchvision.ops.stochastic_depth")
    module.stochastic_depth = torch_stochastic_depth
    monkeypatch.setitem(sys.modules, "torchvision.ops.stochastic_depth", module)
    net = from_torch(Depth(False).eval())
    assert [(n.name, type(n.layer).__name__) for n in net.nodes] == [
        ("mul", "Scale"), ("torch_stochastic_depth", "Identity"), ("add", "Add")]
    x = np.random.default_rng(0).standard_normal((2, 3))
    np.testing.assert_array_equal(net.forward(x), 3 * x)
    with pytest.raises(ValueError, match=r"fx node 'torch_stochastic_depth'.*training=True"):
        from_torch(Depth(True).eval())
