"""QB-Heat (Chen et al. 2022, arXiv 2211.13228; no official code is known).

The encoder sees only the top-left quarter block of each image (a ViT: its tokens, at
their own positions; a ResNet: the quarter crop, so any CNN works without masking). Its
feature map of h × w cells goes through a Linear to the decoder width, and the three
other quarters are extrapolated from it linearly, by the heat equation's first-order
finite differences with learned matrices (``models.qbheat.HeatExtrapolation``); a light
MAE-style decoder then predicts the pixels of every cell of the 2h × 2w grid, and the
loss is ``mae_loss`` (per-patch normalised pixels) on the three masked quarters. A
cell is image_size / 2h pixels wide: a ViT's patch; a ResNet's output stride, rounded
as its SAME padding rounds the quarter's map (28 px, stride 8: 2 × 2 cells of 7 px).

The choices the paper leaves open are listed in DESIGN.md §6 (QB-Heat). Evaluation uses
the backbone on whole images (the ViT's CLS token, the ResNet's pooled map).

Config ``config.qbheat``: ``decoder_dim``, ``decoder_depth``, ``decoder_heads``,
``norm_pix_loss``.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import qbheat, vit


class QBHeatNetwork(nn.Module):
    """Backbone on the visible quarter → ``QBHeatDecoder`` → every cell's pixels."""
    backbone: nn.Module
    decoder: nn.Module

    def __call__(self, images, *, train: bool):
        """→ (predictions [B, 4·h·w, p·p·C], the visible features [B, h, w, D]), p the
        cell size (``cell_size``)."""
        batch, height, width, _ = images.shape
        if isinstance(self.backbone, vit.VisionTransformer):
            patch = self.backbone.patch_size
            rows, cols = height // patch // 2, width // patch // 2
            visible = (jnp.arange(rows)[:, None] * (width // patch)
                       + jnp.arange(cols)[None, :]).reshape(1, -1)
            tokens = self.backbone(images, train=train, patch_ids=jnp.broadcast_to(
                visible, (batch, rows * cols)))["patch_tokens"]
            features = tokens.reshape(batch, rows, cols, -1)
        else:
            features = self.backbone(images[:, :height // 2, :width // 2], train=train,
                                     return_feature_map=True)
        cell = cell_size(images.shape, features.shape)
        return self.decoder(features, cell * cell * images.shape[3], train=train), features


def cell_size(images_shape, features_shape) -> int:
    """Pixels per side of a cell: the image over the extrapolated 2h × 2w grid."""
    height, width = images_shape[1:3]
    rows, cols = features_shape[1:3]
    if height % (2 * rows) or width % (2 * cols) or height // (2 * rows) != width // (2 * cols):
        raise ValueError(
            f"qbheat: {height}x{width} images do not split into the 2x{rows} by 2x{cols} grid of "
            f"square cells the encoder's {rows}x{cols} quarter map extrapolates to; choose a crop "
            f"size that is a multiple of twice the backbone's stride.")
    return height // (2 * rows)


def masked_cells(height: int, width: int):
    """[4·h·w] float32 over the 2h × 2w grid (row-major): 1 on the three extrapolated
    quarters, 0 on the visible top-left one."""
    rows, cols = jnp.arange(2 * height)[:, None], jnp.arange(2 * width)[None, :]
    return (~((rows < height) & (cols < width))).reshape(-1).astype(jnp.float32)


def network(config, axis_name):
    cfg = config.qbheat
    decoder = qbheat.QBHeatDecoder(embed_dim=cfg.decoder_dim, depth=cfg.decoder_depth,
                                   num_heads=cfg.decoder_heads,
                                   dtype=common.compute_dtype(config))
    return QBHeatNetwork(common.build_backbone(config, axis_name), decoder)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["image"])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del step
    images = batch["image"]
    (pred, features), state = common.apply(network(config, axis_name), params, state, images,
                                           rng)
    cell = cell_size(images.shape, features.shape)
    masked = jnp.broadcast_to(masked_cells(*features.shape[1:3]), pred.shape[:2])
    loss = losses.mae_loss(pred, losses.patchify(images, cell), masked,
                           norm_pix=config.qbheat.norm_pix_loss, axis_name=axis_name)
    pooled = jnp.mean(features.astype(jnp.float32), axis=(1, 2))
    return loss, (state, common.collapse_monitors(pooled, axis_name=axis_name))


def backbone_variables(params, state):
    return common.backbone_variables(params, state)
