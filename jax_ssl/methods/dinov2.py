"""DINOv2 (Oquab et al. 2023; facebookresearch/dinov2 ``train/ssl_meta_arch.py``,
``configs/ssl_default_config.yaml``, ``data/collate.py``, ``data/masking.py``).

DINO's CLS self-distillation, iBOT's masked-patch loss and the KoLeo regulariser, with
a ViT student (the mask token in place of masked patches) and its EMA teacher (0.992 →
1) on the unmasked global crops. Per step and device, as the official collate:
``int(2B·mask_probability)`` of the 2B global-crop slots are masked, slot i of them with
``int(P·U(r_i, r_{i+1}))`` patches for r = linspace(mask_ratio_min, mask_ratio_max, n+1)
(stratified ratios), the slots shuffled; block-wise masks (``models.block_masks``:
blocks of 4 patches or more, at most half the grid each, aspect 0.3–1/0.3). Only the
masked tokens go through the patch head: they are gathered into a buffer of static size
(the collate's ``upperbound``), so the head's cost follows the masked count, not P.

Loss = dino_weight · ``dino_cross_entropy`` (every teacher-global, student-crop pair of
different crops) + ibot_weight · ``ibot_gathered_patch_loss`` + koleo_weight · Σ over
the two global crops of ``koleo_loss`` of the student backbone's CLS tokens. The teacher
probabilities come from running centers (``centering="centering"``: momentum 0.9; the
patch center over the masked tokens) or from Sinkhorn-Knopp (``"sinkhorn_knopp"``, 3
iterations at ε = the teacher temperature, the patches' over the masked tokens only).
One teacher temperature serves both, warmed per step. The heads' last layers (their
norms trainable) are frozen for ``freeze_last_layer`` epochs.

Where this differs from the official code, on purpose: the masks, the KoLeo neighbours
and the patch center are those of the global batch (the official: each GPU's own), so
that a run gives the same result on any number of devices and equals the official on
one; the official's "epoch" is 1250 iterations (the configs convert). Not implemented:
the sample-subset form of stochastic depth (drop path here drops per sample), FSDP.

Config ``config.dinov2``: ``out_dim``, ``hidden_dim``, ``bottleneck_dim`` (the DINO
head), ``separate_head`` and ``patch_out_dim``, ``patch_hidden_dim``,
``patch_bottleneck_dim`` (a separate iBOT head), ``base_momentum``, ``student_temp``,
``warmup_teacher_temp``, ``teacher_temp``, ``warmup_teacher_temp_epochs``,
``centering``, ``center_momentum``, ``dino_weight``, ``ibot_weight``, ``koleo_weight``,
``mask_probability``, ``mask_ratio_min``, ``mask_ratio_max``, ``freeze_last_layer``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jax_ssl import losses
from jax_ssl.losses._common import device_index, global_mean, num_devices
from jax_ssl.methods import common
from jax_ssl.models import block_masks, heads

MASK_ASPECT_RATIO = (0.3, 1 / 0.3)  # dinov2 MaskingGenerator's min_aspect, 1/min_aspect
MIN_BLOCK = 4  # MaskingGenerator's min_num_patches
SINKHORN_ITERATIONS = 3
CENTERINGS = ("centering", "sinkhorn_knopp")


class DINOv2Network(nn.Module):
    """ViT (with the mask token) → the DINO head on its CLS token and, on the masked
    patch tokens, the DINO head again (shared) or a separate iBOT head."""
    backbone: nn.Module
    head: nn.Module
    patch_head: nn.Module | None = None

    def __call__(self, images, *, train: bool, mask=None, masked_tokens=None):
        """→ (backbone CLS [B, D], CLS outputs [B, K], outputs [M, K₂] of the patch tokens
        at flat indices ``masked_tokens`` [M] into [B·P]; None without them)."""
        features = self.backbone(images, train=train, mask=mask)
        cls = features["cls"]
        if masked_tokens is None:
            return cls, self.head(cls, train=train), None
        patches = features["patch_tokens"]
        patches = patches.reshape(-1, patches.shape[-1])[masked_tokens]
        if self.patch_head is None:  # one call on both, as dinov2's shared dino_head
            outputs = self.head(jnp.concatenate([cls, patches]), train=train)
            return cls, outputs[:cls.shape[0]], outputs[cls.shape[0]:]
        return cls, self.head(cls, train=train), self.patch_head(patches, train=train)


def network(config, axis_name, *, teacher: bool = False):
    cfg = config.dinov2
    backbone = common.build_masked_vit(config, axis_name, teacher=teacher)
    dino_head = functools.partial(heads.DINOHead, norm_last_layer=False,
                                  dtype=common.compute_dtype(config))
    head = dino_head(out_dim=cfg.out_dim, hidden_dim=cfg.hidden_dim,
                     bottleneck_dim=cfg.bottleneck_dim)
    patch_head = dino_head(out_dim=cfg.patch_out_dim, hidden_dim=cfg.patch_hidden_dim,
                           bottleneck_dim=cfg.patch_bottleneck_dim) if cfg.separate_head else None
    return DINOv2Network(backbone, head, patch_head)


def _mask_ratios(config, num_slots: int) -> np.ndarray:
    """The collate's ``torch.linspace(min, max, n + 1)`` (float32) for n masked slots."""
    cfg = config.dinov2
    return np.linspace(cfg.mask_ratio_min, cfg.mask_ratio_max,
                       int(num_slots * cfg.mask_probability) + 1).astype(np.float32)


def global_crop_masks(key, config, batch_size: int, grid, axis_name) -> jax.Array:
    """[2·B, H·W] bool masks of this device's global crops (view-major).

    The slots are those of the global batch, crop-major (slot c·N + i for crop c of
    image i, N images in all), so that every image's mask is the same on any number of
    devices: n = int(2N·mask_probability) slots are masked, slot source s < n with
    ``int(H·W·U(r_s, r_{s+1}))`` patches, where the slots' sources are a permutation of
    0…2N−1 (the collate's shuffle).
    """
    height, width = grid
    total = batch_size * num_devices(axis_name)
    ratios = _mask_ratios(config, 2 * total)
    num_masked_slots = len(ratios) - 1
    ids = device_index(axis_name) * batch_size + jnp.arange(batch_size)
    slots = jnp.concatenate([ids, ids + total])
    if num_masked_slots == 0:
        return jnp.zeros((2 * batch_size, height * width), bool)
    order_key, ratio_key, block_key = jax.random.split(key, 3)
    source = jax.random.permutation(order_key, 2 * total)[slots]
    low = jnp.asarray(ratios[:-1])[jnp.minimum(source, num_masked_slots - 1)]
    high = jnp.asarray(ratios[1:])[jnp.minimum(source, num_masked_slots - 1)]
    u = jax.vmap(lambda s: jax.random.uniform(jax.random.fold_in(ratio_key, s)))(slots)
    count = jnp.floor(height * width * (low + u * (high - low)))
    count = jnp.where(source < num_masked_slots, count, 0.0)
    # MaskingGenerator(max_num_patches=0.5·img//p·img//p) on img = grid·p
    return block_masks.block_masks(block_key, slots, grid, count, min_block=MIN_BLOCK,
                                   max_block=(height // 2) * width,
                                   aspect_ratio=MASK_ASPECT_RATIO)


def masked_token_bound(config, batch_size: int, num_shards: int, num_patches: int) -> int:
    """The buffer size for one device's masked tokens: the collate's ``upperbound``, the
    sum of the n slots' caps int(P·r_{s+1}) — here the largest 2B of them, since a device
    holds 2B of the global batch's slots."""
    ratios = _mask_ratios(config, 2 * batch_size * num_shards)
    caps = sorted((int(num_patches * float(r)) for r in ratios[1:]), reverse=True)
    return max(sum(caps[:2 * batch_size]), 1)


def _teacher_temp(config, step, steps_per_epoch):
    cfg = config.dinov2
    return losses.dino_teacher_temperature(
        step, warmup_teacher_temp=cfg.warmup_teacher_temp, teacher_temp=cfg.teacher_temp,
        warmup_epochs=round(cfg.warmup_teacher_temp_epochs * steps_per_epoch))


def init(rng, config, batch):
    images = batch["global_views"][:, 0]
    params, state = common.init_network(network(config, None), rng, images,
                                        masked_tokens=jnp.zeros(1, jnp.int32))
    cfg = config.dinov2
    patch_dim = cfg.patch_out_dim if cfg.separate_head else cfg.out_dim
    return params, {**common.init_teacher(params, state),
                    "center": jnp.zeros(cfg.out_dim, jnp.float32),
                    "patch_center": jnp.zeros(patch_dim, jnp.float32),
                    "teacher_temp": jnp.float32(cfg.warmup_teacher_temp
                                                if cfg.warmup_teacher_temp_epochs > 0
                                                else cfg.teacher_temp)}


def _masked_tokens(config, masks, axis_name):
    """Flat indices [M] of the masked tokens of masks [2B, P] (padded with 0), which are
    real, and each one's weight 1/(its image's masked count) (0 for padding)."""
    two_b, num_patches = masks.shape
    bound = masked_token_bound(config, two_b // 2, num_devices(axis_name), num_patches)
    flat = masks.reshape(-1)
    (indices,) = jnp.nonzero(flat, size=bound, fill_value=0)
    valid = jnp.arange(bound) < jnp.sum(flat)
    per_image = jnp.maximum(jnp.sum(masks, axis=1), 1)
    weights = jnp.where(valid, 1.0 / per_image[indices // num_patches], 0.0)
    return indices, valid, weights


def _teacher_probs(config, state, teacher_cls, teacher_patch, valid, axis_name):
    """Teacher probabilities of the CLS outputs [2B, K] and the masked tokens' [M, K₂],
    and the state's new centers."""
    cfg = config.dinov2
    temp = state["teacher_temp"]
    if cfg.centering == "sinkhorn_knopp":
        sinkhorn = functools.partial(losses.sinkhorn, epsilon=temp,
                                     num_iters=SINKHORN_ITERATIONS, axis_name=axis_name)
        return sinkhorn(teacher_cls), sinkhorn(teacher_patch, valid=valid), {}
    update = functools.partial(losses.update_center, center_momentum=cfg.center_momentum,
                               axis_name=axis_name)
    return (losses.centered_teacher_probs(teacher_cls, state["center"], temperature=temp),
            losses.centered_teacher_probs(teacher_patch, state["patch_center"],
                                          temperature=temp),
            {"center": update(teacher_cls, state["center"]),
             "patch_center": update(teacher_patch, state["patch_center"], valid=valid)})


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    cfg = config.dinov2
    global_views = batch["global_views"]  # [B, 2, H, W, C]
    b, num_global = global_views.shape[:2]
    masks = global_crop_masks(common.mask_key(config, step), config, b,
                              common.patch_grid(config, global_views), axis_name)
    masked_tokens, valid, weights = _masked_tokens(config, masks, axis_name)

    student = network(config, axis_name)
    run = functools.partial(student.apply, {"params": params}, train=True,
                            rngs={"dropout": rng})
    representation, student_cls, student_patch = run(
        common.split_views(global_views), mask=masks, masked_tokens=masked_tokens)
    student_cls = common.unsplit(student_cls, num_global)
    if "local_views" in batch:
        local = batch["local_views"]
        _, local_cls, _ = run(common.split_views(local))
        student_cls = jnp.concatenate([student_cls, common.unsplit(local_cls, local.shape[1])])
    teacher = network(config, axis_name, teacher=True)
    _, teacher_cls, teacher_patch = jax.lax.stop_gradient(teacher.apply(
        {"params": state["teacher"]}, common.split_views(global_views), train=False,
        masked_tokens=masked_tokens))
    cls_probs, patch_probs, centers = _teacher_probs(config, state, teacher_cls,
                                                     teacher_patch, valid, axis_name)

    dino_loss = losses.dino_cross_entropy(
        student_cls, common.unsplit(cls_probs, num_global), student_temp=cfg.student_temp,
        axis_name=axis_name)
    ibot_loss = losses.ibot_gathered_patch_loss(
        student_patch, patch_probs, weights, num_images=num_global * b,
        student_temp=cfg.student_temp, axis_name=axis_name)
    crops = common.unsplit(representation, num_global)
    # per crop: no KoLeo between the two crops of one image (ssl_meta_arch.py)
    koleo_loss = sum(losses.koleo_loss(crop, axis_name=axis_name) for crop in crops)
    loss = (cfg.dino_weight * dino_loss + cfg.ibot_weight * ibot_loss
            + cfg.koleo_weight * koleo_loss)
    metrics = {**common.collapse_monitors(crops[0], axis_name=axis_name),
               "dino_loss": dino_loss, "ibot_loss": ibot_loss, "koleo_loss": koleo_loss,
               "masked_fraction": global_mean(jnp.mean(masks), axis_name),
               "teacher_temp": state["teacher_temp"]}
    return loss, ({**state, **centers}, metrics)


_teacher_update = common.ema_teacher_update("dinov2")


def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
    state = _teacher_update(params, state, step, config=config, total_steps=total_steps,
                            steps_per_epoch=steps_per_epoch)
    return {**state, "teacher_temp": _teacher_temp(config, step + 1, steps_per_epoch)}


def trainable(params, step, *, config, total_steps, steps_per_epoch):
    """Everything but the heads' last layers during the first ``freeze_last_layer``
    epochs (dinov2's ``last_layer_lr`` of 0)."""
    del total_steps
    unfrozen = step >= config.dinov2.freeze_last_layer * steps_per_epoch
    return common.freeze_head_last_layers(params, unfrozen)


def backbone_variables(params, state):
    return common.backbone_variables(params, state, params_key="teacher")
