"""Shared pieces of the losses: dtype policy, argument checks, cross-device reductions.

Every cross-device helper takes ``axis_name``; ``None`` means "this device holds the
whole batch", so one loss body serves single-device code, ``jax.shard_map`` and
``jax.pmap``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def f32(x):
    """Casts to float32: losses and softmaxes compute in float32 whatever the model's dtype."""
    return jnp.asarray(x, jnp.float32)


def is_concrete(x) -> bool:
    """True when ``x`` has a value now (not a tracer inside jit/grad/shard_map)."""
    return not isinstance(x, jax.core.Tracer)


def check_positive(name: str, value) -> None:
    """Raises ValueError for a non-positive hyper-parameter known at trace time."""
    if is_concrete(value) and float(value) <= 0:
        raise ValueError(f"{name} must be > 0, got {float(value)}; pass a positive {name}.")


def check_rank(name: str, x, rank: int, shape_doc: str) -> None:
    if jnp.ndim(x) != rank:
        raise ValueError(f"{name} must have shape {shape_doc}, got shape {jnp.shape(x)}.")


def check_same_shape(name_a: str, a, name_b: str, b) -> None:
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {jnp.shape(a)} and "
            f"{jnp.shape(b)}."
        )


def check_labels(name: str, labels, logits, num_classes: int | None = None) -> None:
    check_rank("logits", logits, 2, "[B, C]")
    if jnp.shape(labels) != jnp.shape(logits)[:1]:
        raise ValueError(
            f"{name} must have shape [B]={jnp.shape(logits)[:1]} to match logits "
            f"{jnp.shape(logits)}, got {jnp.shape(labels)}."
        )
    if num_classes is not None and jnp.shape(logits)[1] != num_classes:
        raise ValueError(
            f"logits must have {num_classes} classes for this task, got {jnp.shape(logits)[1]}."
        )


def l2_normalize(x, eps: float = 1e-12):
    """x / max(||x||, eps) along the last axis: ``torch.nn.functional.normalize``."""
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def num_devices(axis_name) -> int:
    """Number of shards along ``axis_name`` (1 when it is None)."""
    return 1 if axis_name is None else lax.psum(1, axis_name)


def device_index(axis_name):
    """This shard's position along ``axis_name`` (0 when it is None)."""
    return 0 if axis_name is None else lax.axis_index(axis_name)


def global_mean(x, axis_name):
    """Mean over devices of per-device values; with equal shards, the global-batch mean."""
    return x if axis_name is None else lax.pmean(x, axis_name)


def global_sum(x, axis_name):
    return x if axis_name is None else lax.psum(x, axis_name)


def global_max(x, axis_name):
    return x if axis_name is None else lax.pmax(x, axis_name)


def gather_batch(x, axis_name):
    """Concatenates every device's ``x`` along axis 0, in device order.

    Differentiable: under ``shard_map`` its transpose is a reduce-scatter, so gradients
    through gathered rows reach the device that owns them. Wrap the input in
    ``lax.stop_gradient`` where the official code gathers without gradient.
    """
    return x if axis_name is None else lax.all_gather(x, axis_name, axis=0, tiled=True)


def gather_batch_replicated(x, axis_name):
    """``gather_batch`` for values that must come out replicated (no gradient).

    Each device places its rows into a zero array of the global shape and the arrays
    are summed over devices, so the result is known to be identical on every device
    (``shard_map`` can return it with ``out_specs=P()``). The traffic is the global
    batch, not the replicated state that the gathered rows then update.
    """
    if axis_name is None:
        return x
    x = lax.stop_gradient(x)
    b = x.shape[0]
    placed = jnp.zeros((b * num_devices(axis_name),) + x.shape[1:], x.dtype)
    placed = lax.dynamic_update_slice_in_dim(placed, x, device_index(axis_name) * b, axis=0)
    return lax.psum(placed, axis_name)


def global_logsumexp(x, axis, axis_name):
    """log Σ exp(x) over ``axis`` of this shard and over all shards of ``axis_name``."""
    peak = global_max(jnp.max(x, axis=axis, keepdims=axis is not None), axis_name)
    peak = lax.stop_gradient(jnp.where(jnp.isfinite(peak), peak, 0.0))
    total = global_sum(jnp.sum(jnp.exp(x - peak), axis=axis, keepdims=axis is not None),
                       axis_name)
    return jnp.log(total) + peak


def cross_entropy(logits, labels):
    """Per-row softmax cross-entropy with integer labels, float32. logits [B, C], labels [B]."""
    logits = f32(logits)
    picked = jnp.take_along_axis(logits, labels[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jax.nn.logsumexp(logits, axis=-1) - picked
