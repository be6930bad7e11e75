"""Non-contrastive losses: BYOL, Barlow Twins, VICReg."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_rank,
    check_same_shape,
    f32,
    gather_batch,
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


def _centre(z, axis_name):
    """Subtracts each feature's mean over the global batch from the local rows."""
    return z - global_mean(jnp.mean(z, axis=0), axis_name)


def _sum_sq_cross_product(a, b, axis_name):
    """‖aᵀb‖²_F for row shards a, b [B, D] of a global batch of N rows.

    aᵀb is D×D, and ‖aᵀb‖²_F = ⟨aaᵀ, bbᵀ⟩ over N×N Gram matrices. This takes whichever
    route costs fewer multiply-adds per device: B·D² for the D×D product, B·N·D for each
    Gram block (one when ``a is b``). At the official 2048 × 8192 sizes of VICReg and
    Barlow Twins the Gram route does 4× and 2× less work.
    """
    rows, dim = a.shape
    n = rows * num_devices(axis_name)
    if (1 if a is b else 2) * n < dim:
        gram_a = a @ gather_batch(a, axis_name).T  # [B, N]: this shard's rows against all
        gram_b = gram_a if a is b else b @ gather_batch(b, axis_name).T
        return global_sum(jnp.sum(gram_a * gram_b), axis_name)
    product = global_sum(a.T @ b, axis_name)
    return jnp.sum(product * product)


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

    z1, z2 = standardize(z1), standardize(z2)
    diagonal = global_sum(jnp.sum(z1 * z2, axis=0), axis_name) / n  # c_ii
    off_diagonal = _sum_sq_cross_product(z1, z2, axis_name) / n**2 - jnp.sum(diagonal**2)
    return jnp.sum((diagonal - 1.0) ** 2) + lambd * off_diagonal


def vicreg_loss(z1, z2, *, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, eps: float = 1e-4, axis_name=None):
    """VICReg (facebookresearch/vicreg ``VICReg.forward``).

    invariance = MSE(z1, z2); on the global batch, per branch: centre, std =
    √(unbiased var + 1e-4), variance term mean(relu(1 − std)) (averaged over the two
    branches), covariance term Σ_{i≠j} cov_ij²/D with cov = zᵀz/(N−1) (summed over the
    branches); loss = 25·invariance + 25·variance + 1·covariance.

    The official code all-gathers the embeddings (with gradient) and forms the D×D
    covariance; here Σ cov_ij² comes from the cheaper of the D×D covariance and the N×N
    Gram matrix (``_sum_sq_cross_product``), with the same values and gradients.

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
        var = global_sum(jnp.sum(centred**2, axis=0), axis_name) / (n - 1)  # cov_ii
        variance += jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(var + eps))) / 2
        sum_sq_cov = _sum_sq_cross_product(centred, centred, axis_name) / (n - 1) ** 2
        covariance += (sum_sq_cov - jnp.sum(var**2)) / dim
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
