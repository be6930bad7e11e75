"""Non-contrastive losses: BYOL, Barlow Twins, VICReg."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_rank,
    check_same_shape,
    f32,
    global_mean,
    global_sum,
    num_devices,
)


def byol_loss(p, z, *, axis_name=None):
    """BYOL regression: mean over the global batch of ‖p̂ − ẑ‖² = 2 − 2·cos(p, z).

    Args:
      p: [B, D] online predictions; z: [B, D] target projections (no gradient).
    Returns: scalar in [0, 4]; the method sums both directions (range [0, 8], as
      deepmind-research/byol ``regression_loss`` with ``l2_normalize`` eps 1e-12 reports).
    """
    check_rank("p", p, 2, "[B, D]")
    check_same_shape("p", p, "z", z)

    def normalize(x):  # BYOL's l2_normalize: x · rsqrt(max(Σx², 1e-12))
        return x * lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))

    p = normalize(f32(p))
    z = lax.stop_gradient(normalize(f32(z)))
    return global_mean(jnp.mean(jnp.sum((p - z) ** 2, axis=-1)), axis_name)


def _off_diagonal_square_sum(c):
    return jnp.sum(c**2) - jnp.sum(jnp.diagonal(c) ** 2)


def _centre(z, axis_name):
    """Subtracts each feature's mean over the global batch from the local rows."""
    return z - global_mean(jnp.mean(z, axis=0), axis_name)


def barlow_twins_loss(z1, z2, *, lambd: float = 0.0051, eps: float = 1e-5, axis_name=None):
    """Barlow Twins redundancy reduction (facebookresearch/barlowtwins ``BarlowTwins.forward``).

    Each feature is standardised over the global batch as a synchronised BatchNorm without
    affine does (biased variance, eps 1e-5); c = z1ᵀz2/N summed over devices;
    loss = Σ_i (1 − c_ii)² + λ Σ_{i≠j} c_ij².

    Args:
      z1, z2: [B, D] projector outputs of the two views.
      lambd: λ = 0.0051 (the official code's default; the paper says 5e-3).
    """
    check_rank("z1", z1, 2, "[B, D]")
    check_same_shape("z1", z1, "z2", z2)
    n = z1.shape[0] * num_devices(axis_name)

    def standardize(z):
        centred = _centre(f32(z), axis_name)
        var = global_mean(jnp.mean(centred**2, axis=0), axis_name)
        return centred / jnp.sqrt(var + eps)

    c = global_sum(standardize(z1).T @ standardize(z2), axis_name) / n
    on_diagonal = jnp.sum((jnp.diagonal(c) - 1.0) ** 2)
    return on_diagonal + lambd * _off_diagonal_square_sum(c)


def vicreg_loss(z1, z2, *, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, eps: float = 1e-4, axis_name=None):
    """VICReg (facebookresearch/vicreg ``VICReg.forward``).

    invariance = MSE(z1, z2); on the global batch, per branch: centre, std =
    √(unbiased var + 1e-4), variance term mean(relu(1 − std)) (averaged over the two
    branches), covariance term Σ_{i≠j} cov_ij²/D with cov = zᵀz/(N−1) (summed over the
    branches); loss = 25·invariance + 25·variance + 1·covariance.

    The official code all-gathers the embeddings with gradient; here each device adds
    its own zᵀz and the sums are reduced across devices, which gives the same values and
    gradients with D×D instead of N×D traffic.

    Args: z1, z2: [B, D] expander outputs of the two views.
    """
    check_rank("z1", z1, 2, "[B, D]")
    check_same_shape("z1", z1, "z2", z2)
    z1, z2 = f32(z1), f32(z2)
    n, dim = z1.shape[0] * num_devices(axis_name), z1.shape[1]
    if n < 2:
        raise ValueError("vicreg_loss needs a global batch of at least 2 (unbiased variance).")
    invariance = global_mean(jnp.mean((z1 - z2) ** 2), axis_name)

    variance, covariance = 0.0, 0.0
    for z in (z1, z2):
        centred = _centre(z, axis_name)
        cov = global_sum(centred.T @ centred, axis_name) / (n - 1)
        std = jnp.sqrt(jnp.diagonal(cov) + eps)
        variance += jnp.mean(jax.nn.relu(1.0 - std)) / 2
        covariance += _off_diagonal_square_sum(cov) / dim
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
