"""A small transformer on the sentiment template, built node by node from lrp_ref's primitives.

The shipped ``sentiment_transformer`` classifies the sentences of
:func:`lrp_ref.zoo.sentiment.make_sentiment` (whose deciding tokens are known)
with one pre-LayerNorm encoder block of two attention heads, mean pooling over
the tokens and a linear head. It is a :class:`~lrp_ref.Graph` in which every
matrix product is a node of its own, so that an explanation has a ledger line
for each (``net.table()`` lists them)::

    ids (B, T) -> embed (Embedding) -> pos (PositionalEmbedding)          x    (B, T, D)
    x -> ln1 (LayerNorm) -> q, k, v (Dense D->D)
      q -> q_heads (Reshape (T, H, d), Permute)                            (B, H, T, d)
      k -> k_heads (Reshape, Permute to (B, H, d, T))
      v -> v_heads (Reshape, Permute)                                      (B, H, T, d)
      qk (MatMul q k^T) -> scale (Scale 1/sqrt d) -> softmax (Softmax)     A    (B, H, T, T)
      av (MatMul A v) -> merge (Permute, Reshape) -> out (Dense D->D)
    res1 (Add x, out) -> ln2 -> mlp1 (Dense D->F) -> gelu -> mlp2 (Dense F->D)
    res2 (Add res1, mlp2) -> ln_f (LayerNorm)
    -> pool (Transpose, Reshape, AdaptiveAvgPool2d 1, Flatten: the mean over tokens)
    -> head (Dense D->2)                                                   logits (B, 2)

Trained by :func:`train` with lrp_ref's own backward pass
(:func:`lrp_ref.zoo.train.fit_sequences`: Adam, softmax cross-entropy,
sentences batched by length, seeded) on ``make_sentiment(TRAIN_N,
seed=TRAIN_SEED)``; tested on ``make_sentiment(TEST_N, seed=TEST_SEED)``.

The vocabulary is the template's (:meth:`~lrp_ref.zoo.sentiment.Vocabulary.of_template`)
plus :data:`BLANK`, a token that never occurs in training: its embedding row is
initialised to zero and receives no gradient, so it stays exactly zero.
Putting it in place of a word sets that word's embedding to zero and keeps
its position: the word deletion of Arras et al. 2017 ("Explaining recurrent
neural network predictions in sentiment analysis"), used for token flipping
(:func:`lrp_ref.evaluation.token_flipping`).

The two attention rules (docs/transformers.md) are the composites
``lrp_ref.composites.attnlrp`` (AttnLRP's uniform split on ``q k^T`` and
``A v``, Achtibat et al. 2024, Prop. 3.3) and ``cp_lrp`` (``A`` held constant
in ``A v``: all relevance along the values, Ali et al. 2022), both with
``Epsilon`` on Dense and LayerNorm (the Softmax, GELU and shape nodes take none).
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph
from ..layers import (
    GELU,
    AdaptiveAvgPool2d,
    Add,
    Dense,
    Embedding,
    Flatten,
    LayerNorm,
    MatMul,
    Permute,
    PositionalEmbedding,
    Reshape,
    Scale,
    Softmax,
    Transpose,
)
from ..layers.base import Layer
from .sentiment import Vocabulary, make_sentiment
from .train import accuracy_sequences, fit_sequences

Array = np.ndarray

#: Width, heads, MLP width and the longest sentence the positions cover.
DIM, HEADS, HIDDEN, MAX_LEN = 16, 2, 32, 32
#: Training: epochs, batch size, Adam's learning rate, the seed of initialisation and shuffling.
EPOCHS, BATCH, LR, SEED = 12, 32, 1e-2, 0
#: The data: ``make_sentiment(TRAIN_N, seed=TRAIN_SEED)`` trains, the other set tests.
TRAIN_N, TRAIN_SEED, TEST_N, TEST_SEED = 4000, 0, 1000, 1
#: The token that stands for a deleted word (its embedding is zero).
BLANK = "<blank>"
#: The nodes of the attention products.
QK, AV = "qk", "av"


def vocabulary() -> Vocabulary:
    """The template's tokens and :data:`BLANK` (last)."""
    return Vocabulary([*Vocabulary.of_template().tokens, BLANK])


def build_model(vocab_size: int, rng: np.random.Generator) -> Graph:
    """The untrained Graph (module docstring), weights drawn from ``rng``.

    Dense weights ``N(0, 1/fan_in)``, biases 0, LayerNorm ``gamma = 1, beta = 0``,
    embeddings and positions ``N(0, 1)``; the last token's (:data:`BLANK`) row 0.
    """
    d = DIM // HEADS

    def dense(n_in: int, n_out: int) -> Dense:
        return Dense(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in), np.zeros(n_out))

    def norm() -> LayerNorm:
        return LayerNorm(np.ones(DIM), np.zeros(DIM))

    table = rng.standard_normal((vocab_size, DIM))
    table[-1] = 0.0                                          # BLANK: a deleted word
    g = Graph()
    x = g.add(Embedding(table), g.input("ids"), name="embed")
    x = g.add(PositionalEmbedding(rng.standard_normal((MAX_LEN, DIM))), x, name="pos")
    h = g.add(norm(), x, name="ln1")
    q, k, v = (g.add(dense(DIM, DIM), h, name=n) for n in "qkv")
    split = Reshape((0, HEADS, d))                           # (B, T, D) -> (B, T, H, d)
    q = g.add(Permute((0, 2, 1, 3)), g.add(split, q, name="q_split"), name="q_heads")
    k = g.add(Permute((0, 2, 3, 1)), g.add(Reshape((0, HEADS, d)), k, name="k_split"),
              name="k_heads")                                # (B, H, d, T): k transposed
    v = g.add(Permute((0, 2, 1, 3)), g.add(Reshape((0, HEADS, d)), v, name="v_split"),
              name="v_heads")
    s = g.add(MatMul(), q, k, name=QK)                       # (B, H, T, T)
    s = g.add(Scale(1 / np.sqrt(d)), s, name="scale")
    a = g.add(Softmax(), s, name="softmax")
    o = g.add(MatMul(), a, v, name=AV)                       # (B, H, T, d)
    o = g.add(Reshape((0, DIM)), g.add(Permute((0, 2, 1, 3)), o, name="merge_heads"),
              name="merge")
    o = g.add(dense(DIM, DIM), o, name="out")
    x = g.add(Add(), x, o, name="res1")
    m = g.add(dense(DIM, HIDDEN), g.add(norm(), x, name="ln2"), name="mlp1")
    m = g.add(dense(HIDDEN, DIM), g.add(GELU(), m, name="gelu"), name="mlp2")
    x = g.add(Add(), x, m, name="res2")
    x = g.add(norm(), x, name="ln_f")
    x = g.add(Reshape((0, 0, 1)), g.add(Transpose(1, 2), x, name="pool_T"),
              name="pool_4d")                                # (B, D, T, 1)
    x = g.add(Flatten(), g.add(AdaptiveAvgPool2d(1), x, name="pool"), name="pool_flat")
    g.output(g.add(dense(DIM, 2), x, name="head"))
    return g


def encode(vocab: Vocabulary, sentences: list[list[str]]) -> list[Array]:
    """One id array per sentence (lengths vary)."""
    return [vocab.encode([s])[0] for s in sentences]


def train(seed: int = SEED, epochs: int = EPOCHS, n: int = TRAIN_N
          ) -> tuple[Graph, Vocabulary, list[float]]:
    """Build and train the model as shipped (module docstring); returns it, its
    vocabulary and the mean training loss of every epoch."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    data = make_sentiment(n, seed=TRAIN_SEED)
    net = build_model(len(vocab), rng)
    history = fit_sequences(net, encode(vocab, data.sentences), data.labels, epochs=epochs,
                            batch_size=BATCH, lr=LR, seed=seed)
    return net, vocab, history


def held_out_accuracy(net: Layer, vocab: Vocabulary) -> float:
    """The accuracy on the held-out ``make_sentiment(TEST_N, seed=TEST_SEED)``."""
    data = make_sentiment(TEST_N, seed=TEST_SEED)
    return accuracy_sequences(net, encode(vocab, data.sentences), data.labels)


def prefix(net: Graph, node: str) -> Graph:
    """The part of ``net`` that computes node ``node``: its ancestors, sharing their layers."""
    needed, nodes = {node}, []
    for n in reversed(net.nodes):
        if n.name in needed:
            needed.update(n.inputs)
            nodes.append(n)
    g = Graph()
    g.input(net.input_name)
    for n in reversed(nodes):
        g.add(n.layer, *n.inputs, name=n.name)
    g.output(node)
    return g


def attention_weights(net: Graph, ids: Array) -> Array:
    """The attention weights ``A = softmax(q k^T / sqrt d)``, ``(B, H, T, T)`` (query, key)."""
    return prefix(net, "softmax").forward(ids)


def attention_scores(net: Graph, ids: Array) -> dict[str, Array]:
    """Two attention-based token scores, ``(B, T)``, the foils of docs/transformers.md.

    * ``"attention"``: the attention each token receives, averaged over the
      heads and the queries (the model pools the mean over the tokens, so
      every query counts equally): ``a_t = mean_{h, j} A[h, j, t]``.
    * ``"rollout"``: attention rollout (Abnar and Zuidema 2020, "Quantifying
      attention flow in transformers", ACL): the residual connection added as
      ``(A_mean + I) / 2`` with ``A_mean`` the mean over heads, then
      multiplied through the layers (here one) and averaged over the queries.
      With one layer it is ``a_t / 2 + 1 / (2T)``: the same ranking as
      ``"attention"``.

    Both are non-negative and the same for every class.
    """
    A = attention_weights(net, ids).mean(axis=1)              # (B, T, T), mean over heads
    T = A.shape[-1]
    rollout = (A + np.eye(T)) / 2
    return {"attention": A.mean(axis=1), "rollout": rollout.mean(axis=1)}


__all__ = ["BLANK", "attention_scores", "attention_weights", "build_model",
           "encode", "held_out_accuracy", "prefix", "train", "vocabulary"]
