"""Training with lrp_ref's own forward and backward: softmax cross-entropy and Adam.

Small on purpose: enough to train the shipped models (``scripts/train_models.py``)
and the tiny networks of the tutorials, in NumPy, seeded and reproducible. It
uses the layer contract only: ``net.parameters()`` gives the trainable arrays
``{key: array}`` (keys as in ``net.state()``, e.g. ``"0.weight"``; BatchNorm's
``gamma`` and ``beta`` but not its running statistics), ``net.backward(grad)``
computes the gradients, and ``net.gradients()`` gives them under the same keys.

The loss of a batch of logits ``z`` (``(B, K)``) with labels ``y`` is the mean
softmax cross-entropy::

    L = -1/B sum_b log p_b[y_b],       p_b = softmax(z_b)
    dL/dz_b = (p_b - onehot(y_b)) / B

and Adam (Kingma and Ba 2015, Algorithm 1) updates every trainable array ``w``
with its gradient ``g`` at step ``t``::

    m = beta1 m + (1 - beta1) g,          v = beta2 v + (1 - beta2) g^2
    w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

The softmax is part of the loss only: the network outputs logits, which is what
``explain`` explains.

Token sequences of different lengths (``fit_sequences``) are batched by length,
without padding, so that every sentence is trained on exactly as it will be
explained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..layers.base import Layer

Array = np.ndarray


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """The mean softmax cross-entropy and its gradient with respect to the logits.

    Parameters
    ----------
    logits : ndarray, shape (B, K)
    labels : ndarray of int, shape (B,)

    Returns
    -------
    loss : float
    grad : ndarray, shape (B, K)
        ``(softmax(logits) - onehot(labels)) / B``.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    grad = np.exp(log_p)
    grad[rows, labels] -= 1
    return float(-log_p[rows, labels].mean()), grad / len(labels)


def trainable(net: Layer) -> list[tuple[Layer, str]]:
    """``(layer, name)`` of every trainable array of ``net`` and the layers below it."""
    layers = [net, *(layer for _, layer in net.named_layers())]
    return [(layer, name) for layer in layers for name in layer.parameter_names]


class Adam:
    """Adam over every trainable array of ``net`` (``net.parameters()``), updated in place.

    Parameters
    ----------
    net : Layer
    lr, beta1, beta2, eps : float
        As in Kingma and Ba 2015 (module docstring).
    """

    def __init__(self, net: Layer, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.net = net
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {key: np.zeros_like(w) for key, w in net.parameters().items()}
        self.v = {key: np.zeros_like(w) for key, w in net.parameters().items()}
        self.t = 0

    def step(self) -> None:
        """One update from the gradients of the last ``backward`` (``net.gradients()``)."""
        gradients = self.net.gradients()
        missing = [key for key, g in gradients.items() if g is None]
        if missing:
            raise ValueError(f"Adam.step: no gradient for {missing[0]!r}: call net.backward "
                             "after net.forward first")
        self.t += 1
        for key, w in self.net.parameters().items():
            g, m, v = gradients[key], self.m[key], self.v[key]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1 ** self.t)
            v_hat = v / (1 - self.beta2 ** self.t)
            w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def fit(net: Layer, x: Array, y: Array, epochs: int, batch_size: int = 32, lr: float = 1e-3,
        seed: int = 0) -> list[float]:
    """Train ``net`` on ``(x, y)`` with Adam and softmax cross-entropy, in place.

    Parameters
    ----------
    net : Layer
        Outputs logits ``(B, K)``.
    x : ndarray
        Inputs, batch first.
    y : ndarray of int, shape (N,)
    epochs, batch_size : int
    lr : float
        Adam's learning rate.
    seed : int
        Seeds the shuffling (``np.random.default_rng(seed)``).

    Returns
    -------
    list of float
        The mean training loss of every epoch.
    """
    rng = np.random.default_rng(seed)
    optimizer = Adam(net, lr=lr)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            losses.append(adam_step(net, optimizer, x[batch], y[batch]))
        history.append(sum(losses) / len(x))
    return history


def adam_step(net: Layer, optimizer: Adam, x: Array, y: Array) -> float:
    """One update on the batch ``(x, y)``: forward, softmax cross-entropy, backward,
    Adam step. Returns the batch's summed loss (mean loss times batch size)."""
    loss, grad = softmax_cross_entropy(net.forward(x), y)
    net.backward(grad)
    optimizer.step()
    return loss * len(y)


def by_length(sequences: Sequence[Array]) -> list[Array]:
    """The indices of the sequences of every length, shortest length first."""
    lengths = np.array([len(s) for s in sequences])
    return [np.flatnonzero(lengths == n) for n in np.unique(lengths)]


def fit_sequences(net: Layer, sequences: Sequence[Array], labels: Array, epochs: int,
                  batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Train ``net`` on token sequences of different lengths, batched by length, in place.

    Every epoch shuffles the sequences of each length, cuts each length's
    shuffled list into batches of at most ``batch_size`` and takes the batches
    in a shuffled order (all with ``np.random.default_rng(seed)``), so every
    sequence is seen once per epoch and no batch mixes lengths. Loss and update
    as :func:`fit`.

    Parameters
    ----------
    net : Layer
        Reads ``(B, T)`` token ids of any length ``T``, outputs logits ``(B, K)``.
    sequences : sequence of ndarray of int
        One id array per sample.
    labels : ndarray of int, shape (N,)
    epochs, batch_size, lr, seed
        As in :func:`fit`.

    Returns
    -------
    list of float
        The mean training loss of every epoch.
    """
    rng = np.random.default_rng(seed)
    optimizer = Adam(net, lr=lr)
    groups = by_length(sequences)
    history = []
    for _ in range(epochs):
        shuffled = [index[rng.permutation(len(index))] for index in groups]
        batches = [index[k:k + batch_size] for index in shuffled
                   for k in range(0, len(index), batch_size)]
        total = 0.0
        for b in rng.permutation(len(batches)):
            index = batches[b]
            total += adam_step(net, optimizer, np.stack([sequences[k] for k in index]),
                               labels[index])
        history.append(total / len(sequences))
    return history


def accuracy_sequences(net: Layer, sequences: Sequence[Array], labels: Array) -> float:
    """The fraction of sequences whose argmax class equals the label (batched by length)."""
    correct = 0
    for index in by_length(sequences):
        ids = np.stack([sequences[k] for k in index])
        correct += int((net.forward(ids).argmax(axis=1) == labels[index]).sum())
    return correct / len(sequences)


def predict(net: Layer, x: Array, batch_size: int = 500) -> Array:
    """The argmax class of every sample, computed in batches of ``batch_size``."""
    return np.concatenate([net.forward(x[k:k + batch_size]).argmax(axis=1)
                           for k in range(0, len(x), batch_size)])


def accuracy(net: Layer, x: Array, y: Array) -> float:
    """The fraction of samples whose argmax class equals the label."""
    return float(np.mean(predict(net, x) == y))
