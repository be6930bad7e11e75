"""Relative patch position (Doersch, Gupta & Efros 2015, "context prediction"): where a
patch lies relative to another, one of the 8 neighbours of a 3×3 grid.

The recipe ``relative_position`` cuts the centre patch and one neighbour (a gap between
them and a random jitter, so that edges and texture continuation do not give the
answer away); both go through the backbone in one call (shared weights: Doersch's
late-fusion siamese network), a per-patch Linear + ReLU (``crop_dim``; fc6), their
concatenation through the classifier (``hidden_dims``; fc7 4096) to the 8 positions of
``losses.RELATIVE_POSITION_OFFSETS``.

Config ``config.relative_position``: ``crop_dim``, ``hidden_dims``.
"""
from __future__ import annotations

from jax_ssl import losses
from jax_ssl.methods import common, crops


def network(config, axis_name):
    return crops.crops_network(config, config.relative_position, 8, axis_name)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["patches"])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    return crops.classification_step(network(config, axis_name), params, state,
                                     batch["patches"], batch["position"],
                                     losses.relative_position_loss, axis_name=axis_name)


backbone_variables = common.backbone_variables
