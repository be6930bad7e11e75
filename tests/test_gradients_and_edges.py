"""Gradients against independent references, constants that must get no gradient,
hyper-parameters away from their defaults, and eps placement on small inputs.

The multi-device tests compare against the single-device gradient; these check that
the single-device gradient is itself right (a stop_gradient in the wrong place would
otherwise pass both).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_clustering import np_sinkhorn, unit_scores
from test_contrastive import np_nce, np_normalize, pirl_inputs
from test_distillation import np_koleo, softmax
from test_masked import np_ijepa, np_mae
from test_noncontrastive import np_barlow

from jax_ssl import losses


def jnp_normalize(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def floats(rng, *shape, scale=1.0):
    return jnp.asarray(scale * rng.normal(size=shape), jnp.float32)


def assert_grads_equal(fn, reference, args):
    argnums = tuple(range(len(args)))
    for got, want in zip(jax.grad(fn, argnums=argnums)(*args),
                         jax.grad(reference, argnums=argnums)(*args), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_info_nce_gradient_matches_reference(rng):
    def reference(z1, z2, t=0.1):
        z = jnp_normalize(jnp.concatenate([z1, z2]))
        logits = jnp.where(jnp.eye(12, dtype=bool), -jnp.inf, z @ z.T / t)
        positive = (jnp.arange(12) + 6) % 12
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - logits[jnp.arange(12), positive])

    assert_grads_equal(losses.info_nce, reference, (floats(rng, 6, 5), floats(rng, 6, 5)))


def test_koleo_gradient_flows_through_the_neighbour(rng):
    def reference(x, eps=1e-8):
        x = jnp_normalize(x)
        dots = jnp.where(jnp.eye(len(x), dtype=bool), -1.0, x @ x.T)
        neighbour = x[jnp.argmax(dots, axis=1)]
        return -jnp.mean(jnp.log(jnp.sqrt(jnp.sum((x - neighbour + eps) ** 2, -1)) + eps))

    assert_grads_equal(losses.koleo_loss, reference, (floats(rng, 10, 6),))


@pytest.mark.parametrize("shape", [(12, 7), (8, 40)])  # D×D route and N×N Gram route
def test_barlow_twins_gradient_matches_reference(rng, shape):
    def reference(z1, z2, lambd=0.0051):
        def bn(z):
            return (z - z.mean(0)) / jnp.sqrt(z.var(0) + 1e-5)

        c = bn(z1).T @ bn(z2) / len(z1)
        off = jnp.where(jnp.eye(len(c), dtype=bool), 0.0, c)
        return jnp.sum((jnp.diag(c) - 1) ** 2) + lambd * jnp.sum(off**2)

    assert_grads_equal(losses.barlow_twins_loss, reference,
                       (floats(rng, *shape), floats(rng, *shape)))


@pytest.mark.parametrize("shape", [(12, 7), (8, 40)])
def test_vicreg_gradient_matches_reference(rng, shape):
    def reference(x, y):
        n, d = x.shape
        invariance = jnp.mean((x - y) ** 2)
        variance = covariance = 0.0
        for z in (x, y):
            z = z - z.mean(0)
            cov = z.T @ z / (n - 1)
            variance += jnp.mean(jax.nn.relu(1 - jnp.sqrt(jnp.diag(cov) + 1e-4))) / 2
            covariance += jnp.sum(jnp.where(jnp.eye(d, dtype=bool), 0.0, cov) ** 2) / d
        return 25 * invariance + 25 * variance + covariance

    assert_grads_equal(losses.vicreg_loss, reference,
                       (floats(rng, *shape, scale=0.5), floats(rng, *shape, scale=0.5)))


def test_ijepa_target_gets_no_gradient(rng):
    pred, target = floats(rng, 4, 3, 8), floats(rng, 4, 3, 8)
    assert not np.any(jax.grad(lambda t: losses.ijepa_loss(pred, t))(target))


def test_byol_target_gets_no_gradient(rng):
    p, z = floats(rng, 4, 8), floats(rng, 4, 8)
    assert not np.any(jax.grad(lambda z: losses.byol_loss(p, z))(z))


def test_ibot_teacher_gets_no_gradient(rng):
    student = floats(rng, 4, 3, 8)
    teacher = jnp.asarray(softmax(rng.normal(size=(4, 3, 8))), jnp.float32)
    mask = jnp.asarray(rng.random((4, 3)) < 0.5)
    assert not np.any(jax.grad(lambda t: losses.ibot_patch_loss(student, t, mask))(teacher))


def test_memory_bank_gets_no_gradient(rng):
    image, _, memory, indices, negatives = pirl_inputs(rng)
    grad = jax.grad(lambda m: losses.nce_loss(image, m, indices, negatives,
                                              log_normalizer=9.0))(jnp.asarray(memory, jnp.float32))
    assert not np.any(grad)


def test_pirl_lambda_weights_the_transformed_view(rng):
    image, transformed, memory, indices, negatives = pirl_inputs(rng)
    got = losses.pirl_loss(image, transformed, memory, indices, negatives, log_normalizer=9.0,
                           lambd=0.3)
    want = (0.3 * np_nce(transformed, memory, indices, negatives, 9.0, 0.07)
            + 0.7 * np_nce(image, memory, indices, negatives, 9.0, 0.07))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_memory_bank_update_momentum_weights_the_old_row(rng):
    memory = np_normalize(rng.normal(size=(10, 4)))
    indices, emb = np.array([7, 2]), rng.normal(size=(2, 4))
    new = np.asarray(losses.memory_bank_update(memory, indices, emb, momentum=0.9))
    np.testing.assert_allclose(
        new[indices], np_normalize(0.9 * memory[indices] + 0.1 * np_normalize(emb)),
        rtol=1e-5, atol=1e-6)


def test_dino_teacher_temperature_without_warmup_is_the_teacher_temp():
    value = losses.dino_teacher_temperature(5, warmup_teacher_temp=0.04, teacher_temp=0.07)
    assert float(value) == pytest.approx(0.07)


def test_max_hamming_permutations_depend_on_the_seed():
    assert not np.array_equal(losses.max_hamming_permutations(10, seed=0),
                              losses.max_hamming_permutations(10, seed=1))


def test_mae_norm_pix_eps_inside_the_sqrt_for_flat_patches(rng):
    pred, target = rng.normal(size=(3, 5, 12)), 1e-3 * rng.normal(size=(3, 5, 12))
    mask = np.ones((3, 5), np.float32)
    np.testing.assert_allclose(losses.mae_loss(pred, target, mask), np_mae(pred, target, mask),
                               rtol=1e-4)


def test_ijepa_layer_norm_eps_inside_the_sqrt_for_flat_targets(rng):
    pred, target = rng.normal(size=(4, 7, 16)), 1e-3 * rng.normal(size=(4, 7, 16))
    np.testing.assert_allclose(losses.ijepa_loss(pred, target), np_ijepa(pred, target),
                               rtol=1e-4)


def test_barlow_twins_bn_eps_inside_the_sqrt_for_small_features(rng):
    z1, z2 = 1e-3 * rng.normal(size=(12, 7)), rng.normal(size=(12, 7))
    np.testing.assert_allclose(losses.barlow_twins_loss(z1, z2), np_barlow(z1, z2), rtol=1e-4)


def test_koleo_eps_added_to_the_difference_for_duplicate_rows():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(losses.koleo_loss(x), np_koleo(x), rtol=1e-4)


def test_sinkhorn_zero_iterations_is_globally_normalised(rng):
    scores = unit_scores(rng, 12, 5)
    np.testing.assert_allclose(losses.sinkhorn(scores, num_iters=0),
                               np_sinkhorn(scores, iters=0), rtol=1e-4, atol=1e-7)


def test_nce_eps_matters_when_the_noise_prior_is_tiny(rng):
    # Pn = K/M = 1e-6 is of the order of float32 eps, which VISSL adds to denominators.
    memory = np.zeros((1_000_000, 4))
    memory[:, 0] = 1.0
    image, indices, negatives = rng.normal(size=(4, 4)), np.arange(4), np.arange(4, 8)[:, None]
    log_z = 1 / 0.07 + 14.0
    np.testing.assert_allclose(
        losses.nce_loss(image, memory, indices, negatives, log_normalizer=log_z),
        np_nce(image, memory, indices, negatives, log_z, 0.07), rtol=1e-4)
