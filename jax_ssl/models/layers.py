"""Pieces every model here shares: PyTorch-equivalent BatchNorm, initialisers, and a
convolution whose filter gradient is faster on CPU."""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch BatchNorm: running = 0.9·running + 0.1·batch (Flax momentum 0.9), eps 1e-5.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# PyTorch trunc_normal_(std=.02) cuts at ±2 in absolute value (100σ): a plain normal.
trunc_normal_02 = nn.initializers.normal(0.02)


def batch_norm(axis_name: str | None, dtype: Any, *, affine: bool = True,
               center: bool = True, zero_scale: bool = False,
               use_running_average: bool | None = None,
               name: str | None = None) -> nn.BatchNorm:
    """BatchNorm with PyTorch's momentum and eps, synchronised over ``axis_name``.

    Given ``axis_name`` the statistics are those of the global batch (synchronised BN,
    DESIGN.md §3). ``affine=False`` drops scale and bias (``BatchNorm1d(affine=False)``);
    ``center=False`` drops only the bias (SimCLR's last BN); ``zero_scale`` starts the
    scale at 0 (torchvision's ``zero_init_residual``). Parameters stay float32.

    Flax tracks the biased batch variance in the running average where PyTorch tracks
    the unbiased one: a factor N/(N−1) on the running variance, seen only at evaluation.
    """
    return nn.BatchNorm(use_running_average=use_running_average, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, axis_name=axis_name, use_scale=affine,
                        use_bias=affine and center, dtype=dtype, param_dtype=jnp.float32,
                        scale_init=nn.initializers.zeros if zero_scale else nn.initializers.ones,
                        name=name)


# ----------------------------------------------------------------------------------------
# Convolution with a faster filter gradient on CPU
# ----------------------------------------------------------------------------------------

# XLA:CPU computes a convolution's filter gradient as one convolution whose "kernel" is
# the whole output map, which runs at 3-15 GFLOP/s (ResNet-18's 32x32x64 3x3 layer at
# batch 256: 4.3 s, against 0.36 s for its forward). Written as matmuls instead, one per
# kernel row over that row's patches ([n·Ho·Wo, kw·C]ᵀ @ [n·Ho·Wo, F]) for groups of n
# images whose patches stay in the core's cache, the same gradient takes 0.37 s (the
# whole batch's patches at once: 0.63 s; the full im2col matrix: more, as building it
# costs more than the product); over one ResNet-18 step's convolutions, 28.8 s -> 3.8 s
# (experiments/bench/conv_filter_grad.py). The forward and the input gradient stay
# XLA's convolutions, faster than any matmul lowering measured here.
PATCH_GROUP_BYTES = 3 << 19  # 1.5 MiB of one kernel row's patches per group of images

_NHWC = ("NHWC", "HWIO", "NHWC")


def _plain_conv(x, kernel, strides, padding):
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


def varying_like(value, reference):
    """``value`` made to vary over every shard_map axis ``reference`` varies over (as is,
    outside shard_map). Autodiff sums its cotangent over the axes this adds."""
    axes = tuple(jax.typeof(reference).manual_axis_type.varying
                 - jax.typeof(value).manual_axis_type.varying)
    return jax.lax.pcast(value, axes, to="varying") if axes else value


def _images_per_group(batch: int, row_bytes: int) -> int:
    """The largest divisor of ``batch`` whose patches fit ``PATCH_GROUP_BYTES`` (≥ 1)."""
    target = max(1, PATCH_GROUP_BYTES // row_bytes)
    return max(n for n in range(1, min(batch, target) + 1) if batch % n == 0)


def filter_gradient_by_rows(x, grad_out, kernel_shape, strides, padding):
    """∂(Σ grad_out · conv(x, k))/∂k for a plain NHWC convolution, one matmul per kernel
    row and group of images.

    Args: x [B, H, W, C]; grad_out [B, Ho, Wo, F]; kernel_shape (kh, kw, C, F); strides
    (sh, sw); padding ((top, bottom), (left, right)), each ≥ 0.
    Returns: [kh, kw, C, F] in float32 (products accumulate in float32 for bfloat16).
    """
    kh, kw, channels, features = kernel_shape
    (sh, sw), (pad_h, pad_w) = strides, padding
    batch, out_h, out_w, _ = grad_out.shape
    xp = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    n = _images_per_group(batch, out_h * out_w * kw * channels * x.dtype.itemsize)

    def group_gradient(total, group):
        xp, grad_out = group
        grad_rows = grad_out.reshape(-1, features)
        rows = []
        for dy in range(kh):
            taps = [jax.lax.slice(xp, (0, dy, dx, 0),
                                  (n, dy + sh * (out_h - 1) + 1, dx + sw * (out_w - 1) + 1,
                                   channels), (1, sh, sw, 1)) for dx in range(kw)]
            patches = jnp.concatenate(taps, axis=-1).reshape(-1, kw * channels)
            rows.append(jnp.dot(patches.T, grad_rows, preferred_element_type=jnp.float32))
        return total + jnp.stack(rows).reshape(kernel_shape), None

    groups = (xp.reshape(batch // n, n, *xp.shape[1:]),
              grad_out.reshape(batch // n, n, *grad_out.shape[1:]))
    # the scan's carry has the type of the per-device sums it accumulates
    zeros = varying_like(jnp.zeros(kernel_shape, jnp.float32), x)
    return jax.lax.scan(group_gradient, zeros, groups)[0]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_matmul_filter_grad(x, kernel, strides, padding):
    return _plain_conv(x, kernel, strides, padding)


def _conv_forward(x, kernel, strides, padding):
    return _plain_conv(x, kernel, strides, padding), (x, kernel)


def _conv_backward(strides, padding, residuals, grad_out):
    """The input gradient as XLA makes it; the filter gradient by rows of the kernel."""
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _plain_conv(x, kernel, strides, padding), x)
    kernel_grad = filter_gradient_by_rows(x, grad_out, kernel.shape, strides, padding)
    return input_vjp(grad_out)[0], kernel_grad.astype(kernel.dtype)


_conv_matmul_filter_grad.defvjp(_conv_forward, _conv_backward)


def _plain_cpu_conv(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                    feature_group_count, precision, preferred_element_type) -> bool:
    """On CPU, an undilated, ungrouped NHWC/HWIO convolution with explicit paddings ≥ 0
    (or VALID) and default precision: the kind the CPU lowerings below handle."""
    explicit = padding == "VALID" or (not isinstance(padding, str) and all(
        p >= 0 for pair in padding for p in pair))
    return (jax.default_backend() == "cpu" and explicit
            and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
            and feature_group_count == 1 and precision is None
            and preferred_element_type is None and lhs.ndim == 4
            and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                                                    _NHWC))


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, preferred_element_type=None):
    """``lax.conv_general_dilated`` for ``nn.Conv(conv_general_dilated=...)``: the same
    values and gradients; on CPU, a plain NHWC convolution's filter gradient is computed
    by :func:`filter_gradient_by_rows`. Other backends, dilations, groups, negative
    paddings and precisions go to ``lax`` unchanged."""
    if not _plain_cpu_conv(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                           feature_group_count, precision, preferred_element_type):
        return jax.lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, precision=precision,
            preferred_element_type=preferred_element_type)
    if padding == "VALID":
        padding = ((0, 0), (0, 0))
    # Inside shard_map the images vary over the data axis and the kernel does not: made
    # varying here, the kernel's gradient is summed over that axis when autodiff
    # transposes this cast, as it is for lax's own filter gradient.
    return _conv_matmul_filter_grad(lhs, varying_like(rhs, lhs), tuple(window_strides),
                                    tuple(tuple(p) for p in padding))


def patch_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
               dimension_numbers=None, feature_group_count=1, precision=None,
               preferred_element_type=None):
    """``lax.conv_general_dilated`` for a ViT's patch embedding (``nn.Conv`` with kernel =
    stride, no padding): on CPU, the image cut into patches [B, L, p·p·C] times the
    kernel as a [p·p·C, D] matrix, the same sums as the convolution (ViT-B/16's at
    batch 16: forward 54 -> 33 ms, filter gradient 113 -> 72 ms). Anything else goes to
    :func:`conv_general_dilated`."""
    args = (lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count, precision,
            preferred_element_type)
    kh, kw = rhs.shape[:2]
    unpadded = padding == "VALID" or all(p == 0 for pair in padding for p in pair)
    if not (tuple(window_strides) == (kh, kw) and unpadded
            and _plain_cpu_conv(lhs, rhs, padding, *args)):
        return conv_general_dilated(lhs, rhs, window_strides, padding, *args)
    batch, height, width, channels = lhs.shape
    rows, cols = height // kh, width // kw
    patches = lhs[:, :rows * kh, :cols * kw].reshape(batch, rows, kh, cols, kw, channels)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(batch, rows, cols, -1)
    return jnp.dot(patches, rhs.reshape(-1, rhs.shape[-1]))
