"""Block-wise patch masks for masked image modelling (iBOT, DINOv2), drawn under jit.

BEiT's ``MaskingGenerator``, which iBOT (bytedance/ibot ``loader.py``,
``ImageFolderMask``) and DINOv2 (``dinov2/data/masking.py``) use: rectangles of random
area and aspect ratio are added until the masked count reaches the target. Per block,
up to 10 attempts: area ~ U(min_block, min(remaining, max_block)), aspect
log-uniform in ``aspect_ratio``, h = round(√(area·aspect)), w = round(√(area/aspect));
an attempt counts only when h < H and w < W, and its rectangle (top-left uniform over
the positions that fit) is kept when it masks between 1 and ``remaining`` new patches.
The loop stops when the target is reached or when 10 attempts in a row added nothing,
so a mask may end below its target; it never exceeds it.

Here one image's mask is a ``lax.while_loop`` over blocks with static shapes, so masks
are drawn inside the jitted step, ``vmap``-ed over images with one key per image
(:func:`block_masks` folds the image's global index into the step's key: the same
masks on any number of devices).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jax_ssl.models.layers import varying_like

ATTEMPTS_PER_BLOCK = 10


def block_mask(key, grid: tuple[int, int], num_masked, *, min_block: float,
               max_block: float | None = None,
               aspect_ratio: tuple[float, float] = (0.3, 1 / 0.3)) -> jax.Array:
    """One image's mask [H·W] bool (row-major) with at most ``num_masked`` patches.

    Args:
      key: a PRNG key.
      grid: (H, W) of the patch grid.
      num_masked: the target count (a float is allowed, as iBOT's ratio·H·W); ≤ 0 gives
        an empty mask.
      min_block: the smallest area a block is drawn with (iBOT: (min(H, W) // 3)²;
        DINOv2: 4).
      max_block: the largest (DINOv2: half the patches; None: no cap, as iBOT).
      aspect_ratio: the range of h/w, drawn log-uniformly.
    """
    height, width = grid
    rows = jnp.arange(height)[:, None]
    cols = jnp.arange(width)[None, :]
    log_aspect = (math.log(aspect_ratio[0]), math.log(aspect_ratio[1]))
    target = jnp.asarray(num_masked, jnp.float32)
    cap = jnp.inf if max_block is None else max_block

    def attempt(_, carry):
        mask, key, delta, remaining = carry
        key, k_area, k_aspect, k_top, k_left = jax.random.split(key, 5)
        # between the two ends in either order, as Python's random.uniform (the budget
        # left can be below min_block; jax.random.uniform would clip to its minval)
        area = min_block + jax.random.uniform(k_area) * (jnp.minimum(remaining, cap)
                                                         - min_block)
        aspect = jnp.exp(jax.random.uniform(k_aspect, (), jnp.float32, *log_aspect))
        h = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
        w = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
        fits = (h < height) & (w < width)
        top = jax.random.randint(k_top, (), 0, jnp.maximum(height - h + 1, 1))
        left = jax.random.randint(k_left, (), 0, jnp.maximum(width - w + 1, 1))
        box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
        new = jnp.sum(box & ~mask)
        keep = (delta == 0) & fits & (new > 0) & (new <= jnp.minimum(remaining, cap))
        return (mask | (box & keep), key, jnp.where(keep, new, delta), remaining)

    def block(carry):
        mask, key, count, _ = carry
        key, attempts_key = jax.random.split(key)
        remaining = target - count
        mask, _, delta, _ = jax.lax.fori_loop(
            0, ATTEMPTS_PER_BLOCK, attempt,
            (mask, attempts_key, varying_like(jnp.zeros((), jnp.int32), key), remaining))
        return mask, key, count + delta, delta > 0

    def more(carry):
        _, _, count, added = carry
        return added & (count < target)

    # inside shard_map the loops' carries vary over the devices as the image's key does
    empty, zero, true = (varying_like(x, key) for x in (
        jnp.zeros((height, width), bool), jnp.zeros((), jnp.int32), jnp.asarray(True)))
    mask, _, _, _ = jax.lax.while_loop(more, block, (empty, key, zero, true))
    return mask.reshape(-1)


def block_masks(key, image_ids, grid: tuple[int, int], num_masked, **kwargs) -> jax.Array:
    """Masks [N, H·W] bool of the images ``image_ids`` [N] (their global indices), one per
    image from ``fold_in(key, id)``; ``num_masked`` [N] or a scalar; other arguments as
    :func:`block_mask`."""
    num_masked = jnp.broadcast_to(jnp.asarray(num_masked, jnp.float32), image_ids.shape)
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(image_ids)
    return jax.vmap(lambda k, n: block_mask(k, grid, n, **kwargs))(keys, num_masked)
