"""Backbones by name."""
import pytest

from jax_ssl import models
from jax_ssl.models.resnet import ResNet
from jax_ssl.models.vit import VisionTransformer


def test_every_name_builds_its_module():
    for name in models.BACKBONES:
        module = models.backbone(name)
        assert isinstance(module, ResNet if name.startswith("resnet") else VisionTransformer)
    assert models.backbone("resnet18", cifar_stem=True).cifar_stem
    assert models.backbone("vit_s16", image_size=96).image_size == 96
    assert models.backbone("vit_b16").embed_dim == 768


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown backbone 'resnet51'.*resnet50.*vit_s16"):
        models.backbone("resnet51")
