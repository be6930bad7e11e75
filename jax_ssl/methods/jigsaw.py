"""Jigsaw puzzles (Noroozi & Favaro 2016, "context-free network"; VISSL's ``jigsaw``
configs): which permutation of a fixed set shuffled an image's 3×3 tiles.

The recipe ``jigsaw`` cuts the tiles (random tiles inside the cells of a crop, per-tile
normalisation, colour-channel jitter) and shuffles them by a permutation drawn from
``losses.max_hamming_permutations(num_permutations)``; here all B·9 tiles go through the
backbone in one call (shared weights), a per-tile Linear + ReLU (``crop_dim``; CFN's fc6,
0: none, as VISSL's ResNet-50), the concatenation of the 9 in their shuffled order
through the classifier (``hidden_dims``; CFN's fc7 4096) to ``num_permutations`` classes.

Config ``config.jigsaw``: ``num_permutations`` (the recipe's; the config check says so
if they differ), ``crop_dim``, ``hidden_dims``.
"""
from __future__ import annotations

from jax_ssl import losses
from jax_ssl.methods import common, crops


def network(config, axis_name):
    return crops.crops_network(config, config.jigsaw, config.jigsaw.num_permutations,
                               axis_name)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["tiles"])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    return crops.classification_step(network(config, axis_name), params, state,
                                     batch["tiles"], batch["permutation"],
                                     losses.jigsaw_loss, axis_name=axis_name)


backbone_variables = common.backbone_variables
