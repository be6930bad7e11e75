"""What a ViT's patch tokens show: the last block's CLS attention (DINO
``visualize_attention.py``) and cosine maps of one patch's feature against every patch
(the query of Materialistic, Sharma et al. 2023, without its material head: that head
is trained on their synthetic material data, which this library does not have)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl.models import vit


def require_vit(backbone, tool: str) -> None:
    if not isinstance(backbone, vit.VisionTransformer):
        raise ValueError(f"{tool} needs a ViT's patch tokens; this checkpoint's backbone is "
                         f"{type(backbone).__name__} (use relax or embed-map for it).")


def cls_attention(backbone, variables, images) -> jax.Array:
    """[B, heads, h, w] float32: the last block's attention from the CLS token to each
    patch (registers left out; each row over CLS, registers and patches sums to 1)."""
    require_vit(backbone, "attention")
    if not backbone.class_token:
        raise ValueError("attention maps are the CLS token's: this ViT has none "
                         "(class_token=False, I-JEPA's); use patch-similarity.")
    out = backbone.apply(variables, images, train=False, return_attention=True)
    height, width = (s // backbone.patch_size for s in images.shape[1:3])
    first_patch = 1 + backbone.num_registers
    return out["attention"][:, :, 0, first_patch:].reshape(*out["attention"].shape[:2],
                                                           height, width)


def keep_mass(attention, fraction: float = 0.6) -> np.ndarray:
    """DINO's ``--threshold``: per map, the smallest set of patches (largest first) whose
    attention sums to at least ``fraction`` of the map's total; bool, shaped as the
    input [..., h, w]."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    attention = np.asarray(attention, np.float64)
    flat = attention.reshape(-1, attention.shape[-2] * attention.shape[-1])
    order = np.argsort(flat, axis=1)  # ascending, as DINO sorts
    ascending = np.take_along_axis(flat, order, axis=1)
    cumulative = np.cumsum(ascending, axis=1) / ascending.sum(axis=1, keepdims=True)
    kept_sorted = cumulative > 1.0 - fraction
    kept = np.zeros_like(kept_sorted)
    np.put_along_axis(kept, order, kept_sorted, axis=1)
    return kept.reshape(attention.shape)


def patch_features(backbone, variables, images) -> jax.Array:
    """[B, h, w, D] the last layer's normalised patch tokens."""
    require_vit(backbone, "patch-similarity")
    tokens = backbone.apply(variables, images, train=False)["patch_tokens"]
    height, width = (s // backbone.patch_size for s in images.shape[1:3])
    return tokens.reshape(tokens.shape[0], height, width, -1)


def pixel_to_patch(pixel: tuple[int, int], image_hw: tuple[int, int],
                   patch_size: int) -> tuple[int, int]:
    """The (row, column) of the patch holding ``pixel`` (y, x); a clear error outside."""
    y, x = pixel
    height, width = image_hw
    rows, cols = height // patch_size, width // patch_size
    if not (0 <= y < rows * patch_size and 0 <= x < cols * patch_size):
        raise ValueError(f"pixel (y={y}, x={x}) is outside the {rows * patch_size}x"
                         f"{cols * patch_size} pixels the {patch_size}-px patches cover; "
                         f"choose 0 <= y < {rows * patch_size}, 0 <= x < {cols * patch_size}.")
    return y // patch_size, x // patch_size


def similarity_maps(features, query_image: int, patch: tuple[int, int]) -> jax.Array:
    """[B, h, w] cosine similarity of image ``query_image``'s patch feature at ``patch``
    with every patch of every image, in [−1, 1]."""
    unit = features / jnp.maximum(jnp.linalg.norm(features, axis=-1, keepdims=True), 1e-8)
    query = unit[query_image, patch[0], patch[1]]
    return jnp.clip(jnp.einsum("bhwd,d->bhw", unit, query), -1.0, 1.0)
