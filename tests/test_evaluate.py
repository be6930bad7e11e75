"""Evaluation: kNN and linear probe accuracies, label subsets, checkpoint errors.

Restoring the backbone of every method is checked on the checkpoints of
``test_train.test_method_trains_on_eight_devices_and_its_backbone_restores``, which
trains each method anyway.
"""
import json
import pathlib

import numpy as np
import pytest
from test_train import tiny_config

from jax_ssl import checkpoints, train
from jax_ssl.data import sources
from jax_ssl.evaluate import job, knn, labels, linear


def _clusters(n, dim=16, classes=4, spread=0.3, seed=0):
    """Gaussian clusters around fixed centres; ``seed`` draws the samples."""
    centres = np.random.default_rng(100).normal(size=(classes, dim))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return centres[y] + spread * rng.normal(size=(n, dim)), y


def test_knn_votes_by_weighted_similarity():
    train_x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    train_y = np.array([0, 0, 1])
    scores = knn.knn_predict(train_x, train_y, np.array([[0.2, 1.0]]), num_classes=2, k=3,
                             temperature=0.5)
    sims = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]) @ np.array([0.2, 1.0])
    sims /= np.linalg.norm(train_x, axis=1) * np.linalg.norm([0.2, 1.0])
    w = np.exp(sims / 0.5)
    np.testing.assert_allclose(scores[0], [w[0] + w[1], w[2]], rtol=1e-5)


def test_knn_and_linear_probe_on_separable_and_random_features():
    x, y = _clusters(1200)
    x_test, y_test = _clusters(400, seed=1)
    assert knn.knn_accuracy(x, y, x_test, y_test, num_classes=4)["top1"] > 0.98
    assert linear.linear_probe(x, y, x_test, y_test, num_classes=4)["top1"] > 0.98
    shuffled = np.random.default_rng(1).permutation(y)
    assert abs(knn.knn_accuracy(x, shuffled, x_test, y_test, num_classes=4)["top1"]
               - 0.25) < 0.08
    assert abs(linear.linear_probe(x, shuffled, x_test, y_test, num_classes=4)["top1"]
               - 0.25) < 0.08


def test_label_subsets_keep_classes_balanced():
    y = np.repeat(np.arange(10), [100, 200, 50, 50, 50, 50, 50, 50, 50, 350])
    one_percent = labels.label_subset(y, fraction=0.01, seed=3)
    assert np.bincount(y[one_percent]).tolist() == [1, 2, 1, 1, 1, 1, 1, 1, 1, 4]
    five = labels.label_subset(y, per_class=5)
    assert np.bincount(y[five]).tolist() == [5] * 10
    assert len(set(five.tolist())) == 50
    assert not np.array_equal(labels.label_subset(y, per_class=5, seed=1), five)
    with pytest.raises(ValueError, match="exactly one of"):
        labels.label_subset(y)


@pytest.mark.parametrize("regime", [{"per_class": 3}, {"fraction": 0.05}])
def test_label_subsets_are_the_same_for_a_seed_and_differ_for_another(regime):
    y = np.repeat(np.arange(5), 60)
    first = labels.label_subset(y, seed=7, **regime)
    np.testing.assert_array_equal(labels.label_subset(y, seed=7, **regime), first)
    assert not np.array_equal(labels.label_subset(y, seed=8, **regime), first)


def test_missing_and_mismatched_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints in .* is .* the --workdir"):
        job.restore_backbone(str(tmp_path / "nothing"))
    config = tiny_config("simclr", total_steps=1)
    train.train(config, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint 7 .*\[1\]"):
        job.restore_backbone(str(tmp_path), step=7)
    # a config that builds a different backbone than the one saved
    ckpt = pathlib.Path(checkpoints.directory(str(tmp_path))) / "1" / "config"
    saved = next(ckpt.glob("*"))
    data = json.loads(saved.read_text())
    data["model"]["backbone_kwargs"]["embed_dim"] = 64
    saved.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not match vit_ti16"):
        job.restore_backbone(str(tmp_path))


def test_greyscale_raw_pixels_count_each_pixel_once_with_the_same_neighbours():
    assert sources.get_source("digits", "train", image_size=8).greyscale
    rng = np.random.default_rng(0)
    images = np.repeat(rng.random((40, 8, 8, 1), np.float32), 3, axis=-1)
    y = rng.integers(0, 3, 40)
    grey, rgb = (job._embedders(None, None, None, greyscale=g)["raw pixels"](images)
                 for g in (True, False))
    assert grey.shape == (40, 64) and rgb.shape == (40, 192)

    def scores(x):
        return knn.knn_predict(x[10:], y[10:], x[:10], num_classes=3, k=5)
    np.testing.assert_allclose(scores(grey), scores(rgb), rtol=1e-4)
