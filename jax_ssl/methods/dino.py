"""DINO (Caron et al. 2021; facebookresearch/dino ``main_dino.py``).

Student: backbone → DINOHead on every crop (global and local crops run as two batches,
one per resolution, as ``MultiCropWrapper`` does). Teacher: an EMA of the student
(momentum 0.996 → 1, cosine) that sees the global crops only. Loss: ``dino_loss`` with
the running center (momentum 0.9), student τ 0.1 and the teacher τ warmed up per epoch
(0.04 → 0.07 over 30 epochs for ViTs). The head's last layer is frozen for
``freeze_last_layer`` epochs; per-tensor gradient clipping comes from
``config.optimizer.clip_per_tensor`` (3.0). DINO evaluates the teacher's backbone.

Config ``config.dino``: ``out_dim``, ``hidden_dim``, ``bottleneck_dim``, ``use_bn_in_head``,
``norm_last_layer``, ``base_momentum``, ``student_temp``, ``warmup_teacher_temp``,
``teacher_temp``, ``warmup_teacher_temp_epochs``, ``center_momentum``,
``freeze_last_layer`` (epochs).
"""
from __future__ import annotations

import jax.numpy as jnp

from jax_ssl import losses
from jax_ssl.methods import common
from jax_ssl.models import heads


def network(config, axis_name, *, teacher: bool = False):
    cfg = config.dino
    head = heads.DINOHead(out_dim=cfg.out_dim, hidden_dim=cfg.hidden_dim,
                          bottleneck_dim=cfg.bottleneck_dim, use_bn=cfg.use_bn_in_head,
                          norm_last_layer=cfg.norm_last_layer, axis_name=axis_name,
                          dtype=common.compute_dtype(config))
    return common.Network(common.build_backbone(config, axis_name, teacher=teacher), head)


def _teacher_temp(config, step, steps_per_epoch):
    cfg = config.dino
    return losses.dino_teacher_temperature(
        step // steps_per_epoch, warmup_teacher_temp=cfg.warmup_teacher_temp,
        teacher_temp=cfg.teacher_temp, warmup_epochs=cfg.warmup_teacher_temp_epochs)


def init(rng, config, batch):
    params, state = common.init_network(network(config, None), rng,
                                        batch["global_views"][:, 0])
    state = common.init_teacher(params, state)
    # the temperature of the next step, kept in the state because the loss gets no epoch
    return params, {**state, "center": jnp.zeros(config.dino.out_dim, jnp.float32),
                    "teacher_temp": jnp.asarray(config.dino.warmup_teacher_temp, jnp.float32)}


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del step
    net = network(config, axis_name)
    (representation, student, _), state = common.forward_views(
        net, params, state, batch["global_views"], rng)
    if "local_views" in batch:
        (_, local, _), state = common.forward_views(net, params, state, batch["local_views"],
                                                    rng)
        student = jnp.concatenate([student, local], axis=0)
    (_, teacher, _), state = common.teacher_views(
        network(config, axis_name, teacher=True), state, batch["global_views"])
    cfg = config.dino
    loss, center = losses.dino_loss(student, teacher, state["center"],
                                    student_temp=cfg.student_temp,
                                    teacher_temp=state["teacher_temp"],
                                    center_momentum=cfg.center_momentum, axis_name=axis_name)
    metrics = {**common.collapse_monitors(representation[0], axis_name=axis_name),
               "teacher_temp": state["teacher_temp"], "center_norm": jnp.linalg.norm(center)}
    return loss, ({**state, "center": center}, metrics)


_teacher_update = common.ema_teacher_update("dino")


def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
    state = _teacher_update(params, state, step, config=config, total_steps=total_steps,
                            steps_per_epoch=steps_per_epoch)
    temp = _teacher_temp(config, step + 1, steps_per_epoch)
    return {**state, "teacher_temp": jnp.asarray(temp, jnp.float32)}


def trainable(params, step, *, config, total_steps, steps_per_epoch):
    """Everything but the head's last layer during the first ``freeze_last_layer`` epochs."""
    del total_steps
    unfrozen = step >= config.dino.freeze_last_layer * steps_per_epoch
    return common.freeze_head_last_layers(params, unfrozen)


def backbone_variables(params, state):
    return common.backbone_variables(params, state, params_key="teacher",
                                     stats_key="teacher_batch_stats")
