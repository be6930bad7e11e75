"""PIRL (Misra & van der Maaten 2020; VISSL ``pirl_jigsaw_4node_resnet.yaml``): an image's
representation made invariant to the jigsaw transform, against a memory bank.

Two branches share the backbone: the image (recipe ``pirl``: crop, flip, colour jitter)
→ pooled → Linear to ``output_dim`` = f(v_I); its 9 shuffled tiles → pooled each →
Linear to ``crop_dim`` each (no ReLU) → their concatenation → Linear to ``output_dim`` =
g(v_Iᵗ). The loss is ``losses.pirl_loss``: λ·NCE(m_I, g) + (1-λ)·NCE(m_I, f) at τ 0.07,
each against the memory bank row m_I of the image and ``num_negatives`` rows drawn
uniformly from the bank (VISSL: 32000), with the normaliser Z estimated on the first
batch (from the jigsaw branch, VISSL's first NCE term) and then kept. After the loss the
bank's rows of the batch move to normalise(0.5·m_I + 0.5·f) (momentum 0.5, the image
branch's embedding, VISSL ``update_mem_with_emb_index: 1``).

The bank has one row per training example, addressed by the ``index`` the pipeline adds
to each example (its place in the split: stable across epochs, resumption and
processes). It is initialised as VISSL's (uniform in ±1/√(D/3), rows normalised) with
rows padded to a multiple of ``BANK_ROWS_MULTIPLE``, is part of the checkpointed state,
and is sharded over the ``data`` devices in blocks of rows (``SHARDED_STATE``): each
device stores and updates 1/devices of it (ImageNet: 1.28 M × 128 floats), and the
scores and updates equal the one-device ones. Negatives are drawn per example from the
step and its index, so they do not depend on the number of devices either.

Config ``config.pirl``: ``output_dim``, ``crop_dim``, ``temperature``, ``lambd``,
``num_negatives``, ``momentum``.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from jax_ssl import losses
from jax_ssl.methods import common, crops
from jax_ssl.models import heads

USES_EXAMPLE_INDEX = True  # the trainer adds ``index`` to batches, ``num_examples`` to init
SHARDED_STATE = ("memory_bank",)  # method-state entries split over the devices by rows
BANK_ROWS_MULTIPLE = 512  # any power-of-two device count up to it splits the bank evenly


class PIRLNetwork(nn.Module):
    """Call: (images [B, S, S, C], tiles [B, 9, t, t, C]) → (representation, f, g)."""
    backbone: nn.Module
    output_dim: int
    crop_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs, *, train: bool):
        images, tiles = inputs
        representation = common.pooled(self.backbone(images, train=train))
        f = crops.crop_linear(self.output_dim, self.dtype, "image_head")(representation)
        per_tile = crops.crop_linear(self.crop_dim, self.dtype)(
            crops.tower(self.backbone, tiles, train=train))
        g = crops.crop_linear(self.output_dim, self.dtype, "jigsaw_head")(
            per_tile.reshape(tiles.shape[0], -1))
        return representation, f, g


def network(config, axis_name):
    cfg = config.pirl
    return PIRLNetwork(common.build_backbone(config, axis_name), cfg.output_dim,
                       cfg.crop_dim, common.compute_dtype(config))


def init(rng, config, batch, *, num_examples: int):
    net_rng, bank_rng = jax.random.split(rng)
    params, state = common.init_network(network(config, None), net_rng,
                                        (batch["image"], batch["tiles"]))
    rows = -(-num_examples // BANK_ROWS_MULTIPLE) * BANK_ROWS_MULTIPLE
    dim = config.pirl.output_dim
    bound = 1.0 / (dim / 3) ** 0.5
    bank = jax.random.uniform(bank_rng, (rows, dim), jnp.float32, -bound, bound)
    state.update(memory_bank=heads.l2_normalize(bank),
                 memory_size=jnp.asarray(num_examples, jnp.int32),
                 log_normalizer=jnp.asarray(jnp.nan, jnp.float32))
    return params, state


def negative_rows(config, step, index, memory_size):
    """[B, K] rows drawn uniformly from the bank for each example, from (seed, step,
    index) alone: the same draws on any number of devices."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), 3), step)
    draw = functools.partial(jax.random.randint, shape=(config.pirl.num_negatives,),
                             minval=0, maxval=memory_size)
    return jax.vmap(lambda i: draw(jax.random.fold_in(key, i)))(index)


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng
    cfg = config.pirl
    (representation, f, g), state = common.apply(network(config, axis_name), params, state,
                                                 (batch["image"], batch["tiles"]))
    index, bank, size = batch["index"], state["memory_bank"], state["memory_size"]
    negatives = negative_rows(config, step, index, size)
    memory = dict(bank_sharded=True, memory_size=size, axis_name=axis_name)
    log_z = state["log_normalizer"]  # NaN until the first step estimates it (once)
    log_z = jax.lax.cond(jnp.isnan(log_z), lambda: losses.nce_log_normalizer(
        g, bank, index, negatives, temperature=cfg.temperature, **memory), lambda: log_z)
    loss = losses.pirl_loss(f, g, bank, index, negatives, log_normalizer=log_z,
                            temperature=cfg.temperature, lambd=cfg.lambd, **memory)
    bank = losses.memory_bank_update(bank, index, f, momentum=cfg.momentum,
                                     bank_sharded=True, axis_name=axis_name)
    state = {**state, "memory_bank": bank, "log_normalizer": log_z}
    return loss, (state, common.collapse_monitors(representation, axis_name=axis_name))


backbone_variables = common.backbone_variables
