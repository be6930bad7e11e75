"""Sinkhorn-Knopp codes and the SwAV loss against the official algorithm in NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import losses


def np_sinkhorn(scores, epsilon=0.05, iters=3):
    """SwAV ``distributed_sinkhorn`` on one process, multiplicative, float64."""
    q = np.exp(scores.astype(np.float64) / epsilon).T
    k, b = q.shape
    q /= q.sum()
    for _ in range(iters):
        q /= q.sum(axis=1, keepdims=True)
        q /= k
        q /= q.sum(axis=0, keepdims=True)
        q /= b
    return (q * b).T


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def np_swav(scores, temperature=0.1, crops_for_assign=(0, 1), queue=None):
    """SwAV's training-loop loss, crop by crop."""
    v, b, _ = scores.shape
    loss = 0.0
    for i, crop in enumerate(crops_for_assign):
        out = scores[crop]
        if queue is not None:
            out = np.concatenate([queue[i], out])
        q = np_sinkhorn(out)[-b:]
        sub = 0.0
        for other in np.delete(np.arange(v), crop):
            sub -= np.mean(np.sum(q * log_softmax(scores[other] / temperature), axis=1))
        loss += sub / (v - 1)
    return loss / len(crops_for_assign)


def unit_scores(rng, *shape):
    """Scores of unit embeddings against unit prototypes, in [-1, 1] as in SwAV."""
    z = rng.normal(size=shape[:-1] + (16,))
    c = rng.normal(size=(shape[-1], 16))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    c /= np.linalg.norm(c, axis=-1, keepdims=True)
    return z @ c.T


def test_sinkhorn_matches_official_iteration(rng):
    scores = unit_scores(rng, 12, 5)
    for iters in (1, 3):
        np.testing.assert_allclose(losses.sinkhorn(scores, num_iters=iters),
                                   np_sinkhorn(scores, iters=iters), rtol=1e-4, atol=1e-7)


def test_sinkhorn_row_and_column_sums(rng):
    scores = unit_scores(rng, 32, 4)
    codes = np.asarray(losses.sinkhorn(scores, num_iters=3))
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-5)  # each sample: a distribution
    # With many iterations every prototype gets an equal share N/K of the samples.
    codes = np.asarray(losses.sinkhorn(scores, num_iters=200))
    np.testing.assert_allclose(codes.sum(axis=0), 32 / 4, rtol=1e-3)


def test_sinkhorn_of_a_padded_buffer_is_sinkhorn_of_its_valid_rows(rng):
    """DINOv2's patch codes over the masked tokens of a padded buffer: the padding rows
    take no part (N counts the valid rows) and get zero codes."""
    scores = unit_scores(rng, 12, 5)
    valid = np.arange(12) % 4 != 1
    codes = np.asarray(losses.sinkhorn(scores, epsilon=0.07, valid=valid))
    np.testing.assert_allclose(codes[valid], np_sinkhorn(scores[valid], epsilon=0.07),
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(codes[~valid], 0.0)


def test_sinkhorn_has_no_gradient(rng):
    grad = jax.grad(lambda s: jnp.sum(losses.sinkhorn(s) ** 2))(jnp.asarray(unit_scores(rng, 8, 3)))
    assert not np.any(np.asarray(grad))


def test_sinkhorn_small_epsilon_large_logits_stays_finite(rng):
    # DINOv2's Sinkhorn-Knopp teacher: ε = 0.04 on unnormalised logits. exp(50/0.04)
    # overflows float32 (and SwAV's exp(1/0.05) overflows float16); the codes must not.
    logits = 50 * rng.normal(size=(16, 10))
    codes = np.asarray(losses.sinkhorn(logits, epsilon=0.04))
    assert np.all(np.isfinite(codes))
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, rtol=1e-5)
    half = np.asarray(losses.sinkhorn(unit_scores(rng, 8, 6).astype(np.float16)))
    assert half.dtype == np.float32 and np.all(np.isfinite(half))


def test_swav_matches_official_loss(rng):
    scores = unit_scores(rng, 4, 8, 6)  # 2 global + 2 local crops
    np.testing.assert_allclose(losses.swav_loss(scores), np_swav(scores), rtol=1e-5)
    np.testing.assert_allclose(losses.swav_loss(scores, crops_for_assign=(0,), temperature=0.2),
                               np_swav(scores, 0.2, (0,)), rtol=1e-5)


def test_swav_with_queue_matches_official_loss(rng):
    scores = unit_scores(rng, 3, 8, 6)
    queue = unit_scores(rng, 2, 24, 6)
    got = losses.swav_loss(scores, queue_scores=queue)
    np.testing.assert_allclose(got, np_swav(scores, queue=queue), rtol=1e-5)
    assert not np.isclose(got, np_swav(scores), rtol=1e-3)  # the queue changes the codes


def test_swav_hand_case_uniform_scores():
    # Equal scores: every code is uniform 1/K and every prediction is uniform, so each
    # term is −Σ_k (1/K)·log(1/K) = log K.
    np.testing.assert_allclose(losses.swav_loss(np.zeros((3, 4, 5))), np.log(5), rtol=1e-6)


def test_swav_bad_arguments(rng):
    with pytest.raises(ValueError, match="crops_for_assign"):
        losses.swav_loss(unit_scores(rng, 2, 4, 3), crops_for_assign=(2,))
    with pytest.raises(ValueError, match="queue_scores"):
        losses.swav_loss(unit_scores(rng, 2, 4, 3), queue_scores=np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match="temperature"):
        losses.swav_loss(unit_scores(rng, 2, 4, 3), temperature=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        losses.sinkhorn(unit_scores(rng, 4, 3), epsilon=0.0)
