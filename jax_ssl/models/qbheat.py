"""QB-Heat's feature extrapolation and light pixel decoder (Chen et al. 2022, arXiv
2211.13228, "Self-Supervised Learning based on Heat Equation"; no official code).

The paper takes the steady-state heat equation on an encoder's feature map z(x, y) ∈ R^C,
makes the Laplacian anisotropic (∂²z/∂x² + S ∂²z/∂y² = 0) and splits it into two
first-order equations ∂z/∂x = A z, ∂z/∂y = B z with learned C×C matrices, solved by the
finite difference z(x + Δx, y) = (I + Δx A) z(x, y), z(x, y + Δy) = (I + Δy B) z(x, y)
(its Fig. 1). The encoder sees the top-left quarter block (h × w cells) of the image;
the other three quarters are that block moved by Δx = w and/or Δy = h cells:

    [ z             (I + w A) z              ]
    [ (I + h B) z   (I + h B)(I + w A) z     ]

The paper's figure lays the four blocks out this way; the choices it leaves open, and
the ones made here, are listed in DESIGN.md §6 (QB-Heat).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jax_ssl.models.vit import Block, sincos_2d_pos_embed


class HeatExtrapolation(nn.Module):
    """The visible quarter's features [B, h, w, C] → the whole map [B, 2h, 2w, C].

    Parameters ``a`` and ``b`` [C, C] are A and B (per cell, acting on row vectors:
    z·A), zero at init, so that every quarter starts as a copy of the visible one.
    """

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z):
        height, width, channels = z.shape[1:]
        a = self.param("a", nn.initializers.zeros, (channels, channels)).astype(self.dtype)
        b = self.param("b", nn.initializers.zeros, (channels, channels)).astype(self.dtype)
        z = z.astype(self.dtype)
        right = z + width * (z @ a)
        below = z + height * (z @ b)
        diagonal = right + height * (right @ b)
        return jnp.concatenate([jnp.concatenate([z, right], axis=2),
                                jnp.concatenate([below, diagonal], axis=2)], axis=1)


class QBHeatDecoder(nn.Module):
    """The light decoder: features [B, h, w, C] of the visible quarter → a Linear to
    ``embed_dim`` → ``HeatExtrapolation`` → the fixed sin-cos position embedding of the
    2h × 2w grid → ``depth`` transformer blocks → LayerNorm → a Linear to each cell's
    pixels (p·p·channels values), as MAE's decoder.

    Call: ``decoder(features [B, h, w, C], pixels_per_cell, train=False)`` → [B, 4·h·w,
    pixels_per_cell] (cells in row-major order over the 2h × 2w grid, as
    ``losses.patchify``).
    """

    embed_dim: int
    depth: int
    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features, pixels_per_cell: int, *, train: bool = False):
        batch, height, width, _ = features.shape
        z = nn.Dense(self.embed_dim, dtype=self.dtype, name="embed")(features)
        z = HeatExtrapolation(self.dtype, name="heat")(z)
        pos = sincos_2d_pos_embed(self.embed_dim, (2 * height, 2 * width))
        x = z.reshape(batch, 4 * height * width, self.embed_dim) + jnp.asarray(pos, self.dtype)
        for i in range(self.depth):
            x = Block(self.num_heads, dtype=self.dtype, name=f"blocks_{i}")(x, train=train)
        x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="norm")(x)
        return nn.Dense(pixels_per_cell, dtype=self.dtype, name="pred")(x)
