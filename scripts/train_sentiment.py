"""Train the shipped sentiment LSTM: ``python scripts/train_sentiment.py``.

``Embedding(V, 16) -> LSTM(16, 24) -> Dense(24, 2)`` on ``make_sentiment(4000,
seed=0)`` with lrp_ref's own forward and backpropagation through time, Adam
and softmax cross-entropy (``lrp_ref.train``), everything seeded. Sentences
are batched by length (no padding), so every sentence is seen exactly as it
will be explained. Writes ``lrp_ref/zoo/data/sentiment_lstm.npz`` and
``lrp_ref/zoo/data/sentiment_vocab.json`` and prints the accuracy on the held-out
``make_sentiment(1000, seed=1)``, to be copied into
``lrp_ref.sentiment.TEST_ACCURACY``. Takes about 25 seconds on 2 cores and is
bit-for-bit reproducible (same NumPy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import lrp_ref as lrp
from lrp_ref.zoo.sentiment import Vocabulary, make_sentiment
from lrp_ref.zoo.train import Adam, softmax_cross_entropy

DATA = Path(__file__).resolve().parent.parent / "lrp_ref" / "zoo" / "data"
EMBED, HIDDEN, EPOCHS, BATCH, LR = 16, 24, 8, 32, 5e-3


def build(vocab_size: int, rng: np.random.Generator) -> lrp.Sequential:
    """PyTorch's default initialisation: uniform(-1/sqrt(H), 1/sqrt(H)), N(0, 1) embeddings."""
    k = 1 / np.sqrt(HIDDEN)
    return lrp.Sequential([
        lrp.Embedding(rng.standard_normal((vocab_size, EMBED))),
        lrp.LSTM(rng.uniform(-k, k, (4 * HIDDEN, EMBED)), rng.uniform(-k, k, (4 * HIDDEN, HIDDEN)),
                 rng.uniform(-k, k, 4 * HIDDEN), rng.uniform(-k, k, 4 * HIDDEN)),
        lrp.Dense(rng.uniform(-k, k, (HIDDEN, 2)), rng.uniform(-k, k, 2)),
    ])


def by_length(ids: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Indices of the sentences of every length."""
    lengths = np.array([len(s) for s in ids])
    return {n: np.flatnonzero(lengths == n) for n in np.unique(lengths)}


def accuracy(net: lrp.Sequential, ids: list[np.ndarray], labels: np.ndarray) -> float:
    correct = 0
    for index in by_length(ids).values():
        batch = np.stack([ids[k] for k in index])
        correct += int((net.forward(batch).argmax(axis=1) == labels[index]).sum())
    return correct / len(ids)


def main() -> None:
    rng = np.random.default_rng(0)
    vocab = Vocabulary.of_template()
    train, test = make_sentiment(4000, seed=0), make_sentiment(1000, seed=1)
    train_ids = [vocab.encode([s])[0] for s in train.sentences]
    test_ids = [vocab.encode([s])[0] for s in test.sentences]
    net = build(len(vocab), rng)
    optimizer = Adam(net, lr=LR)
    groups = by_length(train_ids)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        shuffled = [index[rng.permutation(len(index))] for index in groups.values()]
        batches = [index[k:k + BATCH] for index in shuffled for k in range(0, len(index), BATCH)]
        losses = []
        for b in rng.permutation(len(batches)):
            index = batches[b]
            loss, grad = softmax_cross_entropy(
                net.forward(np.stack([train_ids[k] for k in index])), train.labels[index])
            net.backward(grad)
            optimizer.step()
            losses.append(loss * len(index))
        print(f"epoch {epoch + 1:2d}  loss {sum(losses) / len(train_ids):.4f}  "
              f"train {accuracy(net, train_ids, train.labels):.4f}  "
              f"({time.perf_counter() - start:.0f} s)")
    test_accuracy = accuracy(net, test_ids, test.labels)
    print(f"test accuracy {test_accuracy:.4f} "
          f"({round(test_accuracy * len(test_ids))}/{len(test_ids)})")
    lrp.save(net, DATA / "sentiment_lstm.npz")
    with open(DATA / "sentiment_vocab.json", "w", encoding="utf-8") as f:
        json.dump({"tokens": vocab.tokens}, f, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
