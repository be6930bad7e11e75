"""ResNet-18/34/50/101 backbones with torchvision's layout, without the classifier.

Layout (``torchvision.models.resnet``): 7×7/2 conv stem, BN, ReLU, 3×3/2 max-pool;
four stages of 64·2ⁱ-wide blocks, the first block of stages 2–4 striding by 2;
BasicBlock for 18/34, Bottleneck (expansion 4) for 50/101 with the stride on its
3×3 conv ("ResNet v1.5"); a 1×1 conv + BN shortcut wherever the shape changes;
global average pooling. Every conv pads like PyTorch (``k // 2`` on each side, not
XLA's asymmetric ``SAME``), so the same weights give the same outputs.

Conventions:
  * Images are NHWC.
  * ``dtype`` is the compute dtype; parameters stay float32 and BN statistics are
    reduced in float32.
  * BatchNorm has PyTorch's semantics — running averages updated as
    0.9·old + 0.1·batch (Flax ``momentum=0.9``), eps 1e-5, the biased batch variance
    for normalising — and, given ``axis_name``, normalises with the statistics of the
    global batch (synchronised BN, DESIGN.md §3). Call with ``train=True`` and
    ``mutable=['batch_stats']`` while training. One difference remains: Flax tracks
    the biased batch variance in the running average, PyTorch the unbiased one (a
    factor N/(N−1), used only at evaluation).
  * Conv kernels use torchvision's ``kaiming_normal_(mode='fan_out',
    nonlinearity='relu')``; BN scale 1 and bias 0.

Parameter names follow torchvision's state dict (``conv1``, ``bn1``,
``layer{stage}_{block}/conv2``, ``…/downsample_conv``) so weights can be mapped across.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax.numpy as jnp

from jax_ssl.models.layers import batch_norm, conv_general_dilated

kaiming_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(features: int, kernel: int, strides: int, dtype: Any, name: str) -> nn.Conv:
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                   padding=((pad, pad), (pad, pad)), use_bias=False, dtype=dtype,
                   param_dtype=jnp.float32, kernel_init=kaiming_normal_fan_out, name=name,
                   conv_general_dilated=conv_general_dilated)


def _batch_norm(train: bool, axis_name: str | None, dtype: Any, name: str,
                zero_scale: bool = False) -> nn.BatchNorm:
    return batch_norm(axis_name, dtype, zero_scale=zero_scale, use_running_average=not train,
                      name=name)


def _shortcut(x, features: int, strides: int, train: bool, axis_name: str | None,
              dtype: Any):
    """Identity, or 1×1 conv (stride) + BN when the block changes the shape.

    Called inside a block's ``__call__``, so its modules belong to that block.
    """
    if strides == 1 and x.shape[-1] == features:
        return x
    x = _conv(features, 1, strides, dtype, "downsample_conv")(x)
    return _batch_norm(train, axis_name, dtype, "downsample_bn")(x)


class _ResidualBlock(nn.Module):
    """Fields shared by both block types; ``features`` is the inner width."""

    features: int
    strides: int = 1
    zero_init_residual: bool = False
    axis_name: str | None = None
    dtype: Any = jnp.float32

    expansion: ClassVar[int]


class BasicBlock(_ResidualBlock):
    """3×3 conv → BN → ReLU → 3×3 conv → BN, plus shortcut, then ReLU.

    Call: ``block(x [B, H, W, C], train=bool)`` → [B, ⌈H/s⌉, ⌈W/s⌉, features] with
    s = ``strides``.
    """

    expansion: ClassVar[int] = 1

    @nn.compact
    def __call__(self, x, *, train: bool):
        y = _conv(self.features, 3, self.strides, self.dtype, "conv1")(x)
        y = nn.relu(_batch_norm(train, self.axis_name, self.dtype, "bn1")(y))
        y = _conv(self.features, 3, 1, self.dtype, "conv2")(y)
        y = _batch_norm(train, self.axis_name, self.dtype, "bn2",
                        zero_scale=self.zero_init_residual)(y)
        shortcut = _shortcut(x, y.shape[-1], self.strides, train, self.axis_name, self.dtype)
        return nn.relu(shortcut + y)


class Bottleneck(_ResidualBlock):
    """1×1 conv → BN → ReLU → 3×3 conv (stride) → BN → ReLU → 1×1 conv → BN, plus
    shortcut, then ReLU.

    Call: ``block(x [B, H, W, C], train=bool)`` → [B, ⌈H/s⌉, ⌈W/s⌉, 4·features] with
    s = ``strides``.
    """

    expansion: ClassVar[int] = 4

    @nn.compact
    def __call__(self, x, *, train: bool):
        y = _conv(self.features, 1, 1, self.dtype, "conv1")(x)
        y = nn.relu(_batch_norm(train, self.axis_name, self.dtype, "bn1")(y))
        # ResNet v1.5: striding in the 3×3 conv rather than the first 1×1 conv, which
        # would skip three quarters of the input.
        y = _conv(self.features, 3, self.strides, self.dtype, "conv2")(y)
        y = nn.relu(_batch_norm(train, self.axis_name, self.dtype, "bn2")(y))
        y = _conv(self.features * self.expansion, 1, 1, self.dtype, "conv3")(y)
        y = _batch_norm(train, self.axis_name, self.dtype, "bn3",
                        zero_scale=self.zero_init_residual)(y)
        shortcut = _shortcut(x, y.shape[-1], self.strides, train, self.axis_name, self.dtype)
        return nn.relu(shortcut + y)


class ResNet(nn.Module):
    """ResNet backbone without the classifier.

    Attributes:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
      block_cls: ``BasicBlock`` or ``Bottleneck``.
      cifar_stem: 3×3/1 conv → BN → ReLU and no max-pool (SimCLR's and solo-learn's
        variant for 32 px images) instead of the 7×7/2 conv and 3×3/2 max-pool.
      zero_init_residual: the last BN of every residual branch starts with scale 0, so
        each block starts as the identity (torchvision's option, off by default).
      width: channels of the stem and the first stage; stage i has width·2ⁱ. 64 is
        torchvision's; SimCLR's ResNet-50 (2×) and (4×) use 128 and 256.
      axis_name: mesh/pmap axis over which BN statistics are averaged (None: local).
      dtype: compute dtype.

    Call: ``resnet(x [B, H, W, 3], train=bool, return_feature_map=False,
    return_stages=False)`` →
      pooled features [B, num_features]; with ``return_feature_map=True`` the last
      stage's map [B, h, w, num_features] instead (its spatial mean is the pooled
      output), where h = ⌈H/32⌉ (⌈H/8⌉ with the CIFAR stem); with
      ``return_stages=True`` a tuple of every stage's output map, stage i (from 0)
      [B, h_i, w_i, width·2ⁱ·expansion] (the last one is the feature map), for probes
      of intermediate layers.
    """

    stage_sizes: Sequence[int]
    block_cls: type[BasicBlock] | type[Bottleneck]
    cifar_stem: bool = False
    zero_init_residual: bool = False
    width: int = 64
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @property
    def num_features(self) -> int:
        """Width of the output: 8·width·expansion (512 or 2048 at width 64)."""
        return self.width * 2 ** (len(self.stage_sizes) - 1) * self.block_cls.expansion

    @nn.compact
    def __call__(self, x, *, train: bool, return_feature_map: bool = False,
                 return_stages: bool = False):
        if self.cifar_stem:
            x = _conv(self.width, 3, 1, self.dtype, "conv1")(x)
        else:
            x = _conv(self.width, 7, 2, self.dtype, "conv1")(x)
        x = nn.relu(_batch_norm(train, self.axis_name, self.dtype, "bn1")(x))
        if not self.cifar_stem:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        stages = []
        for i, num_blocks in enumerate(self.stage_sizes):
            for j in range(num_blocks):
                x = self.block_cls(
                    features=self.width * 2 ** i, strides=2 if i > 0 and j == 0 else 1,
                    zero_init_residual=self.zero_init_residual, axis_name=self.axis_name,
                    dtype=self.dtype, name=f"layer{i + 1}_{j}")(x, train=train)
            stages.append(x)
        if return_stages:
            return tuple(stages)
        if return_feature_map:
            return x
        return jnp.mean(x, axis=(1, 2))


def resnet18(**kwargs) -> ResNet:
    """ResNet-18: BasicBlock × (2, 2, 2, 2), 512 features, 11.18 M parameters.

    Keyword arguments are ``ResNet``'s attributes (``cifar_stem``, ``axis_name``, …).
    """
    return ResNet(stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock, **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34: BasicBlock × (3, 4, 6, 3), 512 features, 21.28 M parameters."""
    return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock, **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50: Bottleneck × (3, 4, 6, 3), 2048 features, 23.51 M parameters."""
    return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck, **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101: Bottleneck × (3, 4, 23, 3), 2048 features, 42.50 M parameters."""
    return ResNet(stage_sizes=(3, 4, 23, 3), block_cls=Bottleneck, **kwargs)


RESNETS = {"resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
           "resnet101": resnet101}
