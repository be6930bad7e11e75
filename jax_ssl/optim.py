"""Schedules and optimizers of the official recipes (DESIGN.md §6), built from a config.

Schedules are functions of the step (jnp-traceable). ``optimizer(config, total_steps,
steps_per_epoch)`` returns an optax transformation for ``config.optimizer``:

- ``lars``: SimCLR/BYOL/SwAV/Barlow Twins LARS (momentum 0.9, trust 0.001); biases and
  normalisation parameters get neither weight decay nor trust-ratio adaptation;
- ``adamw``: DINO/MAE/MoCo v3 AdamW with decoupled weight decay (itself scheduled for
  DINO), no decay on biases and normalisation parameters;
- ``sgd``: momentum SGD (optionally Nesterov) with L2 weight decay.

``layer_decay`` (with ``patch_embed_lr_mult``) adds DINOv2's layer-wise learning-rate
decay over a ViT backbone's blocks (:func:`layer_lr_multipliers`).

The learning rate is ``base_learning_rate × batch_size / 256`` (the linear scaling rule
most recipes state; ``lr_scaling="sqrt"``: DINOv2's ``× √(batch_size / 1024)``) with a
linear warm-up then a cosine decay to ``final_learning_rate``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def warmup_cosine(base: float, final: float, total_steps: int, warmup_steps: int = 0,
                  warmup_start: float = 0.0):
    """Linear ``warmup_start → base`` over ``warmup_steps``, then cosine ``base → final``.

    DINO's ``cosine_scheduler``: the warm-up is its ``np.linspace``, whose last step is
    already ``base`` (so is the first cosine step), and the cosine reaches ``final`` at
    ``total_steps``.
    """
    decay_steps = max(total_steps - warmup_steps, 1)

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm = warmup_start + (base - warmup_start) * step / max(warmup_steps - 1, 1)
        t = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
        cos = final + 0.5 * (base - final) * (1.0 + jnp.cos(jnp.pi * t))
        return jnp.where(step < warmup_steps, warm, cos)

    return schedule


def ema_momentum(base: float, total_steps: int):
    """BYOL/DINO teacher momentum: ``1 − (1 − base)(cos(π·step/total) + 1)/2``, base → 1."""
    return warmup_cosine(base, 1.0, total_steps)


def decay_mask(params):
    """True for the parameters that take weight decay: kernels, not biases or norms."""
    return jax.tree.map(lambda p: p.ndim > 1, params)


def clip_per_tensor(max_norm: float) -> optax.GradientTransformation:
    """DINO's ``clip_gradients``: rescale each tensor's gradient to norm ≤ ``max_norm``."""
    def update(updates, state, params=None):
        del params

        def clip(g):
            norm = jnp.sqrt(jnp.sum(jnp.square(g.astype(jnp.float32))))
            return g * jnp.minimum(1.0, max_norm / (norm + 1e-6)).astype(g.dtype)
        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def clip_per_part(max_norm: float) -> optax.GradientTransformation:
    """DINOv2's clipping: the gradient of each top-level part of the parameters (the
    backbone, each head) rescaled to global norm ≤ ``max_norm`` on its own (its
    ``clip_grad_norm_`` on every student submodule)."""
    def update(updates, state, params=None):
        del params

        def clip(part):
            norm = optax.tree.norm(part)
            scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
            return jax.tree.map(lambda g: g * scale.astype(g.dtype), part)
        return {name: clip(part) for name, part in updates.items()}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# A ViT's parameters before its first block (DINOv2's ``get_vit_lr_decay_rate``).
VIT_EMBEDDINGS = ("patch_embed", "cls_token", "pos_embed", "mask_token", "register_tokens")


def layer_lr_multipliers(params, layer_decay: float, patch_embed_multiplier: float = 1.0):
    """Per-tensor learning-rate factors of layer-wise decay (DINOv2 ``param_groups.py``,
    as BEiT's and MAE's fine-tuning): in the ViT ``params["backbone"]`` of depth L the
    embeddings are layer 0, block i is layer i + 1 and the final norm L + 1; a tensor of
    layer l gets ``layer_decay ** (L + 1 − l)`` (the patch embedding that times
    ``patch_embed_multiplier``), every tensor outside the backbone 1."""
    backbone = params.get("backbone", {}) if isinstance(params, dict) else {}
    depth = sum(1 for name in backbone if name.startswith("blocks_"))
    if not depth:
        raise ValueError("optimizer.layer_decay needs a ViT backbone (params['backbone'] "
                         "with blocks_0 ...); remove the key for this model.")

    def multiplier(path, _):
        names = [getattr(key, "key", None) for key in path]
        if names[0] != "backbone":
            return 1.0
        name = names[1]
        layer = (int(name.split("_")[1]) + 1 if name.startswith("blocks_")
                 else 0 if name in VIT_EMBEDDINGS else depth + 1)
        factor = layer_decay ** (depth + 1 - layer)
        return factor * patch_embed_multiplier if name == "patch_embed" else factor
    return jax.tree_util.tree_map_with_path(multiplier, params)


def scale_by_layer(layer_decay: float, patch_embed_multiplier: float = 1.0
                   ) -> optax.GradientTransformation:
    """Multiplies each tensor's update by its ``layer_lr_multipliers`` factor: the same as
    a learning rate per parameter group, weight decay included (AdamW's decoupled decay is
    part of the update the learning rate scales)."""
    def update(updates, state, params=None):
        del params
        factors = layer_lr_multipliers(updates, layer_decay, patch_embed_multiplier)
        return jax.tree.map(lambda u, f: u * jnp.asarray(f, u.dtype), updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def learning_rate_schedule(config, total_steps: int, steps_per_epoch: int):
    opt = config.optimizer
    if opt.get("lr_scaling", "linear") == "sqrt":  # DINOv2's sqrt_wrt_1024
        base = opt.base_learning_rate * (config.batch_size / 1024) ** 0.5
    else:
        base = opt.base_learning_rate * config.batch_size / 256
    return warmup_cosine(base, opt.get("final_learning_rate", 0.0), total_steps,
                         round(opt.warmup_epochs * steps_per_epoch),
                         warmup_start=opt.get("initial_learning_rate") or 0.0)


def optimizer(config, total_steps: int, steps_per_epoch: int):
    """``(optax transformation, learning-rate schedule)`` for ``config.optimizer``."""
    opt = config.optimizer
    lr = learning_rate_schedule(config, total_steps, steps_per_epoch)
    weight_decay = opt.weight_decay
    if opt.get("final_weight_decay") is not None:  # DINO: 0.04 → 0.4 over training
        weight_decay = warmup_cosine(opt.weight_decay, opt.final_weight_decay, total_steps)
    if opt.name == "lars":
        tx = optax.lars(lr, weight_decay=weight_decay, weight_decay_mask=decay_mask,
                        trust_ratio_mask=decay_mask, momentum=opt.get("momentum", 0.9),
                        trust_coefficient=opt.get("trust_coefficient", 0.001))
    elif opt.name == "adamw":
        tx = optax.chain(
            optax.scale_by_adam(b1=opt.get("b1", 0.9), b2=opt.get("b2", 0.999)),
            optax.add_decayed_weights(weight_decay, mask=decay_mask),
            optax.scale_by_learning_rate(lr))
    elif opt.name == "sgd":
        tx = optax.chain(optax.add_decayed_weights(weight_decay, mask=decay_mask),
                         optax.sgd(lr, momentum=opt.get("momentum", 0.9),
                                   nesterov=opt.get("nesterov", False)))
    else:
        raise ValueError(f"config.optimizer.name must be 'lars', 'adamw' or 'sgd', "
                         f"not {opt.name!r}.")
    if opt.get("clip_per_tensor"):
        tx = optax.chain(clip_per_tensor(opt.clip_per_tensor), tx)
    if opt.get("clip_per_part"):
        tx = optax.chain(clip_per_part(opt.clip_per_part), tx)
    if opt.get("layer_decay") is not None:
        tx = optax.chain(tx, scale_by_layer(opt.layer_decay,
                                            opt.get("patch_embed_lr_mult") or 1.0))
    return tx, lr


def keep_frozen(tx, trainable, new_params, old_params, new_opt_state, old_opt_state):
    """Undoes a step for the parameters that ``trainable`` (params-shaped bools) marks False.

    The official codes freeze a tensor by dropping its gradient (``p.grad = None``: DINO's
    last layer the first epoch, SwAV's prototypes the first iterations), so the optimizer
    leaves both the tensor and its moments untouched; so does this. One difference
    remains: optax keeps one Adam step count for all tensors, where PyTorch counts per
    tensor, so a tensor's first bias-corrected steps after unfreezing are larger here.
    """
    params = jax.tree.map(lambda keep, new, old: jnp.where(keep, new, old),
                          trainable, new_params, old_params)
    state_mask = optax.tree_utils.tree_map_params(
        tx, lambda _, keep: keep, new_opt_state, trainable,
        transform_non_params=lambda _: True)
    opt_state = jax.tree.map(lambda keep, new, old: jnp.where(keep, new, old),
                             state_mask, new_opt_state, old_opt_state)
    return params, opt_state
