"""DINO's weighted k-nearest-neighbour classifier (facebookresearch/dino eval_knn.py).

Features are L2-normalised; each test image takes the ``k`` most cosine-similar training
images, which vote for their class with weight ``exp(similarity / τ)``. Defaults k=20,
τ=0.07 (DESIGN.md §6). Top-5 counts the label among the first min(5, k) classes of the
vote, as DINO's does: with fewer than 5 neighbours, classes that no neighbour voted for
are not predictions.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def _class_scores(test, train, train_labels, *, k: int, temperature: float, num_classes: int):
    similarity = _normalize(test) @ _normalize(train).T
    top_similarity, top_index = jax.lax.top_k(similarity, k)
    votes = jax.nn.one_hot(train_labels[top_index], num_classes)  # [B, k, C]
    return jnp.einsum("bkc,bk->bc", votes, jnp.exp(top_similarity / temperature))


def knn_predict(train_features, train_labels, test_features, *, num_classes: int, k: int = 20,
                temperature: float = 0.07, chunk: int = 1024) -> np.ndarray:
    """Class scores [N_test, C] of the weighted vote (argmax: the prediction)."""
    k = min(k, len(train_features))
    train = jnp.asarray(train_features, jnp.float32)
    labels = jnp.asarray(train_labels, jnp.int32)
    scores = [np.asarray(_class_scores(jnp.asarray(test_features[i:i + chunk], jnp.float32),
                                       train, labels, k=k, temperature=temperature,
                                       num_classes=num_classes))
              for i in range(0, len(test_features), chunk)]
    return np.concatenate(scores)


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (ties: lower class)."""
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def knn_accuracy(train_features, train_labels, test_features, test_labels, *, num_classes,
                 k: int = 20, temperature: float = 0.07) -> dict:
    """DINO's kNN top-1 and top-5 accuracy."""
    k = min(k, len(train_features))
    scores = knn_predict(train_features, train_labels, test_features, num_classes=num_classes,
                         k=k, temperature=temperature)
    return {"top1": topk_accuracy(scores, test_labels, 1),
            "top5": topk_accuracy(scores, test_labels, min(5, k, num_classes))}
