"""VICReg (Bardes et al. 2022; facebookresearch/vicreg ``main_vicreg.py``).

Backbone → expander (8192-8192-8192) → invariance + variance + covariance loss with
coefficients 25 / 25 / 1. Config: ``config.vicreg`` with ``projector_sizes``,
``sim_coeff``, ``std_coeff``, ``cov_coeff``.
"""
from __future__ import annotations

import functools

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name):
    head = heads.vicreg_projector(tuple(config.vicreg.projector_sizes), axis_name=axis_name,
                                  dtype=common.compute_dtype(config))
    return common.Network(common.build_backbone(config, axis_name), head)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["views"][:, 0])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    cfg = config.vicreg
    loss = functools.partial(losses.vicreg_loss, sim_coeff=cfg.sim_coeff,
                             std_coeff=cfg.std_coeff, cov_coeff=cfg.cov_coeff,
                             axis_name=axis_name)
    return common.two_view_loss(network(config, axis_name), params, state, batch["views"],
                                loss, axis_name=axis_name)


backbone_variables = common.backbone_variables
