"""DINO's weighted kNN against an independent NumPy reference of facebookresearch/dino's
``knn_classifier`` (eval_knn.py): cosine similarity, the k most similar training
images, votes weighted by exp(similarity / T), top-5 over the first min(5, k) classes."""
import numpy as np
import pytest

from jax_ssl.evaluate import knn

NUM_CLASSES = 7


def reference_scores(train_x, train_y, test_x, *, k, temperature):
    """Class scores [N_test, C]: the weighted vote of each test row's k nearest rows."""
    train = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    test = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    similarity = test @ train.T
    scores = np.zeros((len(test_x), NUM_CLASSES))
    for row, sims in enumerate(similarity):
        for neighbour in np.argsort(-sims)[:k]:
            scores[row, train_y[neighbour]] += np.exp(sims[neighbour] / temperature)
    return scores


def reference_accuracy(train_x, train_y, test_x, test_y, *, k, temperature):
    scores = reference_scores(train_x, train_y, test_x, k=k, temperature=temperature)
    ranked = np.argsort(-scores, axis=1, kind="stable")
    correct = ranked == test_y[:, None]
    return {"top1": correct[:, 0].mean(), "top5": correct[:, :min(5, k)].any(axis=1).mean()}


@pytest.fixture(scope="module")
def features():
    """Random features and labels: every similarity distinct, accuracies far from 0 and 1."""
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(60, 8)), rng.normal(size=(40, 8))
    return (train_x, rng.integers(0, NUM_CLASSES, 60), test_x,
            rng.integers(0, NUM_CLASSES, 40))


def test_default_vote_is_k20_at_temperature_0_07(features):
    train_x, train_y, test_x, _ = features
    np.testing.assert_allclose(
        knn.knn_predict(train_x, train_y, test_x, num_classes=NUM_CLASSES, chunk=16),
        reference_scores(train_x, train_y, test_x, k=20, temperature=0.07), rtol=1e-4)


@pytest.mark.parametrize("k, temperature", [(1, 0.07), (3, 0.5), (4, 0.1), (5, 0.07),
                                            (20, 0.07)])
def test_accuracy_matches_dino_including_top5_with_fewer_than_5_neighbours(
        features, k, temperature):
    train_x, train_y, test_x, test_y = features
    expected = reference_accuracy(train_x, train_y, test_x, test_y, k=k,
                                  temperature=temperature)
    got = knn.knn_accuracy(train_x, train_y, test_x, test_y, num_classes=NUM_CLASSES, k=k,
                           temperature=temperature)
    assert got == pytest.approx(expected)
    if k == 1:  # one neighbour: one predicted class, so top-5 is top-1
        assert got["top5"] == got["top1"]


def test_defaults_match_the_reference_accuracy(features):
    train_x, train_y, test_x, test_y = features
    assert knn.knn_accuracy(train_x, train_y, test_x, test_y, num_classes=NUM_CLASSES) == (
        pytest.approx(reference_accuracy(train_x, train_y, test_x, test_y, k=20,
                                         temperature=0.07)))
