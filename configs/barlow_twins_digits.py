"""Barlow Twins on the bundled digits (CPU, about a minute on 2 cores).

    python -m jax_ssl.train --config configs/barlow_twins_digits.py --workdir runs/bt_digits

Source: facebookresearch/barlowtwins (λ 0.0051, 3-layer projector) scaled to a short CPU
run: the CPU ViT, projector 512-512-512, AdamW, BYOL's views without blur.
"""
from jax_ssl.config import base, cpu_adamw, cpu_vit, small_images_byol_recipe


def get_config():
    config = base("barlow_twins", "digits")
    config.epochs = 10.0
    small_images_byol_recipe(config)
    cpu_vit(config, patch_size=8)
    cpu_adamw(config)
    config.barlow_twins = dict(projector_sizes=(512, 512, 512), lambd=0.0051)
    return config
