"""iBOT (Zhou et al. 2022; bytedance/ibot ``main_ibot.py``, ``loader.py``).

DINO's self-distillation of the CLS token plus masked image modelling on the patch
tokens. Each global crop of each image is masked with probability ``mask_probability``
(the recipes' ``--pred_ratio 0 0.3``: a choice between 0 and a ratio), at a ratio drawn
from U(pred_ratio ± pred_ratio_var), as BEiT-style blocks (``models.block_masks``:
minimum block (min(H, W) // 3)² patches, aspect 0.3–1/0.3). The student's ViT sees the
mask token in place of the masked patch embeddings; the teacher (EMA, 0.996 → 1) sees
the whole crops. Loss: λ₁ · ``dino_loss`` of the CLS outputs (every teacher-global,
student-crop pair of different crops; the global crops' student CLS from the masked
input) + λ₂ · ``ibot_patch_loss`` of each global crop's masked patches against the
teacher's outputs for the same crop, with a patch center (momentum 0.9 over all teacher
patches) and its own teacher temperature schedule. Local crops give CLS outputs only.

Masks are drawn inside the step from its rng, one key per (global crop, image's global
index): the same masks on any number of devices. Not implemented: ``pred_start_epoch``
(masking from the first epoch, the ViT recipes' 0). ViT backbones only. iBOT evaluates
the teacher's backbone (its mask token, the EMA of the student's, unused).

Config ``config.ibot``: DINO's keys (``out_dim``, ``hidden_dim``, ``bottleneck_dim``,
``norm_last_layer``, ``base_momentum``, ``student_temp``, ``warmup_teacher_temp``,
``teacher_temp``, ``warmup_teacher_temp_epochs``, ``center_momentum``,
``freeze_last_layer``) and ``patch_out_dim``, ``shared_head``, ``shared_head_teacher``,
``warmup_teacher_patch_temp``, ``teacher_patch_temp``, ``center_momentum2``,
``lambda1``, ``lambda2``, ``mask_probability``, ``pred_ratio``, ``pred_ratio_var``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from jax_ssl import losses
from jax_ssl.losses._common import device_index, global_mean
from jax_ssl.methods import common
from jax_ssl.models import block_masks, heads

MASK_ASPECT_RATIO = (0.3, 1 / 0.3)  # main_ibot.py --pred_aspect_ratio


class IBOTNetwork(nn.Module):
    """ViT (with the mask token) → IBOTHead on its CLS and patch tokens."""
    backbone: nn.Module
    head: nn.Module

    def __call__(self, images, *, train: bool, mask=None, cls_only: bool = False):
        """→ (CLS representation [B, D], CLS outputs [B, K], patch outputs [B, P, K₂]; none
        with ``cls_only``, as the local crops')."""
        features = self.backbone(images, train=train, mask=mask)
        cls = features["cls"]
        tokens = cls[:, None] if cls_only else jnp.concatenate(
            [cls[:, None], features["patch_tokens"]], axis=1)
        cls_out, patch_out = self.head(tokens, train=train)
        return cls, cls_out, patch_out


def network(config, axis_name, *, teacher: bool = False):
    cfg = config.ibot
    backbone = common.build_masked_vit(config, axis_name, teacher=teacher)
    head = heads.IBOTHead(out_dim=cfg.out_dim, patch_out_dim=cfg.patch_out_dim,
                          hidden_dim=cfg.hidden_dim, bottleneck_dim=cfg.bottleneck_dim,
                          norm_last_layer=cfg.norm_last_layer, shared_head=cfg.shared_head,
                          patches_through_last_layer=teacher and cfg.shared_head_teacher,
                          dtype=common.compute_dtype(config))
    return IBOTNetwork(backbone, head)


def global_crop_masks(rng, config, batch_size: int, num_crops: int, grid, axis_name):
    """[num_crops, B, H·W] bool: crop c of local image i is masked with probability
    ``mask_probability`` at ratio U(pred_ratio ± pred_ratio_var), from keys of (c, the
    image's global index)."""
    cfg = config.ibot
    height, width = grid
    ids = device_index(axis_name) * batch_size + jnp.arange(batch_size)

    def crop(c):
        draw_key, block_key = jax.random.split(jax.random.fold_in(rng, c))
        keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(draw_key, i)))(ids)
        masked = jax.vmap(lambda k: jax.random.bernoulli(k, cfg.mask_probability))(keys[:, 0])
        ratio = jax.vmap(lambda k: jax.random.uniform(
            k, (), minval=cfg.pred_ratio - cfg.pred_ratio_var,
            maxval=cfg.pred_ratio + cfg.pred_ratio_var))(keys[:, 1])
        target = jnp.where(masked, ratio * height * width, 0.0)
        return block_masks.block_masks(block_key, ids, grid, target,
                                       min_block=(min(height, width) // 3) ** 2,
                                       aspect_ratio=MASK_ASPECT_RATIO)
    return jnp.stack([crop(c) for c in range(num_crops)])


def _teacher_temps(config, epoch):
    cfg = config.ibot
    schedule = dict(warmup_epochs=cfg.warmup_teacher_temp_epochs)
    return (losses.dino_teacher_temperature(
                epoch, warmup_teacher_temp=cfg.warmup_teacher_temp,
                teacher_temp=cfg.teacher_temp, **schedule),
            losses.dino_teacher_temperature(
                epoch, warmup_teacher_temp=cfg.warmup_teacher_patch_temp,
                teacher_temp=cfg.teacher_patch_temp, **schedule))


def init(rng, config, batch):
    images = batch["global_views"][:, 0]
    params, state = common.init_network(network(config, None), rng, images)
    state = common.init_teacher(params, state)
    cls_temp, patch_temp = _teacher_temps(config, 0)
    cfg = config.ibot
    patch_dim = cfg.out_dim if cfg.shared_head or cfg.shared_head_teacher else cfg.patch_out_dim
    return params, {**state, "center": jnp.zeros(cfg.out_dim, jnp.float32),
                    "patch_center": jnp.zeros(patch_dim, jnp.float32),
                    "teacher_temp": cls_temp, "teacher_patch_temp": patch_temp}


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    cfg = config.ibot
    global_views = batch["global_views"]  # [B, 2, H, W, C]
    b, num_global = global_views.shape[:2]
    masks = global_crop_masks(common.mask_key(config, step), config, b, num_global,
                              common.patch_grid(config, global_views), axis_name)
    masks = masks.reshape(num_global * b, -1)  # view-major
    student = network(config, axis_name)
    run = functools.partial(student.apply, {"params": params}, train=True,
                            rngs={"dropout": rng})
    representation, student_cls, student_patch = run(
        common.split_views(global_views), mask=masks)
    student_cls = common.unsplit(student_cls, num_global)
    if "local_views" in batch:
        local = batch["local_views"]
        _, local_cls, _ = run(common.split_views(local), cls_only=True)
        student_cls = jnp.concatenate([student_cls, common.unsplit(local_cls, local.shape[1])])
    teacher = network(config, axis_name, teacher=True)
    _, teacher_cls, teacher_patch = jax.lax.stop_gradient(teacher.apply(
        {"params": state["teacher"]}, common.split_views(global_views), train=False))
    cls_loss, center = losses.dino_loss(
        student_cls, common.unsplit(teacher_cls, num_global), state["center"],
        student_temp=cfg.student_temp, teacher_temp=state["teacher_temp"],
        center_momentum=cfg.center_momentum, axis_name=axis_name)
    patch_probs = losses.centered_teacher_probs(teacher_patch, state["patch_center"],
                                                temperature=state["teacher_patch_temp"])
    patch_loss = losses.ibot_patch_loss(student_patch, patch_probs, masks,
                                        student_temp=cfg.student_temp, axis_name=axis_name)
    patch_center = losses.ibot_patch_center(teacher_patch, state["patch_center"],
                                            center_momentum=cfg.center_momentum2,
                                            axis_name=axis_name)
    loss = cfg.lambda1 * cls_loss + cfg.lambda2 * patch_loss
    monitors = common.collapse_monitors(common.unsplit(representation, num_global)[0],
                                        axis_name=axis_name)
    metrics = {**monitors, "cls_loss": cls_loss, "patch_loss": patch_loss,
               "masked_fraction": global_mean(jnp.mean(masks), axis_name),
               "teacher_temp": state["teacher_temp"]}
    return loss, ({**state, "center": center, "patch_center": patch_center}, metrics)


_teacher_update = common.ema_teacher_update("ibot")


def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
    state = _teacher_update(params, state, step, config=config, total_steps=total_steps,
                            steps_per_epoch=steps_per_epoch)
    cls_temp, patch_temp = _teacher_temps(config, (step + 1) // steps_per_epoch)
    return {**state, "teacher_temp": cls_temp, "teacher_patch_temp": patch_temp}


def trainable(params, step, *, config, total_steps, steps_per_epoch):
    """Everything but the head's last layers (``last_layer``, ``last_layer2``) during the
    first ``freeze_last_layer`` epochs."""
    del total_steps
    unfrozen = step >= config.ibot.freeze_last_layer * steps_per_epoch
    return common.freeze_head_last_layers(params, unfrozen)


def backbone_variables(params, state):
    return common.backbone_variables(params, state, params_key="teacher")
