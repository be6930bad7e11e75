r"""Barlow Twins on Fashion-MNIST (CPU, about 2 minutes on 2 cores).

    python -m jax_ssl.train --config configs/barlow_twins_fashion_mnist.py \
        --workdir runs/bt_fashion_mnist

Source: facebookresearch/barlowtwins (λ 0.0051, 3-layer projector) scaled to a short CPU
run: the CPU ViT, projector 512-512-512, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("barlow_twins", "fashion_mnist")
    config.epochs = 1.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=7)
    cpu_adamw(config)
    config.barlow_twins = dict(projector_sizes=(512, 512, 512), lambd=0.0051)
    return config
