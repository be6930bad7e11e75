"""End-to-end fine-tuning (``jax-ssl-eval --protocol finetune``): facebookresearch/mae
``main_finetune.py`` as an optax loop.

- Network: the pretrained backbone, trained whole. A ViT gets stochastic depth
  ``drop_path`` (MAE: 0.1 for ViT-B, 0.2 for ViT-L) and MAE's global pooling: the mean
  of the last block's patch tokens before the final norm, through a new LayerNorm
  ``fc_norm`` (eps 1e-6); a ResNet gives its pooled features (its BN statistics train
  too). Then a Linear head, weights truncated normal (std 2e-5), bias 0.
- Optimiser: AdamW (β 0.9, 0.999), weight decay 0.05 on every tensor but the 1-D ones
  and the tokens (``pos_embed``, ``cls_token``, …); lr = blr·batch/256 (blr 5e-4 for
  ViT-B, 1e-3 for ViT-L); layer-wise decay 0.65 (ViT-L: 0.75): the embeddings are layer
  0, block i layer i + 1, the head and ``fc_norm`` layer depth + 1, and a layer l trains
  at layer_decay^(depth + 1 − l) of the lr (``optim.layer_lr_multipliers``); set per
  step: linear warm-up for 5 epochs, then half-cycle cosine to ``min_lr`` 1e-6.
- Batches: the ``finetune`` recipe (RandomResizedCrop bicubic, flip, RandAugment
  rand-m9-mstd0.5-inc1, random erasing 0.25), then timm's Mixup in batch mode (mixup
  α 0.8, CutMix α 1.0, one of them per batch, CutMix with probability 0.5, λ corrected
  to the pasted box's area) and label smoothing 0.1, with the soft-target cross-entropy.
- 100 epochs for ViT-B (50 for ViT-L); ``label_fraction`` fine-tunes on that fraction
  of each class of the training split (the seeds' low-label transfer).

Differences from the official code: MAE reports the best test accuracy over the epochs,
this the accuracy after the last; the pairs that Mixup mixes are the global batch read
backwards (timm: each device's batch); the test transform resizes bilinearly.
"""
from __future__ import annotations

import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tensorflow as tf
from jax.sharding import NamedSharding, PartitionSpec

from jax_ssl import optim
from jax_ssl.data import pipeline
from jax_ssl.evaluate import features
from jax_ssl.evaluate.protocols import ProbeData, steps_per_epoch
from jax_ssl.models.vit import VisionTransformer, layer_norm

NO_WEIGHT_DECAY = ("pos_embed", "cls_token", "mask_token", "register_tokens")


class FinetuneNet(nn.Module):
    """Backbone → (ViT: global pool + ``fc_norm``) → ``head``. Call: ``(images [B, H, W,
    C], *, train)`` → logits [B, num_classes]."""
    backbone: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, images, *, train: bool):
        out = self.backbone(images, train=train)
        if isinstance(self.backbone, VisionTransformer):
            tokens = out["pre_norm_tokens"]
            pooled = (tokens[:, 1:] if self.backbone.class_token else tokens).mean(axis=1)
            x = layer_norm(jnp.float32, "fc_norm")(pooled.astype(jnp.float32))
        else:
            x = out.astype(jnp.float32)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.truncated_normal(2e-5),
                        name="head")(x)


def weight_decay_mask(params) -> Any:
    """True for the tensors AdamW decays: rank > 1 and not a token or position table
    (MAE's ``param_groups_lrd``: 1-D tensors and its no_weight_decay list are exempt)."""
    def decayed(path, value):
        names = {getattr(key, "key", None) for key in path}
        return value.ndim > 1 and not names & set(NO_WEIGHT_DECAY)
    return jax.tree_util.tree_map_with_path(decayed, params)


def schedule(learning_rate: float, *, epochs: float, warmup_epochs: float, steps_per_epoch: int,
             min_lr: float = 1e-6):
    """MAE's ``util/lr_sched.py`` at each step's fractional epoch."""
    def rate(step):
        epoch = step / steps_per_epoch
        cosine = min_lr + (learning_rate - min_lr) * 0.5 * (
            1 + jnp.cos(jnp.pi * (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1e-9)))
        return jnp.where(epoch < warmup_epochs,
                         learning_rate * epoch / max(warmup_epochs, 1e-9), cosine)
    return rate


def optimizer(learning_rate, params, *, weight_decay: float = 0.05,
              layer_decay: float | None = 0.65) -> optax.GradientTransformation:
    """AdamW with MAE's weight-decay exemptions, each tensor's update scaled by its
    layer's decay (None: no layer-wise decay, e.g. a ResNet)."""
    tx = optax.adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay,
                     mask=weight_decay_mask(params))
    return tx if layer_decay is None else optax.chain(tx, optim.scale_by_layer(layer_decay))


def mix(rng, images, labels, *, num_classes: int, mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0, switch_prob: float = 0.5, smoothing: float = 0.1):
    """timm's ``Mixup(mode='batch', prob=1.0, correct_lam=True)``: images [B, H, W, C]
    and int labels [B] → (mixed images, soft targets [B, num_classes] summing to 1).

    One λ for the batch: CutMix (λ ~ Beta(cutmix_alpha), with probability
    ``switch_prob``) pastes the box of area ≈ (1 − λ)·H·W, centred uniformly and clipped
    to the image, from the batch read backwards, and λ becomes the share left
    unpasted; otherwise Mixup (λ ~ Beta(mixup_alpha)) blends the two. The targets blend
    the smoothed one-hots (1 − smoothing + smoothing/C on the label, smoothing/C
    elsewhere) by the same λ."""
    choose, beta_rng, box_rng = jax.random.split(rng, 3)
    use_cutmix = jax.random.uniform(choose) < switch_prob
    lam = jnp.where(use_cutmix, jax.random.beta(beta_rng, cutmix_alpha, cutmix_alpha),
                    jax.random.beta(beta_rng, mixup_alpha, mixup_alpha))
    flipped = images[::-1]
    height, width = images.shape[1:3]
    cut = jnp.sqrt(1.0 - lam)
    cut_h, cut_w = (cut * height).astype(jnp.int32), (cut * width).astype(jnp.int32)
    centre = jax.random.randint(box_rng, (2,), 0, jnp.array([height, width]))
    top = jnp.clip(centre[0] - cut_h // 2, 0, height)
    bottom = jnp.clip(centre[0] + cut_h // 2, 0, height)
    left = jnp.clip(centre[1] - cut_w // 2, 0, width)
    right = jnp.clip(centre[1] + cut_w // 2, 0, width)
    rows, cols = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    cutmixed = jnp.where(box[None, :, :, None], flipped, images)
    box_lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    mixed_up = images * lam + flipped * (1.0 - lam)
    lam = jnp.where(use_cutmix, box_lam, lam)
    off = smoothing / num_classes
    targets = jax.nn.one_hot(labels, num_classes) * (1.0 - smoothing) + off
    return (jnp.where(use_cutmix, cutmixed, mixed_up.astype(images.dtype)),
            targets * lam + targets[::-1] * (1.0 - lam))


def _make_train_step(net: FinetuneNet, tx, *, num_classes: int, mixing: dict):
    @jax.jit
    def step(variables, opt_state, images, labels, rng):
        mix_rng, dropout_rng = jax.random.split(rng)
        images, targets = mix(mix_rng, images, labels, num_classes=num_classes, **mixing)
        others = {k: v for k, v in variables.items() if k != "params"}

        def loss_fn(params):
            logits, updates = net.apply({"params": params, **others}, images, train=True,
                                        rngs={"dropout": dropout_rng}, mutable=list(others))
            loss = -jnp.sum(targets * jax.nn.log_softmax(logits.astype(jnp.float32)), -1)
            return loss.mean(), updates
        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
        param_updates, opt_state = tx.update(grads, opt_state, variables["params"])
        params = optax.apply_updates(variables["params"], param_updates)
        return {**variables, **updates, "params": params}, opt_state, loss
    return step


def finetune(backbone, variables, data: ProbeData, *, batch_size: int, epochs: int = 100,
             base_learning_rate: float = 5e-4, layer_decay: float = 0.65,
             weight_decay: float = 0.05, drop_path: float = 0.1, warmup_epochs: float = 5,
             min_lr: float = 1e-6, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
             switch_prob: float = 0.5, smoothing: float = 0.1, seed: int = 0,
             log=None) -> dict:
    """Fine-tunes ``backbone`` (pretrained ``variables``) on ``data`` and tests it (see
    the module docstring) → {"protocol", "top1", "train_loss" (the last epoch's mean),
    "steps", "learning_rate", ...}."""
    vit = isinstance(backbone, VisionTransformer)
    if vit:
        backbone = backbone.clone(drop_path_rate=drop_path)
    net = FinetuneNet(backbone, data.num_classes)
    per_epoch = steps_per_epoch(data, batch_size)
    images = np.zeros((1, *_input_shape(data)), np.float32)
    initial = jax.jit(lambda: net.init(jax.random.PRNGKey(seed), images, train=False))()
    net_variables = {**initial, "params": {**initial["params"],
                                            "backbone": variables["params"]}}
    if "batch_stats" in variables:
        net_variables["batch_stats"] = {"backbone": variables["batch_stats"]}
    # replicated over the mesh the batches are split over (restored arrays sit on one device)
    net_variables = jax.device_put(net_variables, NamedSharding(data.mesh, PartitionSpec()))
    lr = base_learning_rate * batch_size / 256
    rate = schedule(lr, epochs=epochs, warmup_epochs=min(warmup_epochs, epochs),
                    steps_per_epoch=per_epoch, min_lr=min_lr)
    tx = optimizer(rate, net_variables["params"], weight_decay=weight_decay,
                   layer_decay=layer_decay if vit else None)
    opt_state = tx.init(net_variables["params"])
    step = _make_train_step(net, tx, num_classes=data.num_classes, mixing=dict(
        mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, switch_prob=switch_prob,
        smoothing=smoothing))
    batches = pipeline.global_batches(pipeline.train_batches(
        data.train_source, data.train_recipe, global_batch_size=batch_size, seed=seed),
        data.mesh)
    rng = jax.random.PRNGKey(seed + 1)
    start = time.perf_counter()
    for epoch in range(epochs):
        losses = []
        for _ in range(per_epoch):
            batch = next(batches)
            rng, step_rng = jax.random.split(rng)
            net_variables, opt_state, loss = step(net_variables, opt_state, batch["image"],
                                                  batch["label"], step_rng)
            losses.append(loss)
        train_loss = float(np.mean(jax.device_get(losses)))
        if log:
            log(f"  fine-tuning epoch {epoch + 1}/{epochs}: loss {train_loss:.4f} "
                f"({time.perf_counter() - start:.0f} s)")
    logits, labels = features.extract(
        lambda x: net.apply(net_variables, x, train=False), data.test_source,
        data.eval_recipe, data.mesh, batch_size=batch_size, progress=False)
    top1 = float(np.mean(np.argmax(logits, axis=-1) == labels))
    return {"protocol": "finetune", "top1": top1, "train_loss": train_loss,
            "steps": epochs * per_epoch, "learning_rate": lr, "epochs": epochs,
            "batch_size": batch_size, "train_examples": data.train_source.num_examples,
            "layer_decay": layer_decay if vit else None, "drop_path": drop_path if vit else 0.0}


def _input_shape(data: ProbeData) -> tuple[int, ...]:
    """[H, W, C] of the images the eval recipe makes (what the network is built for)."""
    image = data.test_source.load(tf.constant(0, tf.int64))
    return tuple(data.eval_recipe(image, tf.constant([0, 0], tf.int64))["image"].shape)
