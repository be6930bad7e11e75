"""I-JEPA's multi-block masks, token gathering and narrow ViT predictor.

Follows facebookresearch/ijepa: ``src/masks/multiblock.py`` (``MaskCollator``),
``src/masks/utils.py`` (``apply_masks``) and ``src/models/vision_transformer.py``
(``VisionTransformerPredictor``).

Layout used throughout: patches are numbered in row-major order over the patch grid
(index = row·W + column), as the ViT's patch embedding flattens them. A batch's masks
are ``context_idx [B, Nc]`` and ``target_idx [T, B, Nt]`` (T target blocks), int32.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl.models.layers import trunc_normal_02, varying_like
from jax_ssl.models.vit import Block, sincos_2d_pos_embed


def _grid_hw(grid_size: int | tuple[int, int]) -> tuple[int, int]:
    return (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)


@dataclasses.dataclass(frozen=True)
class MultiBlockMaskSampler:
    """I-JEPA's multi-block masking (``MaskCollator``), in NumPy for the host input pipeline.

    Per batch it draws one target block size and one context block size; per image it
    places ``num_targets`` target blocks, then one context block from which the union of
    the targets is removed. Every image's index sets are then truncated to the smallest
    count in the batch, so the arrays have static shapes per batch (the official collator
    does the same). Shapes still vary between batches, and a jitted step compiles once
    per distinct (Nc, Nt): on the 14x14 grid with B = 64, 300 batches gave 4 values of Nt
    and 45 of Nc (64 pairs). With several hosts, draw the masks of the global batch with
    one seed on every host and keep the local rows, so that all hosts agree on the shapes.

    Official behaviours kept on purpose (the official code wins, DESIGN.md):
      * one uniform draw sets both the scale and the aspect ratio of a block size;
      * block corners are drawn from ``[0, H - h)``, so a block never touches the last
        row or column of the grid (and h, w are clipped to at most H - 1, W - 1);
      * a block is valid only with *more than* ``min_keep`` patches; when the context
        cannot avoid every target after 20 tries, the constraint of the last target is
        dropped (then the next, every 20 further tries), so in that rare case the context
        overlaps a target. On the 16x16 (ViT-H/14 at 224) and 14x14 (ViT-B/16 at 224) grids
        this never happens: the targets cannot cover the context block.
    Target blocks are never cut (all have exactly the sampled h·w patches), so only the
    context index sets are truncated. Index sets are sorted ascending, and truncation keeps
    the first ones, as the official ``torch.nonzero(...)[:min_keep]``.

    Defaults are the official configs' (``configs/in1k_vith14_ep300.yaml``): 4 targets of
    scale 0.15-0.2 and aspect 0.75-1.5, 1 context of scale 0.85-1.0 and aspect 1.0.
    ``min_keep`` is the ``MaskCollator`` default 4 (that config sets 10). Not implemented:
    ``nenc > 1`` context blocks and ``allow_overlap=True`` (no official config uses them).

    Usage::

        sampler = MultiBlockMaskSampler(grid_size=14)
        rng = np.random.default_rng(seed)
        context_idx, target_idx = sampler(rng, batch_size)  # [B, Nc], [T, B, Nt]
    """

    grid_size: int | tuple[int, int]
    num_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect_ratio: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect_ratio: tuple[float, float] = (1.0, 1.0)
    min_keep: int = 4

    # Failed placements of the context before the next target's constraint is dropped.
    _TRIES_PER_RELAXATION = 20
    # ``draw`` takes the size draw u from the midpoints of this many equal cells of [0, 1)
    # (the sizes are piecewise constant in u: a table of them makes the buffers static).
    SIZE_TABLE_CELLS = 4096

    def __post_init__(self):
        height, width = _grid_hw(self.grid_size)
        if height < 2 or width < 2:
            raise ValueError(f"the patch grid must be at least 2x2, got {height}x{width}.")
        if self.num_targets < 1:
            raise ValueError(f"num_targets must be at least 1, got {self.num_targets}.")

    def __call__(self, rng: np.random.Generator, batch_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Samples one batch's masks.

        Args:
          rng: the generator every draw comes from (seed it for reproducible masks).
          batch_size: B, the number of images.
        Returns:
          ``context_idx`` int32 [B, Nc] and ``target_idx`` int32 [T, B, Nt]: sorted patch
          indices of the context and of each target block of each image.
        """
        target_size = self.sample_block_size(rng, self.target_scale, self.target_aspect_ratio)
        context_size = self.sample_block_size(rng, self.context_scale,
                                              self.context_aspect_ratio)
        contexts, targets = [], []
        for _ in range(batch_size):
            blocks = [self._place_block(rng, target_size) for _ in range(self.num_targets)]
            context = self._place_block(rng, context_size, avoid=blocks)
            targets.append([np.flatnonzero(b) for b in blocks])
            contexts.append(np.flatnonzero(context))
        num_context = min(len(c) for c in contexts)
        num_target = min(len(t) for image in targets for t in image)
        context_idx = np.stack([c[:num_context] for c in contexts])
        target_idx = np.stack([[t[:num_target] for t in image] for image in targets], axis=1)
        return context_idx.astype(np.int32), target_idx.astype(np.int32)

    def sample_block_size(self, rng: np.random.Generator, scale: tuple[float, float],
                          aspect_ratio: tuple[float, float]) -> tuple[int, int]:
        """A block's (height, width) in patches, as ``MaskCollator._sample_block_size``.

        Raises ValueError when the block could never hold more than ``min_keep`` patches
        (the official code would loop forever).
        """
        h, w = self._block_size(rng.random(), scale, aspect_ratio)  # one draw for both
        if h * w <= self.min_keep:
            height, width = _grid_hw(self.grid_size)
            raise ValueError(
                f"a {h}x{w} block on the {height}x{width} patch grid cannot hold more than "
                f"min_keep={self.min_keep} patches; use a larger grid, larger block scales "
                f"or a smaller min_keep.")
        return h, w

    def _block_size(self, u: float, scale, aspect_ratio) -> tuple[int, int]:
        height, width = _grid_hw(self.grid_size)
        area = int(height * width * (scale[0] + u * (scale[1] - scale[0])))
        ratio = aspect_ratio[0] + u * (aspect_ratio[1] - aspect_ratio[0])
        h = min(round(math.sqrt(area * ratio)), height - 1)
        w = min(round(math.sqrt(area / ratio)), width - 1)
        return h, w

    def size_table(self, scale: tuple[float, float],
                   aspect_ratio: tuple[float, float]) -> np.ndarray:
        """[SIZE_TABLE_CELLS, 2] int32 (h, w) of ``sample_block_size`` at the cells'
        midpoints u; ValueError (``sample_block_size``'s) if one holds ≤ min_keep patches."""
        cells = self.SIZE_TABLE_CELLS
        table = np.array([self._block_size((i + 0.5) / cells, tuple(scale), tuple(aspect_ratio))
                          for i in range(cells)], np.int32)
        small = table[np.prod(table, axis=1) <= self.min_keep]
        if len(small):
            height, width = _grid_hw(self.grid_size)
            raise ValueError(
                f"a {small[0, 0]}x{small[0, 1]} block on the {height}x{width} patch grid "
                f"cannot hold more than min_keep={self.min_keep} patches; use a larger grid, "
                f"larger block scales or a smaller min_keep.")
        return table

    def buffer_sizes(self) -> tuple[int, int]:
        """Static (context, target) index-set sizes of ``draw``: the largest blocks."""
        return tuple(int(np.prod(self.size_table(scale, aspect), axis=1).max())
                     for scale, aspect in ((self.context_scale, self.context_aspect_ratio),
                                           (self.target_scale, self.target_aspect_ratio)))

    def draw(self, key, image_ids, *, axis_name=None) -> dict[str, jax.Array]:
        """``__call__`` in JAX, under jit, with static shapes: the masks of the images
        ``image_ids`` [B] (their global indices: an image's masks do not depend on how the
        batch is split over devices).

        One (h, w) per batch for the targets and one for the context, from ``key`` (u on
        the ``size_table`` grid); per image, from ``fold_in(key, id)``, the target blocks
        and the context block minus the targets (redrawn, with the targets' constraints
        relaxed, as ``__call__``). The context sets are truncated to the smallest in the
        global batch (``axis_name``; the official: in each GPU's batch).

        Returns a dict of ``context_idx`` [B, Nc] and ``target_idx`` [T, B, Nt] (sorted
        indices padded with 0 to the ``buffer_sizes``) and ``context_valid`` [Nc],
        ``target_valid`` [Nt] bool (which of their columns are real, for every image).
        """
        height, width = _grid_hw(self.grid_size)
        rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
        size_key, image_key = jax.random.split(key)
        target_size, context_size = (
            jnp.asarray(self.size_table(scale, aspect))[
                jax.random.randint(k, (), 0, self.SIZE_TABLE_CELLS)]
            for k, (scale, aspect) in zip(jax.random.split(size_key), (
                (self.target_scale, self.target_aspect_ratio),
                (self.context_scale, self.context_aspect_ratio)), strict=True))

        def block(key, size):
            top_key, left_key = jax.random.split(key)
            top = jax.random.randint(top_key, (), 0, height - size[0])  # [0, H − h)
            left = jax.random.randint(left_key, (), 0, width - size[1])
            return ((rows >= top) & (rows < top + size[0])
                    & (cols >= left) & (cols < left + size[1]))

        def image(key):
            targets_key, context_key = jax.random.split(key)
            targets = jax.vmap(lambda k: block(k, target_size))(
                jax.random.split(targets_key, self.num_targets))  # [T, H, W]

            def place_context(carry):
                failures, key, _, _ = carry
                key, draw_key = jax.random.split(key)
                kept = (jnp.arange(self.num_targets)
                        < self.num_targets - failures // self._TRIES_PER_RELAXATION)
                mask = block(draw_key, context_size) & ~jnp.any(
                    targets & kept[:, None, None], axis=0)
                fits = jnp.sum(mask) > self.min_keep
                return failures + jnp.where(fits, 0, 1), key, mask, fits

            start = tuple(varying_like(x, key) for x in (
                jnp.zeros((), jnp.int32), key, jnp.zeros((height, width), bool),
                jnp.asarray(False)))
            _, _, context, _ = jax.lax.while_loop(lambda c: ~c[3], place_context, start)
            return targets.reshape(self.num_targets, -1), context.reshape(-1)

        targets, contexts = jax.vmap(lambda i: image(jax.random.fold_in(image_key, i)))(
            image_ids)
        num_context = jnp.min(jnp.sum(contexts, axis=1))
        if axis_name is not None:
            num_context = -jax.lax.pmax(-num_context, axis_name)
        context_size_max, target_size_max = self.buffer_sizes()

        def indices(size):
            return lambda m: jnp.nonzero(m, size=size, fill_value=0)[0].astype(jnp.int32)
        return {
            "context_idx": jax.vmap(indices(context_size_max))(contexts),
            "target_idx": jnp.swapaxes(jax.vmap(jax.vmap(indices(target_size_max)))(targets),
                                       0, 1),
            "context_valid": jnp.arange(context_size_max) < num_context,
            "target_valid": jnp.arange(target_size_max) < target_size[0] * target_size[1],
        }

    def _place_block(self, rng: np.random.Generator, size: tuple[int, int],
                     avoid: list[np.ndarray] = ()) -> np.ndarray:
        """Places an h x w block uniformly; returns its [H, W] bool mask minus ``avoid``.

        Redraws the position until more than ``min_keep`` patches remain, dropping the
        last remaining mask of ``avoid`` after every ``_TRIES_PER_RELAXATION`` failures
        (``MaskCollator._sample_block_mask``).
        """
        height, width = _grid_hw(self.grid_size)
        h, w = size
        failures = 0
        while True:
            top = rng.integers(0, height - h)  # exclusive bound, as torch.randint
            left = rng.integers(0, width - w)
            mask = np.zeros((height, width), dtype=bool)
            mask[top:top + h, left:left + w] = True
            for other in avoid[:max(len(avoid) - failures // self._TRIES_PER_RELAXATION, 0)]:
                mask &= ~other
            if mask.sum() > self.min_keep:
                return mask
            failures += 1


def gather_tokens(x, idx):
    """Tokens of each image at the given positions (I-JEPA's ``apply_masks``).

    Args:
      x: [B, L, D] tokens.
      idx: int [..., B, K] positions in [0, L); leading axes (e.g. target blocks) are
        kept, so ``gather_tokens(x, target_idx)`` with ``target_idx [T, B, K]`` gives
        [T, B, K, D].
    Returns:
      [..., B, K, D] with out[..., b, k] = x[b, idx[..., b, k]].
    """
    x = jnp.asarray(x)
    if jnp.ndim(idx) < 2 or jnp.shape(idx)[-2] != x.shape[0]:
        raise ValueError(f"idx must be [..., B, K] with B = {x.shape[0]} (the batch of x), "
                         f"got shape {jnp.shape(idx)}.")
    return x[jnp.arange(x.shape[0])[:, None], idx]


class IJEPAPredictor(nn.Module):
    """I-JEPA's narrow ViT predictor (``VisionTransformerPredictor``).

    Maps the context tokens to ``predictor_dim`` and adds the fixed 2-D sin-cos position
    embedding of their patches; appends, per target block, one learned mask token plus the
    position embedding of each target patch; runs ``depth`` pre-norm blocks, a LayerNorm
    (eps 1e-6) and a Linear back to the encoder width; returns the outputs at the mask
    tokens.

    Target blocks are predicted independently, each with the whole context, as the
    official does by repeating the context once per block (``x.repeat(len(masks), 1,
    1)``): here the blocks are a leading axis, flattened block-major into the
    transformer's batch, so the official [T·B, Nt, D] output is
    ``out.reshape(T * B, Nt, D)`` and the targets to compare with are
    ``gather_tokens(target_features, target_idx)``.

    Defaults: ``predictor_dim`` 384 (``pred_emb_dim`` in every official config); ``depth``
    6 is the code default (``init_model``), while the released ViT-H and ViT-g configs set
    ``pred_depth: 12``; ``num_heads`` should be the encoder's (the official passes
    ``encoder.num_heads``: 12 for ViT-B, 16 for ViT-H). ``predictor_embed``,
    ``predictor_proj`` and the mask token start as N(0, 0.02), biases at 0, as the
    official; the blocks are ``jax_ssl.models.vit.Block`` with its own (timm/MAE)
    initialisation, where I-JEPA draws every Linear from N(0, 0.02). ``drop_path_rate``
    rises linearly over the blocks (0 in the official runs).

    Call: ``predictor(context [B, Nc, D], context_idx [B, Nc], target_idx [T, B, Nt],
    train=False, context_valid=None, target_valid=None)`` → [T, B, Nt, D] in ``dtype``, D
    the encoder width (taken from ``context``). ``train`` enables drop path (needs a
    ``"dropout"`` rng). ``context_valid`` [Nc] / ``target_valid`` [Nt] bool mark the real
    columns of padded index sets (``MultiBlockMaskSampler.draw``): no token attends to
    padding, whose outputs mean nothing.
    """

    grid_size: int | tuple[int, int]
    predictor_dim: int = 384
    depth: int = 6
    num_heads: int = 12
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, context, context_idx, target_idx, *, train: bool = False,
                 context_valid=None, target_valid=None):
        num_targets, batch, target_len = target_idx.shape
        context_len, embed_dim = context.shape[1:]
        pos = jnp.asarray(sincos_2d_pos_embed(self.predictor_dim, self.grid_size),
                          self.dtype)  # [H·W, Dp]
        dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=trunc_normal_02)

        x = dense(self.predictor_dim, name="predictor_embed")(context) + pos[context_idx]
        mask_token = self.param("mask_token", trunc_normal_02, (self.predictor_dim,))
        queries = mask_token.astype(self.dtype) + pos[target_idx]  # [T, B, Nt, Dp]
        x = jnp.broadcast_to(x, (num_targets, *x.shape))
        x = jnp.concatenate([x, queries], axis=2).reshape(
            num_targets * batch, context_len + target_len, self.predictor_dim)

        key_mask = None
        if context_valid is not None or target_valid is not None:
            key_mask = jnp.broadcast_to(jnp.concatenate([
                jnp.ones(context_len, bool) if context_valid is None else context_valid,
                jnp.ones(target_len, bool) if target_valid is None else target_valid]),
                x.shape[:2])
        rates = np.linspace(0.0, self.drop_path_rate, self.depth)
        for i in range(self.depth):
            x = Block(num_heads=self.num_heads, mlp_ratio=self.mlp_ratio,
                      drop_path=float(rates[i]), dtype=self.dtype, name=f"blocks_{i}")(
                x, train=train, key_mask=key_mask)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="predictor_norm")(
            x[:, context_len:])
        x = dense(embed_dim, name="predictor_proj")(x)
        return x.reshape(num_targets, batch, target_len, embed_dim)
