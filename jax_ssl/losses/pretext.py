"""Classic pretext tasks: rotation, jigsaw (max-Hamming permutation set), relative position.

Each task is a classification of a transformation the data applies; these are their
targets and losses.
"""
from __future__ import annotations

import jax.numpy as jnp

from jax_ssl.losses._common import check_labels, cross_entropy, global_mean
from jax_ssl.puzzles import RELATIVE_POSITION_OFFSETS, max_hamming_permutations  # noqa: F401


def classification_loss(logits, labels, *, axis_name=None):
    """Mean softmax cross-entropy over the global batch. logits [B, C] float; labels [B] int."""
    check_labels("labels", labels, logits)
    return global_mean(jnp.mean(cross_entropy(logits, labels)), axis_name)


def rotation_batch(images):
    """RotNet's batch: every image rotated by 0, 90, 180 and 270 degrees.

    Args: images [N, H, H, C] (square, so every rotation keeps the shape).
    Returns: (rotated [4N, H, H, C] ordered rotation-major, labels [4N] = k for a
      counter-clockwise rotation by k·90°, as ``np.rot90``).
    """
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square [N, H, H, C], got {images.shape}.")
    rotated = jnp.concatenate([jnp.rot90(images, k, axes=(1, 2)) for k in range(4)])
    labels = jnp.repeat(jnp.arange(4), images.shape[0])
    return rotated, labels


def rotation_loss(logits, labels, *, axis_name=None):
    """RotNet: 4-way cross-entropy on the rotation class. logits [B, 4]; labels [B] in 0..3."""
    check_labels("labels", labels, logits, num_classes=4)
    return classification_loss(logits, labels, axis_name=axis_name)


def jigsaw_tiles(images, permutation_index, permutations, *, grid: int = 3):
    """Cuts images into grid×grid tiles and shuffles them by a permutation of the set.

    Args:
      images: [N, H, W, C] with H, W divisible by ``grid``.
      permutation_index: [N] int, the class label: row of ``permutations`` to apply.
      permutations: [P, grid²] from ``max_hamming_permutations``.
    Returns:
      [N, grid², H/grid, W/grid, C]: output tile i is the input tile permutations[label][i]
      (input tiles numbered row-major).
    """
    n, h, w, c = images.shape
    if h % grid or w % grid:
        raise ValueError(f"images of size {h}x{w} do not split into a {grid}x{grid} grid.")
    permutations = jnp.asarray(permutations)
    if permutations.ndim != 2 or permutations.shape[1] != grid * grid:
        raise ValueError(
            f"permutations must have shape [P, {grid * grid}], got {permutations.shape}.")
    th, tw = h // grid, w // grid
    tiles = images.reshape(n, grid, th, grid, tw, c).transpose(0, 1, 3, 2, 4, 5)
    tiles = tiles.reshape(n, grid * grid, th, tw, c)
    order = permutations[permutation_index]  # [N, grid²]
    return jnp.take_along_axis(tiles, order[:, :, None, None, None], axis=1)


def jigsaw_loss(logits, permutation_index, *, axis_name=None):
    """Jigsaw: cross-entropy on which permutation of the set shuffled the tiles.

    logits [B, P]; permutation_index [B] in 0..P-1.
    """
    check_labels("permutation_index", permutation_index, logits)
    return classification_loss(logits, permutation_index, axis_name=axis_name)


def relative_position_loss(logits, position, *, axis_name=None):
    """Relative patch position (Doersch et al.): 8-way cross-entropy.

    logits [B, 8]; position [B] indexes ``RELATIVE_POSITION_OFFSETS``.
    """
    check_labels("position", position, logits, num_classes=8)
    return classification_loss(logits, position, axis_name=axis_name)
