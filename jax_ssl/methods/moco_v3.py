"""MoCo v3 (Chen, Xie & He 2021; facebookresearch/moco-v3 ``moco/builder.py``).

Base encoder: backbone → projector (3 layers, 4096-256; last BN without affine) →
predictor (4096-256); momentum encoder: an EMA of backbone and projector, momentum
0.99 → 1 by the cosine schedule (``config.moco_v3.base_momentum``). Loss:
moco_v3_loss(q₁, k₂) + moco_v3_loss(q₂, k₁) with τ (1.0 for ResNets, 0.2 for ViTs).
MoCo v3 evaluates the base encoder's backbone. Config: ``config.moco_v3`` with
``temperature``, ``base_momentum``, ``projector_layers``, ``hidden_dim``, ``output_dim``.
"""
from __future__ import annotations

import functools

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name, *, teacher: bool = False):
    """The online network; the ``teacher`` has no predictor."""
    cfg, dtype = config.moco_v3, common.compute_dtype(config)
    head = heads.moco_v3_projector(cfg.projector_layers, cfg.hidden_dim, cfg.output_dim,
                                   axis_name=axis_name, dtype=dtype)
    pred = heads.moco_v3_predictor(cfg.hidden_dim, cfg.output_dim, axis_name=axis_name,
                                   dtype=dtype) if not teacher else None
    return common.Network(common.build_backbone(config, axis_name, teacher=teacher), head, pred)


def init(rng, config, batch):
    params, state = common.init_network(network(config, None), rng, batch["views"][:, 0])
    return params, common.init_teacher(params, state)


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del step
    loss = functools.partial(losses.moco_v3_loss, temperature=config.moco_v3.temperature,
                             axis_name=axis_name)
    return common.symmetric_teacher_loss(
        network(config, axis_name), network(config, axis_name, teacher=True), params,
        state, batch["views"], loss, rng, axis_name=axis_name)


after_update = common.ema_teacher_update("moco_v3")

backbone_variables = common.backbone_variables
