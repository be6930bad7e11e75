"""InfoNCE, MoCo v3 and PIRL/NCE against NumPy re-implementations and hand-derived cases."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import losses


def np_normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_info_nce(z1, z2, t):
    """Loop over the 2N anchors: cross-entropy of the positive against all but itself."""
    z = np_normalize(np.concatenate([z1, z2]).astype(np.float64))
    n = len(z1)
    total = 0.0
    for a in range(2 * n):
        positive = (a + n) % (2 * n)
        others = [j for j in range(2 * n) if j != a]
        logits = np.array([z[a] @ z[j] / t for j in others])
        total += np.log(np.sum(np.exp(logits))) - z[a] @ z[positive] / t
    return total / (2 * n)


def test_info_nce_matches_numpy(rng):
    z1, z2 = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    for t in (0.1, 0.5):
        np.testing.assert_allclose(losses.info_nce(z1, z2, temperature=t),
                                   np_info_nce(z1, z2, t), rtol=1e-5)


def test_info_nce_hand_case():
    # Two images, orthogonal views of each other: every logit is 0 except the positive
    # (1/τ) and, for anchor 0 vs the other image's views, 0. With τ = 1:
    # each anchor's loss = log(e + 1 + 1) − 1.
    z1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    z2 = z1.copy()
    np.testing.assert_allclose(losses.info_nce(z1, z2, temperature=1.0),
                               np.log(np.e + 2) - 1, rtol=1e-6)


def test_info_nce_is_scale_invariant_and_default_temperature_is_simclr(rng):
    z1, z2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    np.testing.assert_allclose(losses.info_nce(3 * z1, 0.5 * z2), losses.info_nce(z1, z2),
                               rtol=1e-6)
    np.testing.assert_allclose(losses.info_nce(z1, z2), np_info_nce(z1, z2, 0.1), rtol=1e-5)


def np_moco(q, k, t):
    q, k = np_normalize(q.astype(np.float64)), np_normalize(k.astype(np.float64))
    logits = q @ k.T / t
    logits -= logits.max(1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -np.mean(np.diag(log_softmax)) * 2 * t


def test_moco_v3_matches_numpy_and_keys_get_no_gradient(rng):
    q, k = rng.normal(size=(8, 4)), rng.normal(size=(8, 4))
    for t in (1.0, 0.2):
        np.testing.assert_allclose(losses.moco_v3_loss(q, k, temperature=t), np_moco(q, k, t),
                                   rtol=1e-5)
    grad_k = jax.grad(lambda k: losses.moco_v3_loss(jnp.asarray(q), k))(jnp.asarray(k))
    assert not np.any(np.asarray(grad_k))


def test_moco_v3_perfect_alignment_hand_case():
    # q = k = one-hot rows: logits are 1/τ on the diagonal and 0 elsewhere, so
    # CE = log(e^(1/τ) + (B−1)) − 1/τ, times 2τ.
    q = np.eye(3)
    t = 0.5
    expected = (np.log(np.exp(1 / t) + 2) - 1 / t) * 2 * t
    np.testing.assert_allclose(losses.moco_v3_loss(q, q, temperature=t), expected, rtol=1e-6)


def np_nce(embeddings, memory, indices, negatives, log_z, t):
    """VISSL NCECriterion, literally: x = exp(s/τ)/Z, Pn = K/M, eps = float32 eps."""
    e = np_normalize(embeddings.astype(np.float64))
    rows = np.concatenate([indices[:, None], negatives], axis=1)
    x = np.exp(np.einsum("bkd,bd->bk", memory[rows], e) / t) / np.exp(log_z)
    k, m, eps = negatives.shape[1], memory.shape[0], np.finfo(np.float32).eps
    ln_pmt = np.log(x[:, 0] / (x[:, 0] + k / m + eps))
    ln_pon = np.log((k / m) / (x[:, 1:] + k / m + eps))
    return -(ln_pmt.sum() + ln_pon.sum()) / len(e)


def pirl_inputs(rng, b=6, m=20, k=7, d=5):
    memory = np_normalize(rng.normal(size=(m, d)))
    indices = rng.permutation(m)[:b]
    negatives = rng.integers(0, m, size=(b, k))
    return rng.normal(size=(b, d)), rng.normal(size=(b, d)), memory, indices, negatives


@pytest.mark.parametrize("bank_sharded", [False, True], ids=["gathered rows", "one matmul"])
def test_nce_and_pirl_match_vissl_formulas(rng, bank_sharded):
    """Both routes to the memory rows' scores (on one device a "sharded" bank is the whole
    bank, scored by one matmul) give VISSL's formulas."""
    image, transformed, memory, indices, negatives = pirl_inputs(rng)
    kw = dict(bank_sharded=bank_sharded)
    log_z = float(losses.nce_log_normalizer(image, memory, indices, negatives, **kw))
    # Z = mean(exp(s/τ)) · M over the batch's positives and negatives (VISSL, first batch).
    rows = np.concatenate([indices[:, None], negatives], axis=1)
    s = np.einsum("bkd,bd->bk", memory[rows], np_normalize(image)) / 0.07
    np.testing.assert_allclose(log_z, np.log(np.exp(s).mean() * memory.shape[0]), rtol=1e-5)

    expected = np_nce(image, memory, indices, negatives, log_z, 0.07)
    np.testing.assert_allclose(
        losses.nce_loss(image, memory, indices, negatives, log_normalizer=log_z, **kw),
        expected, rtol=1e-5)
    pirl = losses.pirl_loss(image, transformed, memory, indices, negatives,
                            log_normalizer=log_z, **kw)
    np.testing.assert_allclose(
        pirl, 0.5 * np_nce(transformed, memory, indices, negatives, log_z, 0.07)
        + 0.5 * expected, rtol=1e-5)


def test_nce_is_finite_where_the_plain_formula_overflows(rng):
    image, _, memory, indices, negatives = pirl_inputs(rng)
    value = losses.nce_loss(image, memory, indices, negatives, log_normalizer=0.0,
                            temperature=0.001)  # exp(1000) overflows float64 too
    assert np.isfinite(value)


def test_memory_bank_update(rng):
    memory = np_normalize(rng.normal(size=(10, 4)))
    indices = np.array([7, 2])
    emb = rng.normal(size=(2, 4))
    new = np.asarray(losses.memory_bank_update(memory, indices, emb, momentum=0.5))
    expected = memory.copy()
    expected[indices] = np_normalize(0.5 * memory[indices] + 0.5 * np_normalize(emb))
    np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
    untouched = np.setdiff1d(np.arange(10), indices)
    np.testing.assert_array_equal(new[untouched], memory[untouched].astype(np.float32))


@pytest.mark.parametrize("fn", [losses.info_nce, losses.moco_v3_loss])
def test_bad_arguments(fn, rng):
    z = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="z2|k"):
        fn(z, z[:3])
    with pytest.raises(ValueError, match="temperature"):
        fn(z, z, temperature=0.0)
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        fn(z[0], z[0])
