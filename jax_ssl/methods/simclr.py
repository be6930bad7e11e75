"""SimCLR (Chen et al. 2020; google-research/simclr): backbone + projector + NT-Xent.

Both views go through the network as one batch, so the synced BatchNorm sees 2N images,
as in the official code. Config: ``config.simclr`` with ``temperature``,
``projector_hidden_dim`` (default: the backbone's width), ``projector_dim``,
``projector_layers``.
"""
from __future__ import annotations

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
    variables = network(config, None).init(rng, batch["views"][:, 0], train=True)
    return variables["params"], {"batch_stats": variables["batch_stats"]}


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    (representation, z, _), state = common.apply(network(config, axis_name), params, state,
                                                 common.split_views(batch["views"]))
    z1, z2 = common.unsplit(z, 2)
    loss = losses.info_nce(z1, z2, temperature=config.simclr.temperature, axis_name=axis_name)
    metrics = common.collapse_monitors(common.unsplit(representation, 2)[0],
                                       axis_name=axis_name)
    return loss, (state, metrics)


backbone_variables = common.backbone_variables
