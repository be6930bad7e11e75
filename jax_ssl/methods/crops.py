"""What the pretext methods share: a siamese tower over several crops of one image, and
the metrics of a classification pretext task.

Jigsaw's tiles, relative position's patch pair and PIRL's jigsaw branch all run every
crop through the shared backbone in one batched call, map each crop's representation
through a per-crop layer and read their concatenation, in the crops' order, with a head
(Noroozi & Favaro's "context-free network", Doersch et al.'s late fusion, VISSL's
``siamese_concat_view``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from jax_ssl.losses._common import global_mean
from jax_ssl.methods import common
from jax_ssl.models import heads


def tower(backbone: nn.Module, crops, *, train: bool):
    """crops [B, n, h, w, C] → their pooled representations [B·n, D], one backbone call."""
    b, n = crops.shape[:2]
    return common.pooled(backbone(crops.reshape(b * n, *crops.shape[2:]), train=train))


def crop_linear(features: int, dtype, name: str = "crop_linear") -> nn.Dense:
    return nn.Dense(features, dtype=dtype, kernel_init=heads.torch_linear_init, name=name)


class CropsNetwork(nn.Module):
    """Call: crops [B, n, h, w, C] → (representations [B·n, D], head output [B, out]).

    ``crop_dim`` 0 feeds the representations to the head as they are; otherwise a Linear
    per crop to ``crop_dim`` first, followed by a ReLU with ``crop_relu``.
    """
    backbone: nn.Module
    head: nn.Module
    crop_dim: int = 0
    crop_relu: bool = True
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, crops, *, train: bool):
        representation = x = tower(self.backbone, crops, train=train)
        if self.crop_dim:
            x = crop_linear(self.crop_dim, self.dtype)(x)
            x = nn.relu(x) if self.crop_relu else x
        return representation, self.head(x.reshape(crops.shape[0], -1), train=train)


def classifier(hidden_dims, num_classes: int, config, axis_name) -> heads.MLP:
    """Linear → ReLU per hidden width, then a Linear to the classes (no BatchNorm, as the
    pretext tasks' official heads)."""
    return heads.MLP(tuple(hidden_dims), num_classes, use_bn=False, axis_name=axis_name,
                     dtype=common.compute_dtype(config))


def crops_network(config, section, num_classes: int, axis_name) -> CropsNetwork:
    """The backbone, a per-crop layer of ``section.crop_dim`` and a classifier of
    ``section.hidden_dims`` over the concatenation (jigsaw, relative position)."""
    return CropsNetwork(common.build_backbone(config, axis_name),
                        classifier(section.hidden_dims, num_classes, config, axis_name),
                        crop_dim=section.crop_dim, dtype=common.compute_dtype(config))


def classification_metrics(representation, logits, labels, *, axis_name) -> dict:
    """The pretext task's accuracy on the global batch and the collapse monitors."""
    correct = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    return {"pretext_accuracy": jax.lax.stop_gradient(global_mean(correct, axis_name)),
            **common.collapse_monitors(representation, axis_name=axis_name)}


def classification_step(net, params, state, crops, labels, loss, *, axis_name):
    """``loss(logits, labels)`` of ``net`` on ``crops`` [B, n, h, w, C] → (loss, (state,
    metrics)): a puzzle's pretext classification (jigsaw, relative position)."""
    (representation, logits), state = common.apply(net, params, state, crops)
    return loss(logits, labels, axis_name=axis_name), (state, classification_metrics(
        representation, logits, labels, axis_name=axis_name))
