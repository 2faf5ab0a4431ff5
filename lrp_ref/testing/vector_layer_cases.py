"""Known-answer cases for the layers added after schema 1 (docs/vectors.md, schema 2).

Conv2d with groups, dilation, the padding modes and ``padding='same'`` with an
even kernel; Conv1d; ConvTranspose2d; MaxPool2d with ``ceil_mode``, padding and
dilation; AvgPool2d with ``count_include_pad=False`` and ``divisor_override``;
AdaptiveAvgPool2d and AdaptiveMaxPool2d; Upsample; every element-wise
activation (relevance passes unchanged); the Mul (gate) and Product merge nodes;
and the transformer rules: LayerNorm and RMSNorm (Zero, Epsilon, Pass),
Softmax, MatMul (AttnLRP's uniform rule and CP-LRP's), Product. The hand-worked
examples of docs/transformers.md are cases with ``known`` answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import Graph
from ..layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AddConstant,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    ChannelShuffle,
    Chunk,
    ConcatConstant,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Dense,
    Flatten,
    Hardsigmoid,
    Hardswish,
    Identity,
    LayerNorm,
    LeakyReLU,
    MatMul,
    MaxPool1d,
    MaxPool2d,
    Mish,
    Mul,
    Permute,
    PositionalEmbedding,
    Product,
    ReLU,
    ReLU6,
    Reshape,
    RMSNorm,
    Scale,
    Sigmoid,
    SiLU,
    Slice,
    Softmax,
    Softplus,
    Tanh,
    Transpose,
    Upsample,
)
from ..multihead_attention import MultiheadAttention
from ..network import Sequential
from ..rules import AlphaBeta, Epsilon, Flat, Pass, Rule, WSquare, Zero
from .vector_case import Case, rng_for

Array = np.ndarray

#: The rules every new linear layer is run under, by case-name slug.
LINEAR_RULES: dict[str, Rule] = {
    "zero": Zero(), "eps-0.25": Epsilon(0.25), "alphabeta-2-1": AlphaBeta(2, 1),
    "flat": Flat(), "wsquare": WSquare(),
}
#: Where a padded copy or a partial window is what matters: LRP-0, alpha-beta, Flat.
PADDING_RULES = ("zero", "alphabeta-2-1", "flat")


def _head(rng: np.random.Generator, features: int) -> list[Any]:
    """ReLU, Flatten, Dense(features, 3): the end of every image case."""
    return [ReLU(), Flatten(), Dense(rng.standard_normal((features, 3)),
                                     rng.standard_normal(3))]


def _conv_cases() -> list[Case]:
    """Each linear layer with its options, under every rule of LINEAR_RULES (or a few)."""
    nets: list[tuple[str, str, Callable[[np.random.Generator], Sequential], tuple[int, ...],
                     tuple[str, ...]]] = [
        ("conv2d-groups-dilation", "Conv2d(4 -> 4, 3x3, groups=2, dilation=2, padding=2)",
         lambda r: Sequential([Conv2d(r.standard_normal((4, 2, 3, 3)), r.standard_normal(4),
                                      padding=2, dilation=2, groups=2), *_head(r, 4 * 6 * 6)]),
         (4, 6, 6), tuple(LINEAR_RULES)),
        ("conv2d-same-even-kernel", "Conv2d(2 -> 3, 2x2, padding='same'): one row and column "
         "of zeros after the input, none before",
         lambda r: Sequential([Conv2d(r.standard_normal((3, 2, 2, 2)), r.standard_normal(3),
                                      padding="same"), *_head(r, 3 * 5 * 5)]),
         (2, 5, 5), PADDING_RULES),
        ("conv1d", "Conv1d(2 -> 4, k=3, stride=2, padding=2, dilation=2, groups=2) on (2, 11)",
         lambda r: Sequential([Conv1d(r.standard_normal((4, 1, 3)), r.standard_normal(4),
                                      stride=2, padding=2, dilation=2, groups=2),
                               *_head(r, 4 * 6)]),
         (2, 11), tuple(LINEAR_RULES)),
        ("convtranspose2d", "ConvTranspose2d(2 -> 3, 3x3, stride=2, padding=1, "
         "output_padding=1): 2x4x4 -> 3x8x8",
         lambda r: Sequential([ConvTranspose2d(r.standard_normal((2, 3, 3, 3)),
                                               r.standard_normal(3), stride=2, padding=1,
                                               output_padding=1), *_head(r, 3 * 8 * 8)]),
         (2, 4, 4), tuple(LINEAR_RULES)),
    ]
    for mode in ("reflect", "replicate", "circular"):
        nets.append((f"conv2d-padding-{mode}", f"Conv2d(2 -> 3, 3x3, padding=1, "
                     f"padding_mode={mode!r}): a padded element is a copy of an input, a "
                     "connection of its own",
                     lambda r, mode=mode: Sequential([
                         Conv2d(r.standard_normal((3, 2, 3, 3)), r.standard_normal(3),
                                padding=1, padding_mode=mode), *_head(r, 3 * 5 * 5)]),
                     (2, 5, 5), PADDING_RULES))
    cases = []
    for group, about, make, shape, slugs in nets:
        for slug in slugs:
            name = f"{group}/{slug}"
            rng = rng_for(name)
            rule = LINEAR_RULES[slug]
            cases.append(Case(name, f"{about}, {rule!r} on every layer", make(rng),
                              rng.standard_normal((2, *shape)), rule, target=np.array([0, 2])))
    return cases


def _pool_net(rng: np.random.Generator, pool: Any, pooled: int) -> Sequential:
    """Conv2d(1 -> 2, 3x3) on 1x8x8, ReLU, the pool, ReLU, Flatten, Dense."""
    return Sequential([Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)),
                       ReLU(), pool, *_head(rng, 2 * pooled)])


def _pool_cases() -> list[Case]:
    """Pool options: (name, pool, outputs per channel of the 6x6 conv map, pool rules)."""
    eps = Epsilon(1e-6)
    pools: list[tuple[str, Any, int, dict[str, Rule | None]]] = [
        ("maxpool-ceil-padding/winner", MaxPool2d(3, 2, padding=1, ceil_mode=True), 16,
         {"": None}),
        ("maxpool-ceil-padding/proportional",
         MaxPool2d(3, 2, mode="proportional", padding=1, ceil_mode=True), 16, {"": None}),
        ("maxpool-dilation-2/winner", MaxPool2d(2, 1, dilation=2), 16, {"": None}),
        ("avgpool-exclude-pad", AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                          count_include_pad=False), 16,
         {"eps-0.25": Epsilon(0.25), "flat": Flat()}),
        ("avgpool-divisor-override", AvgPool2d(2, divisor_override=3), 9,
         {"eps-0.25": Epsilon(0.25), "alphabeta-2-1": AlphaBeta(2, 1)}),
        ("adaptive-avgpool-2x4", AdaptiveAvgPool2d((2, 4)), 8,
         {"zero": Zero(), "eps-0.25": Epsilon(0.25), "flat": Flat()}),
        ("adaptive-maxpool-2x4/winner", AdaptiveMaxPool2d((2, 4)), 8, {"": None}),
        ("adaptive-maxpool-2x4/proportional", AdaptiveMaxPool2d((2, 4), mode="proportional"),
         8, {"": None}),
        ("upsample-nearest", Upsample(scale_factor=2), 144, {"eps-0.25": Epsilon(0.25)}),
        ("upsample-bilinear", Upsample(scale_factor=2, mode="bilinear"), 144,
         {"eps-0.25": Epsilon(0.25), "flat": Flat()}),
        ("upsample-bilinear-align-corners",
         Upsample(size=(9, 9), mode="bilinear", align_corners=True), 81,
         {"eps-0.25": Epsilon(0.25)}),
    ]
    cases = []
    for group, pool, pooled, rules in pools:
        for slug, pool_rule in rules.items():
            name = f"{group}/{slug}" if slug else group
            rng = rng_for(name)
            cases.append(Case(name, f"{pool!r} under {pool_rule!r} between Epsilon(1e-6) "
                              "layers", _pool_net(rng, pool, pooled),
                              rng.standard_normal((2, 1, 8, 8)),
                              [eps, None, pool_rule, None, None, eps], target=np.array([1, 0])))
    return cases


def _one_d_and_shape_cases() -> list[Case]:
    """Conv1d - BatchNorm1d - ReLU - a 1-d pool; and the shape layers with a constant."""
    eps = Epsilon(1e-6)
    cases = []
    for slug, pool, pool_rule in (("maxpool1d", MaxPool1d(3, 2, padding=1), None),
                                  ("avgpool1d", AvgPool1d(2), Epsilon(0.25))):
        name = f"conv1d-batchnorm-pool/{slug}"
        rng = rng_for(name)
        net = Sequential([Conv1d(rng.standard_normal((4, 2, 3)), rng.standard_normal(4),
                                 padding=1),
                          BatchNorm1d(rng.uniform(0.5, 1.5, 4), rng.standard_normal(4),
                                      rng.standard_normal(4), rng.uniform(0.5, 2.0, 4)),
                          ReLU(), pool, *_head(rng, 4 * 5)[1:]])
        cases.append(Case(name, f"Conv1d - BatchNorm1d (the affine map, Epsilon(0.25)) - ReLU "
                          f"- {pool!r} under {pool_rule!r} - Dense, Epsilon(1e-6)", net,
                          rng.standard_normal((2, 2, 10)),
                          [eps, Epsilon(0.25), None, pool_rule, None, eps],
                          target=np.array([1, 2])))
    name = "shape-and-constant/eps-1e-6"
    rng = rng_for(name)
    net = Sequential([Dense(rng.standard_normal((6, 12)), rng.standard_normal(12)),
                      Reshape((4, 3)), ChannelShuffle(2), Permute((0, 2, 1)),
                      Slice((slice(0, 2),)), Scale(rng.uniform(0.5, 2.0, (2, 4))),
                      AddConstant(rng.standard_normal((2, 4))), ReLU(), Flatten(),
                      Dense(rng.standard_normal((8, 3)), rng.standard_normal(3))])
    cases.append(Case(name, "Dense - Reshape((4, 3)) - ChannelShuffle(2) - Permute((0, 2, 1)) - "
                      "Slice(:2) - Scale (relevance passes) - AddConstant (the constant takes "
                      "its share as a bias) - ReLU - Dense, Epsilon(1e-6)", net,
                      rng.standard_normal((2, 6)), eps, target=np.array([0, 2])))
    return cases


#: Every element-wise activation: it takes no rule, relevance passes unchanged.
ACTIVATIONS: dict[str, Callable[[], Any]] = {
    "leaky-relu-0.1": lambda: LeakyReLU(0.1), "elu-0.5": lambda: ELU(0.5),
    "gelu": GELU, "gelu-tanh": lambda: GELU("tanh"), "silu": SiLU, "hardswish": Hardswish,
    "hardsigmoid": Hardsigmoid, "relu6": ReLU6, "tanh": Tanh, "sigmoid": Sigmoid,
    "softplus-2": lambda: Softplus(2.0), "mish": Mish, "identity": Identity,
}


def _activation_cases() -> list[Case]:
    cases = []
    for slug, make in ACTIVATIONS.items():
        name = f"activation/{slug}"
        rng = rng_for(name)
        net = Sequential([Dense(2 * rng.standard_normal((5, 4)), rng.standard_normal(4)), make(),
                          Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))])
        cases.append(Case(name, f"Dense - {make()!r} - Dense under Epsilon(1e-6): the "
                          "activation passes relevance unchanged (R_in = R_out)", net,
                          rng.standard_normal((2, 5)), Epsilon(1e-6), target=np.array([2, 1])))
    return cases


def _dense(g: Graph, rng: np.random.Generator, source: str, name: str, n_in: int,
           n_out: int) -> str:
    return g.add(Dense(rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)), source,
                 name=name)


def _gate_net(rng: np.random.Generator) -> Graph:
    """x -> Dense signal; x -> Dense -> Sigmoid gate; Mul(signal, gate) -> Dense head."""
    g = Graph()
    x = g.input("x")
    signal = _dense(g, rng, x, "signal", 4, 3)
    gate = g.add(Sigmoid(), _dense(g, rng, x, "gate_in", 4, 3), name="gate")
    g.output(_dense(g, rng, g.add(Mul(), signal, gate, name="mul"), "head", 3, 3))
    return g


def _product_net(rng: np.random.Generator, nested: bool) -> Graph:
    """x -> three Dense branches -> Product (one three-input node, or (a b) c) -> Dense."""
    g = Graph()
    x = g.input("x")
    a, b, c = (_dense(g, rng, x, name, 4, 3) for name in ("a", "b", "c"))
    if nested:
        p = g.add(Product(), g.add(Product(), a, b, name="ab"), c, name="abc")
    else:
        p = g.add(Product(), a, b, c, name="abc")
    g.output(_dense(g, rng, p, "head", 3, 3))
    return g


def _attention_net(rng: np.random.Generator, constant: int | None, T: int = 3,
                   d: int = 4) -> Graph:
    """One attention head on tokens (B, d, T): Conv1d(k=1) per token for q, k, v;
    softmax(q k^T) v through MatMul, Softmax, MatMul(constant); LayerNorm; Dense head."""
    g = Graph()
    x = g.input("x")

    def per_token(name: str) -> str:
        return g.add(Conv1d(rng.standard_normal((d, d, 1)) / 2, rng.standard_normal(d)), x,
                     name=name)

    q = g.add(Transpose(1, 2), per_token("q"), name="q_t")                  # (B, T, d)
    k = per_token("k")                                                      # (B, d, T) = k^T
    v = g.add(Transpose(1, 2), per_token("v"), name="v_t")
    a = g.add(Softmax(), g.add(MatMul(1e-6), q, k, name="scores"), name="softmax")
    o = g.add(MatMul(1e-6, constant), a, v, name="context")
    n = g.add(LayerNorm(rng.uniform(0.5, 1.5, d), rng.standard_normal(d)), o, name="norm")
    g.output(_dense(g, rng, g.add(Flatten(), n, name="flat"), "head", T * d, 3))
    return g


def _graph_cases() -> list[Case]:
    cases = []
    for slug, rule in (("eps-1e-6", Epsilon(1e-6)), ("alphabeta-2-1", AlphaBeta(2, 1))):
        name = f"graph/mul-gate/{slug}"
        rng = rng_for(name)
        cases.append(Case(name, "a Graph: a Dense signal times a sigmoid gate (Mul: the signal "
                          f"takes all, the gate nothing), a Dense head; under {rule!r}",
                          _gate_net(rng), rng.standard_normal((2, 4)), rule,
                          target=np.array([0, 2])))
    for slug, nested in (("three-inputs", False), ("nested", True)):
        name = f"graph/product/{slug}"
        rng = rng_for(name)
        cases.append(Case(name, "a Graph: three Dense branches multiplied element-wise "
                          f"({'(a b) c, two Product nodes' if nested else 'one Product node'}: "
                          "each factor gets R / n), a Dense head; Epsilon(1e-6)",
                          _product_net(rng, nested), rng.standard_normal((2, 4)),
                          Epsilon(1e-6), target=np.array([1, 0])))
    return cases


def _transformer_cases() -> list[Case]:
    eps = Epsilon(1e-6)
    norm_rules = {"zero": Zero(), "eps-0.25": Epsilon(0.25), "pass": Pass()}
    cases = []
    for kind in ("layernorm", "rmsnorm"):
        variants = [(slug, rule, False) for slug, rule in norm_rules.items()]
        if kind == "layernorm":
            variants.append(("detach-mean-zero", Zero(), True))
        for slug, rule, detach in variants:
            name = f"transformer/{kind}/{slug}"
            rng = rng_for(name)
            gamma = rng.uniform(0.5, 1.5, 4)
            norm = (LayerNorm(gamma, rng.standard_normal(4), detach_mean=detach)
                    if kind == "layernorm" else RMSNorm(gamma))
            net = Sequential([Dense(rng.standard_normal((5, 4)), rng.standard_normal(4)), norm,
                              Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))])
            cases.append(Case(name, f"Dense - {norm!r} under {rule!r} - Dense (Epsilon(1e-6))",
                              net, rng.standard_normal((2, 5)), [eps, rule, eps],
                              target=np.array([0, 1])))
    rng = rng_for("transformer/softmax")
    cases.append(Case("transformer/softmax", "Dense - Softmax (AttnLRP Prop. 3.1; its Taylor "
                      "bias booked) - Dense, Epsilon(1e-6)",
                      Sequential([Dense(rng.standard_normal((5, 4)), rng.standard_normal(4)),
                                  Softmax(),
                                  Dense(rng.standard_normal((4, 3)), rng.standard_normal(3))]),
                      rng.standard_normal((2, 5)), eps, target=np.array([2, 0])))
    for slug, constant in (("attnlrp", None), ("cp-lrp", 0)):
        name = f"transformer/attention/{slug}"
        rng = rng_for(name)
        rule_name = "uniform (AttnLRP)" if constant is None else "constant=0 (CP-LRP)"
        cases.append(Case(name, f"one attention head on 3 tokens of 4 features: Conv1d(k=1) "
                          f"q, k, v, softmax(q k^T) v with the A V MatMul {rule_name}, "
                          "LayerNorm, Dense head; Epsilon(1e-6) on the linear layers and "
                          "LayerNorm", _attention_net(rng, constant),
                          rng.standard_normal((2, 4, 3)), eps, target=np.array([1, 2])))
    cases += _token_cases()
    return cases


def _token_cases() -> list[Case]:
    """Tokens (B, T, d): torch's self-attention (a Graph of the primitives, masked),
    a learned positional embedding and a class token, each between Dense layers on the
    tokens; Epsilon(1e-6)."""
    eps, cases = Epsilon(1e-6), []

    def tokens(rng: np.random.Generator, middle: Any, T: int, d: int = 4) -> Sequential:
        return Sequential([Dense(rng.standard_normal((5, d)) / 2, rng.standard_normal(d)),
                           middle, Flatten(),
                           Dense(rng.standard_normal((T * d, 3)), rng.standard_normal(3))])

    for slug in ("attnlrp", "cp-lrp"):
        name = f"transformer/multihead-attention/{slug}"
        rng = rng_for(name)
        causal = np.triu(np.ones((3, 3), dtype=bool), k=1)          # True: blocked
        padding = np.array([[False, False, False], [False, False, True]])
        mha = MultiheadAttention(rng.standard_normal((12, 4)) / 2, rng.standard_normal((4, 4)),
                                 2, rng.standard_normal(12), rng.standard_normal(4),
                                 attn_mask=causal, key_padding_mask=padding, attention=slug)
        cases.append(Case(name, f"Dense on 3 tokens, MultiheadAttention (torch's layout, 2 "
                          f"heads of 2, a causal mask and a key padding mask, attention="
                          f"{slug!r}), Flatten, Dense; Epsilon(1e-6)", tokens(rng, mha, 3),
                          rng.standard_normal((2, 3, 5)), eps, target=np.array([0, 2])))
    rng = rng_for("transformer/positional-embedding")
    cases.append(Case("transformer/positional-embedding", "Dense on 3 tokens, "
                      "PositionalEmbedding (max_len 5: rows 0-2 used, a bias of eq. (6)), "
                      "Flatten, Dense; Epsilon(1e-6)",
                      tokens(rng, PositionalEmbedding(rng.standard_normal((5, 4))), 3),
                      rng.standard_normal((2, 3, 5)), eps, target=np.array([1, 0])))
    rng = rng_for("transformer/class-token")
    cases.append(Case("transformer/class-token", "Dense on 3 tokens, ConcatConstant (a class "
                      "token before them: its positions' relevance absorbed), Flatten, Dense; "
                      "Epsilon(1e-6)",
                      tokens(rng, ConcatConstant(rng.standard_normal((1, 4))), 4),
                      rng.standard_normal((2, 3, 5)), eps, target=np.array([2, 1])))
    return cases


def layer_cases() -> list[Case]:
    """The random-weight cases of this module, in a fixed order."""
    return (_conv_cases() + _pool_cases() + _one_d_and_shape_cases() + _activation_cases()
            + _graph_cases() + _transformer_cases())


# -- the worked examples of docs/transformers.md, as known answers --------------------------

TRANSFORMERS = "docs/transformers.md (worked examples)"
#: explain needs a rule for a Graph; these graphs have no layer that takes one (Chunk,
#: MatMul, Softmax, Product, Flatten carry their own), so it applies nowhere
NO_RULE = Zero()


def _chunks(g: Graph, x: str, n: int, axis: int) -> list[str]:
    return [g.add(Chunk(n, k, axis), x, name=f"x{k + 1}") for k in range(n)]


def _attention_by_hand(constant: int | None) -> Graph:
    """softmax(Q K^T) V with Q, K^T, V the three chunks of the input's last axis."""
    g = Graph()
    Q, KT, V = _chunks(g, g.input("x"), 3, 2)
    a = g.add(Softmax(), g.add(MatMul(0.0), Q, KT, name="scores"), name="softmax")
    g.output(g.add(Flatten(), g.add(MatMul(0.0, constant), a, V, name="values"), name="flat"))
    return g


def _product_by_hand(grouping: str) -> Graph:
    g = Graph()
    x1, x2, x3 = _chunks(g, g.input("x"), 3, 1)
    if grouping == "left":
        g.output(g.add(Product(), g.add(Product(), x1, x2, name="x12"), x3, name="x123"))
    elif grouping == "right":
        g.output(g.add(Product(), x1, g.add(Product(), x2, x3, name="x23"), name="x123"))
    else:
        g.output(g.add(Product(), x1, x2, x3, name="x123"))
    return g


def hand_cases() -> list[Case]:
    """LayerNorm, RMSNorm, Softmax, two-token attention and Product, worked on paper."""
    ln3 = math.log(3.0)
    # input rows [Q | K^T | V]: Q = I, K^T = [[0, ln 3], [0, 0]], V = [[4, 0], [0, 2]]
    qkv = np.array([[[1.0, 0.0, 0.0, ln3, 4.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 2.0]]])
    O = np.array([[1.0, 1.5, 2.0, 1.0]])                 # A V, A = [[1/4, 3/4], [1/2, 1/2]]
    q = -3 / 32 * ln3
    cases = [
        Case("transformer/by-hand/layernorm-zero", "LayerNorm, x = (1, 1, 4), eps = 2 (sigma "
             "= 2), gamma = (2, 4, 1), beta = (2, 1, 1): y = (1, -1, 2); Zero() from R = y: "
             "the affine step gives h = (-1, -2, 1) and books beta, the centring "
             "R = x (s - mean s), s = (1, 2, 1/2)",
             Sequential([LayerNorm([2.0, 4.0, 1.0], [2.0, 1.0, 1.0], eps=2.0)]),
             np.array([[1.0, 1.0, 4.0]]), [Zero()],
             output_relevance=np.array([[1.0, -1.0, 2.0]]), source=TRANSFORMERS,
             known={"relevance": [[-1 / 6, 5 / 6, -8 / 3]]}),
        Case("transformer/by-hand/rmsnorm-eps-1", "RMSNorm(gamma = (5, 5), eps = 0), x = (1, "
             "7): sigma = 5, y = (1, 7); Epsilon(1) from R = (8, 8): R_i = y_i / (y_i + 1) R_i",
             Sequential([RMSNorm([5.0, 5.0], eps=0.0)]), np.array([[1.0, 7.0]]),
             [Epsilon(1.0)], output_relevance=np.array([[8.0, 8.0]]), source=TRANSFORMERS,
             known={"relevance": [[4.0, 7.0]]}),
        Case("transformer/by-hand/softmax", "Softmax of x = (0, ln 3), s = (1/4, 3/4), from "
             "R = (1/2, 3/4): R_in = x (R - s sum R) = (0, -3/16 ln 3)",
             Sequential([Softmax()]), np.array([[0.0, ln3]]), [None],
             output_relevance=np.array([[0.5, 0.75]]), source=TRANSFORMERS,
             known={"relevance": [[0.0, -3 / 16 * ln3]]}),
        Case("transformer/by-hand/attention-attnlrp", "softmax(Q K^T) V on two tokens, the "
             "input's rows [Q | K^T | V], Q = I, K^T = [[0, ln 3], [0, 0]], V = [[4, 0], "
             "[0, 2]], MatMul(0) uniform, from R = O = [[1, 3/2], [2, 1]]: R(V) = [[3/2, 0], "
             "[0, 5/4]], Q_11 and KT_12 get -3/32 ln 3 each",
             _attention_by_hand(None), qkv, NO_RULE, output_relevance=O, source=TRANSFORMERS,
             known={"relevance": [[[q, 0, 0, q, 1.5, 0], [0, 0, 0, 0, 0, 1.25]]]}),
        Case("transformer/by-hand/attention-cp-lrp", "the same with MatMul(0, constant=0) "
             "for A V (CP-LRP): R(V) = V_ip sum_j A_ji = [[3, 0], [0, 5/2]], nothing reaches "
             "the softmax", _attention_by_hand(0), qkv, NO_RULE, output_relevance=O,
             source=TRANSFORMERS,
             known={"relevance": [[[0, 0, 0, 0, 3.0, 0], [0, 0, 0, 0, 0, 2.5]]]}),
    ]
    for grouping, known in (("flat", [8.0, 8.0, 8.0]), ("left", [6.0, 6.0, 12.0]),
                            ("right", [12.0, 6.0, 6.0])):
        cases.append(Case(f"transformer/by-hand/product-{grouping}", "x1 x2 x3 with (2, 3, 4) "
                          "from R = 24, Product (R / n to each factor) as "
                          + {"flat": "one three-input node", "left": "(x1 x2) x3",
                             "right": "x1 (x2 x3)"}[grouping]
                          + ": the uniform split depends on association",
                          _product_by_hand(grouping), np.array([[2.0, 3.0, 4.0]]), NO_RULE,
                          output_relevance=np.array([[24.0]]), source=TRANSFORMERS,
                          known={"relevance": [known]}))
    return cases


__all__ = ["hand_cases", "layer_cases"]
