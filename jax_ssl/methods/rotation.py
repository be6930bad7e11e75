"""RotNet (Gidaris, Singh & Komodakis 2018; gidariss/FeatureLearningRotNet, VISSL's
``rotnet`` configs): predict by how much an image was rotated.

Every image of the batch goes in all four rotations (0°, 90°, 180°, 270°) within the same
batch, as the official code builds its batches: 4B images through the backbone (one
BatchNorm batch), a 4-way classifier on the pooled representation. The images come from
the single-image recipe ``mae`` (random resized crop and flip: RotNet's random crop and
flip). Config ``config.rotation``: ``hidden_dims``, the classifier's hidden widths (``()``:
a Linear, as VISSL's ResNet-50 RotNet).
"""
from __future__ import annotations

from jax_ssl import losses
from jax_ssl.methods import common, crops


def network(config, axis_name):
    head = crops.classifier(config.rotation.hidden_dims, 4, config, axis_name)
    return common.Network(common.build_backbone(config, axis_name), head)


def init(rng, config, batch):
    return common.init_network(network(config, None), rng, batch["image"])


def loss_fn(params, state, batch, rng, step, *, config, axis_name):
    del rng, step
    images, labels = losses.rotation_batch(batch["image"])
    (representation, logits, _), state = common.apply(network(config, axis_name), params,
                                                      state, images)
    loss = losses.rotation_loss(logits, labels, axis_name=axis_name)
    upright = representation[:batch["image"].shape[0]]
    metrics = crops.classification_metrics(upright, logits, labels, axis_name=axis_name)
    return loss, (state, metrics)


backbone_variables = common.backbone_variables
