"""BYOL, Barlow Twins and VICReg against NumPy versions of the official code."""
import numpy as np
import pytest

from jax_ssl import losses


def test_byol_hand_cases():
    p = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    z = np.array([[5.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    # aligned -> 0, orthogonal -> 2, opposite -> 4: mean 2 (= 2 − 2·cos averaged).
    np.testing.assert_allclose(losses.byol_loss(p, z), 2.0, rtol=1e-6)


def test_byol_matches_cosine_form(rng):
    p, z = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    cos = np.sum(p * z, 1) / np.linalg.norm(p, axis=1) / np.linalg.norm(z, axis=1)
    np.testing.assert_allclose(losses.byol_loss(p, z), np.mean(2 - 2 * cos), rtol=1e-5)


def np_barlow(z1, z2, lambd=0.0051):
    def bn(z):  # BatchNorm1d(affine=False), training mode: biased variance, eps 1e-5
        return (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)

    c = bn(z1).T @ bn(z2) / len(z1)
    on = np.sum((np.diag(c) - 1) ** 2)
    off = np.sum(c**2) - np.sum(np.diag(c) ** 2)
    return on + lambd * off


# (batch, features): the D×D route, and the N×N Gram route for features wider than 2N.
SHAPES = [(12, 7), (8, 40)]


@pytest.mark.parametrize("shape", SHAPES)
def test_barlow_twins_matches_official(rng, shape):
    z1, z2 = rng.normal(size=shape), rng.normal(size=shape) * 3 + 1
    np.testing.assert_allclose(losses.barlow_twins_loss(z1, z2), np_barlow(z1, z2), rtol=1e-5)
    np.testing.assert_allclose(losses.barlow_twins_loss(z1, z2, lambd=0.1),
                               np_barlow(z1, z2, 0.1), rtol=1e-5)


def test_barlow_twins_identical_decorrelated_views_give_near_zero(rng):
    # QR of centred columns gives orthonormal, still centred columns; times √N each has
    # unit biased variance, so c = I up to BN's eps and the loss is ~0.
    x = rng.normal(size=(64, 4))
    q, _ = np.linalg.qr(x - x.mean(0))
    z = q * np.sqrt(64)
    assert float(losses.barlow_twins_loss(z, z)) < 1e-6


def np_vicreg(x, y, sim=25.0, std=25.0, cov=1.0):
    n, d = x.shape
    repr_loss = np.mean((x - y) ** 2)
    x, y = x - x.mean(0), y - y.mean(0)
    std_x, std_y = np.sqrt(x.var(0, ddof=1) + 1e-4), np.sqrt(y.var(0, ddof=1) + 1e-4)
    std_loss = np.mean(np.maximum(0, 1 - std_x)) / 2 + np.mean(np.maximum(0, 1 - std_y)) / 2
    cov_x, cov_y = x.T @ x / (n - 1), y.T @ y / (n - 1)

    def off(c):
        return np.sum(c**2) - np.sum(np.diag(c) ** 2)

    return sim * repr_loss + std * std_loss + cov * (off(cov_x) / d + off(cov_y) / d)


@pytest.mark.parametrize("shape", SHAPES)
def test_vicreg_matches_official(rng, shape):
    x, y = 0.5 * rng.normal(size=shape), 0.5 * rng.normal(size=shape) + 0.2
    np.testing.assert_allclose(losses.vicreg_loss(x, y), np_vicreg(x, y), rtol=1e-5)
    np.testing.assert_allclose(losses.vicreg_loss(x, y, sim_coeff=1, std_coeff=2, cov_coeff=3),
                               np_vicreg(x, y, 1, 2, 3), rtol=1e-5)


def test_vicreg_variance_term_hand_case():
    # z1 = z2 = constant columns: invariance 0, std = √1e-4 = 0.01 per feature so the
    # variance term is 0.99, covariance 0: loss = 25 · 0.99.
    z = np.ones((4, 3))
    np.testing.assert_allclose(losses.vicreg_loss(z, z), 25 * 0.99, rtol=1e-6)


@pytest.mark.parametrize("fn", [losses.byol_loss, losses.barlow_twins_loss, losses.vicreg_loss])
def test_shape_mismatch_is_an_error(fn, rng):
    with pytest.raises(ValueError, match="same shape"):
        fn(rng.normal(size=(4, 3)), rng.normal(size=(4, 2)))
