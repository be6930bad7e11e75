"""Pieces every method shares: building its backbone, pooled features, EMA, monitors.

A method module (DESIGN.md §2) exposes::

    init(rng, config, batch) -> (params, state)        # trainable / everything else
    loss_fn(params, state, batch, rng, step, *, config, axis_name)
        -> (loss, (new_state, metrics))
    backbone_variables(params, state) -> flax variables of the backbone to evaluate

A method that keeps a row of state per training example (PIRL's memory bank) sets
``USES_EXAMPLE_INDEX = True``: its batches carry each example's ``index`` and its ``init``
takes ``num_examples`` (see :func:`init_method`); ``SHARDED_STATE`` names the state
entries the trainer splits over the devices by rows.

Optionally, both also given ``total_steps`` and ``steps_per_epoch`` keywords,
``after_update(params, state, step, *, config, ...) -> state`` (EMA teachers), called
with the new parameters after each optimizer step, and ``trainable(params, step, *,
config, ...) -> params-shaped bool scalars``: tensors marked False are left untouched by
that step (DINO's last layer, SwAV's prototypes), and ``project_params(params) ->
params``, applied after every update (SwAV's prototype normalisation).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from jax_ssl import models, optim
from jax_ssl.losses._common import gather_batch_replicated

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(config):
    if config.dtype not in DTYPES:
        raise ValueError(f"config.dtype must be one of {sorted(DTYPES)}, not {config.dtype!r}.")
    return DTYPES[config.dtype]


# Methods whose student masks patch tokens: their ViTs (so their checkpoints, and the
# backbone the evaluation job rebuilds) carry the mask token.
MASK_TOKEN_METHODS = ("ibot", "dinov2")


def build_backbone(config, axis_name: str | None, *, teacher: bool = False) -> nn.Module:
    """``config.model.backbone`` with its keyword arguments, synced BN over ``axis_name``.

    For an MAE (``mae_vit_*``) this is its encoder as a plain ViT, whose parameters are
    the MAE's ``encoder`` ones: what evaluation runs. A ``teacher`` (an EMA copy) has no
    stochastic depth: the official DINO, BYOL and MoCo v3 teachers are built without it,
    and their forward passes get no dropout rng.
    """
    kwargs = dict(config.model.get("backbone_kwargs", {}))
    if teacher and "drop_path_rate" in kwargs:
        kwargs["drop_path_rate"] = 0.0
    name, dtype = config.model.backbone, compute_dtype(config)
    if name in models.MAES:
        mae = models.MAES[name](**kwargs)
        return models.vit.VisionTransformer(
            patch_size=mae.patch_size, embed_dim=mae.embed_dim, depth=mae.depth,
            num_heads=mae.num_heads, mlp_ratio=mae.mlp_ratio, pos_embed="sincos",
            image_size=mae.image_size, dtype=dtype)
    if name in models.RESNETS:
        kwargs["axis_name"] = axis_name
    if config.method in MASK_TOKEN_METHODS and name in models.VITS:
        kwargs["mask_token"] = True
    return models.backbone(name, dtype=dtype, **kwargs)


def build_masked_vit(config, axis_name: str | None, *, teacher: bool = False) -> nn.Module:
    """``build_backbone`` for a method that masks patch tokens (iBOT, DINOv2): a ViT."""
    backbone = build_backbone(config, axis_name, teacher=teacher)
    if not isinstance(backbone, models.vit.VisionTransformer):
        raise ValueError(f"{config.method} needs a ViT backbone (it masks patch tokens), not "
                         f"{config.model.backbone!r}.")
    return backbone


def patch_grid(config, images) -> tuple[int, int]:
    """The (rows, columns) of ``config``'s ViT patches over ``images`` [..., H, W, C]."""
    patch = build_backbone(config, None).patch_size
    return images.shape[-3] // patch, images.shape[-2] // patch


def pooled(features):
    """A backbone's image representation: ResNet's pooled map or ViT's CLS token."""
    return features["cls"] if isinstance(features, dict) else features


class Network(nn.Module):
    """Backbone → representation → head (projector, optionally a predictor after it)."""
    backbone: nn.Module
    head: nn.Module
    predictor: nn.Module | None = None

    def __call__(self, images, *, train: bool):
        representation = pooled(self.backbone(images, train=train))
        projection = self.head(representation, train=train)
        prediction = None if self.predictor is None else self.predictor(projection, train=train)
        return representation, projection, prediction


def split_views(views):
    """[B, V, H, W, C] → [V·B, H, W, C], view-major so that view v is rows v·B…(v+1)·B."""
    return jnp.swapaxes(views, 0, 1).reshape(-1, *views.shape[2:])


def unsplit(x, num_views: int):
    """[V·B, ...] (view-major) → [V, B, ...]."""
    return x.reshape(num_views, -1, *x.shape[1:])


def ema(teacher, student, momentum):
    """``momentum · teacher + (1 − momentum) · student``, leaf by leaf."""
    return jax.tree.map(lambda t, s: momentum * t + (1.0 - momentum) * s, teacher, student)


def collapse_monitors(z, *, axis_name: str | None) -> dict:
    """Collapse signals of an embedding batch z [B, D] (global batch when sharded).

    ``embedding_std``: mean over dimensions of the std of L2-normalised embeddings
    (1/√D when spread out, 0 when collapsed; BYOL/SimSiam's monitor). ``rankme``: the
    exponential of the entropy of the normalised singular values (Garrido et al. 2023),
    between 1 (collapse) and min(B, D).
    """
    z = jax.lax.stop_gradient(z.astype(jnp.float32))
    z = gather_batch_replicated(z, axis_name)
    unit = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    std = jnp.mean(jnp.std(unit, axis=0))
    s = jnp.linalg.svd(z, compute_uv=False)
    p = s / jnp.sum(s) + 1e-7
    return {"embedding_std": std, "rankme": jnp.exp(-jnp.sum(p * jnp.log(p)))}


def backbone_width(backbone: nn.Module) -> int:
    """Width of a backbone's pooled representation."""
    return getattr(backbone, "num_features", None) or backbone.embed_dim


def apply(net: nn.Module, params, state, images, rng=None):
    """``net(images)`` in training mode → (outputs, state with updated BN statistics).

    ``state["batch_stats"]`` holds the network's BatchNorm statistics (absent for ViTs);
    ``rng`` feeds dropout and drop path.
    """
    variables = {"params": params}
    rngs = {} if rng is None else {"dropout": rng}
    if "batch_stats" in state:
        variables["batch_stats"] = state["batch_stats"]
        outputs, mutated = net.apply(variables, images, train=True, rngs=rngs,
                                     mutable=["batch_stats"])
        return outputs, {**state, "batch_stats": mutated["batch_stats"]}
    return net.apply(variables, images, train=True, rngs=rngs), state


def backbone_variables(params, state, *, params_key: str = "params",
                       stats_key: str = "batch_stats"):
    """The backbone's Flax variables inside a Network's ``params``/``state``.

    ``params_key`` names where the evaluated network's parameters live: ``"params"``
    (the trainable ones) or a key of ``state`` (an EMA teacher's).
    """
    net_params = params if params_key == "params" else state[params_key]
    variables = {"params": net_params["backbone"]}
    if stats_key in state and "backbone" in state[stats_key]:
        variables["batch_stats"] = state[stats_key]["backbone"]
    return variables


def forward_views(net: nn.Module, params, state, views, rng=None):
    """All views [B, V, H, W, C] through ``net`` as one batch (one BN batch, as the
    official codes concatenate them) → (per-view outputs, each [V, B, ...], new state)."""
    num_views = views.shape[1]
    outputs, state = apply(net, params, state, split_views(views), rng)
    return jax.tree.map(lambda x: unsplit(x, num_views), outputs), state


# An EMA teacher (BYOL's target, MoCo's momentum encoder, DINO's teacher) copies the
# student's backbone and heads (DINOv2's separate patch head too); it lives in the method
# state under "teacher" (parameters) and "teacher_batch_stats" (its own BN statistics,
# updated by its forward passes).
HEADS = ("head", "patch_head")
TEACHER_PARTS = ("backbone", *HEADS)


def init_teacher(params, state) -> dict:
    teacher = {"teacher": {k: params[k] for k in TEACHER_PARTS if k in params}}
    if "batch_stats" in state:
        teacher["teacher_batch_stats"] = {k: v for k, v in state["batch_stats"].items()
                                          if k in TEACHER_PARTS}
    return {**state, **jax.tree.map(jnp.copy, teacher)}


def teacher_views(net: nn.Module, state, views):
    """The teacher's outputs of all views, without gradient → (outputs, new state)."""
    teacher_state = ({"batch_stats": state["teacher_batch_stats"]}
                     if "teacher_batch_stats" in state else {})
    outputs, teacher_state = forward_views(net, state["teacher"], teacher_state, views)
    if teacher_state:
        state = {**state, "teacher_batch_stats": teacher_state["batch_stats"]}
    return jax.lax.stop_gradient(outputs), state


def symmetric_teacher_loss(student: nn.Module, teacher: nn.Module, params, state, views,
                           loss, rng, *, axis_name):
    """``loss(p₁, k₂) + loss(p₂, k₁)``: the student's predictions of each view against
    the teacher's projections of the other (BYOL, MoCo v3) → (loss, (state, metrics)).
    ``rng`` feeds the student's stochastic depth."""
    (representation, _, prediction), state = forward_views(student, params, state, views, rng)
    (_, target, _), state = teacher_views(teacher, state, views)
    total = loss(prediction[0], target[1]) + loss(prediction[1], target[0])
    return total, (state, collapse_monitors(representation[0], axis_name=axis_name))


def update_teacher(params, state, momentum):
    student = {k: params[k] for k in TEACHER_PARTS if k in params}
    return {**state, "teacher": ema(state["teacher"], student, momentum)}


def ema_teacher_update(section: str):
    """An ``after_update`` hook: the teacher's EMA step with the cosine momentum from
    ``config.<section>.base_momentum`` to 1."""
    def after_update(params, state, step, *, config, total_steps, steps_per_epoch):
        del steps_per_epoch
        momentum = optim.ema_momentum(config[section].base_momentum, total_steps)(step)
        return update_teacher(params, state, momentum)
    return after_update


def freeze_head_last_layers(params, unfrozen):
    """A ``trainable`` mask: every tensor but the heads' ``last_layer*`` ones, which take
    ``unfrozen`` (DINO's, iBOT's and DINOv2's first-epoch freeze of their last layers)."""
    mask = jax.tree.map(lambda _: jnp.asarray(True), params)
    for head in HEADS:
        for name in params.get(head, {}):
            if name.startswith("last_layer"):
                mask[head][name] = jax.tree.map(lambda _: unfrozen, params[head][name])
    return mask


# The masking methods draw their masks from (seed, step) alone, not from the step's rng,
# which differs per device: then each image's mask is the same on any number of devices.
MASK_STREAM = 2 ** 31 - 1  # folded into (seed, step): no device index is this large


def mask_key(config, step):
    return jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(config.seed), step),
                              MASK_STREAM)


def init_method(method, rng, config, batch, *, num_examples: int):
    """``method.init(rng, config, batch)``, given ``num_examples`` (the bound of the
    batches' ``index``) if the method keeps per-example state."""
    if getattr(method, "USES_EXAMPLE_INDEX", False):
        return method.init(rng, config, batch, num_examples=num_examples)
    return method.init(rng, config, batch)


def init_network(net: nn.Module, rng, images, **kwargs):
    """(params, state holding the other variable collections, e.g. ``batch_stats``);
    ``rng`` is a key, or a dict of keys per rng stream (MAE's ``masking``); ``kwargs``
    go to the network's call.

    Jitted: run op by op, the initialisation compiles each of its hundreds of small
    operations separately (9 s of a 4-step tiny-ViT run's 22 s on 2 cores)."""
    variables = dict(jax.jit(functools.partial(net.init, train=True, **kwargs))(rng, images))
    return variables.pop("params"), variables


def two_view_loss(net: nn.Module, params, state, views, loss, *, axis_name):
    """``loss(z₁, z₂)`` of the two views' projections, with the collapse monitors of the
    first view's representation → (loss, (new state, metrics))."""
    (representation, z, _), state = forward_views(net, params, state, views)
    return loss(z[0], z[1]), (state, collapse_monitors(representation[0], axis_name=axis_name))
