"""jax_ssl.models: Flax backbones (ResNet, ViT), heads, MAE and I-JEPA models.

A config names its backbone by string; ``backbone(name, **overrides)`` builds it.
"""
from __future__ import annotations

from flax import linen as nn

from jax_ssl.models.mae import MAES
from jax_ssl.models.resnet import RESNETS
from jax_ssl.models.vit import VITS

BACKBONES = {**RESNETS, **VITS}


def backbone(name: str, **overrides) -> nn.Module:
    """The backbone called ``name`` (``resnet50``, ``vit_s16``, …), fields overridden.

    ResNets take e.g. ``cifar_stem``, ``zero_init_residual``, ``axis_name``, ``dtype``;
    ViTs ``pos_embed``, ``image_size``, ``drop_path_rate``, ``dtype``. MAE models are in
    ``MAES`` (``mae_vit_b16``, …).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}.")
    return BACKBONES[name](**overrides)


__all__ = ["BACKBONES", "MAES", "RESNETS", "VITS", "backbone"]
