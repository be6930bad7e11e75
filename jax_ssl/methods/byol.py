"""BYOL (Grill et al. 2020; deepmind-research/byol ``byol_experiment.py``).

Online network: backbone → projector → predictor (byol_mlp 4096-256 each); target:
an EMA of the online backbone and projector with momentum 1 − (1 − τ_base)(cos(πk/K)+1)/2
(τ_base 0.996). Loss: byol_loss(p₁, sg(z'₂)) + byol_loss(p₂, sg(z'₁)). BYOL evaluates the
online backbone. Config: ``config.byol`` with ``base_momentum``, ``hidden_dim``,
``output_dim``.
"""
from __future__ import annotations

import functools

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name, *, teacher: bool = False):
    """The online network; the ``teacher`` has no predictor."""
    cfg, dtype = config.byol, common.compute_dtype(config)

    def mlp():
        return heads.byol_mlp(cfg.hidden_dim, cfg.output_dim, axis_name=axis_name, dtype=dtype)
    return common.Network(common.build_backbone(config, axis_name, teacher=teacher), mlp(),
                          None if teacher else mlp())


def init(rng, config, batch):
    params, state = common.init_network(network(config, None), rng, batch["views"][:, 0])
    return params, common.init_teacher(params, state)


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del step
    loss = functools.partial(losses.byol_loss, axis_name=axis_name)
    return common.symmetric_teacher_loss(
        network(config, axis_name), network(config, axis_name, teacher=True), params,
        state, batch["views"], loss, rng, axis_name=axis_name)


after_update = common.ema_teacher_update("byol")

backbone_variables = common.backbone_variables
