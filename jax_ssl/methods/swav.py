"""SwAV (Caron et al. 2020; facebookresearch/swav ``main_swav.py``).

Backbone → projector (2048-128) → L2 normalisation → prototypes (3000, kept at unit
norm: the official code normalises them in place before every iteration, so here they
are normalised after every update, and at initialisation). Codes come from Sinkhorn
(ε 0.05, 3 iterations) on the global crops; the loss predicts each global crop's code
from every other crop at τ 0.1. Prototypes are frozen for the first
``freeze_prototypes_steps`` iterations (official: 313).

The queue (``queue_length`` > 0, from ``queue_start_epoch``) is, as in the official
code, one per device: each device keeps the last ``queue_length / devices`` embeddings
of its own assigned crops and prepends their scores to its batch's before Sinkhorn once
its queue is full. The per-device queues live in the replicated state as one array
[assigned crops, queue_length, D] that each device slices by its index.

Config ``config.swav``: ``hidden_dim``, ``output_dim``, ``num_prototypes``, ``temperature``,
``epsilon``, ``sinkhorn_iterations``, ``crops_for_assign``, ``freeze_prototypes_steps``,
``queue_length``, ``queue_start_epoch``.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from jax_ssl import losses
from jax_ssl.losses._common import gather_batch_replicated, num_devices
from jax_ssl.methods import common
from jax_ssl.models import heads


class SwAVNetwork(nn.Module):
    """Call: images → (representation, unit embedding z, prototype scores)."""
    backbone: nn.Module
    head: nn.Module
    num_prototypes: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images, *, train: bool):
        representation = common.pooled(self.backbone(images, train=train))
        z = heads.l2_normalize(self.head(representation, train=train).astype(jnp.float32))
        scores = heads.Prototypes(self.num_prototypes, self.dtype, name="prototypes")(z)
        return representation, z, scores


def network(config, axis_name):
    cfg, dtype = config.swav, common.compute_dtype(config)
    head = heads.swav_projector(cfg.hidden_dim, cfg.output_dim, axis_name=axis_name,
                                dtype=dtype)
    return SwAVNetwork(common.build_backbone(config, axis_name), head, cfg.num_prototypes,
                       dtype)


def project_params(params):
    """Prototypes back on the unit sphere after an update."""
    return {**params, "prototypes": heads.normalize_prototypes(params["prototypes"])}


def init(rng, config, batch):
    params, state = common.init_network(network(config, None), rng,
                                        batch["global_views"][:, 0])
    cfg = config.swav
    if cfg.queue_length:
        state["queue"] = jnp.zeros((len(cfg.crops_for_assign), cfg.queue_length,
                                    cfg.output_dim), jnp.float32)
        # whether this step fills the queue; after_update sets it (the loss gets no epoch)
        state["queue_active"] = jnp.asarray(cfg.queue_start_epoch == 0)
    return project_params(params), state


def _local_queue(queue, axis_name):
    """This device's part [A, queue_length / devices, D] of the stacked queues."""
    size = queue.shape[1] // num_devices(axis_name)
    start = (lax.axis_index(axis_name) if axis_name else 0) * size
    return lax.dynamic_slice_in_dim(queue, start, size, axis=1)


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    cfg = config.swav
    net = network(config, axis_name)
    (representation, z, scores), state = common.forward_views(net, params, state,
                                                              batch["global_views"])
    if "local_views" in batch:
        (_, _, local), state = common.forward_views(net, params, state, batch["local_views"])
        scores = jnp.concatenate([scores, local], axis=0)
    swav = dict(temperature=cfg.temperature, crops_for_assign=tuple(cfg.crops_for_assign),
                epsilon=cfg.epsilon, num_iters=cfg.sinkhorn_iterations, axis_name=axis_name)
    if "queue" not in state:
        loss = losses.swav_loss(scores, **swav)
    else:
        queue = _local_queue(state["queue"], axis_name)
        queue_scores = lax.stop_gradient(queue @ params["prototypes"]["kernel"])
        full = jnp.any(queue[:, -1] != 0)  # the official code's use_the_queue
        loss = lax.cond(full, lambda: losses.swav_loss(scores, queue_scores=queue_scores,
                                                       **swav),
                        lambda: losses.swav_loss(scores, **swav))
        assigned = lax.stop_gradient(z[jnp.asarray(cfg.crops_for_assign)])  # [A, B, D]
        pushed = jnp.concatenate([assigned, queue], axis=1)[:, :queue.shape[1]]
        queue = jnp.where(state["queue_active"], pushed, queue)
        stacked = gather_batch_replicated(jnp.swapaxes(queue, 0, 1), axis_name)
        state = {**state, "queue": jnp.swapaxes(stacked, 0, 1)}
    return loss, (state, common.collapse_monitors(representation[0], axis_name=axis_name))


def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
    del params, total_steps
    if "queue" not in state:
        return state
    start = config.swav.queue_start_epoch * steps_per_epoch
    return {**state, "queue_active": step + 1 >= start}


def trainable(params, step, *, config, total_steps, steps_per_epoch):
    """Everything but the prototypes during the first ``freeze_prototypes_steps``."""
    del total_steps, steps_per_epoch
    mask = jax.tree.map(lambda _: jnp.asarray(True), params)
    unfrozen = step >= config.swav.freeze_prototypes_steps
    mask["prototypes"] = jax.tree.map(lambda _: unfrozen, params["prototypes"])
    return mask


backbone_variables = common.backbone_variables
