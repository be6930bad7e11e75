"""Clustering losses: SwAV's Sinkhorn-Knopp codes and swapped prediction."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_positive,
    check_rank,
    f32,
    global_logsumexp,
    global_mean,
    global_sum,
    num_devices,
)


def sinkhorn(scores, *, epsilon: float = 0.05, num_iters: int = 3, valid=None,
             axis_name=None):
    """SwAV ``distributed_sinkhorn``: equipartitioned soft codes for a batch.

    Q = exp(scores/ε)ᵀ (K×B) divided by its global sum; then ``num_iters`` times: each
    prototype row divided by its global row sum and by K, each sample column divided by
    its sum and by N (N = B × devices); finally Q × N, transposed. Every row of the result
    sums to 1 and, as iterations grow, every prototype receives N/K of the mass.

    Computed in the log domain, which equals the official multiplicative iteration but
    cannot overflow (exp(1/0.05) ≈ 5e8 overflows float16; DINOv2's teacher at ε = 0.04
    with unnormalised logits overflows float32). No gradient flows.

    Args:
      scores: [B, K] prototype scores of this shard (e.g. z·cᵀ with unit z and c).
      epsilon: ε = 0.05 (SwAV); DINOv2's Sinkhorn-Knopp centering uses ε = teacher temp.
      num_iters: 3 (SwAV ``sinkhorn_iterations``).
      valid: optional [B] bool: rows that take part (DINOv2's masked patch tokens in a
        padded buffer); the others are left out of every sum, N counts the valid rows of
        all shards, and their codes are 0.
    Returns:
      [B, K] float32 codes.
    """
    check_rank("scores", scores, 2, "[B, K]")
    check_positive("epsilon", epsilon)
    log_q = lax.stop_gradient(f32(scores)).T / epsilon  # [K, B]
    k, b = log_q.shape
    if valid is None:
        n = b * num_devices(axis_name)
    else:
        if jnp.shape(valid) != (b,):
            raise ValueError(f"valid must have shape [B]=({b},), got {jnp.shape(valid)}.")
        valid = jnp.asarray(valid, bool)
        n = jnp.maximum(global_sum(jnp.sum(valid), axis_name), 1)
        # a left-out column is -inf, and stays so: its own normalisation would be -inf − -inf
        log_q = jnp.where(valid[None, :], log_q, -jnp.inf)
    log_k, log_n = jnp.log(k), jnp.log(n)

    def columns_normalised(log_q):
        normalised = log_q - global_logsumexp(log_q, 0, None) - log_n  # samples: local
        return normalised if valid is None else jnp.where(valid[None, :], normalised, -jnp.inf)

    log_q = log_q - global_logsumexp(log_q, None, axis_name)
    for _ in range(num_iters):
        log_q = log_q - global_logsumexp(log_q, 1, axis_name) - log_k  # prototypes
        log_q = columns_normalised(log_q)
    return jnp.exp(log_q + log_n).T


def swav_loss(scores, *, temperature: float = 0.1, crops_for_assign=(0, 1),
              epsilon: float = 0.05, num_iters: int = 3, queue_scores=None, axis_name=None):
    """SwAV swapped prediction (facebookresearch/swav ``main_swav.py`` train loop).

    For each assigned crop a: q = sinkhorn(scores[a]) (with the queue's scores
    prepended and only the last B rows kept); sub-loss = mean over the other V-1 crops
    v of mean_b(-Σ_k q · log_softmax(scores[v]/τ)). The loss is the mean of the
    sub-losses over assigned crops, averaged over the global batch.

    Args:
      scores: [V, B, K] prototype scores of every crop (global crops first).
      temperature: τ = 0.1. crops_for_assign: crops whose codes are targets, (0, 1).
      epsilon, num_iters: Sinkhorn parameters (0.05, 3).
      queue_scores: optional [len(crops_for_assign), Q, K] scores of this device's
        queued embeddings against the current prototypes (queue i belongs to assigned
        crop i), as SwAV's queue once it is full.
    Returns:
      Scalar float32.
    """
    check_rank("scores", scores, 3, "[V, B, K]")
    check_positive("temperature", temperature)
    num_crops, b, k = scores.shape
    if num_crops < 2:
        raise ValueError(f"scores must hold at least 2 crops on axis 0, got {num_crops}.")
    if not crops_for_assign or any(not 0 <= a < num_crops for a in crops_for_assign):
        raise ValueError(
            f"crops_for_assign must name crops in [0, {num_crops}), got {crops_for_assign}.")
    if queue_scores is not None and (
            jnp.ndim(queue_scores) != 3 or queue_scores.shape[0] != len(crops_for_assign)
            or queue_scores.shape[2] != k):
        raise ValueError(
            f"queue_scores must have shape [{len(crops_for_assign)}, Q, {k}], got "
            f"{jnp.shape(queue_scores)}.")
    log_probs = jax.nn.log_softmax(f32(scores) / temperature, axis=-1)  # [V, B, K]
    sub_losses = []
    for i, a in enumerate(crops_for_assign):
        assign = scores[a]
        if queue_scores is not None:
            assign = jnp.concatenate([queue_scores[i], assign])
        codes = sinkhorn(assign, epsilon=epsilon, num_iters=num_iters,
                         axis_name=axis_name)[-b:]
        per_crop = -jnp.einsum("bk,vbk->v", codes, log_probs) / b  # [V]
        others = jnp.arange(num_crops) != a
        sub_losses.append(jnp.sum(jnp.where(others, per_crop, 0.0)) / (num_crops - 1))
    return global_mean(jnp.mean(jnp.stack(sub_losses)), axis_name)
