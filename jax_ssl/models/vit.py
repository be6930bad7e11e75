"""Vision Transformer backbones (timm / DINO / MAE layout), without a classifier.

Layout (timm ``VisionTransformer``, DINO ``vision_transformer.py``): a conv patch
embedding, a CLS token, a position embedding over CLS + patches, ``depth`` pre-norm
blocks, and a final LayerNorm. Images are NHWC; patches are numbered in row-major order
(index = row·W + column) everywhere.

Conventions:
  * ``dtype`` is the compute dtype; parameters stay float32, attention softmaxes are
    computed in float32 (DESIGN.md §3).
  * Position embedding: ``"learned"`` (a parameter) or ``"sincos"`` (MAE's fixed 2-D
    table, no parameter). Either is made for ``image_size``; inputs with another patch
    grid get it resized bicubically (``interpolate_pos_embed``), as DINO does so that one
    network takes 224 px global and 96 px local crops.
  * Initialisation as timm / MAE: Linear weights xavier_uniform, biases zero, LayerNorm
    ones/zeros (eps 1e-6), CLS token and learned position embedding N(0, 0.02); the patch
    embedding's conv kernel xavier_uniform over its flattened [p·p·C, D] view (MAE's
    ``xavier_uniform_(w.view([w.shape[0], -1]))``), its bias zero. (DINO itself draws
    Linear weights from N(0, 0.02); the architecture is the same.)

Parameter names follow timm's state dict (``patch_embed/proj``, ``cls_token``,
``pos_embed``, ``blocks_{i}/attn/qkv``, ``…/mlp/fc1``, ``norm``) and the CLS token and
learned position embedding keep timm's [1, 1, D] and [1, 1 + L, D] shapes, so weights
can be mapped across (conv and Linear kernels transposed).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jax_ssl.models.layers import patch_conv, trunc_normal_02

LAYER_NORM_EPSILON = 1e-6

xavier_uniform = nn.initializers.xavier_uniform()
# xavier_uniform of the conv kernel seen as a [p·p·C, D] matrix (MAE): fan_in = p·p·C,
# fan_out = D. Flax's xavier_uniform on the 4-D kernel would multiply both fans by p·p.
patch_embed_init = nn.initializers.variance_scaling(
    1.0, "fan_avg", "uniform", in_axis=(0, 1, 2), out_axis=-1)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def dense(features: int, dtype: Any, name: str | None = None) -> nn.Dense:
    """timm/MAE's ``nn.Linear``: xavier_uniform weights, zero bias."""
    return nn.Dense(features, dtype=dtype, kernel_init=xavier_uniform, name=name)


def layer_norm(dtype: Any, name: str | None = None) -> nn.LayerNorm:
    """The ViT LayerNorm (eps 1e-6, scale 1, bias 0)."""
    return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, dtype=dtype, name=name)


# ----------------------------------------------------------------------------------------
# Position embeddings
# ----------------------------------------------------------------------------------------


def _sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """[M] positions → [M, dim]: concat(sin(p·ω), cos(p·ω)), ω_i = 1/10000^(2i/dim)."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2))
    angles = positions.astype(np.float64)[:, None] * omega[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d_pos_embed(embed_dim: int, grid_size: int | tuple[int, int],
                        cls_token: bool = False) -> np.ndarray:
    """MAE's fixed 2-D sin-cos position embedding (``util/pos_embed.py``).

    The first half of the channels encodes the column (w) coordinate and the second half
    the row (h) coordinate, each as concat(sin, cos) — MAE's ``np.meshgrid(grid_w,
    grid_h)`` puts w first. Computed in float64 like MAE, returned as float32.

    Args:
      embed_dim: D, a multiple of 4.
      grid_size: the patch grid, H = W or (H, W).
      cls_token: prepend a row of zeros for the CLS token.

    Returns:
      [(1 if cls_token else 0) + H·W, D] float32, patches in row-major order.
    """
    if embed_dim % 4:
        raise ValueError(f"embed_dim must be a multiple of 4, got {embed_dim}.")
    height, width = _pair(grid_size)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    half = embed_dim // 2
    table = np.concatenate([_sincos_1d(half, cols.ravel()), _sincos_1d(half, rows.ravel())],
                           axis=1)
    if cls_token:
        table = np.concatenate([np.zeros((1, embed_dim)), table], axis=0)
    return table.astype(np.float32)


def _cubic_inner(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic kernel for |t| ≤ 1 (torch's ``cubic_convolution1``)."""
    return ((a + 2) * t - (a + 3)) * t * t + 1


def _cubic_outer(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic kernel for 1 < |t| < 2 (torch's ``cubic_convolution2``)."""
    return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a


def bicubic_resize_matrix(size_in: int, size_out: int, offset: float = 0.0) -> np.ndarray:
    """[size_out, size_in] weights of torch's bicubic resize along one axis.

    ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)``: output
    index o samples the input at s = (o + 0.5)·size_in/(size_out + offset) − 0.5 with
    the 4 taps ⌊s⌋−1 … ⌊s⌋+2, Keys' kernel with A = −0.75 (``jax.image.resize`` uses
    A = −0.5), and taps beyond the border clamped onto the edge element. No antialiasing
    when shrinking (torch's default). ``offset`` = 0 is interpolate(size=...); an offset
    reproduces interpolate(scale_factor=(size_out + offset)/size_in).
    """
    a = -0.75
    source = (np.arange(size_out) + 0.5) * (size_in / (size_out + offset)) - 0.5
    left = np.floor(source)
    t = source - left
    weights = np.stack([_cubic_outer(t + 1, a), _cubic_inner(t, a),
                        _cubic_inner(1 - t, a), _cubic_outer(2 - t, a)], axis=1)
    taps = np.clip(left[:, None].astype(np.int64) + np.arange(-1, 3), 0, size_in - 1)
    matrix = np.zeros((size_out, size_in))
    # Clamped taps can hit the same edge element twice: accumulate, don't overwrite.
    np.add.at(matrix, (np.repeat(np.arange(size_out)[:, None], 4, axis=1), taps), weights)
    return matrix


def interpolate_pos_embed(pos_embed: jax.Array, grid_in: int | tuple[int, int],
                          grid_out: int | tuple[int, int], *,
                          offset: float = 0.0) -> jax.Array:
    """Resizes a position embedding to another patch grid, bicubically as torch does.

    DINO's ``interpolate_pos_encoding``: the patch rows are laid out on their [H, W] grid
    and resized with ``bicubic_resize_matrix`` (separable: rows, then columns); leading
    rows that are not on the grid (the CLS token's) are kept unchanged.

    DINO passes ``scale_factor=(w0 + 0.1)/√N`` to avoid a floating-point error in torch's
    output size; that also shifts where the outputs sample the input slightly. The default
    ``offset=0.0`` follows interpolate(size=grid_out) instead, as MAE's and timm's
    resizing do; ``offset=0.1`` reproduces DINO's numbers. DINO applies the width factor
    to the height axis (harmless for its square crops); here each axis uses its own.
    With ``offset=0`` an unchanged grid gives the input back exactly; with an offset torch
    resamples it, and so does this function (``VisionTransformer``, like DINO, does not
    resize an unchanged grid at all).

    Args:
      pos_embed: [P + Hi·Wi, D] with P prefix rows (1 for a CLS token, or 0).
      grid_in: (Hi, Wi), or an int for a square grid.
      grid_out: (Ho, Wo), or an int.
      offset: see above.

    Returns:
      [P + Ho·Wo, D], same dtype.
    """
    (h_in, w_in), (h_out, w_out) = _pair(grid_in), _pair(grid_out)
    prefix = pos_embed.shape[0] - h_in * w_in
    if prefix < 0:
        raise ValueError(f"pos_embed has {pos_embed.shape[0]} rows, fewer than the "
                         f"{h_in}x{w_in} grid.")
    patches = pos_embed[prefix:].reshape(h_in, w_in, -1)
    rows = jnp.asarray(bicubic_resize_matrix(h_in, h_out, offset), patches.dtype)
    cols = jnp.asarray(bicubic_resize_matrix(w_in, w_out, offset), patches.dtype)
    resized = jnp.einsum("oh,hwd,pw->opd", rows, patches, cols,
                         precision=jax.lax.Precision.HIGHEST)
    return jnp.concatenate([pos_embed[:prefix], resized.reshape(h_out * w_out, -1)], axis=0)


# ----------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------


def drop_path(x: jax.Array, rate: float, rng: jax.Array) -> jax.Array:
    """Stochastic depth: zeroes whole samples of a residual branch with probability
    ``rate`` and scales the kept ones by 1/(1 − rate) (timm's ``drop_path``).

    x: [B, ...]; the draw is per sample (leading axis).
    """
    keep = 1.0 - rate
    kept = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(kept, x / keep, 0).astype(x.dtype)


def _drop_tokens(x, *, start: int, count: int):
    """x [B, N, D] without tokens start … start + count − 1."""
    return jnp.concatenate([x[:, :start], x[:, start + count:]], axis=1) if count else x


class PatchEmbed(nn.Module):
    """Non-overlapping patches → tokens: a conv with kernel = stride = patch_size.

    Call: ``(images [B, H, W, C])`` → [B, L, D], L = ⌊H/p⌋·⌊W/p⌋ in row-major patch order
    (leftover pixels at the bottom/right are ignored, as in torch's conv).
    """

    patch_size: int
    embed_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images):
        p = self.patch_size
        x = nn.Conv(self.embed_dim, (p, p), strides=(p, p), padding="VALID",
                    dtype=self.dtype, kernel_init=patch_embed_init, name="proj",
                    conv_general_dilated=patch_conv)(images)
        return x.reshape(x.shape[0], -1, self.embed_dim)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv Linear (with bias) and an output Linear.

    Call: ``(x [B, N, D], key_mask=None)`` → (out [B, N, D], attention probabilities
    [B, heads, N, N] in float32). ``key_mask`` [B, N] bool: the tokens that may be
    attended to (False: padding, which no token sees).
    """

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, key_mask=None):
        batch, tokens, dim = x.shape
        if dim % self.num_heads:
            raise ValueError(f"width {dim} is not divisible by {self.num_heads} heads.")
        head_dim = dim // self.num_heads
        # timm's layout of the fused projection: [..., (q|k|v), head, head_dim].
        qkv = dense(3 * dim, self.dtype, "qkv")(x)
        q, k, v = jnp.moveaxis(qkv.reshape(batch, tokens, 3, self.num_heads, head_dim), 2, 0)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q * head_dim ** -0.5, k).astype(jnp.float32)
        if key_mask is not None:
            logits = jnp.where(key_mask[:, None, None, :], logits, -jnp.inf)
        probs = jax.nn.softmax(logits, axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", probs.astype(self.dtype), v)
        return dense(dim, self.dtype, "proj")(out.reshape(batch, tokens, dim)), probs


class Mlp(nn.Module):
    """Linear → GELU (exact erf form, as torch's ``nn.GELU``) → Linear back to the input
    width. Call: ``(x [..., D])`` → [..., D]."""

    hidden_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        hidden = nn.gelu(dense(self.hidden_dim, self.dtype, "fc1")(x), approximate=False)
        return dense(x.shape[-1], self.dtype, "fc2")(hidden)


class SwiGLUFFN(nn.Module):
    """DINOv2's ``SwiGLUFFNFused`` (ViT-g): ``w12`` [D, 2h] → silu(first half) · second
    half → ``w3`` [h, D], with h = (int(hidden_dim·2/3) + 7) // 8 · 8 (1024 for D = 384
    at ratio 4). Call: ``(x [..., D])`` → [..., D]."""

    hidden_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        hidden = (int(self.hidden_dim * 2 / 3) + 7) // 8 * 8
        gate, value = jnp.split(dense(2 * hidden, self.dtype, "w12")(x), 2, axis=-1)
        return dense(x.shape[-1], self.dtype, "w3")(nn.silu(gate) * value)


FFNS = {"mlp": Mlp, "swiglu": SwiGLUFFN}


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x))).

    Attributes:
      num_heads: attention heads; the width D is taken from the input.
      mlp_ratio: the MLP's hidden width is int(D·mlp_ratio).
      drop_path: stochastic-depth rate of both residual branches (training only; draws
        from the ``"dropout"`` rng stream).
      layer_scale: when > 0, each branch is scaled by a learned vector ``ls1`` / ``ls2``
        ``gamma`` [D] starting at this value (CaiT's LayerScale; DINOv2's 1e-5).
      ffn: ``"mlp"`` (ViT's) or ``"swiglu"`` (DINOv2's ViT-g).
      dtype: compute dtype.

    Call: ``(x [B, N, D], *, train=False, return_attention=False, key_mask=None)`` → x
    [B, N, D], or (x, attention [B, heads, N, N] float32) with ``return_attention``;
    ``key_mask`` as ``Attention``'s.
    """

    num_heads: int
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    layer_scale: float = 0.0
    ffn: str = "mlp"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool = False, return_attention: bool = False,
                 key_mask=None):
        if self.ffn not in FFNS:
            raise ValueError(f"ffn must be one of {sorted(FFNS)}, got {self.ffn!r}.")
        y, attention = Attention(self.num_heads, self.dtype, name="attn")(
            layer_norm(self.dtype, "norm1")(x), key_mask)
        x = x + self._drop_path(self._scale(y, "ls1"), train)
        y = FFNS[self.ffn](int(x.shape[-1] * self.mlp_ratio), self.dtype, name="mlp")(
            layer_norm(self.dtype, "norm2")(x))
        x = x + self._drop_path(self._scale(y, "ls2"), train)
        return (x, attention) if return_attention else x

    def _scale(self, y, name: str):
        if not self.layer_scale:
            return y
        gamma = self.param(f"{name}_gamma", nn.initializers.constant(self.layer_scale),
                           (y.shape[-1],))
        return y * gamma.astype(y.dtype)

    def _drop_path(self, y, train: bool):
        if not train or self.drop_path == 0.0:
            return y
        return drop_path(y, self.drop_path, self.make_rng("dropout"))


class VisionTransformer(nn.Module):
    """ViT backbone: patch embedding, CLS token, position embedding, blocks, final norm.

    Attributes:
      patch_size, embed_dim, depth, num_heads, mlp_ratio: the architecture.
      pos_embed: ``"learned"`` (parameter ``pos_embed`` [1, 1 + L, D]) or ``"sincos"``
        (MAE's fixed table with a zero CLS row; no parameter).
      image_size: the resolution the position embedding is made for (its grid is
        image_size // patch_size); other input grids get it resized bicubically.
      drop_path_rate: stochastic depth of the last block; block i gets
        rate·i/(depth − 1) (timm / DINO ``torch.linspace(0, rate, depth)``), or every
        block the rate with ``drop_path_uniform`` (DINOv2's ``drop_path_uniform``).
      interpolate_offset: ``offset`` of ``interpolate_pos_embed``; 0.1 reproduces DINO.
      mask_token: a learned token ``mask_token`` [1, D] (zeros at init) that replaces the
        patch embedding of masked patches (iBOT's ``masked_embed``, DINOv2's
        ``mask_token``); needed to call with ``mask``.
      layer_scale, ffn: the blocks' (see ``Block``; DINOv2: 1e-5, and ``"swiglu"`` for
        ViT-g).
      num_registers: learned ``register_tokens`` [1, R, D] (normal(1e-6) at init, no
        position embedding) put after the CLS token (Darcet et al. 2024, DINOv2's
        ``_reg`` models); they are in the blocks' sequence and in ``attention`` (order
        CLS, registers, patches) but in no other output.
      class_token: False builds no CLS token (I-JEPA's ViT): the sequence is the patches
        alone, and ``cls`` is the mean of the patch tokens (the average pooling I-JEPA
        evaluates), ``layers`` hold patch tokens only.
      dtype: compute dtype.

    Call: ``(images [B, H, W, C], *, train=False, return_layers=(),
    return_attention=False, patch_ids=None, patch_mask=None)`` → dict with
      * ``cls`` [B, D] and ``patch_tokens`` [B, L, D], after the final LayerNorm;
      * ``pre_norm_tokens`` [B, 1 + L, D] (CLS first; [B, L, D] without a CLS token):
        the last block's output before it (MAE's fine-tuning pools these);
      * ``layers``: a tuple with, for each index in ``return_layers`` (in that order,
        negative indices count from the end), that block's output [B, 1 + L, D] (CLS
        first) passed through the final LayerNorm — DINO's ``get_intermediate_layers``,
        whose outputs its linear evaluation uses; empty when none are requested;
      * ``attention`` [B, heads, 1 + L, 1 + L] float32, the last block's attention
        probabilities (DINO's ``get_last_selfattention``), only with
        ``return_attention``.
    ``patch_ids`` [B, K] int runs the blocks on only those patches, gathered after the
    position embedding is added (MAE's encoder on its visible patches); L is then K and
    the patch tokens come in ``patch_ids`` order; ``patch_mask`` [B, K] bool marks which
    of them are real (False: padding of a static-size index set, which no token attends
    to and whose outputs mean nothing). ``mask`` [B, L] bool (row-major over the
    patch grid) puts the mask token in place of the masked patches' embeddings, before
    the position embedding is added (iBOT, DINOv2). ``train`` enables drop path (needs a
    ``"dropout"`` rng).
    """

    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    pos_embed: str = "learned"
    image_size: int = 224
    drop_path_rate: float = 0.0
    drop_path_uniform: bool = False
    interpolate_offset: float = 0.0
    mask_token: bool = False
    layer_scale: float = 0.0
    ffn: str = "mlp"
    num_registers: int = 0
    class_token: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, *, train: bool = False, return_layers: Sequence[int] = (),
                 return_attention: bool = False, patch_ids: jax.Array | None = None,
                 patch_mask: jax.Array | None = None,
                 mask: jax.Array | None = None) -> dict[str, Any]:
        layer_ids = [self._block_index(i) for i in return_layers]
        batch, height, width, _ = images.shape
        grid = (height // self.patch_size, width // self.patch_size)
        tokens = PatchEmbed(self.patch_size, self.embed_dim, self.dtype,
                            name="patch_embed")(images)
        if self.mask_token:
            token = self.param("mask_token", nn.initializers.zeros, (1, self.embed_dim))
            if mask is not None:
                if mask.shape != tokens.shape[:2]:
                    raise ValueError(f"mask must be [B, L] = {tokens.shape[:2]} for these "
                                     f"images, got {mask.shape}.")
                tokens = jnp.where(mask[..., None], token.astype(self.dtype), tokens)
        elif mask is not None:
            raise ValueError("a mask needs the ViT's mask token: build it with "
                             "mask_token=True.")
        pos = self._position_embedding(grid).astype(self.dtype)  # [1 + L, D]
        tokens = tokens + pos[1:]
        if patch_ids is not None:
            tokens = jnp.take_along_axis(tokens, patch_ids[..., None], axis=1)
        if self.class_token:
            cls = self.param("cls_token", trunc_normal_02, (1, 1, self.embed_dim))
            cls = jnp.broadcast_to(cls.astype(self.dtype) + pos[:1],
                                   (batch, 1, self.embed_dim))
            tokens = jnp.concatenate([cls, tokens], axis=1)
        x = tokens
        if self.num_registers and not self.class_token:
            raise ValueError("register tokens follow the CLS token: num_registers needs "
                             "class_token=True.")
        if self.num_registers:
            registers = self.param("register_tokens", nn.initializers.normal(1e-6),
                                   (1, self.num_registers, self.embed_dim))
            registers = jnp.broadcast_to(registers.astype(self.dtype),
                                         (batch, self.num_registers, self.embed_dim))
            x = jnp.concatenate([x[:, :1], registers, x[:, 1:]], axis=1)
        without_registers = functools.partial(_drop_tokens, start=1, count=self.num_registers)
        key_mask = None
        if patch_mask is not None:
            extra = x.shape[1] - patch_mask.shape[1]  # CLS and registers: always real
            key_mask = jnp.concatenate([jnp.ones((batch, extra), bool), patch_mask], axis=1)

        norm = layer_norm(self.dtype, "norm")
        rates = (np.full(self.depth, self.drop_path_rate) if self.drop_path_uniform
                 else np.linspace(0.0, self.drop_path_rate, self.depth))
        outputs, attention = {}, None
        for i in range(self.depth):
            block = Block(self.num_heads, self.mlp_ratio, float(rates[i]), self.layer_scale,
                          self.ffn, self.dtype, name=f"blocks_{i}")
            if return_attention and i == self.depth - 1:
                x, attention = block(x, train=train, return_attention=True,
                                     key_mask=key_mask)
            else:
                x = block(x, train=train, key_mask=key_mask)
            if i in layer_ids:
                outputs[i] = norm(without_registers(x))
        pre_norm = without_registers(x)
        x = norm(pre_norm)
        cls, patches = (x[:, 0], x[:, 1:]) if self.class_token else (jnp.mean(x, axis=1), x)
        result = {"cls": cls, "patch_tokens": patches, "pre_norm_tokens": pre_norm,
                  "layers": tuple(outputs[i] for i in layer_ids)}
        if return_attention:
            result["attention"] = attention
        return result

    def _block_index(self, index: int) -> int:
        if not -self.depth <= index < self.depth:
            raise ValueError(f"block index {index} out of range for depth {self.depth}.")
        return index % self.depth

    def _position_embedding(self, grid: tuple[int, int]) -> jax.Array:
        """[1 + L, D] for the input's patch grid, CLS row first."""
        stored = _pair(self.image_size // self.patch_size)
        if self.pos_embed == "learned":
            pos = self.param("pos_embed", trunc_normal_02,
                             (1, 1 + stored[0] * stored[1], self.embed_dim))[0]
        elif self.pos_embed == "sincos":
            pos = jnp.asarray(sincos_2d_pos_embed(self.embed_dim, stored, cls_token=True))
        else:
            raise ValueError(f"pos_embed must be 'learned' or 'sincos', got "
                             f"{self.pos_embed!r}.")
        if grid == stored:
            return pos
        return interpolate_pos_embed(pos, stored, grid, offset=self.interpolate_offset)


# ----------------------------------------------------------------------------------------
# Named configurations
# ----------------------------------------------------------------------------------------

# name -> (embed_dim, depth, num_heads), as timm / the ViT paper.
VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "ti": (192, 12, 3),
    "s": (384, 12, 6),
    "b": (768, 12, 12),
    "l": (1024, 24, 16),
    "h": (1280, 32, 16),
    "g": (1536, 40, 24),  # DINOv2's ViT-g ("vit_giant2")
}


def vit_kwargs(size: str, patch_size: int) -> dict[str, int]:
    """The architecture fields of ViT-``size``/``patch_size``."""
    embed_dim, depth, num_heads = VIT_SIZES[size]
    return dict(patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads)


def _constructor(size: str, patch_size: int) -> Callable[..., VisionTransformer]:
    def constructor(**overrides) -> VisionTransformer:
        return VisionTransformer(**{**vit_kwargs(size, patch_size), **overrides})

    constructor.__name__ = constructor.__qualname__ = f"vit_{size}{patch_size}"
    constructor.__doc__ = (f"ViT-{size.capitalize()}/{patch_size}; keyword overrides (pos_embed, "
                           "image_size, drop_path_rate, dtype, …) go to VisionTransformer.")
    return constructor


vit_ti8 = _constructor("ti", 8)
vit_ti14 = _constructor("ti", 14)
vit_ti16 = _constructor("ti", 16)
vit_s8 = _constructor("s", 8)
vit_s14 = _constructor("s", 14)
vit_s16 = _constructor("s", 16)
vit_b8 = _constructor("b", 8)
vit_b14 = _constructor("b", 14)
vit_b16 = _constructor("b", 16)
vit_l8 = _constructor("l", 8)
vit_l14 = _constructor("l", 14)
vit_l16 = _constructor("l", 16)
vit_h14 = _constructor("h", 14)



def _dinov2_constructor(size: str, registers: bool) -> Callable[..., VisionTransformer]:
    """The architecture of DINOv2's released ``dinov2_vit{size}14[_reg]`` (its hub
    builders): patch 14, position embedding for 518 px (37×37 + 1 rows), LayerScale (1e-5
    at init, as DINOv2 trains), the mask token, SwiGLU for ViT-g, 4 registers and no
    interpolation offset for ``_reg`` (0.1 otherwise). Not reproduced: the ``_reg``
    models' antialiased resizing of the position embedding to other grids, and
    DINOv2's normal(1e-6) initialisation of the CLS token."""
    fields = dict(vit_kwargs(size, 14), image_size=518, layer_scale=1e-5, mask_token=True,
                  ffn="swiglu" if size == "g" else "mlp", num_registers=4 if registers else 0,
                  interpolate_offset=0.0 if registers else 0.1)

    def constructor(**overrides) -> VisionTransformer:
        return VisionTransformer(**{**fields, **overrides})

    constructor.__name__ = constructor.__qualname__ = (
        f"dinov2_vit{size}14{'_reg' if registers else ''}")
    constructor.__doc__ = _dinov2_constructor.__doc__
    return constructor


DINOV2_VITS = {fn.__name__: fn for fn in (_dinov2_constructor(size, registers)
                                          for size in ("s", "b", "l", "g")
                                          for registers in (False, True))}

VITS: dict[str, Callable[..., VisionTransformer]] = {
    **{fn.__name__: fn for fn in (vit_ti8, vit_ti14, vit_ti16, vit_s8, vit_s14, vit_s16,
                                  vit_b8, vit_b14, vit_b16, vit_l8, vit_l14, vit_l16, vit_h14)},
    **DINOV2_VITS,
}
