"""Masked autoencoder networks (facebookresearch/mae ``models_mae.py``).

The encoder is a ``VisionTransformer`` with MAE's fixed 2-D sin-cos position embedding,
run on the visible patches only (a random ``1 − mask_ratio`` of them per image). The
decoder embeds the encoder's tokens to its own width, fills the removed positions with a
shared learned mask token, restores the original patch order, adds its own fixed sin-cos
position embedding, and predicts every patch's p·p·C pixel values. The reconstruction
loss (``mae_loss``, on patchified targets) lives in ``jax_ssl.losses``, not here.

``params["encoder"]`` is exactly the parameter tree of
``VisionTransformer(pos_embed="sincos", ...)`` of the same size, so a pre-trained MAE
encoder is fine-tuned or probed as a plain ViT.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jax_ssl.models.vit import (
    Block,
    VisionTransformer,
    dense,
    layer_norm,
    sincos_2d_pos_embed,
    vit_kwargs,
)


def random_masking(rng: jax.Array, batch: int, num_patches: int, mask_ratio: float
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """MAE's per-sample random masking by argsort of uniform noise.

    Each image keeps the K = int(L·(1 − mask_ratio)) patches with the smallest noise.

    Returns:
      ids_keep [B, K] int32: the kept patches, in order of increasing noise.
      mask [B, L] float32: 1 for a removed patch, 0 for a kept one (original order).
      ids_restore [B, L] int32: the inverse permutation; gathering the shuffled sequence
        (kept patches first, then removed ones) with it gives back the original order.
    """
    num_keep = int(num_patches * (1 - mask_ratio))
    noise = jax.random.uniform(rng, (batch, num_patches))
    ids_shuffle = jnp.argsort(noise, axis=1).astype(jnp.int32)
    ids_restore = jnp.argsort(ids_shuffle, axis=1).astype(jnp.int32)
    shuffled_mask = (jnp.arange(num_patches) >= num_keep).astype(jnp.float32)
    mask = jnp.take_along_axis(jnp.broadcast_to(shuffled_mask, (batch, num_patches)),
                               ids_restore, axis=1)
    return ids_shuffle[:, :num_keep], mask, ids_restore


class MAEDecoder(nn.Module):
    """MAE's decoder: Linear → mask tokens → unshuffle → + sin-cos pos → blocks → norm →
    Linear to the pixels of a patch.

    Call: ``(latent [B, 1 + K, D_enc], ids_restore [B, L], grid (H, W), *, train)`` →
    [B, L, patch_dim] (CLS dropped), with H·W = L.
    """

    patch_dim: int
    embed_dim: int = 512
    depth: int = 8
    num_heads: int = 16
    mlp_ratio: float = 4.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, latent, ids_restore, grid: tuple[int, int], *, train: bool = False):
        x = dense(self.embed_dim, self.dtype, "embed")(latent)
        batch, num_patches = ids_restore.shape
        mask_token = self.param("mask_token", nn.initializers.normal(0.02),
                                (1, 1, self.embed_dim))
        mask_tokens = jnp.broadcast_to(mask_token.astype(self.dtype),
                                       (batch, num_patches + 1 - x.shape[1], self.embed_dim))
        patches = jnp.concatenate([x[:, 1:], mask_tokens], axis=1)  # shuffled order
        patches = jnp.take_along_axis(patches, ids_restore[..., None], axis=1)
        x = jnp.concatenate([x[:, :1], patches], axis=1)
        x = x + sincos_2d_pos_embed(self.embed_dim, grid, cls_token=True).astype(self.dtype)
        for i in range(self.depth):
            x = Block(self.num_heads, self.mlp_ratio, dtype=self.dtype,
                      name=f"blocks_{i}")(x, train=train)
        x = layer_norm(self.dtype, "norm")(x)
        return dense(self.patch_dim, self.dtype, "pred")(x)[:, 1:]


class MAE(nn.Module):
    """Masked autoencoder: ViT encoder on the visible patches + light decoder.

    Attributes:
      patch_size, embed_dim, depth, num_heads: the encoder ViT.
      decoder_embed_dim, decoder_depth, decoder_num_heads: the decoder (MAE: 512, 8, 16).
      mlp_ratio: of both.
      image_size: the resolution the encoder's position embedding is made for.
      mask_ratio: fraction of patches removed (0.75).
      dtype: compute dtype.

    Call: ``(images [B, image_size, image_size, C], *, train=False)`` with a
    ``"masking"`` rng (``train`` is passed to the blocks for a uniform call signature;
    MAE pre-trains without drop path, so it changes nothing) → dict with
      * ``pred`` [B, L, p·p·C]: every patch's predicted pixels, in ``patchify``'s
        (row, column, channel) order;
      * ``mask`` [B, L] float32, 1 for a removed patch (the loss is taken on those);
      * ``latent`` [B, 1 + K, D]: the encoder's normalised tokens, CLS first, the visible
        patches in ``ids_restore``'s shuffled order;
      * ``ids_restore`` [B, L] int32.
    """

    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    image_size: int = 224
    mask_ratio: float = 0.75
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, *, train: bool = False) -> dict[str, jax.Array]:
        batch, height, width, channels = images.shape
        if (height, width) != (self.image_size, self.image_size):
            # One resolution, as MAE pre-trains (timm's PatchEmbed asserts it too); the
            # encoder alone (a ViT) does take other resolutions.
            raise ValueError(f"MAE expects {self.image_size} px images, got {height}x{width}.")
        grid = (height // self.patch_size, width // self.patch_size)
        ids_keep, mask, ids_restore = random_masking(
            self.make_rng("masking"), batch, grid[0] * grid[1], self.mask_ratio)
        encoder = VisionTransformer(
            patch_size=self.patch_size, embed_dim=self.embed_dim, depth=self.depth,
            num_heads=self.num_heads, mlp_ratio=self.mlp_ratio, pos_embed="sincos",
            image_size=self.image_size, dtype=self.dtype, name="encoder")
        encoded = encoder(images, train=train, patch_ids=ids_keep)
        latent = jnp.concatenate([encoded["cls"][:, None], encoded["patch_tokens"]], axis=1)
        pred = MAEDecoder(
            self.patch_size ** 2 * channels, self.decoder_embed_dim, self.decoder_depth,
            self.decoder_num_heads, self.mlp_ratio, self.dtype, name="decoder",
        )(latent, ids_restore, grid, train=train)
        return {"pred": pred, "mask": mask, "latent": latent, "ids_restore": ids_restore}


def _constructor(name: str, doc: str, **defaults) -> Callable[..., MAE]:
    def constructor(**overrides) -> MAE:
        return MAE(**{**defaults, **overrides})

    constructor.__name__ = constructor.__qualname__ = name
    constructor.__doc__ = doc + " Keyword overrides go to MAE."
    return constructor


# The official models (decoder 512-d × 8 blocks × 16 heads), and smaller ones.
mae_vit_b16 = _constructor("mae_vit_b16", "MAE ViT-B/16 (mae_vit_base_patch16_dec512d8b).",
                           **vit_kwargs("b", 16))
mae_vit_l16 = _constructor("mae_vit_l16", "MAE ViT-L/16 (mae_vit_large_patch16_dec512d8b).",
                           **vit_kwargs("l", 16))
mae_vit_h14 = _constructor("mae_vit_h14", "MAE ViT-H/14 (mae_vit_huge_patch14_dec512d8b).",
                           **vit_kwargs("h", 14))
mae_vit_s16 = _constructor("mae_vit_s16", "MAE ViT-S/16 with the official decoder.",
                           **vit_kwargs("s", 16))
mae_vit_tiny = _constructor(
    "mae_vit_tiny", "A CPU-sized MAE for 32 px images: ViT-Ti width, 6 blocks, patch 4, "
    "a 128-d × 2-block decoder.",
    patch_size=4, embed_dim=192, depth=6, num_heads=3, image_size=32,
    decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4)

MAES: dict[str, Callable[..., MAE]] = {
    fn.__name__: fn for fn in (mae_vit_b16, mae_vit_l16, mae_vit_h14, mae_vit_s16,
                               mae_vit_tiny)
}
