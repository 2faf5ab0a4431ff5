"""Build an lrp_ref network from a torch module: :func:`from_torch`.

A ``torch.nn.Sequential`` converts module by module into a
:class:`~lrp_ref.Sequential` (below); any other module is traced with
``torch.fx`` into a :class:`~lrp_ref.Graph` (:mod:`lrp_ref.interop.fx`), whose
module nodes are converted by the same table.

torch is imported lazily (the optional ``oracle`` extra); ``import lrp_ref``
never imports it. The converted network computes the same forward pass (up to
float rounding), and its layer paths are torch's module names, so that the
relevance of every layer can be compared with a torch-based LRP library
(Zennit, Captum) by name.

=========================================  =========================================
torch module (inference mode)              lrp_ref layer
=========================================  =========================================
``Sequential`` (children ``"0"``, ...)     :class:`~lrp_ref.Sequential` (nested stay nested)
``Linear(in, out)``                        :class:`~lrp_ref.Dense`, weight transposed to (in, out)
``Conv2d`` / ``Conv1d``                    :class:`~lrp_ref.Conv2d` / :class:`~lrp_ref.Conv1d`
                                           (every option: stride, padding incl. ``'same'``,
                                           dilation, groups, padding_mode)
``ConvTranspose2d``                        :class:`~lrp_ref.ConvTranspose2d` (stride, padding,
                                           output_padding, groups, dilation)
``ReLU``                                   :class:`~lrp_ref.ReLU`
``LeakyReLU``, ``ELU``, ``GELU``, ``SiLU``,   the lrp_ref layer of the same name and
``Hardswish``, ``Hardsigmoid``, ``ReLU6``,  parameters (``negative_slope``, ``alpha``,
``Tanh``, ``Sigmoid``, ``Softplus``,        ``approximate``, ``beta``, ``threshold``);
``Mish``                                   ``inplace`` changes no value and is ignored
``MaxPool2d`` / ``AvgPool2d``              :class:`~lrp_ref.MaxPool2d` / :class:`~lrp_ref.AvgPool2d`
                                           (every option but ``return_indices``)
``MaxPool1d`` / ``AvgPool1d``              :class:`~lrp_ref.MaxPool1d` / :class:`~lrp_ref.AvgPool1d`
``AdaptiveAvgPool2d`` / ``...MaxPool2d``   :class:`~lrp_ref.AdaptiveAvgPool2d` /
                                           :class:`~lrp_ref.AdaptiveMaxPool2d` (any size)
``Upsample`` (nearest(-exact), bilinear)   :class:`~lrp_ref.Upsample`
``BatchNorm1d`` / ``BatchNorm2d``          :class:`~lrp_ref.BatchNorm1d` / ``BatchNorm2d``
``Flatten()``                              :class:`~lrp_ref.Flatten`
``Dropout*``, ``Identity``                 :class:`~lrp_ref.Identity`
:class:`ResidualBlock` (below)             :class:`~lrp_ref.Residual`
``Embedding``, ``LSTM``                    via :mod:`lrp_ref.interop.torch_rnn`
``LayerNorm``, ``RMSNorm``,                via :mod:`lrp_ref.interop.torch_transformer`
``MultiheadAttention``,                    (:class:`~lrp_ref.LayerNorm`, ...,
``TransformerEncoderLayer``,               :class:`~lrp_ref.MultiheadAttention`, Graphs
``TransformerEncoder``                     named like torch's modules; batch first)
=========================================  =========================================

Residual connections. torch has no residual container: a ResNet block adds its
branches inside ``forward``, which a converter cannot read. Express the block
with :class:`ResidualBlock` (a torch module defined here)::

    from lrp_ref.interop.torch import ResidualBlock
    block = ResidualBlock(body=nn.Sequential(conv, bn, nn.ReLU(), conv2, bn2),
                          shortcut=None)          # None: identity; or a module
    # forward: self.sum(torch.stack([body(x), shortcut(x)], dim=-1))

Its children are named ``body``, ``shortcut`` (absent for the identity) and
``sum`` (a :class:`BranchSum`, which adds the stacked branches). The
converted :class:`~lrp_ref.Residual` has the paths ``"<k>.body..."`` and
``"<k>.shortcut..."``; the ``sum`` has no layer of its own (the Residual's
record is the split). Because the addition is a module of its own, a
torch-based LRP library can hook it: Zennit's ``Norm`` rule on
:class:`BranchSum` (``layer_map=[(BranchSum, Norm(stabilizer))]``) is our
Residual's split with ``epsilon = stabilizer`` (Zennit's ``ResNetCanonizer``
does the same for torchvision's blocks with its ``Sum`` module).

Refused with a TypeError or ValueError naming the module's path and type:
modules of other types; modules in training mode (call ``model.eval()``);
modules with a forward hook or pre-hook, and global module hooks (they change
the forward without the converter seeing it; the legacy ``weight_norm`` is one);
pooling with ``return_indices``, adaptive pooling with an output size
``None``, 1-D pooling with dilation, ``ceil_mode`` or padding; Upsample of other
modes or with ``recompute_scale_factor=True``; BatchNorm without running
statistics; Flatten of other dimensions; a Sequential whose children have names
other than ``"0"``, ``"1"``, ... (their paths could not equal torch's names).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers import (
    Activation,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Identity,
    Layer,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    Residual,
    Upsample,
)
from ..layers.activations import ACTIVATIONS
from ..network import Sequential
from . import torch_transformer as transformer
from .peers import import_torch
from .torch_rnn import convert_module as convert_rnn_module

SUPPORTED = ("Sequential, Linear, Conv1d, Conv2d, ConvTranspose2d, ReLU, MaxPool1d, MaxPool2d, "
             "AvgPool1d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Upsample, BatchNorm1d, "
             "BatchNorm2d, "
             f"{', '.join(cls.__name__ for cls in ACTIVATIONS)}, "
             "Flatten, Dropout, Identity, Embedding, LSTM, LayerNorm, RMSNorm, MultiheadAttention, "
             "TransformerEncoderLayer, TransformerEncoder and lrp_ref.interop.torch.ResidualBlock")


def from_torch(module: Any, dtype: Any = np.float64,
               residual_epsilon: float = 1e-6) -> Sequential | Graph:
    """Convert a ``torch.nn.Module`` in inference mode into an lrp_ref network.

    A ``torch.nn.Sequential`` becomes a :class:`~lrp_ref.Sequential`; any other
    module is traced with ``torch.fx`` into a :class:`~lrp_ref.Graph`
    (:mod:`lrp_ref.interop.fx`: the functions it converts, node names, what
    it refuses).

    Parameters
    ----------
    module : torch.nn.Module
        The network, in eval mode (``module.eval()``), of the module types in
        the table of the module docstring.
    dtype : numpy dtype
        The dtype of the converted parameters (float64 by default, whatever
        the dtype of the torch parameters).
    residual_epsilon : float
        The ``epsilon`` of every converted :class:`~lrp_ref.Residual`'s
        relevance split (our default 1e-6 is Zennit's default stabilizer).

    Returns
    -------
    Sequential or Graph
        The same forward pass; layer paths equal torch's module names.

    Raises
    ------
    TypeError
        For a root that is not a torch module, or a module of an unsupported type.
    ValueError
        For a module in training mode or with an option lrp_ref does not
        compute (the message names the module's path, its type and the option).
    """
    torch = import_torch()
    converter = _Converter(torch, np.dtype(dtype), residual_epsilon)
    if isinstance(module, torch.nn.Module):
        refuse_hooks(module, torch)
    if isinstance(module, torch.nn.Sequential):
        return converter.convert(module, "")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch converts a torch.nn.Module, got {type(module).__name__}")
    if type(module) in converter.converters:
        raise TypeError(f"from_torch converts a network (an nn.Sequential, or a module whose "
                        f"forward calls other modules), got a single {type(module).__name__}; "
                        "wrap it: nn.Sequential(module)")
    from .fx import from_fx
    return from_fx(module, converter.convert, torch, residual_epsilon, converter.array)


def _where(path: str, module: Any) -> str:
    """``torch module '3.1' (Conv2d)``: how errors name a module."""
    name = f"'{path}'" if path else "(root)"
    return f"torch module {name} ({type(module).__name__})"


class _Converter:
    """One conversion: the torch module, the target dtype and the Residual epsilon."""

    def __init__(self, torch: Any, dtype: np.dtype, residual_epsilon: float) -> None:
        self.torch = torch
        self.dtype = dtype
        self.residual_epsilon = residual_epsilon
        nn = torch.nn
        self.converters = {
            nn.Sequential: self.sequential,
            nn.Linear: self.linear,
            nn.Conv1d: self.conv2d,
            nn.Conv2d: self.conv2d,
            nn.ConvTranspose2d: self.conv_transpose2d,
            nn.ReLU: lambda m, p: ReLU(),
            nn.MaxPool2d: self.maxpool2d,
            nn.AvgPool2d: self.avgpool2d,
            nn.MaxPool1d: self.maxpool1d,
            nn.AvgPool1d: self.avgpool1d,
            nn.AdaptiveAvgPool2d: self.adaptive_avgpool2d,
            nn.AdaptiveMaxPool2d: self.adaptive_maxpool2d,
            nn.Upsample: self.upsample,
            nn.BatchNorm1d: self.batchnorm,
            nn.BatchNorm2d: self.batchnorm,
            nn.Flatten: self.flatten,
            nn.Identity: lambda m, p: Identity(),
            nn.Dropout: lambda m, p: Identity(),
            nn.Dropout1d: lambda m, p: Identity(),
            nn.Dropout2d: lambda m, p: Identity(),
            residual_classes()[0]: self.residual,
            nn.LayerNorm: lambda m, p: transformer.layer_norm(self, m, p),
            nn.RMSNorm: lambda m, p: transformer.rms_norm(self, m, p),
            # self-attention, and the encoder built on it (interop/torch_transformer.py)
            nn.MultiheadAttention: functools.partial(transformer.attention, self),
            nn.TransformerEncoderLayer: functools.partial(transformer.encoder_layer, self),
            nn.TransformerEncoder: functools.partial(transformer.encoder, self),
            # element-wise non-linearities: nn.GELU -> GELU, ... (the same names)
            **{getattr(nn, cls.__name__): self.activation(cls) for cls in ACTIVATIONS},
        }

    def array(self, tensor: Any) -> np.ndarray:
        return tensor.detach().cpu().to(self.torch.float64).numpy().astype(self.dtype)

    def convert(self, module: Any, path: str,
                masks: transformer.Masks | None = None) -> Layer:
        """The lrp_ref layer for ``module`` at ``path`` (checks mode and type).

        ``masks``: the constant masks of an attention module's call (fx).
        """
        if module.training:
            raise ValueError(f"{_where(path, module)} is in training mode; call model.eval() "
                             "first (lrp_ref converts inference-mode networks: BatchNorm uses "
                             "its running statistics, Dropout is the identity)")
        convert = self.converters.get(type(module))
        if convert is not None:
            return convert(module, path) if masks is None else convert(module, path, masks)
        layer = convert_rnn_module(module, path, dtype=self.dtype)
        if layer is None:
            raise TypeError(f"{_where(path, module)} is not supported; from_torch converts "
                            f"{SUPPORTED} (exact types, not subclasses)")
        return layer

    def sequential(self, module: Any, path: str) -> Sequential:
        # every position, a module used at two of them included (named_children lists a
        # module once: the second position would be dropped and the forward would differ)
        children = list(module._modules.items())
        names = [name for name, _ in children]
        if names != [str(k) for k in range(len(names))]:
            raise ValueError(f"{_where(path, module)} names its children {names}; lrp_ref paths "
                             "are indices, so they would not equal torch's names: build the "
                             "nn.Sequential from a list of modules, not an OrderedDict")
        return Sequential([self.convert(child, f"{path}.{name}" if path else name)
                           for name, child in children])

    def linear(self, module: Any, path: str) -> Dense:
        bias = None if module.bias is None else self.array(module.bias)
        return Dense(self.array(module.weight).T, bias)

    def conv2d(self, module: Any, path: str) -> Conv1d | Conv2d:
        """``Conv1d``/``Conv2d`` with every option: stride, padding (numbers, ``'same'``,
        ``'valid'``), dilation, groups, padding_mode."""
        two_d = isinstance(module, self.torch.nn.Conv2d)
        padding = module.padding
        if not isinstance(padding, str):   # 'same'/'valid' are computed as torch does
            padding = tuple(padding) if two_d else padding[0]
        options = {"stride": tuple(module.stride), "dilation": tuple(module.dilation)}
        if not two_d:
            options = {name: value[0] for name, value in options.items()}
        layer = Conv2d if two_d else Conv1d
        bias = None if module.bias is None else self.array(module.bias)
        return layer(self.array(module.weight), bias, padding=padding, groups=module.groups,
                     padding_mode=module.padding_mode, **options)

    def conv_transpose2d(self, module: Any, path: str) -> ConvTranspose2d:
        bias = None if module.bias is None else self.array(module.bias)
        return ConvTranspose2d(self.array(module.weight), bias, stride=tuple(module.stride),
                               padding=tuple(module.padding),
                               output_padding=tuple(module.output_padding),
                               groups=module.groups, dilation=tuple(module.dilation))

    def maxpool2d(self, module: Any, path: str) -> MaxPool2d:
        _refuse(_where(path, module), "return_indices", module.return_indices, False)
        return max_pool(module.kernel_size, module.stride, module.padding, module.dilation,
                        module.ceil_mode)

    def avgpool2d(self, module: Any, path: str) -> AvgPool2d:
        return avg_pool(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                        module.count_include_pad, module.divisor_override)

    def maxpool1d(self, module: Any, path: str) -> MaxPool1d:
        where = _where(path, module)
        _refuse(where, "ceil_mode", module.ceil_mode, False)
        _refuse(where, "dilation", _single(module.dilation), 1)
        _refuse(where, "return_indices", module.return_indices, False)
        return MaxPool1d(_single(module.kernel_size), _single(module.stride),
                         padding=_single(module.padding))

    def avgpool1d(self, module: Any, path: str) -> AvgPool1d:
        where = _where(path, module)
        _refuse(where, "padding", module.padding[0], 0)
        _refuse(where, "ceil_mode", module.ceil_mode, False)
        return AvgPool1d(module.kernel_size[0], module.stride[0])

    def adaptive_avgpool2d(self, module: Any, path: str) -> AdaptiveAvgPool2d:
        return AdaptiveAvgPool2d(output_size(_where(path, module), module.output_size))

    def adaptive_maxpool2d(self, module: Any, path: str) -> AdaptiveMaxPool2d:
        where = _where(path, module)
        _refuse(where, "return_indices", module.return_indices, False)
        return AdaptiveMaxPool2d(output_size(where, module.output_size))

    def upsample(self, module: Any, path: str) -> Upsample:
        return upsample(_where(path, module), module.size, module.scale_factor, module.mode,
                        module.align_corners, module.recompute_scale_factor)

    def batchnorm(self, module: Any, path: str) -> BatchNorm1d | BatchNorm2d:
        if module.running_mean is None or module.running_var is None:
            raise ValueError(f"{_where(path, module)} has no running statistics "
                             "(track_running_stats=False): its inference output depends on "
                             "the batch, which lrp_ref does not compute")
        n = module.num_features
        ones = self.torch.ones(n)
        gamma = module.weight if module.weight is not None else ones
        beta = module.bias if module.bias is not None else self.torch.zeros(n)
        layer = BatchNorm2d if isinstance(module, self.torch.nn.BatchNorm2d) else BatchNorm1d
        return layer(self.array(gamma), self.array(beta), self.array(module.running_mean),
                     self.array(module.running_var), eps=float(module.eps))

    def flatten(self, module: Any, path: str) -> Flatten:
        _refuse(_where(path, module), "(start_dim, end_dim)", (module.start_dim, module.end_dim),
                (1, -1))
        return Flatten()

    def activation(self, cls: type[Activation]) -> Any:
        """The converter of torch's module of the same name as ``cls``.

        Its parameters are torch's attributes of the same names (``negative_slope``,
        ``alpha``, ``approximate``, ``beta``, ``threshold``); ``inplace`` changes no value.
        """
        def convert(module: Any, path: str) -> Activation:
            try:
                return cls(**{name: getattr(module, name) for name in cls.hyperparameter_names})
            except ValueError as error:
                raise ValueError(f"{_where(path, module)}: {error}") from None
        return convert

    def residual(self, module: Any, path: str) -> Residual:
        def child(name: str) -> Layer:
            return self.convert(getattr(module, name), f"{path}.{name}" if path else name)

        shortcut = None if module.shortcut is None else child("shortcut")
        return Residual(child("body"), shortcut, epsilon=self.residual_epsilon)


def _pair(value: Any) -> Any:
    """torch's ints or tuples as lrp_ref's (a 1-tuple means both axes)."""
    return value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value


def max_pool(kernel: Any, stride: Any, padding: Any, dilation: Any,
             ceil_mode: bool) -> MaxPool2d:
    """torch's max_pool2d options as a MaxPool2d (stride None or empty: the kernel)."""
    return MaxPool2d(_pair(kernel), _pair(stride) or None, padding=_pair(padding),
                     dilation=_pair(dilation), ceil_mode=ceil_mode)


def avg_pool(kernel: Any, stride: Any, padding: Any, ceil_mode: bool, count_include_pad: bool,
             divisor_override: Any) -> AvgPool2d:
    """torch's avg_pool2d options as an AvgPool2d (stride None or empty: the kernel)."""
    return AvgPool2d(_pair(kernel), _pair(stride) or None, _pair(padding), ceil_mode,
                     count_include_pad, divisor_override)


def output_size(where: str, size: Any) -> Any:
    """An adaptive pool's output size; None (torch: keep the input's size) is refused."""
    if size is None or (isinstance(size, (tuple, list)) and None in size):
        raise ValueError(f"{where}: output_size={size!r} (None keeps the input's size on that "
                         "axis) is not supported; give both sizes")
    return _pair(size)


def upsample(where: str, size: Any, scale_factor: Any, mode: str, align_corners: Any,
             recompute_scale_factor: Any) -> Upsample:
    """nn.Upsample's or F.interpolate's options as an Upsample."""
    if mode not in Upsample.MODES:
        raise ValueError(f"{where}: mode={mode!r} is not supported (lrp_ref interpolates "
                         f"with mode {', '.join(Upsample.MODES)})")
    if recompute_scale_factor and scale_factor is not None:
        raise ValueError(f"{where}: recompute_scale_factor=True is not supported (lrp_ref "
                         "uses 1 / scale_factor for the source positions, torch's default)")
    return Upsample(None if size is None else _pair(size),
                    None if scale_factor is None else _pair(scale_factor), mode,
                    bool(align_corners))


def _single(value: Any) -> Any:
    """A 1-D module's int option, which torch keeps as given: an int or a 1-tuple."""
    return value[0] if isinstance(value, (tuple, list)) else value


def refuse_hooks(module: Any, torch: Any) -> None:
    """Refuse global module hooks and a forward hook or pre-hook on any submodule: they
    change the forward without the converter (module by module or traced) seeing it."""
    hooks = torch.nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        raise ValueError("from_torch: global module forward hooks are registered "
                         "(torch.nn.modules.module.register_module_forward_hook); they change "
                         "every forward without the trace seeing it: remove them first")
    for path, sub in module.named_modules():
        if sub._forward_hooks or sub._forward_pre_hooks:
            kind = "forward pre-hook" if sub._forward_pre_hooks else "forward hook"
            extra = (" (the legacy torch.nn.utils.weight_norm is one: its weight is stale "
                     "until a forward runs; use torch.nn.utils.parametrizations.weight_norm "
                     "or remove_weight_norm)") if hasattr(sub, "weight_g") else ""
            raise ValueError(f"torch module '{path or '(root)'}' ({type(sub).__name__}) has a "
                             f"{kind}{extra}; hooks change the forward without the trace "
                             "seeing it: remove them before from_torch")


def _refuse(where: str, option: str, value: Any, supported: Any) -> None:
    """Raise ValueError unless the module's ``option`` has the ``supported`` value."""
    if value != supported and value != (supported, supported):
        raise ValueError(f"{where}: {option}={value!r} is not supported "
                         f"(lrp_ref computes {option}={supported!r} only)")


@functools.cache
def residual_classes() -> tuple[type, type]:
    """``(ResidualBlock, BranchSum)``: the torch module classes, defined on first use."""
    nn = import_torch().nn

    class BranchSum(nn.Module):
        """Adds stacked branch outputs: ``forward(stacked) = stacked.sum(dim=-1)``.

        A module of its own so that LRP libraries can hook the addition (Zennit:
        ``layer_map=[(BranchSum, Norm(stabilizer))]``).
        """

        def forward(self, stacked: Any) -> Any:
            return stacked.sum(dim=-1)

    class ResidualBlock(nn.Module):
        """``body(x) + shortcut(x)`` (identity shortcut when None), for :func:`from_torch`.

        Parameters
        ----------
        body : torch.nn.Module
            The residual branch.
        shortcut : torch.nn.Module or None
            The skip branch; None is the identity.
        """

        def __init__(self, body: Any, shortcut: Any = None) -> None:
            super().__init__()
            self.body = body
            self.shortcut = shortcut
            self.sum = BranchSum()

        def forward(self, x: Any) -> Any:
            skip = x if self.shortcut is None else self.shortcut(x)
            return self.sum(import_torch().stack([self.body(x), skip], dim=-1))

    for cls in (BranchSum, ResidualBlock):  # importable and picklable by their public name
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return ResidualBlock, BranchSum


def __getattr__(name: str) -> type:
    """``ResidualBlock`` and ``BranchSum``: torch classes, created (importing torch) on access."""
    if name in ("ResidualBlock", "BranchSum"):
        block, branch_sum = residual_classes()
        return block if name == "ResidualBlock" else branch_sum
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "BranchSum", "ResidualBlock"])


# ResidualBlock and BranchSum are not in __all__: a star import must not import torch
__all__ = ["from_torch", "residual_classes"]
