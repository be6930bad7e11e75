"""Barlow Twins (Zbontar et al. 2021; facebookresearch/barlowtwins ``main.py``).

Backbone → projector (8192-8192-8192, BN + ReLU between) → cross-correlation loss with
λ = 0.0051. Config: ``config.barlow_twins`` with ``projector_sizes``, ``lambd``.
The official LARS uses lr 0.2 for weights and 0.0048 for biases and BN parameters; the
trainer has one learning rate (that of the weights).
"""
from __future__ import annotations

import functools

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name):
    head = heads.barlow_twins_projector(tuple(config.barlow_twins.projector_sizes),
                                        axis_name=axis_name, dtype=common.compute_dtype(config))
    return common.Network(common.build_backbone(config, axis_name), head)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["views"][:, 0])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    loss = functools.partial(losses.barlow_twins_loss, lambd=config.barlow_twins.lambd,
                             axis_name=axis_name)
    return common.two_view_loss(network(config, axis_name), params, state, batch["views"],
                                loss, axis_name=axis_name)


backbone_variables = common.backbone_variables
