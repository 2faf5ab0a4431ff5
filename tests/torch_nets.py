"""Random and named torch networks for the from_torch and oracle tests.

Import only after checking that torch is importable (the tests skip first).
Every network is float64 and in eval mode; BatchNorm layers get random running
statistics and affine parameters (fresh ones would be the identity).
"""

from __future__ import annotations

from hypothesis import strategies as st

from lrp_ref.interop import peers
from lrp_ref.interop.torch import ResidualBlock

torch = peers.import_torch()
nn = torch.nn
# One thread: for networks this small, handing work to a thread pool costs ~100x the
# computation itself (measured 5.8 ms vs 0.05 ms per conv call on the 2-core CI machine).
torch.set_num_threads(1)


def randomize(model: nn.Module, seed: int, bias_scale: float = 0.5,
              bn_eps: float = 1e-5) -> nn.Module:
    """Random biases and BatchNorm statistics; float64, eval mode. Returns ``model``."""
    generator = torch.Generator().manual_seed(seed)

    def normal(t: torch.Tensor, mean: float, std: float) -> None:
        t.copy_(mean + std * torch.randn(t.shape, generator=generator, dtype=t.dtype))

    model.double()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
                normal(module.bias, 0.0, bias_scale)
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                normal(module.weight, 1.0, 0.3)
                normal(module.bias, 0.0, 0.3)
                normal(module.running_mean, 0.0, 0.5)
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape,
                                                          generator=generator, dtype=torch.float64))
                module.eps = bn_eps
    return model.eval()


@st.composite
def torch_cnns(draw, batchnorm: bool = True, residual: bool = True, bn_eps: float = 1e-5,
               dense_batchnorm: bool = True, pools: tuple[str, ...] = ("max", "avg")):
    """``(model, sample_shape)``: a random CNN as a (nested) ``nn.Sequential``.

    1-2 conv blocks (Conv2d with kernel 1-3, stride 1-2, padding 0-1, optional
    BatchNorm2d, ReLU, optional max/avg pooling; some nested in a Sequential),
    optionally a :class:`ResidualBlock` (identity or projection shortcut), then
    Flatten, Linear, optional BatchNorm1d, ReLU, optional Dropout and Linear.
    ``batchnorm`` allows BatchNorm2d (and BatchNorm1d unless ``dense_batchnorm``
    is False).
    """
    seed = draw(st.integers(0, 2**31 - 1))
    torch.manual_seed(seed)
    channels, size = draw(st.integers(1, 3)), draw(st.integers(5, 10))
    sample_shape = (channels, size, size)
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 2))):
        kernel, stride = draw(st.integers(1, min(3, size))), draw(st.integers(1, 2))
        padding = draw(st.integers(0, 1)) if kernel > 1 else 0
        c_out = draw(st.integers(2, 4))
        block = [nn.Conv2d(channels, c_out, kernel, stride=stride, padding=padding)]
        channels, size = c_out, (size + 2 * padding - kernel) // stride + 1
        if batchnorm and draw(st.booleans()):
            block.append(nn.BatchNorm2d(channels))
        block.append(nn.ReLU())
        pool = draw(st.sampled_from(("none",) + pools)) if size >= 2 else "none"
        if pool != "none":
            pool_stride = draw(st.integers(1, 2))
            block.append((nn.MaxPool2d if pool == "max" else nn.AvgPool2d)(2, pool_stride))
            size = (size - 2) // pool_stride + 1
        layers += [nn.Sequential(*block)] if draw(st.booleans()) else block
    if residual and draw(st.booleans()):
        layers += [residual_block(channels, draw(st.booleans()), batchnorm), nn.ReLU()]
    hidden, classes = draw(st.integers(3, 6)), draw(st.integers(2, 4))
    layers += [nn.Flatten(), nn.Linear(channels * size * size, hidden)]
    if batchnorm and dense_batchnorm and draw(st.booleans()):
        layers.append(nn.BatchNorm1d(hidden))
    layers.append(nn.ReLU())
    if draw(st.booleans()):
        layers.append(nn.Dropout(0.5))
    layers.append(nn.Linear(hidden, classes))
    return randomize(nn.Sequential(*layers), seed, bn_eps=bn_eps), sample_shape


def residual_block(channels: int, projection: bool, batchnorm: bool = True,
                   out_channels: int | None = None, stride: int = 1) -> nn.Module:
    """A ResNet basic block as a :class:`ResidualBlock` (the ReLU after the sum not included)."""
    out = out_channels or channels

    def bn(c: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(c)] if batchnorm else []

    body = nn.Sequential(nn.Conv2d(channels, out, 3, stride=stride, padding=1), *bn(out),
                         nn.ReLU(), nn.Conv2d(out, out, 3, padding=1), *bn(out))
    shortcut = (nn.Sequential(nn.Conv2d(channels, out, 1, stride=stride), *bn(out))
                if projection or out != channels or stride != 1 else None)
    return ResidualBlock(body, shortcut)


def vgg_style(batchnorm: bool = False, seed: int = 0, bn_eps: float = 1e-5) -> nn.Module:
    """A small VGG: two conv-conv-maxpool stages, then a 3-layer classifier with Dropout.

    ``nn.Sequential(features, Flatten, classifier)``; input ``(3, 16, 16)``.
    """
    torch.manual_seed(seed)

    def conv(c_in: int, c_out: int) -> list[nn.Module]:
        return ([nn.Conv2d(c_in, c_out, 3, padding=1)]
                + ([nn.BatchNorm2d(c_out)] if batchnorm else []) + [nn.ReLU()])

    features = nn.Sequential(*conv(3, 8), *conv(8, 8), nn.MaxPool2d(2),
                             *conv(8, 16), *conv(16, 16), nn.MaxPool2d(2))
    classifier = nn.Sequential(nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(),
                               nn.Linear(32, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))
    return randomize(nn.Sequential(features, nn.Flatten(), classifier), seed, 0.1, bn_eps)


def resnet_style(seed: int = 0, bn_eps: float = 1e-5) -> nn.Module:
    """A small ResNet: stem, an identity block, a strided projection block, AvgPool, Linear.

    Input ``(3, 12, 12)``.
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        residual_block(8, projection=False), nn.ReLU(),
        residual_block(8, projection=True, out_channels=16, stride=2), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(16 * 3 * 3, 10))
    return randomize(model, seed, 0.1, bn_eps)
