"""I-JEPA (Assran et al. 2023; facebookresearch/ijepa ``src/train.py``).

A context encoder (a ViT without CLS token, fixed sin-cos position embedding) sees only
the tokens of one context block; a narrow predictor (``models.ijepa.IJEPAPredictor``)
predicts, from them and the positions of each of 4 target blocks, the target encoder's
layer-normed outputs at those blocks (``ijepa_loss``: smooth L1). The target encoder is
an EMA of the context encoder (momentum linear 0.996 → 1 over training, as the
official's ``momentum_scheduler``) and sees the whole image. No augmentation beyond a
random resized crop.

Masks (``MultiBlockMaskSampler.draw``) are drawn inside the step from (seed, step): one
target size and one context size per global batch, blocks per image from its global
index, the context sets truncated to the smallest in the global batch, so a run is the
same on any number of devices (the official truncates per GPU). The index sets have
static sizes (the largest block each), padded and masked out of attention: one compiled
step, at the cost of running the context encoder on its largest possible block.

The evaluated backbone is the target encoder, its representation the average of its
patch tokens (``class_token=False``).

Config ``config.ijepa``: ``num_targets``, ``target_scale``, ``target_aspect_ratio``,
``context_scale``, ``min_keep``, ``predictor_dim``, ``predictor_depth``,
``base_momentum``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from jax_ssl import losses
from jax_ssl.losses._common import device_index
from jax_ssl.methods import common
from jax_ssl.models import ijepa

CONTEXT_ASPECT_RATIO = (1.0, 1.0)  # every official config


class IJEPANetwork(nn.Module):
    """Context encoder → predictor of the target blocks' features."""
    backbone: nn.Module
    predictor: nn.Module

    def __call__(self, images, masks, *, train: bool):
        """→ (predictions [T, B, Nt, D], the context tokens [B, Nc, D])."""
        context = self.backbone(images, train=train, patch_ids=masks["context_idx"],
                                patch_mask=jnp.broadcast_to(masks["context_valid"],
                                                            masks["context_idx"].shape))
        tokens = context["patch_tokens"]
        return self.predictor(tokens, masks["context_idx"], masks["target_idx"], train=train,
                              context_valid=masks["context_valid"],
                              target_valid=masks["target_valid"]), tokens


def sampler(config, grid) -> ijepa.MultiBlockMaskSampler:
    cfg = config.ijepa
    return ijepa.MultiBlockMaskSampler(
        grid_size=grid, num_targets=cfg.num_targets,
        target_scale=tuple(cfg.target_scale), target_aspect_ratio=tuple(cfg.target_aspect_ratio),
        context_scale=tuple(cfg.context_scale), context_aspect_ratio=CONTEXT_ASPECT_RATIO,
        min_keep=cfg.min_keep)


def network(config, axis_name, grid):
    cfg = config.ijepa
    backbone = common.build_backbone(config, axis_name)
    if getattr(backbone, "class_token", True):
        raise ValueError("ijepa needs a ViT without CLS token: set "
                         "model.backbone_kwargs.class_token=False.")
    predictor = ijepa.IJEPAPredictor(
        grid_size=grid, predictor_dim=cfg.predictor_dim, depth=cfg.predictor_depth,
        num_heads=backbone.num_heads, dtype=common.compute_dtype(config))
    return IJEPANetwork(backbone, predictor)


def _masks(config, step, images, axis_name):
    batch_size = images.shape[0]
    ids = device_index(axis_name) * batch_size + jnp.arange(batch_size)
    grid = common.patch_grid(config, images)
    return sampler(config, grid).draw(common.mask_key(config, step), ids, axis_name=axis_name)


def init(rng, config, batch):
    images = batch["image"]
    net = network(config, None, common.patch_grid(config, images))
    params, state = common.init_network(net, rng, images, masks=_masks(config, 0, images, None))
    return params, common.init_teacher(params, state)


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    images = batch["image"]
    masks = _masks(config, step, images, axis_name)
    student = network(config, axis_name, common.patch_grid(config, images))
    predictions, context = student.apply({"params": params}, images, masks, train=True,
                                         rngs={"dropout": rng})
    target = student.backbone.apply({"params": state["teacher"]["backbone"]}, images,
                                    train=False)["patch_tokens"]
    target = ijepa.gather_tokens(jax.lax.stop_gradient(target), masks["target_idx"])
    loss = losses.ijepa_loss(predictions, target, valid=masks["target_valid"],
                             axis_name=axis_name)
    valid = masks["context_valid"][None, :, None]
    pooled = jnp.sum(jnp.where(valid, context, 0.0), axis=1) / jnp.maximum(jnp.sum(valid), 1)
    metrics = {**common.collapse_monitors(pooled, axis_name=axis_name),
               "context_tokens": jnp.sum(masks["context_valid"]).astype(jnp.float32),
               "target_tokens": jnp.sum(masks["target_valid"]).astype(jnp.float32)}
    return loss, (state, metrics)


def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
    """The target encoder's EMA step; the momentum rises linearly from ``base_momentum``
    to 1 (ijepa ``momentum_scheduler``)."""
    del steps_per_epoch
    base = config.ijepa.base_momentum
    momentum = base + (1.0 - base) * jnp.minimum(step / max(total_steps, 1), 1.0)
    return common.update_teacher(params, state, momentum)


backbone_variables = functools.partial(common.backbone_variables, params_key="teacher")
