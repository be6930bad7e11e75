"""MAE (He et al. 2022; facebookresearch/mae ``main_pretrain.py``).

The MAE model (``config.model.backbone`` names one of ``models.MAES``, e.g.
``mae_vit_b16``, with ``backbone_kwargs`` overrides) removes ``mask_ratio`` of the
patches, encodes the rest and reconstructs every patch; the loss is ``mae_loss`` on the
removed ones with per-patch normalised targets (``norm_pix_loss``). Evaluation runs the
encoder as a plain ViT. Config ``config.mae``: ``mask_ratio``, ``norm_pix_loss``.
"""
from __future__ import annotations

import jax

from jax_ssl import losses, models
from jax_ssl.methods import common


def network(config):
    kwargs = dict(config.model.get("backbone_kwargs", {}))
    return models.MAES[config.model.backbone](
        mask_ratio=config.mae.mask_ratio, dtype=common.compute_dtype(config), **kwargs)


def init(rng, config, batch):
    masking, params_rng = jax.random.split(rng)
    params, _ = common.init_network(network(config), {"params": params_rng,
                                                      "masking": masking}, batch["image"])
    return params, {}


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del step
    net = network(config)
    masking, dropout = jax.random.split(rng)
    out = net.apply({"params": params}, batch["image"], train=True,
                    rngs={"masking": masking, "dropout": dropout})
    target = losses.patchify(batch["image"], net.patch_size)
    loss = losses.mae_loss(out["pred"], target, out["mask"], norm_pix=config.mae.norm_pix_loss,
                           axis_name=axis_name)
    return loss, (state, common.collapse_monitors(out["latent"][:, 0], axis_name=axis_name))


def backbone_variables(params, state):
    del state
    return {"params": params["encoder"]}
