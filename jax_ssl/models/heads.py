"""Projection / prediction heads: MLP projectors, DINO's head, SwAV's prototypes.

Conventions shared by every head here:
  * ``dtype`` is the compute dtype; parameters stay float32 (``param_dtype``).
  * BatchNorm has PyTorch's semantics — running averages updated as
    0.9·old + 0.1·batch (Flax ``momentum=0.9``), eps 1e-5 — and, given ``axis_name``,
    normalises with the statistics of the global batch (synchronised BN, DESIGN.md §3).
    Call with ``train=True`` and ``mutable=['batch_stats']`` while training. One
    difference remains: Flax tracks the biased batch variance, PyTorch the unbiased one
    (a factor N/(N−1) on the running variance only, used at evaluation).
  * Linear weights default to PyTorch's ``nn.Linear`` initialisation, U(±1/√fan_in),
    as most reference codes are PyTorch; the SimCLR (TF) and BYOL (Haiku) helpers use
    their codes' initialisers. Biases start at 0.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jax_ssl.models.layers import batch_norm, trunc_normal_02

# PyTorch nn.Linear's default kaiming_uniform(a=√5): U(±√(1/fan_in)).
torch_linear_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
# Haiku hk.Linear's default: normal(1/√fan_in) truncated at ±2σ. JAX's variance_scaling
# sets the standard deviation *after* truncation, which is 0.8796 of the untruncated one.
haiku_linear_init = nn.initializers.variance_scaling(
    0.87962566103423978 ** 2, "fan_in", "truncated_normal")


def l2_normalize(x, axis: int = -1, eps: float = 1e-12):
    """x / max(‖x‖₂, eps) along ``axis`` (``torch.nn.functional.normalize``)."""
    norm = jnp.linalg.norm(x, axis=axis, keepdims=True)
    return x / jnp.maximum(norm, eps)


class MLP(nn.Module):
    """Projector / predictor: (Linear → [BN] → ReLU) per hidden layer, Linear → [BN].

    Submodules are named ``linear_i`` and ``bn_i`` (i = 0 … len(hidden_dims)).

    Attributes:
      hidden_dims: widths of the hidden layers (may be empty: a single Linear).
      output_dim: width of the output.
      use_bn: BatchNorm after each hidden Linear. A hidden Linear has a bias only when no
        BN follows it: BN's mean subtraction cancels such a bias (exactly in training,
        where it gets zero gradient), so this matches official codes that keep one
        (VICReg, BYOL) as well as those that drop it (SimCLR, MoCo v3, Barlow Twins).
      last_bn: BatchNorm after the output Linear.
      last_bn_affine: the output BN has scale and bias (False: MoCo v3's BN without
        affine parameters).
      last_bn_center: the output BN has a bias (False with affine: SimCLR's scale-only BN).
      last_bias: the output Linear has a bias when no BN follows it. Every official head
        below but SwAV's leaves it out.
      kernel_init: initialiser of every Linear's weights.
      axis_name: mesh/pmap axis over which BN statistics are averaged (None: local).
      dtype: compute dtype.

    Call: ``mlp(x [..., D_in], train=bool)`` → [..., output_dim].
    """

    hidden_dims: Sequence[int]
    output_dim: int
    use_bn: bool = True
    last_bn: bool = False
    last_bn_affine: bool = True
    last_bn_center: bool = True
    last_bias: bool = True
    kernel_init: Callable = torch_linear_init
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool):
        for i, dim in enumerate(self.hidden_dims):
            x = self._linear(dim, not self.use_bn, i)(x)
            if self.use_bn:
                x = batch_norm(self.axis_name, self.dtype, name=f"bn_{i}")(
                    x, use_running_average=not train)
            x = nn.relu(x)
        last = len(self.hidden_dims)
        x = self._linear(self.output_dim, self.last_bias and not self.last_bn, last)(x)
        if self.last_bn:
            x = batch_norm(self.axis_name, self.dtype, affine=self.last_bn_affine,
                           center=self.last_bn_center, name=f"bn_{last}")(
                x, use_running_average=not train)
        return x

    def _linear(self, features: int, use_bias: bool, index: int) -> nn.Dense:
        return nn.Dense(features, use_bias=use_bias, dtype=self.dtype,
                        kernel_init=self.kernel_init, name=f"linear_{index}")


# Official heads. Sizes as "hidden-...-output" (input width excluded); the backbone's
# width (2048 for ResNet-50) is the input. ``kwargs`` passes axis_name and dtype.


def simclr_projector(hidden_dim: int = 2048, output_dim: int = 128, num_layers: int = 3,
                     **kwargs) -> MLP:
    """SimCLR: 2048-2048-128, BN everywhere, the last BN with scale but no bias.

    google-research/simclr ``tf2/model.py`` ``ProjectionHead`` with its defaults
    ``num_proj_layers=3``, ``proj_out_dim=128``; hidden layers as wide as the input
    (pass the backbone width). ``num_layers=2`` is SimCLR v1's head (2048-128). Weights
    start as normal(0.01), as its ``LinearLayer``.
    """
    return MLP(hidden_dims=(hidden_dim,) * (num_layers - 1), output_dim=output_dim,
               last_bn=True, last_bn_center=False,
               kernel_init=nn.initializers.normal(0.01), **kwargs)


def moco_v3_projector(num_layers: int = 3, hidden_dim: int = 4096, output_dim: int = 256,
                      **kwargs) -> MLP:
    """MoCo v3 projector: 4096-4096-256 for ViT (3 layers), 4096-256 for ResNet (2 layers).

    facebookresearch/moco-v3 ``moco/builder.py`` ``_build_mlp(..., last_bn=True)``: no
    Linear has a bias; the last BN has no affine parameters.
    """
    return MLP(hidden_dims=(hidden_dim,) * (num_layers - 1), output_dim=output_dim,
               last_bn=True, last_bn_affine=False, **kwargs)


def moco_v3_predictor(hidden_dim: int = 4096, output_dim: int = 256, **kwargs) -> MLP:
    """MoCo v3 predictor: 4096-256, no BN and no bias on the output Linear.

    facebookresearch/moco-v3 ``moco/builder.py`` ``_build_mlp(2, ..., last_bn=False)``.
    """
    return MLP(hidden_dims=(hidden_dim,), output_dim=output_dim, last_bias=False, **kwargs)


def byol_mlp(hidden_dim: int = 4096, output_dim: int = 256, **kwargs) -> MLP:
    """BYOL projector and predictor (the same architecture): Linear-BN-ReLU-Linear 4096-256.

    deepmind-research/byol ``utils/networks.py`` ``MLP``; the output Linear has no bias;
    Haiku's default weight initialisation.
    """
    return MLP(hidden_dims=(hidden_dim,), output_dim=output_dim, last_bias=False,
               kernel_init=haiku_linear_init, **kwargs)


def barlow_twins_projector(sizes: Sequence[int] = (8192, 8192, 8192), **kwargs) -> MLP:
    """Barlow Twins projector 8192-8192-8192: BN-ReLU after each hidden Linear, none after
    the last, which has no bias (facebookresearch/barlowtwins ``main.py``, ``--projector``).

    The BN without affine that the official applies to the output belongs to the loss
    (``barlow_twins_loss`` standardises each feature over the global batch).
    """
    return MLP(hidden_dims=tuple(sizes[:-1]), output_dim=sizes[-1], last_bias=False,
               **kwargs)


def vicreg_projector(sizes: Sequence[int] = (8192, 8192, 8192), **kwargs) -> MLP:
    """VICReg expander 8192-8192-8192 (facebookresearch/vicreg ``main_vicreg.py``
    ``Projector``, ``--mlp``): Barlow Twins' architecture; the official hidden Linears'
    biases, cancelled by the following BN, are left out."""
    return barlow_twins_projector(sizes, **kwargs)


def swav_projector(hidden_dim: int = 2048, output_dim: int = 128, **kwargs) -> MLP:
    """SwAV projection head 2048-128 (facebookresearch/swav ``src/resnet50.py``,
    ``hidden_mlp=2048``, ``feat_dim=128``); its output Linear keeps the bias. SwAV
    L2-normalises the output before ``Prototypes``."""
    return MLP(hidden_dims=(hidden_dim,), output_dim=output_dim, **kwargs)


class WeightNormDense(nn.Module):
    """Bias-free Linear with weight normalisation per output unit.

    y = x · (g ⊙ v/‖v‖), norms over the input axis: each output unit's weight vector
    (a column of the [D_in, features] ``kernel`` v) has norm g. ``learn_scale=False``
    fixes g = 1 (no ``scale`` parameter), i.e. unit-norm weight vectors; otherwise g is
    the ``scale`` parameter [features], initialised to 1 (``torch.nn.utils.weight_norm``
    with ``weight_g`` filled with 1). v starts as PyTorch's default Linear weight.
    """

    features: int
    learn_scale: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        v = self.param("kernel", torch_linear_init, (x.shape[-1], self.features))
        # x·(g ⊙ v/‖v‖) = (x·v) ⊙ g/‖v‖: the scale goes on the [B, features] output, not
        # on the [D_in, features] kernel. XLA:CPU fuses a normalised kernel into the
        # matmul and recomputes it per tile: 7.3 s of DINO ViT-S/16's 18 s step (65536
        # units) went to the teacher's last layer alone.
        scale = 1.0 / jnp.maximum(jnp.linalg.norm(v, axis=0), 1e-12)
        if self.learn_scale:
            scale = scale * self.param("scale", nn.initializers.ones, (self.features,))
        return jnp.dot(x.astype(self.dtype), v.astype(self.dtype)) * scale.astype(self.dtype)


class DINOHead(nn.Module):
    """DINO's head (facebookresearch/dino ``vision_transformer.py`` ``DINOHead``).

    MLP ``num_layers`` Linears in→2048→2048→256 with GELU (and BN if ``use_bn``) between
    them, L2 normalisation of the 256-d bottleneck, then a weight-normalised bias-free
    Linear to ``out_dim`` (``WeightNormDense``) whose per-unit weight norm is fixed at 1
    when ``norm_last_layer`` (DINO's default) and trainable otherwise. MLP weights start
    as normal(0.02), biases at 0. With ``use_bn`` the Linears before a BN have no bias
    (the official keeps these biases, which BN cancels; see ``MLP``).

    Parameter names: ``mlp_i`` (Dense), ``bn_i`` (BatchNorm, ``use_bn`` only) and
    ``last_layer`` with ``kernel`` [256, out_dim] (and ``scale`` [out_dim] when
    ``norm_last_layer=False``). DINO freezes the last layer during the first epoch
    (``freeze_last_layer=1``): zero the updates of ``params['last_layer']``.

    Parameter count of the default head on ViT-S/16 (in 384, out 65536):
    788,480 + 4,196,352 + 524,544 (MLP) + 16,777,216 (last layer) = 22,286,592, equal to
    the official's trainable parameters; its state dict adds the frozen
    ``weight_g`` (65,536).

    Call: ``head(x [..., D_in], train=bool)`` → [..., out_dim] in ``dtype``.
    """

    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    num_layers: int = 3
    use_bn: bool = False
    norm_last_layer: bool = True
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, *, train: bool):
        x = _dino_bottleneck(self, x, train=train)
        return WeightNormDense(self.out_dim, learn_scale=not self.norm_last_layer,
                               dtype=self.dtype, name="last_layer")(x)


def _dino_bottleneck(head, x, *, train: bool):
    """DINO's MLP and L2 normalisation, as submodules ``mlp_i`` / ``bn_i`` of ``head``
    (called inside its compact ``__call__``)."""
    if head.num_layers < 1:
        raise ValueError(f"{type(head).__name__} needs num_layers >= 1, got "
                         f"{head.num_layers}.")
    dims = (head.hidden_dim,) * (head.num_layers - 1) + (head.bottleneck_dim,)
    for i, dim in enumerate(dims):
        hidden = i < len(dims) - 1
        x = nn.Dense(dim, use_bias=not (hidden and head.use_bn), dtype=head.dtype,
                     kernel_init=trunc_normal_02, name=f"mlp_{i}")(x)
        if hidden:
            if head.use_bn:
                x = batch_norm(head.axis_name, head.dtype, name=f"bn_{i}")(
                    x, use_running_average=not train)
            x = nn.gelu(x, approximate=False)  # torch nn.GELU is the exact erf form
    return l2_normalize(x.astype(jnp.float32))


class IBOTHead(DINOHead):
    """iBOT's head (bytedance/ibot ``models/head.py`` ``iBOTHead``): DINOHead's MLP and L2
    normalisation on every token, then the weight-normed ``last_layer`` [256, out_dim]
    for the CLS token and ``last_layer2`` [256, patch_out_dim] for the patch tokens.

    ``shared_head``: no ``last_layer2``; the patches go through ``last_layer`` too (the
    ViT recipes' setting). ``patches_through_last_layer``: project the patches with
    ``last_layer`` even where ``last_layer2`` exists — iBOT's teacher with
    ``shared_head_teacher`` (its default), whose ``last_layer2`` is never used or updated
    from the student's. Other fields as ``DINOHead``'s.

    Call: ``head(tokens [B, 1 + P, D_in], train=bool)`` → (CLS outputs [B, out_dim],
    patch outputs [B, P, patch_out_dim]).
    """

    patch_out_dim: int = 8192
    shared_head: bool = False
    patches_through_last_layer: bool = False

    @nn.compact
    def __call__(self, tokens, *, train: bool):
        x = _dino_bottleneck(self, tokens, train=train)
        last_layer = WeightNormDense(self.out_dim, learn_scale=not self.norm_last_layer,
                                     dtype=self.dtype, name="last_layer")
        cls = last_layer(x[:, 0])
        if self.shared_head or self.patches_through_last_layer:
            return cls, last_layer(x[:, 1:])
        return cls, WeightNormDense(self.patch_out_dim, learn_scale=not self.norm_last_layer,
                                    dtype=self.dtype, name="last_layer2")(x[:, 1:])


class Prototypes(nn.Module):
    """SwAV's prototypes: a bias-free Linear to ``num_prototypes`` scores.

    Inputs should be L2-normalised embeddings (SwAV normalises the projector's output).
    The method keeps the prototype vectors — the columns of ``kernel`` [D, K] — on the
    unit sphere by applying ``normalize_prototypes`` to this module's parameters before
    every forward pass (facebookresearch/swav ``main_swav.py`` does it at the start of
    each iteration), and applies the same module to queued embeddings to score them.

    Call: ``prototypes(z [..., D])`` → [..., num_prototypes].
    """

    num_prototypes: int = 3000
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z):
        kernel = self.param("kernel", torch_linear_init, (z.shape[-1], self.num_prototypes))
        return jnp.dot(z.astype(self.dtype), kernel.astype(self.dtype))


def normalize_prototypes(params):
    """Returns ``Prototypes`` parameters with every prototype vector at unit L2 norm.

    Args:
      params: the module's own parameters, ``{'kernel': [D, K]}``.
    """
    return {**params, "kernel": l2_normalize(params["kernel"], axis=0)}
