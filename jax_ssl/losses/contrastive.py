"""Contrastive losses: SimCLR's NT-Xent, MoCo v3, and PIRL's NCE against a memory bank."""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_positive,
    check_rank,
    check_same_shape,
    cross_entropy,
    device_index,
    f32,
    gather_batch,
    gather_batch_replicated,
    global_logsumexp,
    global_mean,
    l2_normalize,
    num_devices,
)


def info_nce(z1, z2, *, temperature: float = 0.1, axis_name=None):
    """SimCLR NT-Xent over both views, negatives from every device.

    Args:
      z1, z2: [B, D] projections of the two views of the same B images (local shard).
      temperature: softmax temperature τ (google-research/simclr default 0.1).
      axis_name: mesh/pmap axis to gather negatives over, or None.

    Returns:
      Scalar: cross-entropy averaged over all 2N anchors of the global batch (N = B ×
      devices). Each anchor's positive is the other view of its image; its negatives are
      the other 2N-2 samples (itself excluded). This is lightly's ``NTXentLoss``
      convention; google-research/simclr ``add_contrastive_loss`` reports the sum of the
      two views' means, i.e. twice this value. The gathered samples carry gradient, as
      SimCLR's ``tpu_cross_replica_concat`` does.
    """
    check_rank("z1", z1, 2, "[B, D]")
    check_same_shape("z1", z1, "z2", z2)
    check_positive("temperature", temperature)
    z1, z2 = l2_normalize(f32(z1)), l2_normalize(f32(z2))
    b = z1.shape[0]
    n = b * num_devices(axis_name)
    offset = device_index(axis_name) * b

    anchors = jnp.concatenate([z1, z2])  # [2B, D]
    candidates = jnp.concatenate([gather_batch(z1, axis_name), gather_batch(z2, axis_name)])
    logits = anchors @ candidates.T / temperature  # [2B, 2N]

    rows = jnp.arange(2 * b)
    first_view = rows < b
    local = jnp.where(first_view, rows, rows - b) + offset  # global image index
    self_col = jnp.where(first_view, local, local + n)
    positive_col = jnp.where(first_view, local + n, local)
    logits = jnp.where(jnp.arange(2 * n)[None, :] == self_col[:, None], -jnp.inf, logits)
    return global_mean(jnp.mean(cross_entropy(logits, positive_col)), axis_name)


def moco_v3_loss(q, k, *, temperature: float = 1.0, axis_name=None):
    """MoCo v3 ``contrastive_loss(q, k)`` with keys gathered from every device.

    Args:
      q: [B, D] predictor outputs of the online (base) encoder for one view.
      k: [B, D] momentum-encoder outputs for the other view; treated as constants.
      temperature: τ; moco-v3 defaults to 1.0 (ResNet) and uses 0.2 for ViT.
      axis_name: axis to gather keys over, or None.

    Returns:
      Scalar: 2τ · mean cross-entropy of q·k_allᵀ/τ with each query's own key (at its
      global index) as target (facebookresearch/moco-v3 ``MoCo.contrastive_loss``). The
      method symmetrises: ``moco_v3_loss(q1, k2) + moco_v3_loss(q2, k1)``.
    """
    check_rank("q", q, 2, "[B, D]")
    check_same_shape("q", q, "k", k)
    check_positive("temperature", temperature)
    q = l2_normalize(f32(q))
    k = lax.stop_gradient(l2_normalize(f32(k)))
    b = q.shape[0]
    logits = q @ gather_batch(k, axis_name).T / temperature  # [B, N]
    labels = jnp.arange(b) + device_index(axis_name) * b
    return global_mean(jnp.mean(cross_entropy(logits, labels)), axis_name) * (2 * temperature)


def memory_bank_logits(embeddings, memory_bank, indices, negative_indices, *, temperature,
                       bank_sharded: bool = False, axis_name=None):
    """Similarities of L2-normalised embeddings with their memory rows, over τ.

    Args:
      embeddings: [B, D] L2-normalised embeddings.
      memory_bank: [M, D] L2-normalised memory (one row per training image); constant.
        With ``bank_sharded``: this device's block of rows [M/devices, D] of it (device d
        holds rows d·M/devices …), as the trainer keeps a bank too large to replicate;
        on one device (``axis_name`` None) the whole bank, scored by one matmul.
      indices: [B] int, each embedding's own row (the positive).
      negative_indices: [B, K] int, rows drawn uniformly at random (the noise samples).

    Returns:
      [B, 1+K] float32: column 0 the positive, then the K negatives (VISSL ``NCEAverage``
      before its exp).
    """
    rows = jnp.concatenate([indices[:, None], negative_indices], axis=1)  # [B, 1+K]
    memory_bank = lax.stop_gradient(f32(memory_bank))
    if not bank_sharded:
        return jnp.einsum("bkd,bd->bk", memory_bank[rows], f32(embeddings)) / temperature
    # Every device scores the whole batch against its own rows (one matmul: B × M/devices,
    # not the B × (1+K) × D gathered rows, so also the faster route on one device for
    # many negatives), keeps the requested ones it holds, and the scores go to the
    # devices that asked for them.
    all_embeddings = gather_batch(f32(embeddings), axis_name)  # [B_global, D]
    all_rows = gather_batch_replicated(rows, axis_name)
    block = memory_bank.shape[0]
    local = all_rows - device_index(axis_name) * block
    held = (local >= 0) & (local < block)
    scores = jnp.take_along_axis(all_embeddings @ memory_bank.T,
                                 jnp.clip(local, 0, block - 1), axis=1)
    mine = jnp.where(held, scores, 0.0)
    if axis_name:
        mine = lax.psum_scatter(mine, axis_name, scatter_dimension=0, tiled=True)
    return mine / temperature


def _memory_size(memory_bank, memory_size, bank_sharded, axis_name):
    """Rows of the whole bank: ``memory_size`` if given (a padded sharded bank has more)."""
    if memory_size is not None:
        return memory_size
    return memory_bank.shape[0] * (num_devices(axis_name) if bank_sharded else 1)


def nce_log_normalizer(embeddings, memory_bank, indices, negative_indices, *,
                       temperature: float = 0.07, bank_sharded: bool = False,
                       memory_size: int | None = None, axis_name=None):
    """log Z of NCE, estimated once from the first batch as VISSL/lemniscate do.

    Z = mean over the global batch of exp(s/τ) (positives and negatives) × M, where M is
    the memory size (``memory_size``, default the bank's rows). The caller keeps it fixed
    for the rest of training. ``bank_sharded``: as in ``memory_bank_logits``.

    Returns: scalar float32 log Z (kept in log space: Z itself is ~1e6–1e9).
    """
    check_positive("temperature", temperature)
    logits = memory_bank_logits(  # no gradient (and none through the max over devices)
        l2_normalize(f32(lax.stop_gradient(embeddings))), memory_bank, indices,
        negative_indices, temperature=temperature, bank_sharded=bank_sharded,
        axis_name=axis_name)
    # log(mean(exp(logits))) over the global batch (VISSL averages equal-sized devices' means).
    log_mean = global_logsumexp(logits, None, axis_name) - jnp.log(
        logits.size * num_devices(axis_name))
    size = _memory_size(memory_bank, memory_size, bank_sharded, axis_name)
    return lax.stop_gradient(log_mean + jnp.log(size))


def nce_loss(embeddings, memory_bank, indices, negative_indices, *, log_normalizer,
             temperature: float = 0.07, bank_sharded: bool = False,
             memory_size: int | None = None, axis_name=None):
    """Noise-contrastive estimation against a memory bank (VISSL ``NCECriterion``).

    With x = exp(s/τ)/Z for the positive (column 0) and K uniform noise samples of a
    memory of M rows, and the noise prior Pn = K/M:
      loss = -[Σ_b log(x_pos/(x_pos + Pn + ε)) + Σ_{b,j} log(Pn/(x_j + Pn + ε))] / B,
    ε = float32 eps. Computed in log space, so no overflow for small τ.

    Args:
      embeddings: [B, D] (normalised here).
      memory_bank, indices, negative_indices, bank_sharded: as in ``memory_bank_logits``.
      log_normalizer: scalar log Z from ``nce_log_normalizer``.
      memory_size: M (default: the bank's rows; give it for a padded bank).
    Returns: scalar, mean over the global batch.
    """
    check_rank("embeddings", embeddings, 2, "[B, D]")
    check_rank("negative_indices", negative_indices, 2, "[B, K]")
    check_positive("temperature", temperature)
    logits = memory_bank_logits(
        l2_normalize(f32(embeddings)), memory_bank, indices, negative_indices,
        temperature=temperature, bank_sharded=bank_sharded, axis_name=axis_name)
    log_x = logits - log_normalizer
    num_negatives = negative_indices.shape[1]
    noise = num_negatives / _memory_size(memory_bank, memory_size, bank_sharded, axis_name)
    log_denominator = jnp.logaddexp(log_x, jnp.log(noise + jnp.finfo(jnp.float32).eps))
    log_p_model = log_x[:, 0] - log_denominator[:, 0]
    log_p_noise = jnp.log(noise) - log_denominator[:, 1:]
    per_sample = -(log_p_model + jnp.sum(log_p_noise, axis=1))
    return global_mean(jnp.mean(per_sample), axis_name)


def pirl_loss(image_embeddings, transformed_embeddings, memory_bank, indices,
              negative_indices, *, log_normalizer, temperature: float = 0.07,
              lambd: float = 0.5, bank_sharded: bool = False, memory_size: int | None = None,
              axis_name=None):
    """PIRL: λ·NCE(m_I, g(v_Iᵗ)) + (1-λ)·NCE(m_I, f(v_I)) (Misra & van der Maaten 2020).

    Args:
      image_embeddings: [B, D] f(v_I), the untransformed image's head output.
      transformed_embeddings: [B, D] g(v_Iᵗ), the jigsaw-transformed view's head output.
      memory_bank: [M, D] memory m; ``indices`` [B] the images' rows,
        ``negative_indices`` [B, K] uniform noise rows (VISSL: K=32000).
      log_normalizer: log Z (``nce_log_normalizer`` on the first batch).
      temperature: τ = 0.07; lambd: λ = 0.5 (VISSL ``loss_weights: [0.5, 0.5]``).
      bank_sharded, memory_size: as in ``nce_loss``.
    Returns: scalar. Update the memory afterwards with ``memory_bank_update`` on
    ``image_embeddings``.
    """
    check_same_shape("image_embeddings", image_embeddings,
                     "transformed_embeddings", transformed_embeddings)
    nce = lambda e: nce_loss(  # noqa: E731
        e, memory_bank, indices, negative_indices, log_normalizer=log_normalizer,
        temperature=temperature, bank_sharded=bank_sharded, memory_size=memory_size,
        axis_name=axis_name)
    return lambd * nce(transformed_embeddings) + (1 - lambd) * nce(image_embeddings)


def memory_bank_update(memory_bank, indices, embeddings, *, momentum: float = 0.5,
                       bank_sharded: bool = False, axis_name=None):
    """m_i ← normalise(momentum·m_i + (1-momentum)·normalise(e_i)) for every device's rows.

    Args:
      memory_bank: [M, D] replicated memory, or with ``bank_sharded`` this device's block
        of rows (as in ``memory_bank_logits``); indices: [B] rows of this shard's images;
      embeddings: [B, D] their (unnormalised) embeddings.
    Returns: the new memory (VISSL ``NCEAverage.update_memory``, momentum 0.5): [M, D],
      identical on every device, or this device's updated block.
    """
    check_rank("embeddings", embeddings, 2, "[B, D]")
    embeddings = lax.stop_gradient(l2_normalize(f32(embeddings)))
    indices = gather_batch_replicated(indices, axis_name)
    embeddings = gather_batch_replicated(embeddings, axis_name)
    memory_bank = f32(memory_bank)
    if bank_sharded:  # each device writes the rows it holds
        indices = indices - device_index(axis_name) * memory_bank.shape[0]
        held = (indices >= 0) & (indices < memory_bank.shape[0])
        indices = jnp.where(held, indices, memory_bank.shape[0])  # out of range: dropped
    mixed = (momentum * memory_bank.at[indices].get(mode="fill", fill_value=0.0)
             + (1 - momentum) * embeddings)
    return memory_bank.at[indices].set(l2_normalize(mixed), mode="drop")
