"""Masked-patch prediction: MAE's patch layout and loss, I-JEPA's feature regression."""
from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from jax_ssl.losses._common import (
    check_rank,
    check_same_shape,
    f32,
    global_mean,
    global_sum,
    is_concrete,
)


def patchify(images, patch_size: int):
    """Splits images into flattened non-overlapping patches, MAE's layout.

    Args:
      images: [N, H, W, C] with H and W multiples of ``patch_size``.
    Returns:
      [N, L, p·p·C], L = (H/p)(W/p): patches in row-major order, each patch's values
      ordered (row in patch, column in patch, channel), as facebookresearch/mae
      ``patchify`` (``nchpwq->nhwpqc``) orders them.
    """
    check_rank("images", images, 4, "[N, H, W, C]")
    n, h, w, c = images.shape
    p = patch_size
    if p <= 0 or h % p or w % p:
        raise ValueError(
            f"images of size {h}x{w} do not split into {p}x{p} patches; pass a patch_size "
            f"that divides both, or resize the images.")
    x = images.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(patches, patch_size: int, *, grid=None, channels: int = 3):
    """Inverse of ``patchify``: [N, L, p·p·C] → [N, H, W, C].

    Args:
      grid: (rows, columns) of patches; default a square grid (L must be a square).
    """
    check_rank("patches", patches, 3, "[N, L, p*p*C]")
    n, length, dim = patches.shape
    p = patch_size
    if dim != p * p * channels:
        raise ValueError(
            f"patches hold {dim} values each, but patch_size={p} and channels={channels} "
            f"need {p * p * channels}.")
    if grid is None:
        side = math.isqrt(length)
        if side * side != length:
            raise ValueError(f"{length} patches are not a square grid; pass grid=(rows, cols).")
        grid = (side, side)
    rows, cols = grid
    if rows * cols != length:
        raise ValueError(f"grid {grid} holds {rows * cols} patches, got {length}.")
    x = patches.reshape(n, rows, cols, p, p, channels).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, rows * p, cols * p, channels)


def mae_loss(pred, target, mask, *, norm_pix: bool = True, eps: float = 1e-6,
             axis_name=None):
    """MAE reconstruction loss on removed patches (facebookresearch/mae ``forward_loss``).

    Args:
      pred: [N, L, D] decoder predictions for every patch.
      target: [N, L, D] ``patchify(images, p)``.
      mask: [N, L], 1 where the patch was removed (hidden from the encoder), 0 where kept.
      norm_pix: standardise each target patch by its own mean and *unbiased* variance:
        (x−μ)/√(var+1e-6) (the official ``--norm_pix_loss``, used by all its recipes).
    Returns:
      Σ(per-patch MSE · mask)/Σ mask over the global batch, float32.
    """
    check_rank("pred", pred, 3, "[N, L, D]")
    check_same_shape("pred", pred, "target", target)
    if jnp.shape(mask) != pred.shape[:2]:
        raise ValueError(f"mask must have shape [N, L]={pred.shape[:2]}, got {jnp.shape(mask)}.")
    if is_concrete(mask) and axis_name is None and not jnp.any(mask):
        raise ValueError("mask marks no removed patch (all zeros): the MAE loss is undefined; "
                         "use a mask ratio > 0 so that at least one patch is masked.")
    target = f32(target)
    if norm_pix:
        if target.shape[-1] < 2:
            raise ValueError("norm_pix needs at least 2 values per patch (unbiased variance).")
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True, ddof=1)
        target = (target - mean) / jnp.sqrt(var + eps)
    per_patch = jnp.mean((f32(pred) - target) ** 2, axis=-1)  # [N, L]
    mask = f32(mask)
    return global_sum(jnp.sum(per_patch * mask), axis_name) / global_sum(jnp.sum(mask), axis_name)


def ijepa_loss(pred, target, *, normalize_target: bool = True, eps: float = 1e-5,
               valid=None, axis_name=None):
    """I-JEPA feature regression (facebookresearch/ijepa ``train.py`` ``loss_fn``).

    Args:
      pred: [..., D] predictor outputs at the target blocks' patches.
      target: [..., D] the EMA target encoder's outputs at the same patches (constants).
      normalize_target: apply the parameter-free layer norm over D (eps 1e-5,
        ``F.layer_norm``) that I-JEPA applies to the target encoder's output.
      valid: optional bool, broadcastable to ``pred.shape[:-1]``: the real tokens of
        padded index sets; only they count.
    Returns:
      smooth-L1 (β = 1) mean over all (valid) elements of the global batch (the official
      mean per GPU, averaged over GPUs by its ``AllReduce``: the same with equal counts).
    """
    check_same_shape("pred", pred, "target", target)
    target = lax.stop_gradient(f32(target))
    if normalize_target:
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True)
        target = (target - mean) / jnp.sqrt(var + eps)
    diff = jnp.abs(f32(pred) - target)
    smooth_l1 = jnp.where(diff < 1.0, 0.5 * diff**2, diff - 0.5)
    if valid is None:
        return global_mean(jnp.mean(smooth_l1), axis_name)
    valid = jnp.broadcast_to(jnp.asarray(valid, bool), pred.shape[:-1])
    total = global_sum(jnp.sum(jnp.where(valid[..., None], smooth_l1, 0.0)), axis_name)
    count = global_sum(jnp.sum(valid), axis_name) * pred.shape[-1]
    return total / jnp.maximum(count, 1)
