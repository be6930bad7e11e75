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

# Images per piece of the filter gradient on CPU. XLA:CPU computes a conv's filter
# gradient as one convolution over the whole batch, whose time grows ~5x faster than the
# batch past ~64 images (ResNet-18 on 32 px: 15.4 s for the gradient of 256 images, 10.4 s
# in pieces of 64; experiments/bench/train.py). 32 and 64 measured the same.
FILTER_GRAD_IMAGES = 64

_NHWC = ("NHWC", "HWIO", "NHWC")


def _plain_conv(x, kernel, strides, padding):
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_chunked_filter_grad(x, kernel, strides, padding):
    return _plain_conv(x, kernel, strides, padding)


def _conv_forward(x, kernel, strides, padding):
    return _plain_conv(x, kernel, strides, padding), (x, kernel)


def _conv_backward(strides, padding, residuals, grad_out):
    """The input gradient as XLA makes it; the filter gradient summed over pieces of at
    most FILTER_GRAD_IMAGES images (the same sum, in another order)."""
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x: _plain_conv(x, kernel, strides, padding), x)
    batch = x.shape[0]
    pieces = -(-batch // FILTER_GRAD_IMAGES)
    bounds = [batch * i // pieces for i in range(pieces + 1)]
    kernel_grad = None
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        _, kernel_vjp = jax.vjp(lambda k, lo=lo, hi=hi: _plain_conv(x[lo:hi], k, strides,
                                                                    padding), kernel)
        piece = kernel_vjp(grad_out[lo:hi])[0]
        kernel_grad = piece if kernel_grad is None else kernel_grad + piece
    return input_vjp(grad_out)[0], kernel_grad


_conv_chunked_filter_grad.defvjp(_conv_forward, _conv_backward)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         precision=None, preferred_element_type=None):
    """``lax.conv_general_dilated`` for ``nn.Conv(conv_general_dilated=...)``: the same
    values and gradients; on CPU, a plain NHWC convolution's filter gradient is computed
    in pieces of the batch (``FILTER_GRAD_IMAGES``). Other backends, dilations, groups
    and precisions go to ``lax`` unchanged."""
    plain = (jax.default_backend() == "cpu" and not isinstance(padding, str)
             and all(d in (None, 1) for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
             and feature_group_count == 1 and precision is None
             and preferred_element_type is None and lhs.ndim == 4
             and dimension_numbers == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                                                     _NHWC))
    if not plain:
        return jax.lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count, precision=precision,
            preferred_element_type=preferred_element_type)
    return _conv_chunked_filter_grad(lhs, rhs, tuple(window_strides),
                                     tuple(tuple(p) for p in padding))
