"""Pieces every model here shares: PyTorch-equivalent BatchNorm and initialisers."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
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
