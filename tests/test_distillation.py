"""DINO, iBOT and KoLeo against NumPy re-implementations of the official modules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_clustering import log_softmax

from jax_ssl import losses


def softmax(x):
    return np.exp(log_softmax(x))


def np_dino(student, teacher, center, student_temp=0.1, teacher_temp=0.04, momentum=0.9):
    """facebookresearch/dino DINOLoss.forward + update_center, crop by crop."""
    t = softmax((teacher - center) / teacher_temp)
    s = student / student_temp
    total, terms = 0.0, 0
    for iq in range(len(t)):
        for v in range(len(s)):
            if v == iq:
                continue
            total += np.mean(np.sum(-t[iq] * log_softmax(s[v]), axis=-1))
            terms += 1
    flat = teacher.reshape(-1, teacher.shape[-1])
    new_center = center * momentum + flat.sum(0) / len(flat) * (1 - momentum)
    return total / terms, new_center


def test_dino_matches_official(rng):
    student, teacher, center = (rng.normal(size=(6, 4, 9)), rng.normal(size=(2, 4, 9)),
                                rng.normal(size=9))
    for teacher_temp in (0.04, 0.07):
        loss, new_center = losses.dino_loss(student, teacher, center, teacher_temp=teacher_temp)
        expected_loss, expected_center = np_dino(student, teacher, center,
                                                 teacher_temp=teacher_temp)
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
        np.testing.assert_allclose(new_center, expected_center, rtol=1e-5, atol=1e-7)


def test_dino_center_update_hand_case():
    teacher = np.stack([np.full((3, 2), 1.0), np.full((3, 2), 3.0)])  # mean 2 per feature
    _, center = losses.dino_loss(np.zeros((2, 3, 2)), teacher, np.array([10.0, 0.0]))
    np.testing.assert_allclose(center, [0.9 * 10 + 0.1 * 2, 0.1 * 2], rtol=1e-6)


def test_dino_only_student_gets_gradient_and_large_logits_stay_finite(rng):
    student = jnp.asarray(100 * rng.normal(size=(4, 3, 16)), jnp.float32)
    teacher = jnp.asarray(100 * rng.normal(size=(2, 3, 16)), jnp.float32)
    grads = jax.grad(lambda s, t: losses.dino_loss(s, t, jnp.zeros(16))[0], argnums=(0, 1))(
        student, teacher)
    assert np.all(np.isfinite(grads[0])) and np.any(grads[0])
    assert not np.any(grads[1])
    half = losses.dino_loss(student.astype(jnp.float16), teacher.astype(jnp.float16),
                            jnp.zeros(16), teacher_temp=0.04)[0]
    assert half.dtype == jnp.float32 and np.isfinite(half)


def test_dino_teacher_temperature_schedule():
    # DINOLoss: np.concatenate((np.linspace(0.04, 0.07, 30), np.ones(70) * 0.07))
    expected = np.concatenate((np.linspace(0.04, 0.07, 30), np.ones(70) * 0.07))
    got = [float(losses.dino_teacher_temperature(e, warmup_teacher_temp=0.04, teacher_temp=0.07,
                                                 warmup_epochs=30)) for e in range(100)]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert float(losses.dino_teacher_temperature(5)) == pytest.approx(0.04)
    jitted = jax.jit(lambda e: losses.dino_teacher_temperature(e, teacher_temp=0.07,
                                                               warmup_epochs=30))
    assert float(jitted(jnp.int32(15))) == pytest.approx(expected[15])


def test_dino_bad_arguments(rng):
    with pytest.raises(ValueError, match="center"):
        losses.dino_loss(rng.normal(size=(3, 2, 5)), rng.normal(size=(2, 2, 5)), np.zeros(4))
    with pytest.raises(ValueError, match="student"):
        losses.dino_loss(rng.normal(size=(3, 2, 4)), rng.normal(size=(2, 2, 5)), np.zeros(5))
    with pytest.raises(ValueError, match="teacher_temp|temperature"):
        losses.dino_loss(rng.normal(size=(3, 2, 5)), rng.normal(size=(2, 2, 5)), np.zeros(5),
                         teacher_temp=0.0)


def np_ibot(student, teacher_probs, mask, student_temp=0.1):
    """dinov2 iBOTPatchLoss.forward."""
    per_token = np.sum(teacher_probs * log_softmax(student / student_temp), axis=-1)
    per_image = np.sum(per_token * mask, axis=-1) / np.maximum(mask.sum(-1), 1.0)
    return -per_image.mean()


def test_ibot_patch_loss_matches_official_and_clamps_empty_masks(rng):
    student = rng.normal(size=(4, 6, 8))
    teacher = softmax(rng.normal(size=(4, 6, 8)))
    mask = rng.random((4, 6)) < 0.4
    mask[1] = False
    np.testing.assert_allclose(losses.ibot_patch_loss(student, teacher, mask),
                               np_ibot(student, teacher, mask), rtol=1e-5)
    empty = losses.ibot_patch_loss(student, teacher, np.zeros((4, 6), bool))
    assert float(empty) == 0.0  # every image clamps its count to 1 and sums nothing


def test_ibot_ignores_unmasked_patches(rng):
    student = rng.normal(size=(2, 5, 4))
    teacher = softmax(rng.normal(size=(2, 5, 4)))
    mask = np.array([[1, 0, 1, 0, 0], [0, 0, 0, 1, 0]], bool)
    changed = student.copy()
    changed[~mask] += 10 * rng.normal(size=changed[~mask].shape)
    np.testing.assert_allclose(losses.ibot_patch_loss(changed, teacher, mask),
                               losses.ibot_patch_loss(student, teacher, mask), rtol=1e-6)


def test_ibot_patch_center_and_teacher_probs(rng):
    logits = rng.normal(size=(3, 4, 5))
    center = rng.normal(size=5)
    expected = 0.9 * center + 0.1 * logits.mean(1).sum(0) / 3
    np.testing.assert_allclose(losses.ibot_patch_center(logits, center), expected, rtol=1e-5)
    probs = losses.centered_teacher_probs(logits, center, temperature=0.07)
    np.testing.assert_allclose(probs, softmax((logits - center) / 0.07), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="mask"):
        losses.ibot_patch_loss(logits, probs, np.ones((3, 5)))


def np_koleo(x, eps=1e-8):
    """dinov2 KoLeoLoss: normalise, nearest other row by inner product, pdist with eps."""
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
    dots = x @ x.T
    np.fill_diagonal(dots, -1)
    nn = dots.argmax(1)
    d = np.linalg.norm(x - x[nn] + eps, axis=-1)
    return -np.mean(np.log(d + eps))


def test_koleo_matches_official(rng):
    x = rng.normal(size=(10, 6))
    np.testing.assert_allclose(losses.koleo_loss(x), np_koleo(x), rtol=1e-5)


def test_koleo_hand_case():
    # e1, e2, −e1 (any lengths): each row's nearest other row is at distance √2, so the
    # loss is −log √2 (the 1e-8 terms are below float32 resolution here).
    x = np.array([[3.0, 0.0], [0.0, 0.5], [-2.0, 0.0]])
    np.testing.assert_allclose(losses.koleo_loss(x), -np.log(np.sqrt(2.0)), rtol=1e-6)
    with pytest.raises(ValueError, match="2 rows"):
        losses.koleo_loss(np.ones((1, 3)))
