"""The official linear-probe protocols: a linear head trained with optax on frozen features
computed on the fly from (augmented) training batches.

==========  ============================================================================
``dino``    facebookresearch/dino ``eval_linear.py``: ViT features = the CLS tokens of the
            last ``n`` blocks (each through the final norm) concatenated, plus the mean
            patch token of the last block when ``avgpool_patchtokens`` (defaults as its
            recipes: n=4 without patch tokens up to ViT-S, n=1 with them from ViT-B on;
            ResNets: the pooled features). Linear head N(0, 0.01), bias 0; SGD momentum
            0.9, no weight decay, lr 0.001·bs/256 with cosine annealing stepped per epoch
            to 0, 100 epochs.
``mae``     facebookresearch/mae ``main_linprobe.py``: the CLS token (``--cls_token``) or
            pooled ResNet features → BatchNorm without affine parameters (eps 1e-6) →
            linear head (trunc. normal 0.01, bias 0); LARS (momentum 0.9, trust
            coefficient 0.001, no adaptation for biases), lr 0.1·bs/256, weight decay
            0, 90 epochs: linear warm-up for 10 of them, then half-cycle cosine, set per
            step.
``simclr``  google-research/simclr linear eval (``--optimizer=momentum
            --learning_rate=0.1 --weight_decay=0 --warmup_epochs=0
            --zero_init_logits_layer``): pooled features / CLS token → zero-initialised
            linear head; SGD with Nesterov momentum 0.9, lr 0.1·bs/256, cosine decay per
            step to 0, no weight decay, 90 epochs.
==========  ============================================================================

All three train on RandomResizedCrop (scale 0.08–1) + horizontal flip and test on the
deterministic eval transform (resize, centre crop). Differences from the official codes:
the crop resizes bicubically (the project's ``mae`` recipe; DINO's torchvision crop is
bilinear); DINO and MAE report the best test accuracy over epochs, this reports the
accuracy after the last one; Flax's BatchNorm tracks the biased variance (PyTorch the
unbiased one, used only at test time). Epochs, batch size and learning rate are
arguments so tests and CPU runs can use small numbers; the learning rate scales
linearly with the batch size as in all three.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_ssl.data import pipeline
from jax_ssl.evaluate import features
from jax_ssl.methods import common
from jax_ssl.models.vit import VisionTransformer


@dataclasses.dataclass(frozen=True)
class ProbeData:
    """What a protocol trains and tests on.

    ``train_recipe`` augments the training images (``{"image": [S, S, 3]}``);
    ``eval_recipe`` is the deterministic test transform.
    """
    train_source: Any
    test_source: Any
    train_recipe: Callable
    eval_recipe: Callable
    mesh: Any

    @property
    def num_classes(self) -> int:
        return self.train_source.num_classes


class LinearHead(nn.Module):
    """[B, D] → logits [B, num_classes], optionally after a BatchNorm without affine
    parameters (MAE's ``BatchNorm1d(affine=False, eps=1e-6)``; momentum 0.1 in PyTorch's
    convention)."""
    num_classes: int
    kernel_init: Callable = nn.initializers.zeros
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, *, train: bool):
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False,
                             epsilon=1e-6, momentum=0.9, name="bn")(x)
        return nn.Dense(self.num_classes, kernel_init=self.kernel_init,
                        bias_init=nn.initializers.zeros, name="linear")(x)


# ----------------------------------------------------------------------------------------
# Features each protocol reads
# ----------------------------------------------------------------------------------------


def pooled_embedder(backbone, variables):
    """``images -> [B, D]``: ResNet's pooled features or ViT's CLS token after the norm."""
    return lambda images: common.pooled(backbone.apply(variables, images, train=False))


def dino_defaults(embed_dim: int) -> tuple[int, bool]:
    """(n_last_blocks, avgpool_patchtokens) of DINO's recipes: (4, False) for ViT-S and
    smaller, (1, True) for ViT-B and larger."""
    return (4, False) if embed_dim < 768 else (1, True)


def dino_embedder(backbone, variables, *, n_last_blocks: int | None = None,
                  avgpool_patchtokens: bool | None = None):
    """DINO's linear-eval features: ``images -> [B, (n + avgpool)·D]`` for a ViT.

    The CLS tokens of the last ``n`` blocks (capped at the depth), each through the
    final norm, concatenated; with ``avgpool_patchtokens`` also the mean of the last
    block's patch tokens. (DINO's own code can add the patch tokens only for n = 1; the
    features here are the same there and the plain concatenation otherwise.) A ResNet
    gives its pooled features, as DINO's ``model(inp)``.
    """
    if not isinstance(backbone, VisionTransformer):
        return pooled_embedder(backbone, variables)
    default_n, default_avgpool = dino_defaults(backbone.embed_dim)
    n = min(default_n if n_last_blocks is None else n_last_blocks, backbone.depth)
    avgpool = default_avgpool if avgpool_patchtokens is None else avgpool_patchtokens

    def embed(images):
        blocks = backbone.apply(variables, images, train=False,
                                return_layers=tuple(range(-n, 0)))["layers"]
        parts = [x[:, 0] for x in blocks]
        if avgpool:
            parts.append(jnp.mean(blocks[-1][:, 1:], axis=1))
        return jnp.concatenate(parts, axis=-1)
    return embed


# ----------------------------------------------------------------------------------------
# The shared training loop
# ----------------------------------------------------------------------------------------


def steps_per_epoch(data: ProbeData, batch_size: int) -> int:
    """Whole batches per pass over the training split (the last partial one is dropped)."""
    if data.train_source.num_examples < batch_size:
        raise ValueError(f"the probe's batch of {batch_size} is larger than the "
                         f"{data.train_source.num_examples} training examples; pass a "
                         "smaller batch_size.")
    return data.train_source.num_examples // batch_size


def _make_train_step(embed, head: LinearHead, tx):
    def loss_fn(params, others, x, labels):
        logits, updates = head.apply({"params": params, **others}, x, train=True,
                                     mutable=list(others))
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, updates

    @jax.jit
    def step(variables, opt_state, images, labels):
        # The backbone is frozen: its features are inputs, not a function of the head.
        x = jax.lax.stop_gradient(embed(images)).astype(jnp.float32)
        params = variables["params"]
        others = {k: v for k, v in variables.items() if k != "params"}
        (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, others, x, labels)
        param_updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, param_updates)
        return {**variables, **updates, "params": params}, opt_state, loss
    return step


def train_and_test(embed, head: LinearHead, tx, data: ProbeData, *, epochs: int,
                   batch_size: int, augment: bool = True, seed: int = 0,
                   log: Callable[[str], None] | None = None) -> dict:
    """Trains ``head`` on ``embed``'s features of augmented training batches for ``epochs``
    with ``tx``, then tests it → {"top1", "train_loss" (mean over the last epoch),
    "steps", "feature_dim"}.

    ``embed(images [B, H, W, C]) -> [B, D]`` is the frozen backbone's feature function;
    ``augment=False`` trains on the eval transform instead of the augmentation.
    """
    per_epoch = steps_per_epoch(data, batch_size)
    recipe = data.train_recipe if augment else data.eval_recipe
    batches = pipeline.global_batches(pipeline.train_batches(
        data.train_source, recipe, global_batch_size=batch_size, seed=seed), data.mesh)
    step = _make_train_step(embed, head, tx)
    variables = opt_state = None
    start = time.perf_counter()
    for epoch in range(epochs):
        losses = []
        for _ in range(per_epoch):
            batch = next(batches)
            if variables is None:  # the feature width is known once a batch is seen
                dim = jax.eval_shape(embed, batch["image"]).shape[-1]
                variables = dict(head.init(jax.random.PRNGKey(seed),
                                           jnp.zeros((1, dim), jnp.float32), train=False))
                opt_state = tx.init(variables["params"])
            variables, opt_state, loss = step(variables, opt_state, batch["image"],
                                              batch["label"])
            losses.append(loss)
        train_loss = float(np.mean(jax.device_get(losses)))
        if log:
            log(f"  probe epoch {epoch + 1}/{epochs}: loss {train_loss:.4f} "
                f"({time.perf_counter() - start:.0f} s)")
    test_x, test_y = features.extract(embed, data.test_source, data.eval_recipe, data.mesh,
                                      batch_size=batch_size, progress=False)
    logits = head.apply(variables, jnp.asarray(test_x), train=False)
    top1 = float(np.mean(np.argmax(np.asarray(logits), axis=-1) == test_y))
    return {"top1": top1, "train_loss": train_loss, "steps": epochs * per_epoch,
            "feature_dim": int(test_x.shape[1])}


def _scaled(base_learning_rate: float, batch_size: int) -> float:
    return base_learning_rate * batch_size / 256  # the linear scaling rule of all three


# ----------------------------------------------------------------------------------------
# The protocols
# ----------------------------------------------------------------------------------------


def dino(backbone, variables, data: ProbeData, *, batch_size: int, epochs: int = 100,
         base_learning_rate: float = 1e-3, n_last_blocks: int | None = None,
         avgpool_patchtokens: bool | None = None, augment: bool = True, seed: int = 0,
         log=None) -> dict:
    """DINO's linear evaluation (see the module docstring) → ``train_and_test``'s dict."""
    lr = _scaled(base_learning_rate, batch_size)
    per_epoch = steps_per_epoch(data, batch_size)

    def schedule(step):  # torch's CosineAnnealingLR(T_max=epochs), stepped once an epoch
        epoch = jnp.floor(step / per_epoch)
        return lr * 0.5 * (1 + jnp.cos(jnp.pi * epoch / epochs))

    head = LinearHead(data.num_classes, kernel_init=nn.initializers.normal(0.01))
    embed = dino_embedder(backbone, variables, n_last_blocks=n_last_blocks,
                          avgpool_patchtokens=avgpool_patchtokens)
    tx = optax.sgd(schedule, momentum=0.9)
    result = train_and_test(embed, head, tx, data, epochs=epochs, batch_size=batch_size,
                            augment=augment, seed=seed, log=log)
    return {"protocol": "dino", "learning_rate": lr, "epochs": epochs,
            "batch_size": batch_size, **result}


def lars(learning_rate, *, momentum: float = 0.9, weight_decay: float = 0.0,
         trust_coefficient: float = 0.001) -> optax.GradientTransformation:
    """MAE's (MoCo v3's) LARS: weight decay and the trust ratio trust·‖w‖/‖g‖ (1 where a
    norm is 0) only for tensors of rank > 1, heavy-ball momentum, then the learning rate
    (outside the momentum, as torch applies it)."""
    def matrices(params):
        return jax.tree.map(lambda p: p.ndim > 1, params)
    return optax.chain(
        optax.masked(optax.add_decayed_weights(weight_decay), matrices),
        optax.masked(optax.scale_by_trust_ratio(trust_coefficient=trust_coefficient),
                     matrices),
        optax.trace(decay=momentum),
        optax.scale_by_learning_rate(learning_rate))


def mae_head(num_classes: int) -> LinearHead:
    """MAE's probe head: BatchNorm1d(affine=False, eps=1e-6) → Linear, weights
    trunc_normal(std=0.01) as MoCo v3, bias 0."""
    return LinearHead(num_classes, batch_norm=True,
                      kernel_init=nn.initializers.truncated_normal(0.01))


def mae(backbone, variables, data: ProbeData, *, batch_size: int, epochs: int = 90,
        base_learning_rate: float = 0.1, weight_decay: float = 0.0,
        warmup_epochs: float | None = None, augment: bool = True, seed: int = 0,
        log=None) -> dict:
    """MAE's linear probing (see the module docstring) → ``train_and_test``'s dict.

    ``warmup_epochs`` defaults to MAE's 10 of 90, i.e. a ninth of ``epochs``.
    """
    lr = _scaled(base_learning_rate, batch_size)
    per_epoch = steps_per_epoch(data, batch_size)
    warmup = epochs / 9 if warmup_epochs is None else warmup_epochs

    def schedule(step):  # util/lr_sched.py at the fractional epoch of each step
        epoch = step / per_epoch
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * (epoch - warmup) / max(epochs - warmup, 1e-9)))
        return lr * jnp.where(epoch < warmup, epoch / max(warmup, 1e-9), cosine)

    head = mae_head(data.num_classes)
    tx = lars(schedule, weight_decay=weight_decay)
    result = train_and_test(pooled_embedder(backbone, variables), head, tx, data,
                            epochs=epochs, batch_size=batch_size, augment=augment, seed=seed,
                            log=log)
    return {"protocol": "mae", "learning_rate": lr, "epochs": epochs,
            "batch_size": batch_size, **result}


def simclr(backbone, variables, data: ProbeData, *, batch_size: int, epochs: int = 90,
           base_learning_rate: float = 0.1, augment: bool = True, seed: int = 0,
           log=None) -> dict:
    """SimCLR's linear evaluation (see the module docstring) → ``train_and_test``'s dict."""
    lr = _scaled(base_learning_rate, batch_size)
    total_steps = epochs * steps_per_epoch(data, batch_size)
    head = LinearHead(data.num_classes, kernel_init=nn.initializers.zeros)
    tx = optax.sgd(optax.cosine_decay_schedule(lr, total_steps), momentum=0.9, nesterov=True)
    result = train_and_test(pooled_embedder(backbone, variables), head, tx, data,
                            epochs=epochs, batch_size=batch_size, augment=augment, seed=seed,
                            log=log)
    return {"protocol": "simclr", "learning_rate": lr, "epochs": epochs,
            "batch_size": batch_size, **result}


PROTOCOLS = {"dino": dino, "mae": mae, "simclr": simclr}
# "fast": only the L-BFGS probe on precomputed features; "finetune": finetune.py
NAMES = ("fast", *PROTOCOLS, "finetune")


def run(name: str, backbone, variables, data: ProbeData, **kwargs) -> dict:
    """The protocol called ``name`` with its keyword arguments."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown linear-probe protocol {name!r}; choose one of "
                         f"{', '.join(PROTOCOLS)} (or 'fast' for the L-BFGS probe only).")
    return PROTOCOLS[name](backbone, variables, data, **kwargs)

