"""RELAX and U-RELAX (Wickstrøm et al. 2022, "RELAX: Representation Learning
Explainability", IJCV 2023; Wickstrom/RELAX ``relax.py``, ``masking_functions.py``).

An embedding has no class score to back-propagate, so RELAX explains it by masking:
for N random smooth masks m_n (kept where 1), s_n = cos(f(x), f(x ⊙ m_n)); a pixel's
importance is the m-weighted mean of the s_n, R = Σ m_n s_n / (ε + Σ m_n), its
uncertainty the m-weighted sum of squared deviations from it, U = Σ m_n (s_n − R)²
(the official running estimator's value, not divided by Σ m_n), and U-RELAX keeps the
importance where U is at most its median.

Masks as the official ``mask_generator``: a num_cells × num_cells grid of Bernoulli(p)
ones, bilinearly resized to the image (half-pixel centres), reflect-padded by
num_cells // 2 on each side and cropped back at a random shift in [0, num_cells)².
Official defaults: 30 batches of 100 masks, 7 cells, p = 0.5; the grid is relative to
the image, so the same 7 cells serve small images (4-px cells at 28 px).
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

EPSILON = 1e-10  # the official sum_of_weights_initial_value


def relax_masks(key, num: int, shape: tuple[int, int], *, num_cells: int = 7,
                keep_probability: float = 0.5) -> jax.Array:
    """[num, H, W] float32 masks in [0, 1] (1: the pixel is kept)."""
    if not 0.0 < keep_probability <= 1.0:
        raise ValueError(f"keep_probability must be in (0, 1], got {keep_probability}.")
    if num_cells < 1:
        raise ValueError(f"num_cells must be >= 1, got {num_cells}.")
    height, width = shape
    grid_key, shift_key = jax.random.split(key)
    grid = (jax.random.uniform(grid_key, (num, num_cells, num_cells))
            < keep_probability).astype(jnp.float32)
    up = jax.image.resize(grid, (num, height, width), "bilinear", antialias=False)
    pad = num_cells // 2
    up = jnp.pad(up, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    shifts = jax.random.randint(shift_key, (num, 2), 0, num_cells)
    shifts = jnp.minimum(shifts, 2 * pad)  # torch slicing clips a shift past the padding
    return jax.vmap(lambda m, s: jax.lax.dynamic_slice(m, s, (height, width)))(up, shifts)


def _cosine(a, b):
    a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), 1e-8)
    b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), 1e-8)
    return jnp.sum(a * b, axis=-1)


def relax(embed: Callable[[jax.Array], jax.Array], image, key, *, num_masks: int = 3000,
          batch_size: int = 100, num_cells: int = 7, keep_probability: float = 0.5,
          log: Callable[[str], None] | None = None) -> dict[str, jax.Array]:
    """RELAX of one image.

    Args:
      embed: images [B, H, W, C] → embeddings [B, D] (a jitted backbone's representation).
      image: [H, W, C], as the backbone takes it (normalised: a masked pixel becomes 0,
        the mean colour, as the official masks the normalised tensor).
      num_masks: N (rounded up to whole batches of ``batch_size``).
      log: progress messages (one per tenth of the batches).
    Returns:
      {"importance" [H, W], "uncertainty" [H, W], "u_relax" [H, W], "similarities" [N]}.
    """
    image = jnp.asarray(image, jnp.float32)
    height, width = image.shape[:2]
    reference = embed(image[None])[0]
    num_batches = -(-num_masks // batch_size)

    @jax.jit
    def batch_sums(key, shift):
        masks = relax_masks(key, batch_size, (height, width), num_cells=num_cells,
                            keep_probability=keep_probability)
        similarity = _cosine(embed(image[None] * masks[..., None]), reference[None])
        centred = similarity - shift  # sums of powers around a shift: no cancellation
        return (jnp.sum(masks, 0), jnp.einsum("n,nhw->hw", centred, masks),
                jnp.einsum("n,nhw->hw", centred ** 2, masks), similarity)

    keys = jax.random.split(key, num_batches)
    shift = jnp.zeros(())
    totals, similarities = None, []
    for i in range(num_batches):
        sums = batch_sums(keys[i], shift)
        if i == 0:  # centre on the first batch's mean similarity, then start over
            shift = jnp.mean(sums[3])
            sums = batch_sums(keys[i], shift)
        similarities.append(sums[3])
        totals = sums[:3] if totals is None else tuple(t + s for t, s in zip(
            totals, sums[:3], strict=True))
        if log and (i + 1) % max(num_batches // 10, 1) == 0:
            log(f"relax: {(i + 1) * batch_size}/{num_batches * batch_size} masks")
    weight, first, second = totals
    mean_centred = first / (EPSILON + weight)
    importance = shift + mean_centred
    uncertainty = jnp.maximum(second - 2 * mean_centred * first + mean_centred ** 2 * weight,
                              0.0)
    return {"importance": importance, "uncertainty": uncertainty,
            "u_relax": u_relax(importance, uncertainty),
            "similarities": jnp.concatenate(similarities)}


def u_relax(importance, uncertainty):
    """U-RELAX: the importance where the uncertainty is at most its median, else 0."""
    return importance * (uncertainty <= jnp.median(uncertainty))
