"""SimCLR (Chen et al. 2020; google-research/simclr): backbone + projector + NT-Xent.

Both views go through the network as one batch, so the synced BatchNorm sees 2N images,
as in the official code. Config: ``config.simclr`` with ``temperature``,
``projector_hidden_dim`` (default: the backbone's width), ``projector_dim``,
``projector_layers``.
"""
from __future__ import annotations

import functools

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name):
    backbone = common.build_backbone(config, axis_name)
    cfg = config.simclr
    head = heads.simclr_projector(
        hidden_dim=cfg.get("projector_hidden_dim") or common.backbone_width(backbone),
        output_dim=cfg.projector_dim, num_layers=cfg.projector_layers, axis_name=axis_name,
        dtype=common.compute_dtype(config))
    return common.Network(backbone, head)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["views"][:, 0])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    loss = functools.partial(losses.info_nce, temperature=config.simclr.temperature,
                             axis_name=axis_name)
    return common.two_view_loss(network(config, axis_name), params, state, batch["views"],
                                loss, axis_name=axis_name)


backbone_variables = common.backbone_variables
